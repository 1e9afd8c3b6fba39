"""Leaderboard report over runs, Hydra sweeps and published tables."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from scoresets import PUBLISHED, write_result, write_run

from nvembed_eval.judge.report import discover_runs, main
from nvembed_eval.tasks.benchmarks import Benchmark

OUTPUT_NAMES = ("report.md", "report.csv", "report.png")

BASE = {"SciFact": {"ndcg_at_10": 0.645}, "STSBenchmark": {"cosine_spearman": 0.82}}
PAIR = ["SciFact", "STSBenchmark"]


def run_main(argv: list[str]) -> None:
    main(argv)


def recorded_benchmark(name: str) -> dict:
    """`config.benchmark` as the runner records it in run.json (the resolved benchmark group)."""
    return {"benchmark": {"name": name, "tasks": list(Benchmark.named(name).tasks)}}


def make_sweep(root: Path) -> Path:
    """Three jobs over tasks=[SciFact,STSBenchmark]: two with SciFact done, one that has not written results yet."""
    for job, pooling, score in (("0", "mean", 0.5), ("1", "latent", 0.6)):
        overrides = [f"model.pooling={pooling}", "instructions=none", f"output_dir={root}"]
        config = {"tasks": PAIR}
        write_run(root / job, {"SciFact": {"ndcg_at_10": score}}, variant="none", config=config, overrides=overrides)
        (root / job / ".hydra" / "overrides.yaml").write_text("".join(f"- {o}\n" for o in overrides))
    (root / "multirun.yaml").write_text("hydra: {}\n")
    job = root / "2"  # before its first result, a job has only Hydra's files
    (job / ".hydra").mkdir(parents=True)
    (job / ".hydra" / "overrides.yaml").write_text(f"- model.pooling=last\n- instructions=none\n- output_dir={root}\n")
    (job / ".hydra" / "config.yaml").write_text(f"tasks: {PAIR}\nmodel:\n  name: x/y\n")
    return root


def test_report_rows_per_run_with_coverage(tmp_path, capsys):
    run_a = write_run(tmp_path / "run_a", BASE, model="org/a", config=recorded_benchmark("mteb_eng_v1"))
    run_b = tmp_path / "run_b"  # mteb-style folder without run.json, results directly inside
    write_result(run_b, "SciFact", {"ndcg_at_10": 0.70})
    out = tmp_path / "out"
    run_main([str(run_a), str(run_b), str(PUBLISHED), "--out", str(out)])
    assert sorted(p.name for p in out.iterdir()) == sorted(OUTPUT_NAMES)
    rows = {r["run"]: r for r in csv.DictReader((out / "report.csv").open())}
    assert list(rows) == ["org/a", "run_b", "nv_embed_v2_published"]  # a run by its model; unknown: by folder
    card = rows["nv_embed_v2_published"]  # a table takes the runs' benchmark (run_a's mteb_eng_v1)
    assert card["Average"] == "72.3148" and card["Average (partial)"] == "" and card["Average coverage"] == "56/56"
    assert card["Retrieval"] == "62.6543" and card["Retrieval coverage"] == "15/15"
    partial = rows["org/a"]
    assert (
        partial["Average"] == "" and partial["Average (partial)"] == "73.2500" and partial["Average coverage"] == "2/56"
    )
    assert partial["SciFact"] == "64.5000" and partial["ArguAna"] == ""  # missing is empty, never 0
    assert partial["missing"].split(";")[:2] == ["AmazonCounterfactualClassification", "AmazonPolarityClassification"]
    assert rows["run_b"]["STSBenchmark"] == "" and card["missing"] == ""
    md = (out / "report.md").read_text()
    assert "Benchmark mteb_eng_v1 (56 tasks, from run.json config.benchmark)." in md
    assert "| org/a | 73.25 (2/56 tasks, partial) |" in md
    assert "| nv_embed_v2_published | 72.31 | 90.37 |" in md
    assert "- org/a: 54 of 56: AmazonCounterfactualClassification, " in md and "- nv_embed_v2_published: none" in md
    assert "| Banking77Classification† |" in md and "† NV-Embed-v2 instruction unverified" in md
    assert (out / "report.png").read_bytes()[:4] == b"\x89PNG"
    assert "wrote" in capsys.readouterr().out


def test_sweep_rows_are_labelled_by_model_and_differing_overrides(tmp_path):
    report = discover_runs([make_sweep(tmp_path / "sweep")])
    assert [r.label for r in report.rows] == [
        "x/y model.pooling=mean",
        "x/y model.pooling=latent",
        "x/y model.pooling=last",
    ]
    assert report.benchmark.tasks == tuple(PAIR) and report.benchmark.source == "run.json config.tasks"
    assert [r.scores.values.get("SciFact") for r in report.rows] == [pytest.approx(50.0), pytest.approx(60.0), None]
    assert report.rows[2].note == "no results yet"
    assert str(report.rows[0].board.by_type["Retrieval"]) == "Retrieval (1 task): 50.00"
    assert str(report.rows[0].board.average) == "Average (1/2 tasks, partial): 50.00"


def test_report_on_sweep_writes_next_to_the_sweep(tmp_path, monkeypatch):
    sweep = make_sweep(tmp_path / "sweep")
    monkeypatch.chdir(tmp_path)
    run_main([str(sweep)])
    assert not (tmp_path / "report").exists()  # never into the current directory
    text = (sweep / "report" / "report.md").read_text()
    assert "| x/y model.pooling=last (no results yet) | n/a (0/2 tasks) |" in text
    assert "| x/y model.pooling=mean | 50.00 (1/2 tasks, partial) |" in text
    assert "- x/y model.pooling=mean: 1 of 2: STSBenchmark" in text
    assert discover_runs([sweep]).rows  # the report folder is not mistaken for a job


def test_runs_on_different_benchmarks_use_the_union_and_say_so(tmp_path):
    a = write_run(tmp_path / "a", BASE, model="org/a", config={"tasks": PAIR})
    b = write_run(tmp_path / "b", {"NFCorpus": {"ndcg_at_10": 0.3}}, model="org/b", config={"tasks": ["NFCorpus"]})
    report = discover_runs([a, b])
    assert report.benchmark.tasks == ("SciFact", "STSBenchmark", "NFCorpus")
    assert report.notes == [
        "the runs were on different benchmarks (tasks=[SciFact,STSBenchmark]: a; tasks=[NFCorpus]: b); averages cover "
        "the 3 tasks"
    ]
    assert [str(r.board.average) for r in report.rows] == [
        "Average (2/3 tasks, partial): 73.25",
        "Average (1/3 tasks, partial): 30.00",
    ]


def test_benchmark_flag_wins(tmp_path):
    run = write_run(tmp_path / "run", BASE, config={"tasks": PAIR})
    report = discover_runs([run], "retrieval")
    assert report.benchmark.name == "retrieval" and str(report.rows[0].board.average).startswith("Average (1/15")
    assert report.tasks[-1] == "STSBenchmark"  # the run's task outside the benchmark stays visible as a column


def test_plain_runs_are_labelled_by_the_overrides_that_differ(tmp_path):
    common = ["model=minilm", "tasks=[SciFact,STSBenchmark]"]
    a = write_run(tmp_path / "a", BASE, overrides=[*common, "batch_size=8", f"output_dir={tmp_path / 'a'}"])
    b = write_run(tmp_path / "b", BASE, overrides=[*common, "batch_size=16", f"output_dir={tmp_path / 'b'}"])
    assert [r.label for r in discover_runs([a, b]).rows] == ["x/y batch_size=8", "x/y batch_size=16"]


def test_same_labels_get_folder_names(tmp_path):
    a = write_run(tmp_path / "x" / "run", BASE)
    b = write_run(tmp_path / "y" / "run2", BASE)
    c = write_run(tmp_path / "z" / "run", BASE)
    labels = [r.label for r in discover_runs([a, b, c]).rows]
    assert labels == [f"x/y (run) ({a})", "x/y (run2)", f"x/y (run) ({c})"]


def test_report_of_files_only_needs_out(tmp_path, capsys):
    ref = tmp_path / "ref.csv"
    ref.write_text("task,metric,score\nSciFact,ndcg_at_10,64.5\n")
    with pytest.raises(SystemExit) as info:
        run_main([str(ref)])
    assert info.value.code == 2 and "pass --out DIR" in capsys.readouterr().err


def test_bad_run_exits_2_with_one_line(tmp_path, capsys):
    run = write_run(tmp_path / "run", BASE)
    (run / "results" / "NQ.json").write_text("[]")
    with pytest.raises(SystemExit) as info:
        run_main([str(run), "--out", str(tmp_path / "out")])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: malformed results file") and err.count("\n") == 1
    assert not (tmp_path / "out").exists()
