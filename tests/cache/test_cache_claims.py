"""Chunk claims: concurrent jobs sharing a cache split the encoding (real processes, real MiniLM), and a claim whose
owner died or went silent is taken over."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from test_cache import MiniLMEncoder, load_minilm, same_bits, shard_files

from nvembed_eval.cache.claims import ChunkClaims
from nvembed_eval.cache.store import prune_root

TEXTS = [f"Sentence number {i} is about topic {i % 7} and detail {i * 13 % 11}." for i in range(96)]
SHARD = 8  # 12 chunks


def _claim_file(folder: Path, chunk: str, owner: dict, age_s: float = 0.0) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"claim-{chunk}.json"
    path.write_text(json.dumps(owner), encoding="utf-8")
    then = time.time() - age_s
    os.utime(path, (then, then))
    return path


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_a_held_claim_excludes_others_until_released(tmp_path):
    first, second = ChunkClaims(tmp_path), ChunkClaims(tmp_path)
    claim = first.try_acquire("c1")
    assert claim is not None and claim.path.is_file()
    assert json.loads(claim.path.read_text())["pid"] == os.getpid()
    assert second.try_acquire("c1") is None  # a live owner (this process) holds it
    assert second.try_acquire("c2") is not None  # other chunks are free
    claim.release()
    assert not claim.path.exists()
    again = second.try_acquire("c1")
    assert again is not None
    again.release()


def test_heartbeat_keeps_a_claim_fresh(tmp_path):
    claim = ChunkClaims(tmp_path, heartbeat_s=0.05).try_acquire("c1")
    old = time.time() - 1000
    os.utime(claim.path, (old, old))
    time.sleep(0.4)
    assert time.time() - claim.path.stat().st_mtime < 5  # touched again by the heartbeat thread
    assert ChunkClaims(tmp_path, stale_s=300).try_acquire("c1") is None
    claim.release()


@pytest.mark.parametrize(
    ("owner", "age_s", "taken_over"),
    [
        ({"host": socket.gethostname(), "pid": "dead"}, 0.0, True),  # same host, process gone: at once
        ({"host": socket.gethostname(), "pid": os.getpid()}, 0.0, False),  # same host, alive
        ({"host": "another-node", "pid": 1}, 10.0, False),  # elsewhere, heartbeat recent
        ({"host": "another-node", "pid": 1}, 400.0, True),  # elsewhere, silent past stale_s
        ({}, 400.0, True),  # unreadable owner: judged by age
    ],
)
def test_dead_or_silent_owners_lose_their_claim(tmp_path, owner, age_s, taken_over):
    if owner.get("pid") == "dead":
        owner = {**owner, "pid": _dead_pid()}
    path = _claim_file(tmp_path, "c1", owner, age_s)
    claim = ChunkClaims(tmp_path, stale_s=300).try_acquire("c1")
    assert (claim is not None) is taken_over
    if claim is not None:
        assert json.loads(path.read_text())["pid"] == os.getpid()
        claim.release()
    else:
        assert json.loads(path.read_text()) == owner


def test_prune_removes_abandoned_claims_and_keeps_live_ones(tmp_path):
    folder = tmp_path / ("ab" * 8)
    old = _claim_file(folder, "old", {"host": "n", "pid": 1}, age_s=2 * 86400)
    live = _claim_file(folder, "live", {"host": "n", "pid": 1})
    summary = prune_root(tmp_path, 0)
    assert not old.exists() and live.exists() and summary.files_removed == 1
    assert folder.is_dir()  # a live claim means a job is writing here


JOB_SCRIPT = textwrap.dedent(
    """
    import json, sys, time
    from pathlib import Path
    sys.path.insert(0, sys.argv[4])
    from test_cache import MiniLMEncoder, load_minilm
    from test_cache_claims import SHARD, TEXTS
    from nvembed_eval.cache.encoder import CachedEncoder

    cache, me, other = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
    enc = MiniLMEncoder(load_minilm())
    cached = CachedEncoder(enc, cache, shard_size=SHARD)
    (me.parent / (me.name + ".ready")).touch()
    while not (other.parent / (other.name + ".ready")).exists():  # start together
        time.sleep(0.005)
    vectors = cached.encode(TEXTS)
    import numpy as np
    np.save(me.with_suffix(".npy"), vectors)
    me.with_suffix(".json").write_text(json.dumps({**cached.counters, "texts_encoded": enc.texts_encoded}))
    """
)


def test_two_jobs_split_the_same_texts_and_agree_bit_for_bit(tmp_path):
    """Two processes encode the same 96 texts into one cache at the same time: every text is encoded exactly once
    across both, each takes the other's chunks from the cache, and both return the single-process vectors."""
    cache, tests = tmp_path / "cache", str(Path(__file__).parent)
    jobs = [tmp_path / "a", tmp_path / "b"]
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", JOB_SCRIPT, str(cache), str(me), str(other), tests], stderr=subprocess.PIPE
        )
        for me, other in (jobs, jobs[::-1])
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err.decode()[-2000:]
    a, b = (json.loads(job.with_suffix(".json").read_text()) for job in jobs)
    assert a["texts_encoded"] + b["texts_encoded"] == len(TEXTS)  # nothing encoded twice
    assert a["texts_encoded"] > 0 and b["texts_encoded"] > 0  # the work was split
    assert a["misses"] == a["texts_encoded"] and a["from_peers"] == b["texts_encoded"]
    assert b["from_peers"] == a["texts_encoded"] and a["hits"] == b["hits"] == 0
    reference = MiniLMEncoder(load_minilm()).encode(TEXTS)
    for job in jobs:
        assert same_bits(np.load(job.with_suffix(".npy")), reference)
    assert len(shard_files(cache)) == len(TEXTS) // SHARD  # one shard per chunk
    assert not list(cache.glob("*/claim-*"))  # every claim released


def test_a_stuck_claim_holder_is_waited_for_only_so_long(tmp_path, monkeypatch, caplog):
    """A claim whose live owner never stores its shard (a hung job keeps heartbeating) delays this job by at most
    CLAIM_MAX_WAIT_S; then it encodes the chunk itself and returns the same vectors."""
    import nvembed_eval.cache.encoder as cache_mod

    monkeypatch.setattr(cache_mod, "CLAIM_POLL_S", 0.05)
    monkeypatch.setattr(cache_mod, "CLAIM_MAX_WAIT_S", 0.5)
    enc = MiniLMEncoder(load_minilm())
    cached = cache_mod.CachedEncoder(enc, tmp_path, shard_size=SHARD)
    texts = TEXTS[:SHARD]
    chunk = cache_mod._chunk_id(cache_mod.text_keys(enc.identity.key(), "", texts))
    held = _claim_file(cached.model_dir, chunk, {"host": socket.gethostname(), "pid": os.getpid()})
    start = time.monotonic()
    vectors = cached.encode(texts)
    assert 0.5 <= time.monotonic() - start < 30
    assert same_bits(vectors, MiniLMEncoder(load_minilm()).encode(texts))
    assert cached.counters["claim_waits"] >= 5 and cached.counters["misses"] == SHARD
    assert "not waiting for other jobs' claims any longer" in caplog.text
    assert held.exists()  # someone else's claim is left alone
