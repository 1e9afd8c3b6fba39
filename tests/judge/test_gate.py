"""The gate fails closed: a comparison that cannot mean what it says exits 2 with one line (docs/bad_input.md), and
no garbage reference table ever turns a real drop into exit 0."""

from __future__ import annotations

import contextlib
import csv
import io
import tempfile
from pathlib import Path

import pytest
from clirun import REPO, invoke
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from scoresets import write_result, write_run
from test_compare import BASE, run_main, shifted

from nvembed_eval.errors import ResultsError
from nvembed_eval.judge.render import main
from nvembed_eval.results.references import check_reference, load_reference

MINILM = "sentence-transformers/all-MiniLM-L6-v2"
PUBLISHED_MINILM = REPO / "results" / "published" / "all_minilm_l6_v2.csv"
PUBLISHED_NV2 = REPO / "results" / "published" / "nv_embed_v2.csv"
TRUE_ROWS = [  # the reference the run is measured against (0-100); the run is 2 points down on SciFact
    {"task": "SciFact", "metric": "ndcg_at_10", "score": "64.5", "model": MINILM},
    {"task": "STSBenchmark", "metric": "cosine_spearman", "score": "82.0", "model": MINILM},
    {"task": "Banking77Classification", "metric": "accuracy", "score": "80.0", "model": MINILM},
]


def table(path: Path, rows: list[dict[str, str]], columns: tuple[str, ...] = ("task", "metric", "score", "model")):
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(columns), extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return path


@pytest.fixture
def dropped(tmp_path) -> Path:
    """A MiniLM run whose SciFact is 2 points below TRUE_ROWS (a real regression at tolerance 0.5)."""
    return write_run(tmp_path / "run", shifted(-0.02), model=MINILM, config={"tasks": list(BASE)})


def gate(tmp_path: Path, run: Path, reference: Path, *extra: str) -> int:
    return run_main([str(run), "--reference", str(reference), "--out", str(tmp_path / "out"), *extra])


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    return err


def test_true_reference_catches_the_drop(tmp_path, dropped):
    assert gate(tmp_path, dropped, table(tmp_path / "ref.csv", TRUE_ROWS)) == 1


# ------------------------------------------------------------------------------------------------------ scales


def test_reference_on_the_0_1_scale_is_refused_not_read_as_improvements(tmp_path, dropped, capsys):
    fractions = [{**row, "score": str(float(row["score"]) / 100)} for row in TRUE_ROWS]
    assert gate(tmp_path, dropped, table(tmp_path / "ref.csv", fractions)) == 2
    assert "looks like the 0-1 scale (every score is at most 1, e.g. SciFact=0.645)" in one_error_line(capsys)
    assert not (tmp_path / "out").exists()


def test_reference_mixing_scales_is_refused(tmp_path, dropped, capsys):
    mixed = [dict(row) for row in TRUE_ROWS]
    mixed[1]["score"] = "0.82"
    assert gate(tmp_path, dropped, table(tmp_path / "ref.csv", mixed)) == 2
    assert "mixes scales: 1 of 3 scores are at most 1 (e.g. STSBenchmark=0.82)" in one_error_line(capsys)


def test_score_outside_every_scale_is_refused(tmp_path, dropped, capsys):
    rows = [dict(row) for row in TRUE_ROWS]
    rows[0]["score"] = "6450"
    assert gate(tmp_path, dropped, table(tmp_path / "ref.csv", rows)) == 2
    assert "line 2: score 6450 of SciFact is outside [-100, 100]" in one_error_line(capsys)


def test_results_file_off_mtebs_fraction_scale_is_refused(tmp_path, capsys):
    run = write_run(tmp_path / "run", {}, model=MINILM)
    path = write_result(run / "results", "SciFact", {"ndcg_at_10": 64.5})  # a percentage where mteb stores 0.645
    assert gate(tmp_path, run, table(tmp_path / "ref.csv", TRUE_ROWS)) == 2
    err = one_error_line(capsys)
    assert str(path) in err and "ndcg_at_10=64.5 is outside mteb's 0-1 range" in err


