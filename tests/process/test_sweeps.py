"""Ablation sweeps from the command line: Hydra multirun, one folder per job, a report labelled by overrides, and the
submitit launcher running jobs as separate processes."""

from __future__ import annotations

import csv

import pytest
from clirun import run_cli

SMOKE_PAIR = "tasks=[NVEvalSmokeSTS,NVEvalSmokeClassification]"


@pytest.fixture(scope="module")
def pooling_sweep(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("sweep")
    sweep_dir = tmp / "sweep"
    result = run_cli(
        [
            "-m",
            "model=nv_embed_tiny",
            "model.pooling=latent,mean",
            "instructions=nv_embed_v2,none",
            SMOKE_PAIR,
            f"output_dir={sweep_dir}",
        ],
        tmp,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return tmp, sweep_dir


def test_each_job_has_its_own_folder_and_config(pooling_sweep):
    _, sweep_dir = pooling_sweep
    jobs = sorted(p for p in sweep_dir.iterdir() if p.is_dir() and p.name.isdigit())
    assert [j.name for j in jobs] == ["0", "1", "2", "3"]
    for job in jobs:
        assert (job / ".hydra" / "config.yaml").exists()
        assert sorted(p.stem for p in (job / "results").glob("*.json")) == [
            "NVEvalSmokeClassification",
            "NVEvalSmokeSTS",
        ]


def test_report_over_the_sweep_has_real_numbers_for_every_job(pooling_sweep):
    """The README recipe: `nvembed-eval -m ...` then `nvembed-eval-report <sweep>`, no other options."""
    tmp, sweep_dir = pooling_sweep
    proc = run_cli([str(sweep_dir)], tmp, module="nvembed_eval.judge.report")
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = sweep_dir / "report"  # next to the sweep, not in the current directory
    rows = list(csv.DictReader((out / "report.csv").open()))
    # labelled by model and the overrides that differ between jobs (not model=, tasks=, output_dir=)
    assert [row["run"] for row in rows] == [
        f"nvembed-eval/NV-Embed-tiny model.pooling={pooling} instructions={variant}"
        for pooling in ("latent", "mean")
        for variant in ("nv_embed_v2", "none")
    ]
    for row in rows:  # the runs' own benchmark (their tasks=[...]): complete averages, nothing missing
        assert row["Average coverage"] == "2/2" and row["missing"] == ""
        mean = (float(row["NVEvalSmokeSTS"]) + float(row["NVEvalSmokeClassification"])) / 2
        assert float(row["Average"]) == pytest.approx(mean, abs=1e-4)
    sts = {row["run"]: float(row["NVEvalSmokeSTS"]) for row in rows}
    assert len(set(sts.values())) == 4  # every knob setting changes the random-weight model's vectors
    md = (out / "report.md").read_text()
    assert "n/a" not in md and "Benchmark tasks=[NVEvalSmokeSTS,NVEvalSmokeClassification] (2 tasks" in md
    assert (out / "report.png").stat().st_size > 0


def test_submitit_local_launcher_runs_jobs_in_subprocesses(tmp_path):
    sweep_dir = tmp_path / "sweep"
    result = run_cli(
        [
            "-m",
            "hydra/launcher=local",
            "model=minilm",
            "model.normalize=true,false",
            "tasks=[NVEvalSmokeSTS]",
            f"output_dir={sweep_dir}",
        ],
        tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    for job in ("0", "1"):
        assert (sweep_dir / job / "results" / "NVEvalSmokeSTS.json").exists()
    assert list((sweep_dir / ".submitit").glob("*/*_result.pkl"))
