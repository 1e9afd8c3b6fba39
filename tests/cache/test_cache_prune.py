"""Embedding cache size cap: hits record use, LRU pruning, temp files, concurrency, the prune CLI, cache.max_size."""

from __future__ import annotations

import errno
import json
import os
import re
import sys
import time
from pathlib import Path

import pytest
from clirun import invoke
from test_cache import CORPUS, MiniLMEncoder, load_minilm, same_bits, shard_files

from nvembed_eval.cache.cli import main
from nvembed_eval.cache.encoder import CachedEncoder
from nvembed_eval.cache.store import IDENTITY_FILE, PARTIAL_SUFFIX, PruneSummary, cache_file_kind, prune_root
from nvembed_eval.errors import ConfigError
from nvembed_eval.io import human_size, parse_size

CHUNK = 2  # texts per shard in these caches
T0 = time.time() - 10 * 86400  # ten days ago: anything this test run touches is more recent


@pytest.fixture(scope="module")
def minilm():
    import torch

    threads = torch.get_num_threads()
    yield load_minilm()
    torch.set_num_threads(threads)


def build_cache(model, root: Path, n_chunks: int = 7, knobs: dict | None = None) -> list[Path]:
    """One shard per CHUNK texts of CORPUS, shard i last used at T0 + i minutes: shard 0 is the least recent."""
    cached = CachedEncoder(MiniLMEncoder(model, knobs), root)
    shards: list[Path] = []
    for i in range(n_chunks):
        before = set(shard_files(root))
        cached.encode(CORPUS[i * CHUNK : (i + 1) * CHUNK])
        (new,) = set(shard_files(root)) - before
        os.utime(new, (T0 + 60 * i, T0 + 60 * i))
        shards.append(new)
    return shards


def cache_bytes(root: Path) -> int:
    """Bytes of the files the cache itself writes (shards, identity.json, temp files), the quantity the cap bounds."""
    return sum(
        p.lstat().st_size for p in root.glob("*/*") if cache_file_kind(p.name) and not p.is_symlink() and p.is_file()
    )


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    """Relative path -> (size, mtime) of every file and link under root."""
    return {
        str(p.relative_to(root)): (p.lstat().st_size, p.lstat().st_mtime_ns) for p in root.rglob("*") if not p.is_dir()
    }


def sizes(paths: list[Path]) -> list[int]:
    return [p.stat().st_size for p in paths]


def test_prune_keeps_exactly_the_newest_shards_and_only_pruned_texts_are_reencoded(minilm, tmp_path):
    shards = build_cache(minilm, tmp_path)
    key = shards[0].parent.name
    identity, size = (tmp_path / key / IDENTITY_FILE).stat().st_size, sizes(shards)
    cap = identity + sum(size[-3:])  # room for exactly the 3 newest shards
    assert cache_bytes(tmp_path) == identity + sum(size) > cap

    summary = prune_root(tmp_path, cap)
    assert shard_files(tmp_path) == sorted(shards[-3:])
    assert summary == PruneSummary(
        files_removed=4, bytes_removed=sum(size[:4]), bytes_left=cap, shards_removed={key: 4}
    )
    assert cache_bytes(tmp_path) == cap

    enc = MiniLMEncoder(minilm)
    cached = CachedEncoder(enc, tmp_path)
    out = cached.encode(CORPUS)
    assert same_bits(out, MiniLMEncoder(minilm).encode(CORPUS))
    assert enc.calls == 1 and enc.texts_encoded == 4 * CHUNK  # only the texts of the 4 pruned shards
    counters = cached.counters
    assert (counters["hits"], counters["misses"], counters["shards_reused"], counters["shards_written"]) == (6, 8, 3, 1)


def test_equal_mtimes_are_pruned_in_name_order(minilm, tmp_path):
    shards = build_cache(minilm, tmp_path, n_chunks=3)
    for path in shards:
        os.utime(path, (T0, T0))
    summary = prune_root(tmp_path, cache_bytes(tmp_path) - 1)  # one shard must go
    assert shard_files(tmp_path) == sorted(shards)[1:]
    assert summary.shards_removed == {shards[0].parent.name: 1}


def test_a_hit_refreshes_mtime_so_a_recently_used_old_shard_survives(minilm, tmp_path):
    shards = build_cache(minilm, tmp_path, n_chunks=4)
    start = time.time()
    enc = MiniLMEncoder(minilm)
    cached = CachedEncoder(enc, tmp_path)
    cached.encode(CORPUS[:CHUNK])  # the texts of shard 0, the least recently used until now
    assert enc.calls == 0 and cached.counters["shards_reused"] == 1
    assert shards[0].stat().st_mtime >= start - 1  # 1 s of slack for coarse filesystem clocks
    # Indexing the other shards (reading their keys) is not a use.
    assert [p.stat().st_mtime for p in shards[1:]] == pytest.approx([T0 + 60 * i for i in (1, 2, 3)])

    prune_root(tmp_path, cache_bytes(tmp_path) - sum(sizes(shards[1:3])))
    assert shard_files(tmp_path) == sorted([shards[0], shards[3]])


