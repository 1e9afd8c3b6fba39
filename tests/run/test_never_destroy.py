"""Never destroy or misattribute: a refused run changes nothing that was there before it, byte for byte; it writes only
inside its folder; a dry run never runs; distributed variables without a launcher and empty path variables are
refused in one line."""

from __future__ import annotations

import gzip
import json
import os
import shutil
from pathlib import Path

import pytest
from clirun import DATA, REPO, invoke

SMOKE_STS = ["model=minilm", "tasks=[NVEvalSmokeSTS]"]


def _tree(folder: Path) -> dict[str, bytes | str]:
    """Every file (bytes), folder and link (target) below `folder`."""
    out: dict[str, bytes | str] = {}
    for path in sorted(folder.rglob("*")):
        key = str(path.relative_to(folder))
        out[key] = f"-> {os.readlink(path)}" if path.is_symlink() else path.read_bytes() if path.is_file() else "dir"
    return out


def _bad_sts(root: Path) -> Path:
    """An STSBenchmark folder whose only row has a score that is no number: refused once the task's turn comes."""
    (root / "STSBenchmark").mkdir(parents=True)
    with gzip.open(root / "STSBenchmark" / "test.jsonl.gz", "wt") as handle:
        handle.write(json.dumps({"sentence1": "a", "sentence2": "b", "score": "abc"}) + "\n")
    return root


def _foreign_folder(folder: Path) -> Path:
    """A folder a user made: their notes, results of their own, a `.hydra/`, `items/` and `predictions/` of theirs."""
    for name, text in {
        "notes.txt": "the user's file",
        "results/MyTask.json": '{"task_name": "MyTask"}',
        "results/published/table.csv": "task,metric,score\n",
        "items/MyTask.json": "{}",
        "predictions/MyTask_predictions.json": "{}",
        ".hydra/config.yaml": "mine: true\n",
        "model_meta.json": '{"name": "mine"}',
    }.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)
    return folder


def test_a_refused_run_leaves_a_folder_full_of_foreign_files_byte_for_byte(tmp_path):
    """The reproduction of the data-loss report: `output_dir=.` in a checkout deleted results/published."""
    folder = _foreign_folder(tmp_path / "mine")
    before = _tree(folder)
    result = invoke(
        ["tasks=[STSBenchmark]", f"data_dir={_bad_sts(tmp_path / 'data')}", f"output_dir={folder}"], tmp_path
    )
    assert result.returncode == 2 and "key 'score' must be a finite number" in result.error_line
    assert _tree(folder) == before


def test_a_refused_resumed_run_restores_the_records_it_rewrote(tmp_path):
    data = tmp_path / "data"
    shutil.copytree(DATA / "STSBenchmark", data / "STSBenchmark")
    run_dir = tmp_path / "run"
    assert invoke([*SMOKE_STS, f"output_dir={run_dir}"], tmp_path).returncode == 0
    before = {k: v for k, v in _tree(run_dir).items() if k != "nvembed-eval.log"}
    shutil.rmtree(data / "STSBenchmark")
    _bad_sts(data)
    again = ["model=minilm", "tasks=[NVEvalSmokeSTS,STSBenchmark]", f"data_dir={data}", f"output_dir={run_dir}"]
    result = invoke(again, tmp_path)
    assert result.returncode == 2
    after = _tree(run_dir)
    assert {k: v for k, v in after.items() if k != "nvembed-eval.log"} == before  # run.json and .hydra/ as they were
    assert b"key 'score' must be a finite number" in after["nvembed-eval.log"]  # the log says why it stopped


@pytest.mark.parametrize("link", ["nvembed-eval.log", ".hydra", "results", "predictions"])
def test_links_where_a_run_writes_are_refused(tmp_path, link):
    run_dir = tmp_path / "run"
    assert invoke([*SMOKE_STS, f"output_dir={run_dir}"], tmp_path).returncode == 0
    outside = tmp_path / "outside"
    outside.mkdir()
    target = run_dir / link
    if target.is_dir():
        shutil.rmtree(target)
    else:
        target.unlink(missing_ok=True)
    target.symlink_to(outside, target_is_directory=True)
    before = _tree(tmp_path)
    result = invoke([*SMOKE_STS, "overwrite=true", "save_predictions=true", f"output_dir={run_dir}"], tmp_path)
    assert result.returncode == 2 and f"{target} is a symbolic link" in result.error_line
    assert _tree(tmp_path) == before and not any(outside.iterdir())


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"RANK": "1"},
            "<RANK=1> with <WORLD_SIZE=1> is not a process of that group; start the processes with torchrun",
        ),
        ({"RANK": "abc"}, "<RANK=abc> must be a whole number"),
        ({"WORLD_SIZE": "abc"}, "<WORLD_SIZE=abc> must be a whole number"),
        ({"WORLD_SIZE": "2", "RANK": "2"}, "<RANK=2> with <WORLD_SIZE=2> is not a process of that group"),
        ({"LOCAL_RANK": "3"}, "<LOCAL_RANK=3> with <WORLD_SIZE=1> is not a process of that group"),  # cuda:3 else
    ],
)
def test_distributed_variables_without_a_launcher_are_refused(tmp_path, env, message):
    out = tmp_path / "run"
    result = invoke([*SMOKE_STS, f"output_dir={out}"], tmp_path, env=env)
    assert result.returncode == 2 and result.error_line.startswith(f"error: {message}"), result.stderr[-1500:]
    assert not out.exists()


@pytest.mark.parametrize("variable", ["NVEMBED_EVAL_CACHE", "NVEMBED_EVAL_ROOT"])
def test_empty_path_variables_are_refused(tmp_path, variable):
    result = invoke(SMOKE_STS, tmp_path, env={variable: ""})
    assert result.returncode == 2
    assert result.error_line.startswith(f"error: <{variable}=> is empty"), result.error_line
    assert not (REPO / "outputs").exists() or not any((REPO / "outputs").iterdir())


def test_a_refused_compare_writes_nothing_through_a_linked_output_folder(tmp_path):
    from clirun import REPO as repo

    from nvembed_eval.judge.render import main

    outside = tmp_path / "outside"
    outside.mkdir()
    out = tmp_path / "compare"
    out.symlink_to(outside)
    baseline = repo / "results/baselines/ci_minilm"
    reference = repo / "results/published/all_minilm_l6_v2.csv"
    result = invoke([str(baseline), "--reference", str(reference), "--out", str(out)], tmp_path, main=main)
    assert result.returncode == 2 and f"{out} is a symbolic link" in result.error_line
    assert not any(outside.iterdir())


def test_a_run_log_on_a_full_disk_is_reported_once_and_the_scores_stand(tmp_path, monkeypatch):
    """Full disk while logging: the old harness printed logging's traceback for every record and one on closing.
    Here the log's writes go to /dev/full (every flush fails with ENOSPC); the run's own checked writes succeed."""
    from nvembed_eval import logs

    monkeypatch.setattr(logs._RunLogHandler, "_open", lambda self: open("/dev/full", "a"))  # noqa: SIM115 (the handler closes it)
    result = invoke([*SMOKE_STS, f"output_dir={tmp_path / 'run'}"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Logging error" not in result.stderr and "Traceback" not in result.stderr
    assert result.stderr.count("is incomplete: No space left on device") == 1
    assert json.loads((tmp_path / "run" / "results" / "NVEvalSmokeSTS.json").read_text())["scores"]["test"]
