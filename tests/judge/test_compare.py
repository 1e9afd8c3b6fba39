"""The regression gate: exit codes 0/1/2 on real mteb TaskResult files, flags, outputs, nothing half-written."""

from __future__ import annotations

import csv
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from clirun import REPO, invoke
from scoresets import PUBLISHED, write_result, write_run

from nvembed_eval.errors import ConfigError
from nvembed_eval.io import publish
from nvembed_eval.judge.compare import compare
from nvembed_eval.judge.render import OUTPUT_NAMES, main
from nvembed_eval.judge.render import main as compare_main
from nvembed_eval.results.reading import load_scores

BASE = {
    "SciFact": {"ndcg_at_10": 0.645},
    "STSBenchmark": {"cosine_spearman": 0.820},
    "Banking77Classification": {"accuracy": 0.800},
}


def run_main(argv: list[str]) -> int:
    with pytest.raises(SystemExit) as info:
        main(argv)
    return int(info.value.code)


def shifted(delta: float, task: str = "SciFact") -> dict[str, dict[str, float]]:
    out = {k: dict(v) for k, v in BASE.items()}
    key = next(iter(out[task]))
    out[task][key] += delta
    return out


@pytest.fixture
def baseline(tmp_path) -> Path:
    return write_run(tmp_path / "baseline", BASE)


