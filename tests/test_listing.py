"""`nvembed-eval-list`: this harness's configs and mteb's registries, filtered by task type, each with a description."""

from __future__ import annotations

import subprocess
import sys

import pytest

from nvembed_eval.listing import main


def listed(capsys, *args: str) -> str:
    assert main(list(args)) == 0
    return capsys.readouterr().out


def rows(text: str) -> dict[str, list[str]]:
    """First column -> the other columns, for the table lines (two spaces separate columns)."""
    out = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.split("  ") if c.strip()]
        if len(cells) > 1:
            out[cells[0]] = cells[1:]
    return out


def test_tasks_by_type_are_this_harnesss_yamls_with_descriptions(capsys):
    table = rows(listed(capsys, "tasks", "--type", "Retrieval"))
    tasks = {name for name, cells in table.items() if cells[:1] == ["Retrieval"]}
    assert len(tasks) == 16 and {"SciFact", "MSMARCO", "NVEvalSmokeRetrieval"} <= tasks  # 15 + the smoke task
    assert table["SciFact"][:3] == ["Retrieval", "ndcg_at_10", "yaml"] and "scientific claims" in table["SciFact"][3]
    assert "STSBenchmark" not in table


def test_all_adds_mtebs_registry(capsys):
    table = rows(listed(capsys, "tasks", "--all", "--type", "STS"))
    assert table["STS22.v2"][:3] == ["STS", "cosine_spearman", "mteb"] and table["STSBenchmark"][2] == "yaml"


def test_tasks_of_a_named_benchmark(capsys):
    text = listed(capsys, "tasks", "--benchmark", "MTEB(eng, v2)")
    assert "41 tasks." in text and rows(text)["SummEvalSummarization.v2"][2] == "mteb"


def test_benchmarks_list_both_registries_with_task_counts(capsys):
    table = rows(listed(capsys, "benchmarks"))
    assert table["benchmark=smoke"][0] == "7" and table["benchmark=mteb_eng_v1"][0] == "56"
    assert table['"MTEB(eng, v2)"'][0] == "41" and table['"MTEB(eng, v1)"'][0] == "56"
    assert "benchmark=mteb" not in table  # the mteb.yaml entry point is not a benchmark of its own


def test_models_and_the_mteb_registry(capsys):
    table = rows(listed(capsys, "models"))
    assert set(table) >= {"model=minilm", "model=nv_embed_v2", "model=mteb"}
    assert table["model=minilm"][0].startswith("sentence-transformers/all-MiniLM-L6-v2: the CPU baseline")
    everything = rows(listed(capsys, "models", "--all"))
    assert "sentence-transformers/all-MiniLM-L6-v2" in everything


def test_instructions_variants_and_per_task_rows(capsys):
    table = rows(listed(capsys, "instructions", "--type", "Retrieval"))
    assert {"instructions=nv_embed_v2", "instructions=none", "instructions=mteb_default"} <= set(table)
    assert table["SciFact"][0] == "Retrieval" and table["SciFact"][1].startswith("Given a scientific claim, retrieve")
    assert table["SciFact"][2] == "-"  # no document instruction for retrieval
    assert "STSBenchmark" not in table


def test_a_wrong_type_is_one_line_with_the_close_match(capsys):
    assert main(["tasks", "--type", "Retrival"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: unknown task type <--type Retrival>; did you mean Retrieval") and err.count("\n") == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["models", "--all", "--type", "x"], "models takes no --type (it takes: --all)"),
        (["benchmarks", "--type", "STS"], "benchmarks takes no --type (it takes: --all)"),
        (["instructions", "--all"], "instructions takes no --all (it takes: --type)"),
        (["models", "--benchmark", "smoke"], "models takes no --benchmark (it takes: --all)"),
        (
            ["tasks", "--all", "--benchmark", "smoke"],
            "--all and --benchmark each choose the tasks to list; pass one of them",
        ),
    ],
)
def test_a_filter_the_listing_does_not_read_is_refused(args, message, capsys):
    with pytest.raises(SystemExit) as info:
        main(args)
    captured = capsys.readouterr()
    assert info.value.code == 2 and captured.out == ""
    assert captured.err == f"error: {message}; see nvembed-eval-list --help\n", captured.err


def test_the_mteb_placeholder_is_no_task_list(capsys):
    assert main(["tasks", "--benchmark", "mteb"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "conf/" not in err, err
    assert err.startswith("error: benchmark 'mteb' is the placeholder for mteb's named benchmarks, not a task list; ")
    assert 'pass the mteb name, e.g. --benchmark "MTEB(eng, v2)"' in err


@pytest.mark.parametrize("what", ["benchmarks"])
def test_console_script(what):
    result = subprocess.run(
        [sys.executable, "-c", f"import sys; from nvembed_eval.listing import main; sys.exit(main(['{what}']))"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0 and "benchmark=smoke" in result.stdout
