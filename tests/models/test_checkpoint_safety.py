"""What every model family refuses before loading, through the real CLI: pickle weights without model.allow_pickle,
broken folders, and checkpoint files that name paths outside their folder. Exit 2, one `error:` line, no traceback."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from clirun import DATA, invoke
from hubcache import minilm_folder, model_commit, model_folder_files, model_set_ref
from safetensors.torch import load_file

from nvembed_eval.errors import CheckpointError
from nvembed_eval.models.safety import inside, pickle_refused

MTEB_MINILM = "sentence-transformers/all-MiniLM-L6-v2"
MTEB_MINILM_REVISION = "8b3219a92973c328a8e22fadcfa821b5dc75636a"  # mteb 2.26's ModelMeta.revision
# The shared refusal, minus the folder it names.
PICKLE_TAIL = str(pickle_refused(Path("F"), "pytorch_model.bin"))[1:]


def _to_pickle(folder: Path, weights: str = "model.safetensors") -> Path:
    """Replace a folder's safetensors weights by the same tensors as a pickle `pytorch_model.bin`."""
    torch.save(load_file(str(folder / weights)), folder / "pytorch_model.bin")
    (folder / weights).unlink()
    return folder


def _minilm_copy(dest: Path) -> Path:
    shutil.copytree(minilm_folder(), dest)
    return dest


def _fails_in_one_line(result, *fragments: str) -> str:
    assert result.returncode == 2, result.stderr[-3000:]
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    line = result.error_line
    assert line.startswith("error: "), result.stderr[-3000:]
    for fragment in fragments:
        assert fragment in line, line
    return line


def _cli(tmp: Path, model_args: list[str], hub: Path | None = None):
    args = [*model_args, "tasks=[STSBenchmark]", f"data_dir={DATA}", f"output_dir={tmp / 'run'}"]
    return invoke(args, tmp, hub=hub)


def _pickle_case(family: str, tmp: Path, tiny_dir: Path) -> tuple[list[str], Path | None]:
    if family == "minilm":
        return ["model=minilm", f"model.path={_to_pickle(_minilm_copy(tmp / 'minilm'))}"], None
    if family == "nv_embed":
        folder = _to_pickle(shutil.copytree(tiny_dir, tmp / "tiny"))
        return ["model=nv_embed_tiny", f"model.path={folder}", "model.create_tiny_if_missing=false"], None
    hf_home = tmp / "hf_home"
    files = {k: v for k, v in model_folder_files(minilm_folder()).items() if k != "model.safetensors"}
    files["pytorch_model.bin"] = _to_pickle(_minilm_copy(tmp / "minilm")) / "pytorch_model.bin"
    model_commit(hf_home, MTEB_MINILM, MTEB_MINILM_REVISION, files)
    model_set_ref(hf_home, MTEB_MINILM, MTEB_MINILM_REVISION)
    return ["model=mteb", f"model.name={MTEB_MINILM}"], hf_home


@pytest.mark.parametrize("family", ["minilm", "nv_embed", "mteb"])
def test_pickle_weights_are_refused_by_every_family(tmp_path, tiny_dir, family):
    args, hub = _pickle_case(family, tmp_path, tiny_dir)
    line = _fails_in_one_line(_cli(tmp_path, args, hub), "model.allow_pickle=true")
    assert line.endswith(PICKLE_TAIL)  # one shared message, whatever the family


def test_allow_pickle_loads_the_same_sentence_transformer(tmp_path):
    from nvembed_eval.models.sentence_transformer.encoder_st import SentenceTransformerEncoder

    folder = _to_pickle(_minilm_copy(tmp_path / "minilm"))
    with pytest.raises(CheckpointError, match=r"holds pickle weights \(pytorch_model\.bin\) and no model\.safetensors"):
        SentenceTransformerEncoder(path=str(folder), device="cpu")
    texts = ["A man is playing a guitar.", "Someone plays an instrument."]
    pickled = SentenceTransformerEncoder(path=str(folder), device="cpu", allow_pickle=True, show_progress=False)
    reference = SentenceTransformerEncoder(path=str(minilm_folder()), device="cpu", show_progress=False)
    np.testing.assert_array_equal(pickled.encode(texts), reference.encode(texts))


@pytest.mark.parametrize("damage", ["truncated weights", "empty folder"])
def test_broken_sentence_transformer_folder(tmp_path, damage):
    if damage == "empty folder":
        folder = tmp_path / "empty"
        folder.mkdir()
        fragments = ["holds neither modules.json nor config.json"]
    else:
        folder = _minilm_copy(tmp_path / "minilm")
        weights = folder / "model.safetensors"
        weights.write_bytes(weights.read_bytes()[:1000])
        fragments = ["cannot load the sentence-transformers model", "download the model again"]
    _fails_in_one_line(_cli(tmp_path, ["model=minilm", f"model.path={folder}"]), str(folder), *fragments)


def test_module_path_outside_the_folder_is_refused(tmp_path):
    folder = _minilm_copy(tmp_path / "minilm")
    modules = json.loads((folder / "modules.json").read_text())
    modules[1]["path"] = "../1_Pooling"
    shutil.copytree(folder / "1_Pooling", tmp_path / "1_Pooling")
    (folder / "modules.json").write_text(json.dumps(modules))
    _fails_in_one_line(
        _cli(tmp_path, ["model=minilm", f"model.path={folder}"]),
        "'../1_Pooling' (modules.json module path), which is outside the checkpoint folder",
    )


def test_weight_shard_outside_the_folder_is_refused(tmp_path, tiny_dir):
    folder = shutil.copytree(tiny_dir, tmp_path / "tiny")
    keys = list(load_file(str(folder / "model.safetensors")))
    shutil.move(folder / "model.safetensors", tmp_path / "model.safetensors")  # the file exists, outside
    index = {"metadata": {}, "weight_map": dict.fromkeys(keys, "../model.safetensors")}
    (folder / "model.safetensors.index.json").write_text(json.dumps(index))
    _fails_in_one_line(
        _cli(tmp_path, ["model=nv_embed_tiny", f"model.path={folder}", "model.create_tiny_if_missing=false"]),
        "'../model.safetensors' (model.safetensors.index.json weight_map), which is outside the checkpoint folder",
    )


@pytest.mark.parametrize("name", ["../x", "a/../../x", "/etc/passwd", "..\\x", "C:\\x.safetensors", "\\\\srv\\x", 3])
def test_names_that_leave_the_folder(tmp_path, name):
    with pytest.raises(CheckpointError, match="outside the checkpoint folder"):
        inside(tmp_path, name, "modules.json module path")


@pytest.mark.parametrize("name", ["", "1_Pooling", "2_Dense/model.safetensors", "model-00001-of-00002.safetensors"])
def test_names_inside_the_folder(tmp_path, name):
    assert inside(tmp_path, name, "modules.json module path") == tmp_path / name
