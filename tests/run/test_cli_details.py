"""What a researcher expects of the command line, through the real entry point: a bare task name, the `task=` slip,
a quiet console with a task counter and the full log on disk, each error once, no folder from a failed start,
predictions kept for error analysis, help, shell completion and their own configs on top."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
import sys

import pytest
from clirun import DATA, REPO, invoke, isolated_env, load_run

from nvembed_eval.results.reading import load_scores


@pytest.fixture(scope="module")
def predictions_run(tmp_path_factory):
    """`tasks=NVEvalSmokeRetrieval` (a bare name) with save_predictions=true."""
    tmp = tmp_path_factory.mktemp("predictions")
    run_dir = tmp / "run"
    result = invoke(["tasks=NVEvalSmokeRetrieval", "save_predictions=true", f"output_dir={run_dir}"], tmp)
    assert result.returncode == 0, result.stderr[-3000:]
    return run_dir, result


def test_a_bare_task_name_is_one_task(predictions_run):
    run_dir, result = predictions_run
    assert sorted(p.name for p in (run_dir / "results").iterdir()) == ["NVEvalSmokeRetrieval.json"]
    assert load_run(run_dir)["benchmark"] == {"name": "tasks", "tasks": ["NVEvalSmokeRetrieval"]}
    assert "| NVEvalSmokeRetrieval | Retrieval | ndcg_at_10 | 100.00 |" in result.stdout


def test_console_is_quiet_with_a_task_counter_and_the_log_has_everything(predictions_run):
    run_dir, result = predictions_run
    assert "[1/1] NVEvalSmokeRetrieval (Retrieval)" in result.stderr
    assert "it/s]" not in result.stderr and "Batches" not in result.stderr  # no progress bars by default
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == len(set(lines))  # every console line once
    assert all("[nvembed_eval" in line or "WARNING" in line or "ERROR" in line for line in lines), lines
    log = (run_dir / "nvembed-eval.log").read_text()
    assert "[1/1] NVEvalSmokeRetrieval" in log and "[mteb." in log  # the libraries' INFO lines are in the file


def test_predictions_are_kept_recorded_and_never_read_as_results(predictions_run):
    run_dir, _ = predictions_run
    path = run_dir / "predictions" / "NVEvalSmokeRetrieval_predictions.json"
    predictions = json.loads(path.read_text())
    per_query = predictions["default"]["test"]
    assert len(per_query) == 24 and all(isinstance(docs, dict) and docs for docs in per_query.values())
    assert load_run(run_dir)["tasks"]["NVEvalSmokeRetrieval"]["predictions"] == [
        "predictions/NVEvalSmokeRetrieval_predictions.json"
    ]
    assert sorted(load_scores(run_dir).scores) == ["NVEvalSmokeRetrieval"]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["task=SciFact"], "error: there is no key <task=SciFact>; the task list is tasks, e.g. tasks=[SciFact]"),
        (["+task=SciFact"], "error: there is no key <+task=SciFact>; the task list is tasks, e.g. tasks=[SciFact]"),
        (
            ["tasks=SciFact,NFCorpus"],
            "error: <tasks=SciFact,NFCorpus> gives several values: write tasks=[SciFact,NFCorpus] for a list, "
            "or add -m to sweep over them",
        ),
        (["batch_size=0"], "error: <batch_size=0> must be a positive integer, e.g. 32"),
        (["tasks=[../model/minilm]"], "error: <tasks=../model/minilm> is not a task or benchmark name"),
        (["data_dir=/nonexistent/data"], "error: data_dir /nonexistent/data does not exist"),
        (["reference=nv_embed_v3"], "error: <reference=nv_embed_v3> is no published table; use one of: all_minilm"),
        (
            ["reference=/nonexistent/table.csv"],
            "error: reference=/nonexistent/table.csv does not exist; pass an existing score table",
        ),
        # refused after Hydra made the run folder and its parents (the model cannot load): they are removed too
        (["model.path=org/none", "tasks=[NVEvalSmokeSTS]"], "error: <model.path='org/none'> (revision main) could not"),
    ],
)
def test_a_failed_start_prints_one_error_and_creates_no_folder(tmp_path, args, expected):
    out = tmp_path / "out"
    result = invoke([*args, f"output_dir={out}/a/run"], tmp_path)
    assert result.returncode == 2
    assert result.error_line.startswith(expected), result.stderr[-2000:]
    assert result.stderr.count(result.error_line.removeprefix("error: ")) == 1  # printed once, no log echo
    assert "Traceback" not in result.stderr and not out.exists()


def test_compile_says_so_before_the_first_batches(tmp_path):
    # refused after planning (overwrite names no task of the run), so no model is built or compiled
    args = ["model=nv_embed_tiny", "model.compile=true", "tasks=[NVEvalSmokeSTS]", "overwrite=[SciFact]"]
    result = invoke([*args, f"output_dir={tmp_path / 'run'}"], tmp_path)
    assert result.returncode == 2 and "overwrite=[SciFact]" in result.error_line
    assert "compiling the model with torch.compile (model.compile=true)" in result.stderr
    assert not (tmp_path / "run").exists()


def test_help_describes_the_tool_with_examples_and_every_group(tmp_path):
    result = invoke(["--help"], tmp_path)
    assert result.returncode == 0
    for text in ("Examples:", "nvembed-eval model=minilm benchmark=smoke", "Main keys:", "save_predictions=true"):
        assert text in result.stdout
    for group in ("model", "benchmark", "instructions", "cache", "experiment", "hydra/launcher"):
        options = sorted(p.stem for p in (REPO / "conf" / group).glob("*.yaml"))
        line = next(line for line in result.stdout.splitlines() if line.strip().startswith(f"{group}="))
        assert all(option in line for option in options), (group, options, line)


def test_shell_completion_installs_and_completes(tmp_path):
    installed = invoke(["-sc", "install=bash"], tmp_path)
    assert installed.returncode == 0 and "complete" in installed.stdout, installed.stderr[-2000:]
    query = subprocess.run(
        [sys.executable, "-m", "nvembed_eval", "-sc", "query=bash"],
        cwd=REPO,
        env={**isolated_env(tmp_path), "COMP_LINE": "nvembed-eval benchmark=mteb_"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert query.returncode == 0 and query.stdout.split() == ["benchmark=mteb_eng_v1"], query.stderr[-2000:]


def test_a_users_config_folder_composes_on_top(tmp_path):
    mine = tmp_path / "my_conf" / "model"
    mine.mkdir(parents=True)
    (mine / "short_minilm.yaml").write_text("defaults:\n  - minilm\n  - _self_\nmax_seq_length: 64\n")
    for args, length in (
        (
            [
                "--config-dir",
                str(tmp_path / "my_conf"),
                "model=short_minilm",
                "model.max_seq_length=32",
                "--cfg",
                "job",
            ],
            32,
        ),
        ([f"hydra.searchpath=[file://{tmp_path / 'my_conf'}]", "model=short_minilm", "--cfg", "job"], 64),
    ):
        result = invoke(args, tmp_path)
        assert result.returncode == 0, result.stderr[-2000:]
        assert (
            f"max_seq_length: {length}" in result.stdout
            and "name: sentence-transformers/all-MiniLM-L6-v2" in result.stdout
        )
    wrong = invoke(["--config-dir", str(tmp_path / "my_conf"), "model=short_minilmm"], tmp_path)
    assert "did you mean short_minilm" in wrong.error_line


def test_published_columns_fill_from_any_folder(tmp_path):
    """The published tables are found through the package, not the working folder."""
    away = tmp_path / "elsewhere"
    away.mkdir()
    env = {k: v for k, v in isolated_env(tmp_path).items() if k != "NVEMBED_EVAL_ROOT"}
    code = (
        "from nvembed_eval.results.references import reference_table; "
        "print(reference_table('auto', 'sentence-transformers/all-MiniLM-L6-v2'))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=away, env=env, capture_output=True, text=True, check=True)
    path = out.stdout.strip()
    assert os.path.isfile(path) and path.endswith("all_minilm_l6_v2.csv") and not path.startswith(str(away))


def test_an_error_after_acceptance_is_in_the_run_log_once_on_the_console(tmp_path):
    """Data found unusable once a resumed run is accepted (one STS pair): one console line, and the run log of the
    existing run folder says why (a new folder without results would be removed instead)."""
    folder = tmp_path / "data" / "STSBenchmark"
    folder.mkdir(parents=True)
    with gzip.open(DATA / "STSBenchmark" / "test.jsonl.gz", "rt") as source:
        rows = [next(source) for _ in range(20)]
    with gzip.open(folder / "test.jsonl.gz", "wt") as handle:
        handle.writelines(rows)
    run_dir = tmp_path / "run"
    args = ["tasks=STSBenchmark", f"data_dir={folder.parent}", f"output_dir={run_dir}"]
    assert invoke(args, tmp_path).returncode == 0
    with gzip.open(folder / "test.jsonl.gz", "wt") as handle:
        handle.write(json.dumps({"sentence1": "a cat", "sentence2": "a cat sat", "score": 4.0}) + "\n")
    result = invoke([*args, "overwrite=true"], tmp_path)
    assert result.returncode == 2 and "has 1 pair" in result.error_line
    message = result.error_line.removeprefix("error: ")
    assert result.stderr.count(message) == 1
    assert message in (run_dir / "nvembed-eval.log").read_text()


@pytest.mark.parametrize(
    ("sweep", "expected"),
    [
        ("batch_size=8,0", "error: <batch_size=0> must be a positive integer, e.g. 32"),
        ("model.max_seq_length=16,abc", "error: <model.max_seq_length=abc> must be a positive integer or null"),
    ],
)
def test_a_sweep_with_one_bad_value_is_refused_before_its_first_job(tmp_path, sweep, expected):
    sweep_dir = tmp_path / "sweep"
    args = ["-m", "model=minilm", "tasks=[NVEvalSmokeSTS]", sweep, f"hydra.sweep.dir={sweep_dir}"]
    result = invoke(args, tmp_path)
    assert result.returncode == 2 and result.error_line.startswith(expected), result.stderr[-2000:]
    assert not sweep_dir.exists()  # no job ran, no multirun.yaml was written


def test_a_recomputed_task_drops_the_predictions_of_the_result_it_replaces(predictions_run, tmp_path):
    run_dir, _ = predictions_run
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    result = invoke(["tasks=NVEvalSmokeRetrieval", "overwrite=true", f"output_dir={copy}"], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert not (copy / "predictions" / "NVEvalSmokeRetrieval_predictions.json").exists()
    assert "predictions" not in load_run(copy)["tasks"]["NVEvalSmokeRetrieval"]


def test_data_not_from_the_hub_is_recorded_by_its_content_not_a_hub_commit(predictions_run):
    run_dir, _ = predictions_run
    task = load_run(run_dir)["tasks"]["NVEvalSmokeRetrieval"]
    data = task["provenance"]["data"]
    label = f"{data['source']}:sha256:{data['sha256'][:16]}"
    assert data["source"] != "hub" and "loaded_revision" not in data
    assert task["dataset_revision"] == label
    stored = json.loads((run_dir / "results" / "NVEvalSmokeRetrieval.json").read_text())
    assert stored["dataset_revision"] == label  # what compare and leaderboards read


def test_a_partial_benchmark_says_its_coverage_at_the_end(tmp_path):
    data = tmp_path / "data"
    (data / "STSBenchmark").mkdir(parents=True)
    with gzip.open(DATA / "STSBenchmark" / "test.jsonl.gz", "rt") as source:
        rows = [next(source) for _ in range(40)]  # 40 real pairs: enough for Spearman, seconds to encode
    with gzip.open(data / "STSBenchmark" / "test.jsonl.gz", "wt") as target:
        target.writelines(rows)
    result = invoke(["benchmark=ci", f"data_dir={data}", f"output_dir={tmp_path / 'run'}"], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    row = next(line for line in result.stdout.splitlines() if line.startswith("| STSBenchmark"))
    assert row.rstrip(" |").endswith("local data; published is on the hub's")  # a 40-pair subset, not the test set
    last = result.stdout.strip().splitlines()[-1]
    assert last.startswith("Coverage: 1 of 10 tasks of benchmark ci; not run (no data here): SciFact, NFCorpus")


def test_a_new_run_that_fails_on_its_first_tasks_data_leaves_nothing(tmp_path):
    """Refused after the model loaded and the run was accepted (the data is read per task): no folder, no records;
    a folder the user made keeps only the user's own files."""
    data = tmp_path / "data"
    (data / "STSBenchmark").mkdir(parents=True)
    with gzip.open(data / "STSBenchmark" / "test.jsonl.gz", "wt") as target:
        target.write(json.dumps({"sentence1": "a", "sentence2": "b", "score": "abc"}) + "\n")
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("the user's file")
    for out in (tmp_path / "new" / "run", mine):
        result = invoke(["tasks=[STSBenchmark]", f"data_dir={data}", f"output_dir={out}"], tmp_path)
        assert result.returncode == 2, result.stderr[-2000:]
        assert "key 'score' must be a finite number" in result.error_line
    assert not (tmp_path / "new").exists()
    assert sorted(p.name for p in mine.iterdir()) == ["notes.txt"]
