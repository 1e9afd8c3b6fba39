"""The flagship experiment on CPU: NV-Embed path (tiny random weights, loaded as a hub model id from an offline
Hugging Face home) over the MTEB(eng, v1) tasks that have data here, ending with the leaderboard view: once from
local data (`data_dir`), once exactly as the main job runs, from the hub (mteb's own loaders, the card's dataset
commits and the card -> mteb fallback, offline). Scores are meaningless; equality, coverage and provenance are
what is checked."""

from __future__ import annotations

import csv

import pytest
from clirun import DATA, invoke, load_run, main_scores
from hubcache import BANKING77, SCIFACT_CARD, SCIFACT_MTEB, STS, TINY_MODEL

# The documents are cut at 128 tokens (SciFact's run to 512): the scores mean nothing, the path is the same, and the
# encoding of SciFact's corpus, most of this file's time, takes a third as long.
TINY_FROM_HUB = ["model=nv_embed_tiny", f"model.path={TINY_MODEL[0]}", "model.create_tiny_if_missing=false"]
TINY_FROM_HUB.append("model.max_length=128")


@pytest.fixture(scope="module")
def experiment_tmp(tmp_path_factory):
    return tmp_path_factory.mktemp("experiment")  # one embedding cache for both runs: the hub run encodes nothing new


@pytest.fixture(scope="module")
def experiment_run(experiment_tmp, hf_home):
    run_dir = experiment_tmp / "run"
    args = ["experiment=reproduce_nv_embed_v2", *TINY_FROM_HUB, f"data_dir={DATA}", f"output_dir={run_dir}"]
    result = invoke(args, experiment_tmp, hub=hf_home)
    assert result.returncode == 0, result.stderr[-3000:]
    return run_dir, result


@pytest.fixture(scope="module")
def hub_run(experiment_run, experiment_tmp, hf_home):
    """The main job's command with no data_dir: `experiment=reproduce_nv_embed_v2`, model from a hub id, offline."""
    run_dir = experiment_tmp / "hub"
    args = ["experiment=reproduce_nv_embed_v2", *TINY_FROM_HUB, f"output_dir={run_dir}"]
    result = invoke(args, experiment_tmp, hub=hf_home)
    assert result.returncode == 0, result.stderr[-3000:]
    return run_dir, result


def test_hub_path_gives_exactly_the_local_scores_and_records_the_commits(experiment_run, hub_run):
    local, hub = main_scores(experiment_run[0]), main_scores(hub_run[0])
    assert sorted(hub) == ["Banking77Classification", "STSBenchmark", "SciFact"]
    assert hub == local  # the same texts, labels and judgements reached mteb's evaluators, bit for bit
    record = load_run(hub_run[0])
    assert record["model"]["revision"] == TINY_MODEL[1]  # the commit of the snapshot loaded, not "main"
    tasks = record["tasks"]
    for name, (repo, commit) in {"STSBenchmark": STS, "Banking77Classification": BANKING77}.items():
        data = tasks[name]["provenance"]["data"]
        assert (data["repository"], data["revision"], data["loaded_revision"]) == (repo, commit, commit)
        assert data["revision_source"] == "card" and data["verified"] is True
    scifact = tasks["SciFact"]["provenance"]["data"]  # asked for the card's commit, made on mteb's after the fallback
    assert scifact["revision"] == SCIFACT_CARD[1] and scifact["loaded_revision"] == SCIFACT_MTEB[1]
    assert scifact["revision_source"].startswith(f"mteb (the card's commit {SCIFACT_CARD[1][:8]} failed to load")
    assert scifact["verified"] is True
    assert tasks["SciFact"]["dataset_revision"] == SCIFACT_MTEB[1]


def test_hub_path_reports_coverage_and_the_leaderboard_table(hub_run):
    _, result = hub_run
    assert "holds 3 of the benchmark's 56 tasks" in result.stderr  # the offline cache's coverage, said once
    assert result.stderr.count("holds 3 of the benchmark's 56 tasks") == 1
    assert "3/56" in result.stdout and "Average (56 tasks)" not in result.stdout


def test_runs_the_benchmark_tasks_that_have_local_data(experiment_run):
    run_dir, _ = experiment_run
    assert sorted(p.stem for p in (run_dir / "results").glob("*.json")) == [
        "Banking77Classification",
        "STSBenchmark",
        "SciFact",
    ]
    record = load_run(run_dir)
    assert record["config"]["benchmark"]["name"] == "mteb_eng_v1"
    assert record["model"]["name"].endswith("NV-Embed-v2-tiny") or "tiny" in record["model"]["name"].lower()
    # the card's instructions reached the model: SciFact queries carry the NV-Embed prefix, documents none
    prefixes = record["tasks"]["SciFact"]["prefixes"]
    assert prefixes["query"] == (
        "Instruct: Given a scientific claim, retrieve documents that support or refute the claim\nQuery: "
    )
    assert prefixes["document"] == ""


def test_leaderboard_shows_coverage_never_a_full_average(experiment_run):
    run_dir, result = experiment_run
    out = result.stdout
    assert "3/56" in out
    assert "1/15" in out  # retrieval coverage
    assert "Average (56 tasks)" not in out and "Retrieval (15 tasks)" not in out
    rows = {row["task"]: row for row in csv.DictReader((run_dir / "compare" / "compare.csv").open())}
    assert rows["SciFact"]["status"] not in ("missing", "no reference")
    assert rows["ArguAna"]["status"] == "missing" and rows["ArguAna"]["ours"] == ""
    # provenance flags: Banking77's instruction is an unverified stand-in; SciFact ran on other data than the card's
    assert "unverified" in rows["Banking77Classification"]["flags"]
    assert "revision" in rows["SciFact"]["flags"]
