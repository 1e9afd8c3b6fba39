"""`benchmark=mteb benchmark.name=...`: any benchmark of mteb's registry by its mteb name, offline, with mteb's own
benchmark objects; a local data_dir serving one of its tasks gives a run whose coverage is 1 of N."""

from __future__ import annotations

import json

import pytest
from clirun import invoke, load_run

import nvembed_eval
from nvembed_eval.errors import ConfigError
from nvembed_eval.tasks.benchmarks import Benchmark, mteb_benchmark, select_tasks
from nvembed_eval.tasks.specs import load_task_spec

V2 = "MTEB(eng, v2)"


def test_mteb_names_and_aliases_resolve_to_mtebs_task_lists():
    v2 = mteb_benchmark(V2)
    assert v2.name == V2 and len(v2.tasks) == 41 and {"STSBenchmark", "STS22.v2"} <= set(v2.tasks)
    classic = mteb_benchmark("MTEB(eng, classic)")  # an alias of the 2024 leaderboard
    assert classic.name == "MTEB(eng, v1)"
    expected = sorted(Benchmark.named("mteb_eng_v1").tasks)
    assert sorted(classic.tasks) == expected == sorted(Benchmark.named("MTEB(eng, v1)").tasks)


def test_unknown_mteb_name_is_one_line_with_close_matches():
    with pytest.raises(ConfigError) as err:
        mteb_benchmark("MTEB(eng, v3)")
    message = str(err.value)
    assert "\n" not in message and "<benchmark.name=MTEB(eng, v3)>" in message
    assert "did you mean MTEB(eng, v2)" in message


def test_tasks_without_a_yaml_get_mtebs_metadata():
    benchmark, found = select_tasks(None, V2, ())
    specs = {spec.name: spec for spec in found}
    assert len(specs) == 41 and benchmark.name == V2 and benchmark.tasks == tuple(specs)
    sts22 = specs["STS22.v2"]  # no conf/task YAML: mteb's main score, no instruction
    assert (sts22.metric, sts22.instruction_source, sts22.has_instruction) == ("cosine_spearman", "none", False)
    assert specs["STSBenchmark"].instruction_verified  # a YAML task keeps its own spec


@pytest.fixture(scope="module")
def v2_run(tmp_path_factory, sts_only_data, embedding_cache):
    run_dir = tmp_path_factory.mktemp("v2") / "run"
    overrides = {"model": "minilm", "benchmark": "mteb", "benchmark.name": V2, "data_dir": str(sts_only_data)}
    overrides["cache"] = {"dir": str(embedding_cache)}
    return nvembed_eval.evaluate(overrides, output_dir=run_dir)


def test_named_benchmark_runs_the_tasks_it_has_data_for_and_records_mtebs_list(v2_run):
    assert v2_run.table.task.tolist() == ["STSBenchmark"]
    assert round(float(v2_run.table.score[0]), 4) == 82.0325
    record = load_run(v2_run.run_dir)
    assert record["benchmark"]["name"] == V2
    assert record["benchmark"]["tasks"] == list(mteb_benchmark(V2).tasks)  # all 41: the coverage denominators


def test_named_benchmark_leaderboard_reports_coverage(v2_run):
    board = nvembed_eval.leaderboard(v2_run.run_dir).set_index("name")
    assert (board.loc["Average", "covered"], board.loc["Average", "total"]) == (1, 41)
    assert not board.loc["Average", "complete"] and (board.loc["STS", "covered"], board.loc["STS", "total"]) == (1, 9)


def test_v1_leaderboard_by_its_mteb_name_through_the_cli(tmp_path, sts_only_data, embedding_cache):
    run_dir = tmp_path / "run"
    args = ["benchmark=mteb", 'benchmark.name="MTEB(eng, v1)"', f"data_dir={sts_only_data}", f"output_dir={run_dir}"]
    result = invoke(args, tmp_path, env={"NVEMBED_EVAL_CACHE": str(embedding_cache)})
    assert result.returncode == 0, result.stderr[-3000:]
    assert "holds 1 of the benchmark's 56 tasks" in result.stderr
    assert "| STSBenchmark | STS  | cosine_spearman | 82.03 | 82.03     | +0.00 |" in result.stdout
    record = json.loads((run_dir / "run.json").read_text())
    assert record["benchmark"]["name"] == "MTEB(eng, v1)" and len(record["benchmark"]["tasks"]) == 56


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["benchmark=mteb"], "benchmark=mteb needs the mteb benchmark's name"),
        (["benchmark=mteb", 'benchmark.name="MTEB(eng, v3)"'], "did you mean MTEB(eng, v2)"),
        (["benchmark=mteb", "benchmark.name=MTEB(eng, v2)"], """quote values with spaces, commas or parentheses"""),
    ],
)
def test_named_benchmark_mistakes_fail_in_one_line_and_create_nothing(tmp_path, args, fragment):
    run_dir = tmp_path / "out" / "run"
    result = invoke([*args, f"output_dir={run_dir}"], tmp_path)
    assert result.returncode == 2 and result.error_line.startswith("error: ") and fragment in result.error_line
    assert not (tmp_path / "out").exists()


def test_specs_follow_the_benchmarks_split_and_subset(caplog):
    v2 = mteb_benchmark(V2)
    assert all(len(splits) == len(subsets) == 1 for splits, subsets in v2.scopes.values())
    spec = load_task_spec("STS22.v2")  # from mteb's metadata
    own = Benchmark("own", ("STS22.v2", "STSBenchmark"), "mteb", "", {"STS22.v2": (("test",), ("de",))})
    assert (own.align(spec).split, own.align(spec).subset) == ("test", "de")
    several = Benchmark("several", ("STSBenchmark",), "mteb", "", {"STSBenchmark": (("test",), ("default", "x"))})
    yaml_spec = load_task_spec("STSBenchmark")
    assert several.align(yaml_spec) == yaml_spec  # a YAML spec is never changed ...
    assert "this harness scores split test, subset default only" in caplog.text  # ... but the difference is said