def test_use_that_cannot_be_recorded_still_serves_hits(minilm, tmp_path, monkeypatch):
    (shard,) = build_cache(minilm, tmp_path, n_chunks=1)

    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(os, "utime", read_only)  # a read-only shared cache
    enc = MiniLMEncoder(minilm)
    cached = CachedEncoder(enc, tmp_path)
    cached.encode(CORPUS[:CHUNK])
    assert enc.calls == 0 and cached.counters["hits"] == CHUNK and cached.counters["disabled_reason"] is None
    assert shard.stat().st_mtime == pytest.approx(T0)


def test_dry_run_deletes_nothing_and_predicts_the_real_prune(minilm, tmp_path):
    shards = build_cache(minilm, tmp_path, n_chunks=4)
    cap = cache_bytes(tmp_path) - sum(sizes(shards[:2]))
    before = snapshot(tmp_path)
    plan = prune_root(tmp_path, cap, dry_run=True)
    assert snapshot(tmp_path) == before
    assert plan == prune_root(tmp_path, cap)
    assert plan.shards_removed == {shards[0].parent.name: 2} and shard_files(tmp_path) == sorted(shards[2:])


def test_stale_temp_files_are_removed_and_a_live_writers_are_kept(minilm, tmp_path):
    shards = build_cache(minilm, tmp_path, n_chunks=2)
    folder = shards[0].parent
    stale = folder / f".{shards[0].name}.111.aaaa{PARTIAL_SUFFIX}"  # left by a writer killed two days ago
    stale.write_bytes(b"s" * 1000)
    os.utime(stale, (time.time() - 2 * 86400,) * 2)
    fresh = folder / f".{shards[1].name}.222.bbbb{PARTIAL_SUFFIX}"  # a job writing right now
    fresh.write_bytes(b"f" * 500)
    total = cache_bytes(tmp_path)

    summary = prune_root(tmp_path, total)  # the cap itself is met; the stale temp file goes anyway
    assert summary == PruneSummary(files_removed=1, bytes_removed=1000, bytes_left=total - 1000, shards_removed={})
    assert not stale.exists() and fresh.exists() and shard_files(tmp_path) == sorted(shards)

    # No shard fits a 0 cap, but the live writer's temp file stays, and so does the identity.json it will need.
    identity = (folder / IDENTITY_FILE).stat().st_size
    summary = prune_root(tmp_path, 0)
    assert summary.shards_removed == {folder.name: 2} and summary.bytes_left == 500 + identity
    assert sorted(p.name for p in folder.iterdir()) == sorted([fresh.name, IDENTITY_FILE])

    # Once that writer is gone (its file is older than partial_age_s), the folder goes too.
    assert prune_root(tmp_path, 0, partial_age_s=0) == PruneSummary(2, 500 + identity, 0, {})
    assert not folder.exists()


def test_only_cache_files_are_touched(minilm, tmp_path):
    shards = build_cache(minilm, tmp_path, n_chunks=2)
    folder = shards[0].parent
    outside = tmp_path / "notes.txt"
    outside.write_text("not ours")
    not_a_model = tmp_path / "not-a-model-key"
    not_a_model.mkdir()
    (not_a_model / shards[0].name).write_bytes(shards[0].read_bytes())
    (folder / "README.txt").write_text("someone's notes")
    (folder / "shard-linked.safetensors").symlink_to(outside)  # a link is not a file this cache writes
    for path in (outside, not_a_model / shards[0].name, folder / "README.txt"):
        os.utime(path, (T0 - 86400,) * 2)
    ours = [*shards, folder / IDENTITY_FILE]
    unrelated = {k: v for k, v in snapshot(tmp_path).items() if tmp_path / k not in ours}
    ours_bytes = sum(sizes(ours))

    summary = prune_root(tmp_path, 0)
    assert summary == PruneSummary(3, ours_bytes, 0, {folder.name: 2})
    assert snapshot(tmp_path) == unrelated and folder.is_dir()  # everything else is still there, unchanged
    assert outside.read_text() == "not ours"


def test_a_shard_deleted_meanwhile_by_another_process_is_not_an_error(minilm, tmp_path, monkeypatch):
    shards = build_cache(minilm, tmp_path, n_chunks=4)
    cap = cache_bytes(tmp_path) - sum(sizes(shards[:2]))
    real_unlink = os.unlink

    def racing_unlink(path, *args, **kwargs):
        if shards[1].exists():  # another process removes the next victim between listing and unlinking
            real_unlink(shards[1])
        real_unlink(path, *args, **kwargs)

    monkeypatch.setattr(os, "unlink", racing_unlink)
    summary = prune_root(tmp_path, cap)
    assert shard_files(tmp_path) == sorted(shards[2:])
    assert summary.shards_removed == {shards[0].parent.name: 1} and summary.bytes_left == cap


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("500MiB", 500 * 2**20),
        ("200GB", 200 * 10**9),
        ("1.5TiB", 3 * 2**39),
        ("0", 0),
        ("1048576", 1048576),
        ("2kib", 2048),
        (" 7 KB ", 7000),
        ("3gB", 3 * 10**9),
        ("10B", 10),
        (4096, 4096),  # Hydra reads cache.max_size=4096 as an int
        (1e9, 10**9),  # ... and 1e9 as a float
    ],
)
def test_sizes_parse_to_bytes(text, expected):
    assert parse_size(text, "--max-size") == expected


