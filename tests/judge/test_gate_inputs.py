"""What the gate is given: two run folders whose results' provenance records name different data (other local files,
another hub commit) are refused, or judged with each row flagged when `--allow-other-data` is given, since a data change
is no model regression; a side without provenance (a score table) keeps the revision flag. And anything that is no
results folder, TaskResult JSON or score CSV is refused in one line saying what it is (docs/bad_input.md).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from clirun import REPO, invoke
from scoresets import write_run
from test_compare import BASE, run_main, shifted
from test_gate import MINILM, TRUE_ROWS, one_error_line, table

OLD_SHA, NEW_SHA = "3f2a9c01b7de" + "0" * 52, "91c0d4e2aa10" + "1" * 52


def with_data(run: Path, **data: object) -> Path:
    """Give every result of `run` a provenance record whose data part is `data`, as the harness writes it."""
    for path in (run / "results").glob("*.json"):
        result = json.loads(path.read_text())
        result["nvembed_eval"] = {"format": 1, "data": dict(data)}
        path.write_text(json.dumps(result))
    return run


def runs(tmp_path: Path, old: dict, new: dict) -> tuple[Path, Path]:
    """A baseline run made on `old` data and a run 2 points lower on SciFact made on `new` data."""
    config = {"tasks": list(BASE)}
    reference = with_data(write_run(tmp_path / "a", BASE, model=MINILM, config=config), **old)
    ours = with_data(write_run(tmp_path / "b", shifted(-0.02), model=MINILM, config=config), **new)
    return ours, reference


def compare(tmp_path: Path, ours: Path, reference: Path, *extra: str) -> int:
    return run_main([str(ours), "--reference", str(reference), "--out", str(tmp_path / "out"), *extra])


def test_local_data_of_other_content_is_refused_with_what_differs(tmp_path, capsys):
    ours, reference = runs(
        tmp_path,
        {"source": "local", "path": "/data/v1/SciFact", "sha256": OLD_SHA},
        {"source": "local", "path": "/data/v2/SciFact", "sha256": NEW_SHA},
    )
    assert compare(tmp_path, ours, reference) == 2
    err = one_error_line(capsys)
    assert "made on different data (SciFact: data.sha256 3f2a9c01b7de -> 91c0d4e2aa10; " in err
    assert "--allow-other-data" in err
    assert not (tmp_path / "out").exists()  # nothing judged, nothing written


def test_allow_other_data_judges_and_flags_every_such_row(tmp_path, capsys):
    ours, reference = runs(tmp_path, {"source": "local", "sha256": OLD_SHA}, {"source": "local", "sha256": NEW_SHA})
    assert compare(tmp_path, ours, reference, "--allow-other-data") == 1  # judged: SciFact is 2 points down
    stdout = capsys.readouterr().out
    md = (tmp_path / "out" / "compare.md").read_text()
    flag = "data differs: data.sha256 3f2a9c01b7de -> 91c0d4e2aa10 (reference -> run)"
    for text in (stdout, md):
        assert sum(flag in line for line in text.splitlines() if line.startswith("| ")) == 3  # every row says so
    assert flag in (tmp_path / "out" / "compare.csv").read_text()


def test_hub_data_loaded_from_another_commit_is_refused(tmp_path, capsys):
    hub = {"source": "hub", "repository": "mteb/scifact", "revision": "a" * 40, "revision_source": "card"}
    ours, reference = runs(
        tmp_path, {**hub, "loaded_revision": "a" * 40}, {**hub, "loaded_revision": "b" * 40, "verified": True}
    )
    assert compare(tmp_path, ours, reference) == 2
    assert "data.loaded_revision aaaaaaaaaaaa -> bbbbbbbbbbbb" in one_error_line(capsys)


def test_same_data_elsewhere_is_judged_as_before(tmp_path, capsys):
    ours, reference = runs(
        tmp_path,
        {"source": "local", "path": "/old/place", "sha256": OLD_SHA},
        {"source": "local", "path": "/new/place", "sha256": OLD_SHA},
    )
    assert compare(tmp_path, ours, reference) == 1  # the real 2-point drop, and no data flag
    assert "data differs" not in capsys.readouterr().out


def test_a_side_without_provenance_keeps_todays_behaviour(tmp_path, capsys):
    ours, _ = runs(tmp_path, {"source": "local", "sha256": OLD_SHA}, {"source": "local", "sha256": NEW_SHA})
    assert compare(tmp_path, ours, table(tmp_path / "ref.csv", TRUE_ROWS)) == 1
    assert "data differs" not in capsys.readouterr().out


# ------------------------------------------------------------------------------------- neither results nor a table

NOT_RESULTS = [
    ("/dev/null", "is a device, not results; pass a run folder, an mteb results folder, a TaskResult JSON (.json) or "
     "a score table (.csv)"),
    (str(REPO / "README.md"), "README.md is a .md file, not results; pass a run folder"),
    ("run.json", "run.json is a JSON file but not an mteb TaskResult (no task_name, no scores); pass a run folder"),
]  # fmt: skip


@pytest.mark.parametrize(("reference", "message"), NOT_RESULTS)
def test_compare_refuses_what_is_no_results_saying_what_it_is(reference, message, tmp_path, capsys):
    ours, _ = runs(tmp_path, {"source": "local", "sha256": OLD_SHA}, {"source": "local", "sha256": OLD_SHA})
    if reference == "run.json":
        reference = str(ours / "run.json")
    assert compare(tmp_path, ours, Path(reference)) == 2
    err = one_error_line(capsys)
    assert message in err and "unexpected" not in err and "delete or regenerate" not in err, err
    assert compare(tmp_path, Path(reference), ours) == 2  # the same as the results under test
    assert message in one_error_line(capsys)


def test_a_damaged_result_file_keeps_its_own_advice(tmp_path, capsys):
    damaged = tmp_path / "SciFact.json"
    damaged.write_text('{"task_name": "SciFact", "scores": ')
    ours, _ = runs(tmp_path, {"source": "local", "sha256": OLD_SHA}, {"source": "local", "sha256": OLD_SHA})
    assert compare(tmp_path, ours, damaged) == 2
    assert "malformed results file" in one_error_line(capsys)


def test_run_with_reference_dev_null_stops_before_any_task(tmp_path):
    res = invoke(
        ["model=minilm", "tasks=[STSBenchmark]", "reference=/dev/null", f"output_dir={tmp_path / 'o'}"], tmp_path
    )
    assert res.returncode == 2 and "Traceback" not in res.stderr, res.stderr[-2000:]
    assert res.error_line.startswith("error: reference=/dev/null is a device, not results; pass a run folder")
    assert not (tmp_path / "o").exists()