# ------------------------------------------------------------------------------------------------------ models


def test_reference_of_another_model_is_refused_unless_allowed(tmp_path, dropped, capsys):
    other = table(tmp_path / "ref.csv", [{**row, "model": "nvidia/NV-Embed-v2"} for row in TRUE_ROWS])
    assert gate(tmp_path, dropped, other) == 2
    err = one_error_line(capsys)
    assert "is of model nvidia/NV-Embed-v2 (ref.csv column model) but the run is of " + MINILM in err
    assert "--allow-other-model" in err
    assert gate(tmp_path, dropped, other, "--allow-other-model") == 1  # judged, and said so
    captured = capsys.readouterr()
    assert f"warning: the run is of {MINILM} but the reference is of nvidia/NV-Embed-v2" in captured.err
    assert "> warning: the run is of" in (tmp_path / "out" / "compare.md").read_text()


def test_model_names_match_as_hub_ids(tmp_path, dropped):
    spelled = [{**row, "model": "SENTENCE-TRANSFORMERS__all-minilm-l6-v2"} for row in TRUE_ROWS]
    assert gate(tmp_path, dropped, table(tmp_path / "ref.csv", spelled)) == 1


def test_model_is_learnt_from_mtebs_results_path(tmp_path, capsys):
    folder = tmp_path / "results" / "BAAI__bge-small-en-v1.5" / "5c38ec7c405ec4b44b94cc5a9bb96e735b38267a"
    for task, values in shifted(-0.02).items():
        write_result(folder, task, values)
    assert gate(tmp_path, tmp_path / "results", table(tmp_path / "ref.csv", TRUE_ROWS)) == 2
    err = one_error_line(capsys)
    assert "the run is of BAAI/bge-small-en-v1.5 (mteb results path BAAI__bge-small-en-v1.5/<revision>/)" in err


def test_table_mixing_models_is_refused(tmp_path, dropped, capsys):
    rows = [dict(row) for row in TRUE_ROWS]
    rows[2]["model"] = "nvidia/NV-Embed-v2"
    assert gate(tmp_path, dropped, table(tmp_path / "ref.csv", rows)) == 2
    assert f"mixes models: '{MINILM}' (line 2), 'nvidia/NV-Embed-v2' (line 4)" in one_error_line(capsys)


def test_unknown_model_is_stated(tmp_path, dropped):
    assert gate(tmp_path, dropped, table(tmp_path / "ref.csv", TRUE_ROWS, ("task", "metric", "score"))) == 1
    md = (tmp_path / "out" / "compare.md").read_text()
    assert f"Models: run {MINILM} (from run.json); reference unknown (a table without a model column)." in md


# ----------------------------------------------------------------------------------------------- nothing shared


def test_nothing_in_common_is_refused(tmp_path, dropped, capsys):
    other_tasks = [{"task": "NFCorpus", "metric": "ndcg_at_10", "score": "31.6", "model": MINILM}]
    assert gate(tmp_path, dropped, table(tmp_path / "ref.csv", other_tasks)) == 2
    err = one_error_line(capsys)
    assert "nothing to compare: no task of benchmark tasks=[SciFact,STSBenchmark,Banking77Classification]" in err
    assert "(run: SciFact, STSBenchmark, Banking77Classification; reference" in err


def test_benchmark_flag_without_the_runs_tasks_is_refused(tmp_path, dropped, capsys):
    assert gate(tmp_path, dropped, table(tmp_path / "ref.csv", TRUE_ROWS), "--benchmark", "smoke") == 2
    assert "nothing to compare: no task of benchmark smoke (7 tasks, from --benchmark)" in one_error_line(capsys)


