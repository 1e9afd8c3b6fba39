"""A results folder of the MTEB results repository is read whole: hundreds of files of tasks in many languages and
several mteb formats, of which a benchmark needs 56. Files of tasks outside the benchmark are counted, never an error;
a file of a benchmark task that cannot be scored is refused in one line; third-party folders carry no instruction
flags (that flag is about runs this harness made with its instruction table)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
from clirun import invoke
from scoresets import PUBLISHED, write_result

from nvembed_eval import leaderboard, load_results
from nvembed_eval.errors import ResultsError
from nvembed_eval.judge.render import main as compare_main
from nvembed_eval.results.reading import load_scores

REVISION = "8b3219a92973c328a8e22fadcfa821b5dc75636a"
# MTEB(eng, v1) tasks with their leaderboard metric, as mteb 2.x writes them (fractions)
V2_FORMAT = {
    "SciFact": {"ndcg_at_10": 0.6451},
    "Banking77Classification": {"accuracy": 0.8004},
    "TwitterURLCorpus": {"cosine_ap": 0.8453},
}
# The same tasks' leaderboard values in points: what every reading must give
POINTS = {"SciFact": 64.51, "Banking77Classification": 80.04, "TwitterURLCorpus": 84.53, "STSBenchmark": 82.03}


def _old_format(folder: Path) -> None:
    """STSBenchmark as mteb 1.x wrote it before 1.11 (`mteb_dataset_name`, split at the top, `cos_sim` nesting)."""
    (folder / "STSBenchmark.json").write_text(
        json.dumps(
            {
                "dataset_revision": "b0fddb56ed78048fa8b90373c8a3cfc37b684831",
                "mteb_dataset_name": "STSBenchmark",
                "mteb_version": "1.1.2",
                "test": {"cos_sim": {"pearson": 0.8304, "spearman": 0.8203}, "evaluation_time": 1.2},
            }
        )
    )


def _outside_files(folder: Path) -> int:
    """Files a revision folder holds besides the benchmark's: unknown tasks, other metric spellings, other languages,
    missing splits. Returns how many."""
    (folder / "GPUSpeedTask.json").write_text(json.dumps({"task_name": "GPUSpeedTask", "scores": {"test": [{}]}}))
    miracl = {"task_name": "MIRACLReranking", "mteb_version": "1.12.0", "scores": {"dev": [{"NDCG@10(MIRACL)": 0.5}]}}
    (folder / "MIRACLReranking.json").write_text(json.dumps(miracl))
    no_split = {"task_name": "STSES", "mteb_version": "1.12.0", "scores": {"validation": [{"main_score": 0.1}]}}
    (folder / "STSES.json").write_text(json.dumps(no_split))
    for n in range(40):  # the bulk: tasks of other languages and benchmarks
        (folder / f"SomeTask{n}.json").write_text(json.dumps({"task_name": f"SomeTask{n}", "scores": {}}))
    return 43


@pytest.fixture
def revision_folder(tmp_path) -> tuple[Path, int]:
    """`results/<org__model>/<revision>/` as the results repository lays it out, with model_meta.json."""
    folder = tmp_path / "results" / "sentence-transformers__all-MiniLM-L6-v2" / REVISION
    for task, values in V2_FORMAT.items():
        write_result(folder, task, values)
    _old_format(folder)
    (folder / "model_meta.json").write_text(json.dumps({"name": "sentence-transformers/all-MiniLM-L6-v2"}))
    return folder, _outside_files(folder)


def test_a_whole_revision_folder_gives_its_extractions_averages(revision_folder, tmp_path):
    folder, outside = revision_folder
    scores = load_scores(folder)
    assert {t: round(v, 2) for t, v in scores.values.items()} == POINTS
    assert scores.ignored == outside and scores.reading_note.startswith(f"ignored {outside} files of tasks outside")
    assert scores.benchmark.name == "mteb_eng_v1" and "assumed" in scores.benchmark.source
    extraction = tmp_path / "extraction"
    extraction.mkdir()
    for task in POINTS:
        shutil.copy(folder / f"{task}.json", extraction)
    whole, extracted = leaderboard(folder), leaderboard(extraction)
    pd.testing.assert_frame_equal(whole, extracted)
    assert whole.iloc[0]["covered"] == 4 and whole.iloc[0]["total"] == 56
    assert list(load_results(folder)["task"]) == list(load_results(extraction)["task"])


def test_compare_reads_the_folder_whole_and_says_what_it_ignored(revision_folder, tmp_path):
    folder, outside = revision_folder
    args = [str(folder), "--reference", str(PUBLISHED), "--tolerance", "100", "--allow-subset"]
    args += ["--allow-other-model", "--out", str(tmp_path / "out")]
    result = invoke(args, tmp_path, main=compare_main)
    assert result.returncode == 0, result.stderr
    assert f"warning: ignored {outside} files of tasks outside mteb_eng_v1 in {folder}" in result.stderr
    assert "benchmark mteb_eng_v1 (56 tasks, from assumed: no benchmark given and no run.json)" in result.stdout
    assert "unverified instruction" not in (tmp_path / "out" / "compare.csv").read_text()  # not made here


def test_a_benchmark_file_that_cannot_be_scored_is_still_refused(revision_folder):
    folder, _ = revision_folder
    (folder / "SciFact.json").write_text(json.dumps({"task_name": "SciFact", "scores": {"dev": [{"x": 1}]}}))
    with pytest.raises(ResultsError, match=f"{folder / 'SciFact.json'}"):
        load_scores(folder)


def test_a_folder_with_no_task_of_the_benchmark_says_which_benchmark_it_assumed(tmp_path):
    folder = tmp_path / "other"
    folder.mkdir()
    _outside_files(folder)
    with pytest.raises(ResultsError, match=r"no result of a task of mteb_eng_v1 \(56 tasks, from assumed: no benchm"):
        load_scores(folder)
