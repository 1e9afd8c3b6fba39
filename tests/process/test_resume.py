"""Crash safety: SIGKILL a running evaluation at several points, rerun, and get exactly the uninterrupted results,
with no corrupt file and no finished embedding shard encoded twice."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from clirun import DATA, invoke, main_scores, read_jsonl_gz, scifact_subset, start_cli, write_jsonl_gz

SHARD = 32


def _small_copy(dest: Path) -> Path:
    """A 200-document SciFact and a 120-pair STSBenchmark, real rows, so a full run takes seconds."""
    sts = read_jsonl_gz(DATA / "STSBenchmark" / "test.jsonl.gz")[:120]
    write_jsonl_gz(dest / "STSBenchmark" / "test.jsonl.gz", sts)
    return scifact_subset(dest, 200)


def _args(data: Path, run_dir: Path, cache: Path) -> list[str]:
    return [
        "model=minilm",
        "model.show_progress=false",
        "tasks=[STSBenchmark,SciFact]",
        f"data_dir={data}",
        f"output_dir={run_dir}",
        f"cache.dir={cache}",
        f"cache.shard_size={SHARD}",
        "batch_size=16",
    ]


def _shards(cache: Path) -> list[Path]:
    return sorted(cache.rglob("shard-*.safetensors"))


def _run_and_kill(args: list[str], tmp: Path, until, timeout: float = 300) -> None:
    """Start the CLI, SIGKILL it as soon as `until()` is true (polled every 20 ms)."""
    proc = start_cli(args, tmp)
    deadline = time.monotonic() + timeout
    try:
        while not until():
            assert proc.poll() is None, "run finished before the kill point; make the kill condition earlier"
            assert time.monotonic() < deadline, "kill point never reached"
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    assert proc.returncode == -signal.SIGKILL


def _task_scores(run_dir: Path) -> dict[str, str]:
    """Every metric of every task, serialised so that NaN (mteb writes some for tiny corpora) compares equal."""
    from mteb import TaskResult

    out = {}
    for path in (run_dir / "results").glob("*.json"):
        result = TaskResult.from_disk(path)  # raises on a corrupt file
        out[result.task_name] = json.dumps(result.scores, sort_keys=True)
    return out


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("resume-ref")
    data = _small_copy(tmp / "data")
    result = invoke(_args(data, tmp / "run", tmp / "cache"), tmp)
    assert result.returncode == 0, result.stderr[-2000:]
    return data, tmp / "run", tmp / "cache"


@pytest.mark.slow
def test_killed_runs_resume_to_identical_results(reference, tmp_path):
    data, ref_run, ref_cache = reference
    run_dir, cache = tmp_path / "run", tmp_path / "cache"
    args = _args(data, run_dir, cache)
    # 1. early, while STSBenchmark embeddings are being written
    _run_and_kill(args, tmp_path, lambda: len(_shards(cache)) >= 2)
    # 2. between tasks: STSBenchmark's result is on disk
    _run_and_kill(args, tmp_path, lambda: (run_dir / "results" / "STSBenchmark.json").exists())
    # 3. mid-corpus: a few SciFact shards are finished
    # (STSBenchmark writes at most 8 shards: 120 + 120 sentences in shards of 32; SciFact one of its queries, then
    # 7 of its corpus: the kill comes after 3 of them)
    _run_and_kill(args, tmp_path, lambda: len(_shards(cache)) >= 12)
    before_final = {p.name: p.read_bytes() for p in _shards(cache)}

    final = invoke(args, tmp_path)
    assert final.returncode == 0, final.stderr[-2000:]

    # identical to the uninterrupted run, every file readable
    assert _task_scores(run_dir) == _task_scores(ref_run)
    assert main_scores(run_dir) == main_scores(ref_run)
    json.loads((run_dir / "run.json").read_text())
    # finished shards were kept byte for byte and not encoded again: the same number of shards as one clean run
    after = {p.name: p.read_bytes() for p in _shards(cache)}
    assert all(after[name] == blob for name, blob in before_final.items())
    assert len(after) == len(_shards(ref_cache))
    record = json.loads((run_dir / "run.json").read_text())["tasks"]["SciFact"]
    assert record["cache"]["hits"] >= 2 * SHARD
    assert record["cache"]["corrupt"] == 0


def test_second_writer_to_the_same_folder_is_refused(reference, tmp_path):
    data = reference[0]
    run_dir = tmp_path / "run"
    args = [*_args(data, run_dir, tmp_path / "cache"), "cache=off"]
    first = start_cli(args, tmp_path, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while not (run_dir / "run.json").exists():
            assert first.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        second = invoke(args, tmp_path)
        assert second.returncode != 0
        assert "another nvembed-eval run is writing" in second.error_line
    finally:
        _, err = first.communicate(timeout=300)
    assert first.returncode == 0, err[-2000:]
    assert sorted(p.stem for p in (run_dir / "results").glob("*.json")) == ["STSBenchmark", "SciFact"]
