"""`nvembed-eval-export`: a run handed to mteb through mteb's own `ResultCache.save_to_cache`, loaded back by mteb's
`ResultCache().load_results()` with its defaults and by `nvembed_eval.load_results`, scores bit for bit; every
refusal one line with nothing written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from clirun import DATA, invoke
from scoresets import write_run

from nvembed_eval import load_results
from nvembed_eval.results.export import main as export_main

MODEL = "sentence-transformers/all-MiniLM-L6-v2"
COMMIT = "8b3219a92973c328a8e22fadcfa821b5dc75636a"  # the packaged MiniLM folder has no commit of its own


def _run(tmp: Path, embedding_cache: Path, hf_home: Path | None, *extra: str) -> Path:
    """A real MiniLM run of STSBenchmark: on the (offline) hub's data, or with `data_dir=` in `extra`."""
    run_dir = tmp / "run"
    args = ["model=minilm", "tasks=[STSBenchmark]", f"output_dir={run_dir}", *extra]
    result = invoke(args, tmp, hub=hf_home, env={"NVEMBED_EVAL_CACHE": str(embedding_cache)})
    assert result.returncode == 0, result.stderr[-2000:]
    return run_dir


@pytest.fixture(scope="module")
def hub_run(tmp_path_factory, embedding_cache, hf_home) -> Path:
    return _run(tmp_path_factory.mktemp("export"), embedding_cache, hf_home)


def _export(tmp: Path, *args: str):
    return invoke(list(args), tmp, main=export_main)


def test_an_export_loads_in_mtebs_result_cache_with_its_defaults(hub_run, tmp_path):
    from mteb.cache import ResultCache

    to = tmp_path / "mteb-cache"
    result = _export(tmp_path, str(hub_run), "--to", str(to), "--revision", COMMIT)
    assert result.returncode == 0, result.stderr
    folder = to / "results" / MODEL.replace("/", "__") / COMMIT  # the 40-hex revision, no colon in any name
    assert sorted(p.name for p in folder.iterdir()) == ["STSBenchmark.json", "model_meta.json", "run_settings.jsonl"]
    assert json.loads((folder / "model_meta.json").read_text())["experiment_kwargs"] is None  # a plain reproduction
    loaded = ResultCache(to).load_results()  # mteb's defaults
    [model] = loaded.model_results
    assert (model.model_name, model.model_revision) == (MODEL, COMMIT)
    [task] = model.task_results
    original = load_results(hub_run).set_index("task")["score"]
    assert task.task_name == "STSBenchmark" and 100 * task.get_score() == original["STSBenchmark"]  # bit for bit
    assert load_results(folder).set_index("task")["score"].equals(original)
    assert f"mteb submit-results --output-folder {to}" in result.stdout


def test_a_changed_knob_makes_the_export_an_experiment(tmp_path):
    """Only knobs set on the command line are experiment kwargs (mteb files them apart); recomputed from run.json."""
    from nvembed_eval.models.base import ModelIdentity

    identity = ModelIdentity(MODEL, COMMIT, {"max_seq_length": 128, "normalize": True})
    assert identity.experiment_kwargs(["model=minilm", "model.max_seq_length=128"]) == {"max_seq_length": "128"}
    assert identity.experiment_kwargs(["model=minilm", "tasks=[SciFact]"]) is None


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "the run loaded the model from a local folder (revision sha256:"),
        (["--revision", "main"], "<--revision main> is no hub commit"),
    ],
)
def test_a_model_without_a_hub_commit_is_refused(hub_run, tmp_path, args, message):
    to = tmp_path / "mteb-cache"
    result = _export(tmp_path, str(hub_run), "--to", str(to), *args)
    assert result.returncode == 2 and message in result.error_line and result.stderr.count("\n") == 1
    assert not to.exists()


def test_results_on_local_data_are_refused_unless_allowed(tmp_path, embedding_cache):
    run = _run(tmp_path, embedding_cache, None, f"data_dir={DATA}")
    to = tmp_path / "mteb-cache"
    result = _export(tmp_path, str(run), "--to", str(to), "--revision", COMMIT)
    assert result.returncode == 2 and "STSBenchmark were computed on local task files" in result.error_line
    assert not to.exists()
    assert _export(tmp_path, str(run), "--to", str(to), "--revision", COMMIT, "--allow-local-data").returncode == 0


def test_results_on_the_packaged_smoke_tasks_are_refused_unless_allowed(tmp_path, embedding_cache):
    run = _run(tmp_path, embedding_cache, None, "tasks=[NVEvalSmokeSTS]")
    to = tmp_path / "mteb-cache"
    result = _export(tmp_path, str(run), "--to", str(to), "--revision", COMMIT)
    assert result.returncode == 2 and result.error_line == (
        "error: NVEvalSmokeSTS were computed on this package's own smoke tasks, which are no MTEB tasks; the MTEB "
        "results repository merges results on the hub's data only: export a run of MTEB tasks, or pass "
        "--allow-local-data to export anyway"
    )
    assert not to.exists()


@pytest.mark.parametrize("kind", ["file", "dead link"])
def test_a_target_that_is_no_folder_is_refused(hub_run, tmp_path, kind):
    to = tmp_path / "target"
    if kind == "file":
        to.write_text("mine")
    else:
        to.symlink_to(tmp_path / "nowhere")
    result = _export(tmp_path, str(hub_run), "--to", str(to), "--revision", COMMIT)
    assert result.returncode == 2 and result.error_line == (
        f"error: --to {to} is not a folder; pass the mteb cache folder to write into, e.g. ~/.cache/mteb"
    )
    assert to.is_symlink() or to.read_text() == "mine"


def test_other_scores_already_exported_are_never_overwritten(hub_run, tmp_path):
    to = tmp_path / "mteb-cache"
    assert _export(tmp_path, str(hub_run), "--to", str(to), "--revision", COMMIT).returncode == 0
    target = to / "results" / MODEL.replace("/", "__") / COMMIT / "STSBenchmark.json"
    data = json.loads(target.read_text())
    data["scores"]["test"][0]["main_score"] = 0.5
    target.write_text(json.dumps(data))
    before = target.read_bytes()
    result = _export(tmp_path, str(hub_run), "--to", str(to), "--revision", COMMIT)
    assert result.returncode == 2 and "holds other scores for STSBenchmark" in result.error_line
    assert target.read_bytes() == before


def test_a_folder_that_is_no_run_is_refused(tmp_path):
    plain = write_run(tmp_path / "plain", {"SciFact": {"ndcg_at_10": 0.6}}, model="local/mine")
    result = _export(tmp_path, str(plain), "--to", str(tmp_path / "c"))
    assert result.returncode == 2 and "the run's model is named local/mine" in result.error_line
    (plain / "run.json").unlink()
    result = _export(tmp_path, str(plain), "--to", str(tmp_path / "c"))
    assert result.returncode == 2 and "has no run.json: it is no run folder of nvembed-eval" in result.error_line
    assert not (tmp_path / "c").exists()