def test_exit_0_when_within_tolerance(tmp_path, baseline):
    run = write_run(tmp_path / "run", shifted(-0.004))  # 0.4 points down, tolerance 0.5
    out = tmp_path / "out"
    assert run_main([str(run), "--reference", str(baseline), "--tolerance", "0.5", "--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == sorted(OUTPUT_NAMES)
    junit = ET.parse(out / "compare.junit.xml").getroot()
    assert junit.get("tests") == "3" and junit.get("failures") == "0"
    assert (out / "compare_deltas.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_exit_1_on_regression_with_junit_failure_for_that_task(tmp_path, baseline, capsys):
    run = write_run(tmp_path / "run", shifted(-0.02))  # 2 points down
    out = tmp_path / "out"
    assert run_main([str(run), "--reference", str(baseline), "--tolerance", "0.5", "--out", str(out)]) == 1
    junit = ET.parse(out / "compare.junit.xml").getroot()
    failed = [c.get("name") for c in junit.iter("testcase") if c.find("failure") is not None]
    assert failed == ["SciFact"] and junit.get("failures") == "1"
    rows = {r["task"]: r for r in csv.DictReader((out / "compare.csv").open())}
    assert rows["SciFact"]["status"] == "REGRESSION" and rows["SciFact"]["failed"] == "1"
    assert float(rows["SciFact"]["delta"]) == pytest.approx(-2.0)
    assert "FAIL: 1 task(s) beyond tolerance" in capsys.readouterr().out


def test_improvement_is_flagged_but_fails_only_two_sided(tmp_path, baseline):
    run = write_run(tmp_path / "run", shifted(+0.03, "STSBenchmark"))
    args = [str(run), "--reference", str(baseline), "--out", str(tmp_path / "out")]
    assert run_main(args) == 0
    rows = {r["task"]: r for r in csv.DictReader((tmp_path / "out" / "compare.csv").open())}
    assert rows["STSBenchmark"]["status"] == "improved" and rows["STSBenchmark"]["failed"] == "0"
    assert run_main([*args, "--two-sided"]) == 1


def test_against_published_card_missing_tasks_counted_not_zero(tmp_path):
    run = write_run(tmp_path / "run", BASE)  # its run.json records no benchmark: the 56 tasks either side has
    out = tmp_path / "out"
    args = [str(run), "--reference", str(PUBLISHED), "--tolerance", "100", "--out", str(out), "--allow-subset"]
    assert run_main(args) == 0
    rows = {r["task"]: r for r in csv.DictReader((out / "compare.csv").open())}
    assert len(rows) == 56  # the CSV keeps every row
    assert rows["ArguAna"]["status"] == "missing" and rows["ArguAna"]["ours"] == "" and rows["ArguAna"]["delta"] == ""
    assert rows["ArguAna"]["flags"] == "not in the run, not judged (--allow-subset)"
    md = (out / "compare.md").read_text()
    assert "| ArguAna |" not in md  # the markdown shows the run's tasks and counts the rest
    assert "PASS (3 tasks judged; tolerance 100.00 points, subset allowed; benchmark" in md
    assert "Not in this run: 53 of the 56 benchmark tasks (no score, never counted as 0): Amazon" in md
    assert "53 of them the reference scored: not in the run, not judged (--allow-subset)." in md
    assert "| Average | 75.50 (3/56 tasks, partial) | 72.31 (56 tasks) |" in md
    assert "| Retrieval | 64.50 (1/15 tasks, partial) | 62.65 (15 tasks) |" in md
    assert "> warning: model of the reference is unknown (a table without a model column)" in md
    # provenance flags: SciFact's results are on mteb's dataset revision, the card used another one
    assert "dataset revision differs (ours d56462d0, reference 0228b52c)" in rows["SciFact"]["flags"]
    assert "unverified instruction (table7_unverified)" in rows["Banking77Classification"]["flags"]
    assert "unverified" not in rows["SciFact"]["flags"]
    junit = ET.parse(out / "compare.junit.xml").getroot()
    assert junit.get("tests") == "56" and junit.get("skipped") == "53" and junit.get("failures") == "0"


def test_a_baseline_task_missing_from_the_run_fails_the_gate(tmp_path, baseline, capsys):
    """Fail closed on coverage: the report was a CI gate that went green when a task's data was removed."""
    run = write_run(tmp_path / "run", BASE)
    (run / "results" / "SciFact.json").unlink()  # the task stopped running; the other two are unchanged
    out = tmp_path / "out"
    assert run_main([str(run), "--reference", str(baseline), "--out", str(out)]) == 1
    printed = capsys.readouterr().out
    assert "FAIL: 1 reference task(s) not in the run" in printed
    assert "1 of them the reference scored: not in the run: fails the gate (pass --allow-subset" in printed
    junit = ET.parse(out / "compare.junit.xml").getroot()
    failed = {
        c.get("name"): c.find("failure").get("message") for c in junit.iter("testcase") if c.find("failure") is not None
    }
    assert failed == {
        "SciFact": "SciFact: reference 64.50, not in the run: fails the gate (pass --allow-subset to "
        "judge the run's tasks alone)"
    }
    assert junit.get("failures") == "1" and junit.get("skipped") == "0"
    rows = {r["task"]: r for r in csv.DictReader((out / "compare.csv").open())}
    assert rows["SciFact"]["status"] == "missing" and rows["SciFact"]["failed"] == "1"
    assert run_main([str(run), "--reference", str(baseline), "--out", str(out), "--allow-subset"]) == 0
    assert "subset allowed" in capsys.readouterr().out


def test_benchmark_flag_limits_what_is_judged(tmp_path, baseline):
    run = write_run(tmp_path / "run", shifted(-0.05, "STSBenchmark"))  # STS 5 points down; retrieval unchanged
    out = tmp_path / "out"
    assert run_main([str(run), "--reference", str(baseline), "--out", str(out)]) == 1
    assert run_main([str(run), "--reference", str(baseline), "--benchmark", "retrieval", "--out", str(out)]) == 0
    rows = {r["task"]: r for r in csv.DictReader((out / "compare.csv").open())}
    # Files of tasks outside the chosen benchmark are counted and not read (said once per side), never judged.
    assert rows["SciFact"]["status"] == "ok" and "STSBenchmark" not in rows
    md = (out / "compare.md").read_text()
    assert "benchmark retrieval (15 tasks, from --benchmark)" in md and "Not in this run: 14 of the 15" in md
    assert f"warning: ignored 2 files of tasks outside retrieval in {run}" in md
    assert "reference scored" not in md  # the baseline has none of the 14: nothing it judged went missing


def test_unverified_flag_only_when_the_run_used_nv_instructions(tmp_path, baseline):
    plain = write_run(tmp_path / "plain", BASE, variant="none")
    cmp = compare(load_scores(plain), load_scores(baseline))
    assert not any("unverified" in f for r in cmp.rows for f in r.flags)
    # A model without an instruction template: run.json records empty prefixes, so no instruction was used.
    minilm = write_run(tmp_path / "minilm", BASE)
    record = json.loads((minilm / "run.json").read_text())
    record["tasks"] = {"Banking77Classification": {"status": "done", "prefixes": {"all": ""}}}
    (minilm / "run.json").write_text(json.dumps(record))
    assert not compare(load_scores(minilm), load_scores(baseline)).rows[0].flags
    flagged = compare(load_scores(baseline), load_scores(write_run(tmp_path / "again", BASE))).rows[0]
    assert flagged.task == "Banking77Classification"
    assert flagged.flags == ("unverified instruction (table7_unverified)",)


def test_missing_results_path_and_multirun_folder_exit_2(tmp_path, baseline, capsys):
    assert run_main([str(tmp_path / "nope"), "--reference", str(baseline)]) == 2
    assert capsys.readouterr().err.startswith("error: results path")
    sweep = tmp_path / "sweep"
    for job in ("0", "1"):
        write_run(sweep / job, BASE)
        (sweep / job / ".hydra" / "overrides.yaml").write_text("- instructions=none\n")
    assert run_main([str(sweep), "--reference", str(baseline), "--out", str(tmp_path / "o")]) == 2
    assert "Hydra multirun folder" in capsys.readouterr().err


def test_duplicate_results_exit_2_naming_both_files(tmp_path, baseline, capsys):
    run = write_run(tmp_path / "run", BASE)
    extra = write_result(run / "results" / "old", "SciFact", {"ndcg_at_10": 0.6})
    out = tmp_path / "out"
    assert run_main([str(run), "--reference", str(baseline), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "duplicate results for task SciFact" in err
    assert str(run / "results" / "SciFact.json") in err and str(extra) in err
    assert not out.exists()  # nothing written on error


def test_malformed_results_file_exit_2_and_named(tmp_path, baseline, capsys):
    run = write_run(tmp_path / "run", BASE)
    bad = run / "results" / "NFCorpus.json"
    bad.write_text("{ not json")
    assert run_main([str(run), "--reference", str(baseline), "--out", str(tmp_path / "out")]) == 2
    assert f"malformed results file {bad}" in capsys.readouterr().err


def test_unknown_metric_exit_2_names_file_and_metric(tmp_path, baseline, capsys):
    run = write_run(tmp_path / "run", BASE)
    path = write_result(run / "results", "TwitterURLCorpus", {"max_ap": 0.9})
    assert run_main([str(run), "--reference", str(baseline), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert str(path) in err and "cosine_ap" in err


def test_reference_with_unknown_task_exit_2_naming_it(tmp_path, capsys):
    run = write_run(tmp_path / "run", BASE)
    ref = tmp_path / "ref.csv"
    ref.write_text("task,metric,score\nSciFact,ndcg_at_10,64.5\nSciFactt,ndcg_at_10,60\n")
    assert run_main([str(run), "--reference", str(ref), "--out", str(tmp_path / "out")]) == 2
    assert "unknown task 'SciFactt'" in capsys.readouterr().err


def test_revision_difference_between_two_result_folders_is_flagged(tmp_path, baseline):
    run = tmp_path / "run"
    write_run(run, {})
    write_result(run / "results", "SciFact", {"ndcg_at_10": 0.645}, revision="0228b52cf27578f30900b9e5271d331663a030d7")
    row = next(r for r in compare(load_scores(run), load_scores(baseline)).rows if r.task == "SciFact")
    assert row.flags == ("dataset revision differs (ours 0228b52c, reference d56462d0)",)
    assert [(r.task, r.status.value) for r in compare(load_scores(run), load_scores(baseline)).rows] == [
        ("SciFact", "ok"),  # judged rows first
        ("Banking77Classification", "missing"),
        ("STSBenchmark", "missing"),
    ]


@pytest.mark.parametrize("tolerance", ["-1", "nan", "inf", "-inf"])
def test_tolerance_that_is_not_a_finite_nonnegative_number_is_refused(tmp_path, baseline, capsys, tolerance):
    run = write_run(tmp_path / "run", shifted(-0.5))  # 50 points down: a NaN tolerance used to print "ok"
    out = tmp_path / "out"
    assert run_main([str(run), "--reference", str(baseline), f"--tolerance={tolerance}", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert (
        err.startswith("error: tolerance must be a finite number of points >= 0 <--tolerance=") and err.count("\n") == 1
    )
    assert not out.exists()
    with pytest.raises(ConfigError):
        compare(load_scores(run), load_scores(baseline), tolerance=float(tolerance))


def test_publish_is_all_or_nothing(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "compare.md").write_text("previous")

    def boom(path: Path) -> None:
        raise OSError("disk full")

    with pytest.raises(OSError):
        publish(out, {"compare.md": lambda p: p.write_text("new"), "compare_deltas.png": boom})
    assert (out / "compare.md").read_text() == "previous" and sorted(p.name for p in out.iterdir()) == ["compare.md"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out.")]  # scratch folder removed


# ------------------------------------------------------------------------------------- through the real CLIs

MINILM = "sentence-transformers/all-MiniLM-L6-v2"


def test_two_task_run_shows_two_rows_and_counts_the_rest(tmp_path):
    run = write_run(tmp_path / "run", shifted(0.0), model=MINILM, config={"tasks": ["STSBenchmark", "SciFact"]})
    (run / "results" / "Banking77Classification.json").unlink()
    published = REPO / "results" / "published" / "all_minilm_l6_v2.csv"
    proc = invoke([str(run), "--reference", str(published)], tmp_path, main=compare_main)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "PASS (2 tasks judged; tolerance 0.50 points; benchmark tasks=[STSBenchmark,SciFact] (2 tasks" in proc.stdout
    table = [line for line in proc.stdout.splitlines() if line.count("|") == 8]  # the 7-column task table
    assert [line.split(" | ")[0] for line in table[2:]] == ["| STSBenchmark", "| SciFact"]
    assert (
        "54 reference tasks are not in this run's benchmark (tasks=[STSBenchmark,SciFact]); listed in " in proc.stdout
    )
    assert "Not in this run" not in proc.stdout and "missing" not in proc.stdout
    rows = list(csv.DictReader((run / "compare" / "compare.csv").open()))  # default: next to the run
    assert len(rows) == 56 and sum(r["status"] == "not in benchmark" for r in rows) == 54
    assert proc.stderr.strip() == ""  # same model, known on both sides: nothing to warn about

    other = REPO / "results" / "published" / "nv_embed_v2.csv"
    args = [str(run), "--reference", str(other), "--tolerance", "100", "--allow-other-model"]
    proc = invoke(args, tmp_path, main=compare_main)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (
        proc.stderr.strip()
        == f"warning: the run is of {MINILM} but the reference is of nvidia/NV-Embed-v2: deltas compare two models"
    )


def test_leaderboard_of_a_two_task_run_covers_its_own_tasks(tmp_path):
    """`leaderboard=true` on `tasks=[A,B]`: averages over those 2 tasks (2/2), not over the default benchmark (0/7)."""
    ref = tmp_path / "ref.csv"
    ref.write_text(
        f"task,metric,score,model\nNVEvalSmokeSTS,cosine_spearman,80.0,{MINILM}\n"
        f"NVEvalSmokeClassification,accuracy,95.0,{MINILM}\nSciFact,ndcg_at_10,64.5,{MINILM}\n"
    )
    run_dir = tmp_path / "run"
    tasks = "tasks=[NVEvalSmokeSTS,NVEvalSmokeClassification]"
    proc = invoke(["model=minilm", tasks, "leaderboard=true", f"reference={ref}", f"output_dir={run_dir}"], tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    assert "benchmark tasks=[NVEvalSmokeSTS,NVEvalSmokeClassification] (2 tasks, from run.json benchmark)" in out
    average = next(line for line in out.splitlines() if line.startswith("| Average |"))
    assert "(2 tasks) | 87.50 (2 tasks) |" in average and "/7" not in out and "n/a" not in average
    assert "1 reference task is not in this run's benchmark" in out
    rows = {r["task"]: r for r in csv.DictReader((run_dir / "compare" / "compare.csv").open())}
    assert rows["NVEvalSmokeSTS"]["status"] in ("ok", "improved", "REGRESSION") and rows["NVEvalSmokeSTS"]["ours"]


def test_leaderboard_without_a_reference_prints_the_runs_own_averages(tmp_path, capsys):
    from nvembed_eval.run.summary import RunSummary, print_leaderboard

    run = write_run(tmp_path / "run", BASE, model=MINILM, config={"tasks": ["SciFact", "STSBenchmark"]})
    (run / "results" / "Banking77Classification.json").unlink()
    print_leaderboard(RunSummary(run), None)
    out = capsys.readouterr().out
    assert "over benchmark tasks=[SciFact,STSBenchmark] (2 tasks, from run.json config.tasks); no reference" in out
    assert "Average (2 tasks): 73.25" in out and "Retrieval (1 task): 64.50" in out
    assert not (run / "compare").exists()


def test_a_run_judged_against_itself_is_refused(tmp_path, baseline, capsys):
    """Every delta would be 0: a gate pointed at the run it judges would pass forever."""
    assert run_main([str(baseline), "--reference", str(baseline) + "/", "--out", str(tmp_path / "out")]) == 2
    error = capsys.readouterr().err
    same = f"error: the run and the reference are the same results ({baseline}); pass a baseline run or a published"
    assert error == same + " table\n"
    assert not (tmp_path / "out").exists()
    # The same files through another path: the run's results/ folder, one of its result files.
    for other in (baseline / "results", baseline / "results" / "SciFact.json"):
        assert run_main([str(baseline), "--reference", str(other), "--out", str(tmp_path / "out")]) == 2
        assert "the run and the reference read the same result file" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