def test_empty_table_is_refused(tmp_path, dropped, capsys):
    assert gate(tmp_path, dropped, table(tmp_path / "ref.csv", [])) == 2
    assert "has no rows" in one_error_line(capsys)


def test_compare_of_a_file_needs_out(tmp_path, capsys):
    ref, run = table(tmp_path / "ref.csv", TRUE_ROWS), table(tmp_path / "run.csv", TRUE_ROWS)
    assert run_main([str(run), "--reference", str(ref)]) == 2
    assert "pass --out DIR" in one_error_line(capsys)


# ------------------------------------------------------------------------------------------- check_reference


def test_check_reference_validates_a_path_fully(tmp_path):
    assert check_reference(PUBLISHED_NV2).model == "nvidia/NV-Embed-v2"
    with pytest.raises(ResultsError, match=r"reference .*nope\.csv does not exist"):
        check_reference(tmp_path / "nope.csv")
    with pytest.raises(ResultsError, match="lacks column 'task'"):
        check_reference(table(tmp_path / "a.csv", TRUE_ROWS, ("metric", "score")))
    fractions = [{**row, "score": "0.5"} for row in TRUE_ROWS]
    with pytest.raises(ResultsError, match="0-1 scale"):
        check_reference(table(tmp_path / "b.csv", fractions))


def test_the_reference_of_a_run(tmp_path):
    smoke = ["NVEvalSmokeSTS"]
    assert load_reference(None, MINILM, smoke) is None
    assert load_reference("auto", "nobody/unknown", smoke) is None  # no table shipped: no published column
    auto = load_reference("auto", MINILM, ["SciFact"])
    assert auto is not None and auto.source == PUBLISHED_MINILM and auto.model == MINILM  # found by its model column
    with pytest.raises(ResultsError, match=r"^reference=/nonexistent\.csv does not exist"):
        load_reference("/nonexistent.csv", MINILM, smoke)
    with pytest.raises(ResultsError, match=r"has none of the run's tasks \(NVEvalSmokeSTS\)"):
        load_reference(str(PUBLISHED_MINILM), MINILM, smoke)  # explicit, but the smoke task is not in it
    assert load_reference(str(PUBLISHED_MINILM), MINILM, ["SciFact", *smoke]) is not None


def test_bad_reference_stops_the_run_before_any_task(tmp_path):
    run_dir = tmp_path / "run"
    ref = table(tmp_path / "ref.csv", TRUE_ROWS, ("metric", "score"))
    proc = invoke(["model=minilm", "tasks=[NVEvalSmokeSTS]", f"reference={ref}", f"output_dir={run_dir}"], tmp_path)
    assert proc.returncode == 2
    assert proc.error_line == f"error: score table {ref} lacks column 'task'; it needs columns task, metric, score"
    assert not (run_dir / "results").exists() and not (run_dir / "run.json").exists()


# ---------------------------------------------------------------------------------------------- property test

GARBAGE_SCORES = ["nan", "NaN", "inf", "-inf", "", "1e999", "abc", "64,5", "None"]
METRICS = ["ndcg_at_10", "map", "map_at_1000", "cosine_ap", "max_ap", "accuracy", "v_measure", "main_score", ""]
TASKS = ["SciFact", "NFCorpus", "ArguAna", "STSBenchmark", "SICK-R", "Banking77Classification", "SciFat", ""]
MODELS = [MINILM, "nvidia/NV-Embed-v2", "", "x/y"]
SCORES = st.one_of(
    st.floats(-250, 250, allow_nan=False).map(lambda v: f"{v:.6g}"),
    st.floats(0, 1, allow_nan=False).map(lambda v: f"{v:.4f}"),
    st.sampled_from(GARBAGE_SCORES),
)


