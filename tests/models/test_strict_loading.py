"""Strict loading, for every model family, through the real CLI: a checkpoint whose tensors are not exactly the ones
the model needs (a renamed key, a missing tensor, an extra one, a wrong shape) is refused in one line naming the
folder and the offenders — never scored with randomly initialised weights (the report: MiniLM with one renamed key
gave STS 31.90 and exit 0). Pickle is read only with model.allow_pickle=true, whatever else the folder holds; a
length setting beyond the model's positions is refused before any data is read."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
from hubcache import minilm_folder, model_commit, model_folder_files, model_set_ref
from safetensors.torch import load_file, save_file
from test_checkpoint_safety import MTEB_MINILM, MTEB_MINILM_REVISION, PICKLE_TAIL, _cli, _fails_in_one_line, _to_pickle

# One tensor of each family's checkpoint to damage.
TENSOR = {
    "minilm": "encoder.layer.0.attention.self.query.weight",
    "mteb": "encoder.layer.0.attention.self.query.weight",
    "nv_embed": "latent_attention_model.latents",
}


def _damaged(folder: Path, family: str, damage: str) -> Path:
    state = load_file(str(folder / "model.safetensors"))
    key = TENSOR[family]
    if damage == "renamed":
        state[key.replace("weight", "kernel") if key.endswith("weight") else key + "_renamed"] = state.pop(key)
    elif damage == "missing":
        del state[key]
    elif damage == "extra":
        state["extra_head.weight"] = torch.zeros(2, 2)
    else:
        state[key] = torch.zeros(state[key].shape[0] + 1, *state[key].shape[1:])
    save_file(state, str(folder / "model.safetensors"), metadata={"format": "pt"})
    return folder


def _family_args(family: str, folder: Path, tmp: Path) -> tuple[list[str], Path | None]:
    if family == "minilm":
        return ["model=minilm", f"model.path={folder}"], None
    if family == "nv_embed":
        return ["model=nv_embed_tiny", f"model.path={folder}", "model.create_tiny_if_missing=false"], None
    hf_home = tmp / "hf_home"
    files = {**model_folder_files(minilm_folder()), "model.safetensors": folder / "model.safetensors"}
    model_commit(hf_home, MTEB_MINILM, MTEB_MINILM_REVISION, files)
    model_set_ref(hf_home, MTEB_MINILM, MTEB_MINILM_REVISION)
    return ["model=mteb", f"model.name={MTEB_MINILM}"], hf_home


@pytest.mark.parametrize("damage", ["renamed", "missing", "extra", "shape"])
@pytest.mark.parametrize("family", ["minilm", "mteb", "nv_embed"])
def test_weights_that_are_not_exactly_the_models_are_refused_by_every_family(tmp_path, tiny_dir, family, damage):
    source = tiny_dir if family == "nv_embed" else minilm_folder()
    folder = _damaged(shutil.copytree(source, tmp_path / "model"), family, damage)
    args, hub = _family_args(family, folder, tmp_path)
    line = _fails_in_one_line(_cli(tmp_path, args, hub))
    expected = {
        "renamed": ["missing keys: " + TENSOR[family], "unexpected keys: "],
        "missing": ["missing keys: " + TENSOR[family]],
        "extra": ["unexpected keys: extra_head.weight"],
        "shape": [TENSOR[family]],  # ours names the shapes; transformers refuses a wrong shape itself, as one line
    }[damage]
    assert all(fragment in line for fragment in expected), line
    assert "model" in line and not (tmp_path / "run" / "results").exists()


def test_pickle_beside_a_stray_safetensors_file_is_still_refused(tmp_path):
    """The report: pytorch_model.bin plus any other *.safetensors (even an empty one) loaded the pickle, exit 0."""
    from test_checkpoint_safety import _minilm_copy

    folder = _to_pickle(_minilm_copy(tmp_path / "minilm"))
    (folder / "stray.safetensors").write_bytes(b"")
    line = _fails_in_one_line(_cli(tmp_path, ["model=minilm", f"model.path={folder}"]), "model.allow_pickle=true")
    assert line.endswith(PICKLE_TAIL)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["model=minilm", "model.max_seq_length=1024"],
            "<model.max_seq_length=1024> is more than sentence-transformers/all-MiniLM-L6-v2 can embed (512 tokens)",
        ),
        (["model=nv_embed_tiny", "model.max_length=40000"], "<model.max_length=40000> is more than"),
    ],
)
def test_a_length_beyond_the_models_positions_is_refused_before_data(tmp_path, args, message):
    """The report: max_seq_length=1024 on a 700-token pair was a 101-line traceback and a half-made run folder."""
    line = _fails_in_one_line(_cli(tmp_path, args), message, "32768 tokens" if "nv_embed" in args[0] else "512 tokens")
    assert "use model.max" in line and not (tmp_path / "run" / "results").exists()
