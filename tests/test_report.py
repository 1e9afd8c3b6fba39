"""Leaderboard report over runs, Hydra sweeps and published tables."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from test_scoring import PUBLISHED, needs_reference, write_result, write_run

from nvembed_eval.tracking.report import OUTPUT_NAMES, discover_runs, main

BASE = {"SciFact": {"ndcg_at_10": 0.645}, "STSBenchmark": {"cosine_spearman": 0.82}}


def run_main(argv: list[str]) -> None:
    main(argv)


def make_sweep(root: Path) -> Path:
    for job, overrides, score in (
        ("0", ["model.pooling=mean", "instructions=none"], 0.5),
        ("1", ["model.pooling=latent", "instructions=none"], 0.6),
    ):
        write_run(root / job, {"SciFact": {"ndcg_at_10": score}}, variant="none")
        (root / job / ".hydra" / "overrides.yaml").write_text("".join(f"- {o}\n" for o in overrides))
    (root / "multirun.yaml").write_text("hydra: {}\n")
    write_run(root / "2", {})  # a job that has not written results yet
    (root / "2" / ".hydra" / "overrides.yaml").write_text("- model.pooling=last\n- instructions=none\n")
    return root


@needs_reference
def test_report_rows_per_run_with_coverage(tmp_path, capsys):
    run_a = write_run(tmp_path / "run_a", BASE)
    run_b = tmp_path / "run_b"  # mteb-style folder without run.json, results directly inside
    write_result(run_b, "SciFact", {"ndcg_at_10": 0.70})
    out = tmp_path / "out"
    run_main([str(run_a), str(run_b), str(PUBLISHED), "--out", str(out)])
    assert sorted(p.name for p in out.iterdir()) == sorted(OUTPUT_NAMES)
    rows = {r["run"]: r for r in csv.DictReader((out / "report.csv").open())}
    assert list(rows) == ["run_a", "run_b", "nv_embed_v2_published"]
    card = rows["nv_embed_v2_published"]
    assert card["Average"] == "72.3148" and card["Average (partial)"] == "" and card["Average coverage"] == "56/56"
    assert card["Retrieval"] == "62.6543" and card["Retrieval coverage"] == "15/15"
    partial = rows["run_a"]
    assert (
        partial["Average"] == "" and partial["Average (partial)"] == "73.2500" and partial["Average coverage"] == "2/56"
    )
    assert partial["SciFact"] == "64.5000" and partial["ArguAna"] == ""  # missing is empty, never 0
    assert rows["run_b"]["STSBenchmark"] == ""
    md = (out / "report.md").read_text()
    assert "| run_a | 73.25 (2/56 tasks, partial) |" in md
    assert "| nv_embed_v2_published | 72.31 | 90.37 |" in md
    assert "| Banking77Classification† |" in md and "† NV-Embed-v2 instruction unverified" in md
    assert (out / "report.png").read_bytes()[:4] == b"\x89PNG"
    assert "wrote" in capsys.readouterr().out


def test_multirun_rows_are_labelled_by_overrides(tmp_path):
    rows = discover_runs([make_sweep(tmp_path / "sweep")])
    assert [r.label for r in rows] == [
        "model.pooling=mean,instructions=none",
        "model.pooling=latent,instructions=none",
        "model.pooling=last,instructions=none",
    ]
    assert [r.scores.values.get("SciFact") for r in rows] == [pytest.approx(50.0), pytest.approx(60.0), None]
    assert rows[2].note == "no results yet"
    assert str(rows[0].board.by_type["Retrieval"]) == "Retrieval (1/15 tasks, partial): 50.00"


def test_report_on_sweep_writes_all_outputs(tmp_path):
    out = tmp_path / "out"
    run_main([str(make_sweep(tmp_path / "sweep")), "--out", str(out)])
    text = (out / "report.md").read_text()
    assert "| model.pooling=last,instructions=none (no results yet) | n/a (0/56 tasks) |" in text


def test_same_folder_names_get_unique_labels(tmp_path):
    a = write_run(tmp_path / "x" / "run", BASE)
    b = write_run(tmp_path / "y" / "run", BASE)
    labels = [r.label for r in discover_runs([a, b])]
    assert labels[0] == "run" and labels[1] == f"run ({b})"


def test_bad_run_exits_2_with_one_line(tmp_path, capsys):
    run = write_run(tmp_path / "run", BASE)
    (run / "results" / "NQ.json").write_text("[]")
    with pytest.raises(SystemExit) as info:
        run_main([str(run), "--out", str(tmp_path / "out")])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: malformed results file") and err.count("\n") == 1
    assert not (tmp_path / "out").exists()
