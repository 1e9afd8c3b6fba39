"""Fail closed: every user-caused failure is one `error:` line with exit code 2, and a refused run changes nothing on
disk (no run folder, no `.hydra/` record, no log, no half-written file). Each kind through the real CLI."""

from __future__ import annotations

import errno
import gzip
import json
import os
from pathlib import Path

import pytest
from clirun import invoke, main_scores

SMOKE_STS = ["model=minilm", "model.show_progress=false", "tasks=[NVEvalSmokeSTS]"]


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _jsonl(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wt", encoding="utf-8") as handle:
        handle.writelines(json.dumps(r) + "\n" for r in rows)


def _refused(result, *fragments: str) -> None:
    assert result.returncode == 2, result.stderr[-2000:]
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    assert result.error_line.startswith("error: "), result.stderr[-1000:]
    for fragment in fragments:
        assert fragment in result.error_line, result.error_line


@pytest.mark.parametrize(
    ("override", "fragments"),
    [
        ("overwrite=no", ["<overwrite=no>", "true, false or a list of task names"]),
        ("overwrite=1", ["<overwrite=1>"]),
        ("trust_existing=yes", ["<trust_existing=yes> must be true or false"]),
        ("batch_size=abc", ["<batch_size=abc> must be a positive integer"]),
        ("batch_size=0", ["<batch_size=0> must be a positive integer"]),
        ("batch_size=-1", ["<batch_size=-1> must be a positive integer"]),
        ("device=gpu", ["<device=gpu> is not a device", "cuda:N"]),
        ("dataset_revision=latest", ["<dataset_revision=latest> is not one of: card, mteb"]),
        ("benchmark=null", ["<benchmark=null> needs a benchmark config"]),
        ("model=null", ["<model=null> needs a model config"]),
        ("cache.shard_size=0", ["<cache.shard_size=0>"]),
        ("tasks=[../model/minilm]", ["is not a task or benchmark name", "never paths"]),
    ],
)
def test_bad_values_are_one_line_and_create_nothing(tmp_path, override, fragments):
    out = tmp_path / "run"
    result = invoke([*SMOKE_STS, f"output_dir={out}", override], tmp_path)
    _refused(result, *fragments)
    assert not out.exists()


def test_output_dir_that_cannot_be_created_is_refused_before_hydra(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    _refused(invoke([*SMOKE_STS, f"output_dir={blocker / 'run'}"], tmp_path), "lies under the regular file")
    # sysfs refuses new folders to every user, root included: a read-only location on any Linux machine
    _refused(invoke([*SMOKE_STS, "output_dir=/sys/nvembed-eval-run"], tmp_path), "cannot create folders in /sys")


def _sts_folder(root: Path, scores: list[float]) -> Path:
    rows = [
        {"sentence1": f"a cat sat on mat {i}", "sentence2": f"a cat is on the mat {i}", "score": s}
        for i, s in enumerate(scores)
    ]
    _jsonl(root / "STSBenchmark" / "test.jsonl.gz", rows)
    return root


@pytest.mark.parametrize(
    ("scores", "fragment"),
    [([4.0], "has 1 pair; STS's Spearman correlation needs"), ([3.0] * 10, "10 pairs, all with gold score 3.0")],
)
def test_degenerate_sts_data_is_refused_before_encoding(tmp_path, scores, fragment):
    data = _sts_folder(tmp_path / "data", scores)
    out = tmp_path / "run"
    result = invoke(["model=minilm", "tasks=[STSBenchmark]", f"data_dir={data}", f"output_dir={out}"], tmp_path)
    _refused(result, "STSBenchmark (test split)", fragment)
    assert not (out / "results").exists()  # nothing recorded as finished: no NaN result, no result at all
    assert "embedding cache:" not in result.stderr  # refused before a single text was encoded


def test_one_class_training_split_is_refused_before_encoding(tmp_path):
    rows = [{"text": f"my card {i} has not arrived", "label": 11, "label_text": "card_arrival"} for i in range(12)]
    folder = tmp_path / "data" / "Banking77Classification"
    _jsonl(folder / "train.jsonl.gz", rows)
    _jsonl(folder / "test.jsonl.gz", rows[:4])
    (folder / "labels.json").write_text(json.dumps({"11": "card_arrival"}))
    args = ["model=minilm", "tasks=[Banking77Classification]", f"data_dir={folder.parent}", f"output_dir={tmp_path}/r"]
    _refused(invoke(args, tmp_path), "Banking77Classification (train split) has 12 examples, all of class 11")


def test_pairs_of_one_label_are_refused(tmp_path):
    rows = [{"sentence1": f"q {i}", "sentence2": f"same q {i}", "label": 1} for i in range(8)]
    _jsonl(tmp_path / "data" / "SprintDuplicateQuestions" / "test.jsonl.gz", rows)
    args = [
        "model=minilm",
        "tasks=[SprintDuplicateQuestions]",
        f"data_dir={tmp_path / 'data'}",
        f"output_dir={tmp_path}/r",
    ]
    _refused(invoke(args, tmp_path), "all labelled 1; average precision needs pairs of both labels 0 and 1")


def test_a_refused_sweep_job_keeps_the_hydra_record_of_the_run_that_made_the_result(tmp_path):
    """The issue's reproduction: a second sweep over the same folder used to be refused *after* Hydra had rewritten
    `<job>/.hydra/overrides.yaml`, so the report labelled a result made with max_seq_length=8 as 128."""
    sweep = tmp_path / "sweep"
    first = invoke(["-m", *SMOKE_STS, "model.max_seq_length=8,128", f"output_dir={sweep}"], tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    jobs = {job: _snapshot(sweep / job) for job in ("0", "1")}
    second = invoke(["-m", *SMOKE_STS, "model.max_seq_length=128,8", f"output_dir={sweep}"], tmp_path)
    assert second.returncode == 2  # the first refused job stops the sweep
    assert "holds results of another model or model settings" in second.error_line
    assert "max_seq_length" in second.error_line
    for job, files in jobs.items():
        assert _snapshot(sweep / job) == files, job
    assert "model.max_seq_length=8" in (sweep / "0" / ".hydra" / "overrides.yaml").read_text()
    assert main_scores(sweep / "0") != main_scores(sweep / "1")  # 8 tokens vs 128 tokens really differ


def test_a_full_disk_leaves_no_partial_or_empty_file(tmp_path, monkeypatch):
    """A write that fails (ENOSPC) is one line and leaves neither the file nor a temp file behind."""
    import nvembed_eval.io as atomic
    from nvembed_eval.errors import ResultsError
    from nvembed_eval.results.run_folder import RunFolder, RunPaths

    folder = RunFolder(RunPaths(tmp_path / "run"))
    folder.run_dir.mkdir()

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(atomic.os, "fsync", full)
    with pytest.raises(ResultsError, match=r"cannot write .*run\.json \(No space left on device\); free disk space"):
        folder._save()
    assert list(folder.run_dir.iterdir()) == []
