"""The Python API: the README's example runs as written (MiniLM's published STSBenchmark 82.0325 from ../shared/data),
`evaluate` refuses what the CLI refuses and writes the same record, dict overrides become Hydra's overrides."""

from __future__ import annotations

import doctest
import os
import re
from pathlib import Path

import pytest
import yaml
from clirun import REPO

import nvembed_eval
from nvembed_eval import NVEmbedEvalError
from nvembed_eval.api import to_overrides
from nvembed_eval.errors import ConfigError


def readme_api_example() -> str:
    """The python block of the README's "Python API" section."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text.split("## Python API", 1)[1].split("\n## ", 1)[0]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


@pytest.fixture(scope="module")
def readme_run(tmp_path_factory, shared_dir, embedding_cache):
    """The README's example, run as a doctest from a folder whose `../shared` is the real one."""
    root = tmp_path_factory.mktemp("readme")
    (root / "shared").symlink_to(shared_dir)
    work = root / "work"
    work.mkdir()
    saved = {k: os.environ.get(k) for k in ("NVEMBED_EVAL_CACHE", "NVEMBED_EVAL_ROOT")}
    os.environ["NVEMBED_EVAL_CACHE"] = str(embedding_cache)
    os.environ.pop("NVEMBED_EVAL_ROOT", None)
    cwd = Path.cwd()
    os.chdir(work)
    try:
        test = doctest.DocTestParser().get_doctest(readme_api_example(), {}, "README Python API", "README.md", 0)
        runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE)
        failures = []
        runner.run(test, out=failures.append, clear_globs=False)
    finally:
        os.chdir(cwd)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    return runner.summarize(verbose=False), "".join(failures), test.globs, work


def test_readme_example_reproduces_minilm_stsbenchmark(readme_run):
    results, failures, globs, work = readme_run
    assert results.attempted >= 5 and results.failed == 0, failures
    run = globs["run"]
    assert run.run_dir.parent == work / "outputs"  # outputs under the working folder, as the CLI's default
    row = run.table.iloc[0]
    assert row.task == "STSBenchmark" and round(float(row.score), 4) == 82.0325 and round(float(row.delta), 4) == 0.0
    assert list(run.table.columns[:8]) == ["task", "type", "split", "subset", "metric", "score", "published", "delta"]


def test_evaluate_writes_the_clis_record(readme_run):
    run = readme_run[2]["run"]
    hydra_dir = run.run_dir / ".hydra"
    assert yaml.safe_load((hydra_dir / "overrides.yaml").read_text()) == [
        "model=minilm",
        "tasks=STSBenchmark",
        "data_dir=../shared/data",
    ]
    config = yaml.safe_load((hydra_dir / "config.yaml").read_text())
    assert config["tasks"] == "STSBenchmark" and "hydra" not in config
    hydra = yaml.safe_load((hydra_dir / "hydra.yaml").read_text())["hydra"]
    assert hydra["runtime"]["output_dir"] == str(run.run_dir)
    assert (run.run_dir / "nvembed-eval.log").is_file() and (run.run_dir / "results" / "STSBenchmark.json").is_file()


def test_leaderboard_of_an_ad_hoc_run_counts_its_own_tasks(readme_run):
    run = readme_run[2]["run"]
    board = nvembed_eval.leaderboard(run.run_dir)
    first = board.iloc[0]
    assert (first["name"], first["covered"], first["total"], bool(first["complete"])) == ("Average", 1, 1, True)
    assert round(float(first["mean"]), 4) == 82.0325


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"batch_size": 0}, r"<batch_size=0> must be a positive integer"),
        (["task=SciFact"], r"tasks=\[SciFact\]"),
        (["model=minilmm"], r"did you mean minilm"),
        (["tasks=SciFact,NFCorpus"], r"write tasks=\[SciFact,NFCorpus\] for a list"),
        ({"benchmark": "mteb"}, r"benchmark=mteb needs the mteb benchmark's name"),
        # a dry run never evaluates; a value that is no boolean is refused as on the command line
        ({"tasks": "NVEvalSmokeSTS", "plan": True}, r"plan=true is the command line's dry run"),
        ({"tasks": "NVEvalSmokeSTS", "plan": "maybe"}, r"<plan=maybe> must be true or false"),
        # model knobs are checked before the model is built: nothing recorded for a setting that took no effect
        ({"tasks": "NVEvalSmokeSTS", "model.max_seq_length": 0}, r"<model.max_seq_length=0> must be a positive"),
        ({"tasks": "NVEvalSmokeSTS", "model.normalize": "maybe"}, r"<model.normalize=maybe> must be true or false"),
        ({"model": "mteb", "model.name": 42}, r"<model.name=42> must be text"),
    ],
)
def test_evaluate_refuses_what_the_cli_refuses_and_writes_nothing(tmp_path, overrides, message):
    run_dir = tmp_path / "a" / "b" / "run"
    with pytest.raises(NVEmbedEvalError, match=message):
        nvembed_eval.evaluate(overrides, output_dir=run_dir)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [  # the Python API's own argument types: a refusal like any other, never a TypeError from deep inside
        ((5,), {}, r"^overrides=5 must be a list of 'key=value' strings or a dict$"),
        ((["model=minilm"],), {"output_dir": 123}, r"^output_dir=123 must be a folder path \(a str or pathlib.Path\)$"),
        ((["model=minilm"],), {"config_dir": 1.5}, r"^config_dir=1.5 must be a folder path"),
        ((["model=minilm"],), {"output_dir": ""}, r"^<output_dir=> is empty; give a folder, or leave output_dir out$"),
    ],
)
def test_arguments_of_the_wrong_type_are_refused(tmp_path, args, kwargs, message):
    with pytest.raises(ConfigError, match=message):
        nvembed_eval.evaluate(*args, **kwargs)


def test_output_dir_given_twice_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="output_dir is given twice"):
        nvembed_eval.evaluate([f"output_dir={tmp_path}/x"], output_dir=tmp_path / "y")


def test_dict_overrides_are_quoted_for_hydra():
    assert to_overrides(
        {
            "model": "minilm",
            "tasks": ["STSBenchmark", "SciFact"],
            "benchmark": {"name": "MTEB(eng, v2)"},
            "data_dir": "/data/my tasks",
            "overwrite": True,
            "cache.max_size": None,
            "batch_size": 64,
        }
    ) == [
        "model=minilm",
        "tasks=[STSBenchmark,SciFact]",
        "benchmark.name='MTEB(eng, v2)'",
        "data_dir='/data/my tasks'",
        "overwrite=true",
        "cache.max_size=null",
        "batch_size=64",
    ]
    with pytest.raises(ConfigError, match="must be a list"):
        to_overrides("model=minilm")  # type: ignore[arg-type]


def test_import_is_light():
    import subprocess
    import sys

    heavy = "('mteb', 'torch', 'pandas', 'hydra')"
    code = f"import sys, nvembed_eval; print(sorted(m for m in {heavy} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