@pytest.mark.parametrize("bad", ["", "lots", "-1", "1.5", "12XB", "5 M", "1e9", "inf", "1,5GiB", True, -5, 0.5])
def test_bad_sizes_name_the_value_and_show_valid_ones(bad):
    with pytest.raises(ConfigError) as info:
        parse_size(bad, "--max-size")
    assert (
        str(info.value)
        == f"<--max-size={bad}> is not a size; write e.g. 500MiB, 200GB, 1.5TiB, 0 or a byte count such as 1048576"
    )


def test_cli_prune_confirms_dry_runs_and_rejects_bad_sizes(minilm, tmp_path, capsys, monkeypatch):
    shards = build_cache(minilm, tmp_path, n_chunks=4)
    key = shards[0].parent.name
    cap = cache_bytes(tmp_path) - sum(sizes(shards[:2]))
    args = ["prune", "--cache-dir", str(tmp_path), "--max-size", str(cap)]
    before = snapshot(tmp_path)

    monkeypatch.setattr(sys.stdin, "isatty", lambda: False)  # not a terminal: refuses without --yes
    assert main(args) != 0
    assert "without --yes" in capsys.readouterr().err
    assert main([*args, "--dry-run"]) == 0  # never asks
    out = capsys.readouterr().out
    assert f"would remove 2 files ({human_size(sum(sizes(shards[:2])))})" in out and f"{key}: 2 shards" in out
    for bad in ("12XB", "-5", "lots"):
        assert main(["prune", "--cache-dir", str(tmp_path), "--max-size", bad, "--yes"]) != 0
        err = capsys.readouterr().err
        assert err.startswith(f"error: <--max-size={bad}> is not a size; write e.g. 500MiB") and err.count("\n") == 1
    monkeypatch.setattr(sys.stdin, "isatty", lambda: True)
    monkeypatch.setattr("builtins.input", lambda question: "n")
    assert main(args) == 1 and "nothing deleted" in capsys.readouterr().out
    assert snapshot(tmp_path) == before

    assert main([*args, "--yes"]) == 0
    out = capsys.readouterr().out
    assert "removed 2 files" in out and f"left: {human_size(cap)} of cache files (cap {human_size(cap)})" in out
    assert shard_files(tmp_path) == sorted(shards[2:])
    assert main([*args, "--yes"]) == 0 and "nothing to remove" in capsys.readouterr().out


def test_run_prunes_the_cache_to_cache_max_size(minilm, tmp_path):
    """The real `nvembed-eval` on the smoke benchmark with a cap below what it writes: an older model's shards go
    first, then the run's own oldest, and the cache ends under the cap."""
    cache, run_dir, cap = tmp_path / "cache", tmp_path / "run", 96 * 1024
    old = build_cache(minilm, cache, n_chunks=2, knobs={"pooling": "cls"})  # another model, last used 10 days ago
    args = ["model=minilm", "model.show_progress=false", "benchmark=smoke", f"cache.dir={cache}"]
    result = invoke([*args, "cache.max_size=96KiB", f"output_dir={run_dir}"], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]

    assert len(list((run_dir / "results").glob("*.json"))) == 7
    assert not old[0].parent.exists()  # the older model's folder went entirely
    kept = shard_files(cache)
    assert kept and 0 < cache_bytes(cache) <= cap
    written = sum(
        t["cache"]["shards_written"] for t in json.loads((run_dir / "run.json").read_text())["tasks"].values()
    )
    logged = re.search(r"pruned .* to cache\.max_size=96KiB: removed (\d+) files", result.stdout + result.stderr)
    assert logged and int(logged[1]) == len(old) + 1 + written - len(kept)  # + 1: the old identity.json


def test_bad_cache_max_size_fails_before_any_task(tmp_path):
    cache, run_dir = tmp_path / "cache", tmp_path / "run"
    result = invoke(["cache.max_size=lots", f"cache.dir={cache}", f"output_dir={run_dir}"], tmp_path)
    assert result.returncode != 0
    assert result.error_line == (
        "error: <cache.max_size=lots> is not a size; write e.g. 500MiB, 200GB, 1.5TiB, 0 or a byte count such as "
        "1048576, or null for no cap"
    )
    assert not (run_dir / "run.json").exists() and not (run_dir / "results").exists() and not cache.exists()


def test_cache_off_ignores_the_cap(minilm, tmp_path):
    cache, run_dir = tmp_path / "cache", tmp_path / "run"
    build_cache(minilm, cache, n_chunks=2)
    before = snapshot(cache)
    args = ["model=minilm", "model.show_progress=false", "tasks=[NVEvalSmokeSTS]", f"cache.dir={cache}"]
    result = invoke([*args, "cache=off", "cache.max_size=0", f"output_dir={run_dir}"], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (run_dir / "results" / "NVEvalSmokeSTS.json").exists()
    assert snapshot(cache) == before and "pruned" not in result.stdout + result.stderr