@st.composite
def garbage_tables(draw) -> str:
    """TRUE_ROWS corrupted at random; SciFact's row is never deleted or silently re-valued (that would be another,
    legitimate, reference), but may itself be corrupted."""
    rows = [dict(row) for row in TRUE_ROWS]
    columns = ["task", "metric", "score", "model"]
    for kind in draw(st.lists(st.sampled_from(range(10)), min_size=1, max_size=4)):
        if kind == 0:  # a whole table, or some rows, on the 0-1 scale (or x100)
            factor = draw(st.sampled_from([0.01, 100.0]))
            chosen = draw(st.sets(st.integers(0, len(rows) - 1), min_size=1))
            for i in chosen:
                rows[i]["score"] = f"{float(rows[i]['score']) * factor:g}" if _number(rows[i]["score"]) else "x"
        elif kind == 1:  # NaN, inf, empty, words
            rows[draw(st.integers(0, len(rows) - 1))]["score"] = draw(st.sampled_from(GARBAGE_SCORES))
        elif kind == 2:  # a required column gone
            required = [c for c in columns if c != "model"]
            if required:
                columns.remove(draw(st.sampled_from(required)))
        elif kind == 3:  # a task twice
            rows.append({**rows[draw(st.integers(0, len(rows) - 1))], "score": draw(SCORES)})
        elif kind == 4:  # a wrong (or right) metric
            rows[draw(st.integers(0, len(rows) - 1))]["metric"] = draw(st.sampled_from(METRICS))
        elif kind == 5:  # other models, on all rows or one
            model = draw(st.sampled_from(MODELS))
            for row in rows if draw(st.booleans()) else [rows[draw(st.integers(0, len(rows) - 1))]]:
                row["model"] = model
        elif kind == 6:  # random extra rows
            for _ in range(draw(st.integers(1, 3))):
                task = draw(st.sampled_from(TASKS))
                rows.append({"task": task, "metric": draw(st.sampled_from(METRICS)), "score": draw(SCORES)})
                rows[-1]["model"] = draw(st.sampled_from(MODELS))
        elif kind == 7:  # rows other than SciFact removed, the rest shuffled
            rows = [rows[0], *draw(st.permutations(rows[1:]))[: draw(st.integers(0, len(rows) - 1))]]
        elif kind == 8:  # the model column gone (model unknown: still judged)
            columns = [c for c in columns if c != "model"]
        else:  # padding and a byte-order mark (harmless)
            rows = [{k: f" {v} " for k, v in row.items()} for row in rows]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return ("\ufeff" if draw(st.booleans()) else "") + buffer.getvalue()


def _number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


@pytest.fixture(scope="module")
def dropped_runs(tmp_path_factory) -> list[Path]:
    """The dropped run twice: recording its tasks (as the harness does) and recording no benchmark (mteb-like)."""
    root = tmp_path_factory.mktemp("runs")
    return [
        write_run(root / "recorded", shifted(-0.02), model=MINILM, config={"tasks": list(BASE)}),
        write_run(root / "plain", shifted(-0.02), model=MINILM),
    ]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=garbage_tables(), which=st.integers(0, 1))
def test_garbage_reference_never_passes_a_real_drop(dropped_runs, text, which):
    with tempfile.TemporaryDirectory() as scratch:
        ref = Path(scratch) / "ref.csv"
        ref.write_text(text, encoding="utf-8")
        err = io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()), pytest.raises(SystemExit) as e:
            main([str(dropped_runs[which]), "--reference", str(ref), "--out", str(Path(scratch) / "out")])
        code = int(e.value.code)
        event(f"exit {code}")  # --hypothesis-show-statistics: both verdicts must occur
        assert code in (1, 2), text
        if code == 2:
            lines = err.getvalue().splitlines()
            assert lines[-1].startswith("error: ") and "unexpected" not in lines[-1], (text, err.getvalue())
        else:
            result = {r["task"]: r for r in csv.DictReader((Path(scratch) / "out" / "compare.csv").open())}
            assert result["SciFact"]["status"] == "REGRESSION", text
