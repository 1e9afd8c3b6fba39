"""Identity from what is loaded: a folder's fingerprint covers every file the model reads (not only weights), and a
hub id or a branch name is recorded as the commit of the snapshot loaded."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from hubcache import minilm_folder, model_commit, model_folder_files, model_set_ref

from nvembed_eval.errors import CheckpointError
from nvembed_eval.models.nvembed.encoder_nvembed import NVEmbedEncoder
from nvembed_eval.models.sentence_transformer.checkpoint import loaded_files
from nvembed_eval.models.sentence_transformer.encoder_st import SentenceTransformerEncoder

HUB_ID = "sentence-transformers/all-MiniLM-L6-v2"
COMMIT = "0123456789abcdef0123456789abcdef01234567"


def st(path, **kwargs) -> SentenceTransformerEncoder:
    return SentenceTransformerEncoder(path=str(path), device="cpu", show_progress=False, **kwargs)


def nvembed(path, **kwargs) -> NVEmbedEncoder:
    return NVEmbedEncoder(str(path), device="cpu", max_length=512, progress=False, **kwargs)


@pytest.fixture
def offline_hub(tmp_path, monkeypatch) -> Path:
    """An empty offline hub cache that huggingface_hub reads in this process."""
    import huggingface_hub.constants

    hf_home = tmp_path / "hf_home"
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(hf_home / "hub"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return hf_home


def test_st_folder_files_are_root_and_module_folders():
    names = [p.relative_to(minilm_folder()).as_posix() for p in loaded_files(minilm_folder())]
    assert {"modules.json", "config.json", "tokenizer.json", "vocab.txt", "model.safetensors"} <= set(names)
    assert "1_Pooling/config.json" in names
    assert ".gitattributes" not in names


def test_st_pooling_config_changes_the_identity(tmp_path):
    base = st(minilm_folder())
    copy = shutil.copytree(minilm_folder(), tmp_path / "copy")
    assert st(copy).identity == base.identity  # the same bytes elsewhere are the same model
    pooling = copy / "1_Pooling" / "config.json"
    config = json.loads(pooling.read_text())
    config.update(pooling_mode_mean_tokens=False, pooling_mode_cls_token=True)
    pooling.write_text(json.dumps(config))
    cls_pooled = st(copy)
    assert cls_pooled.identity.revision.startswith("sha256:")
    assert cls_pooled.identity.revision != base.identity.revision
    texts = ["A man is playing a guitar."]
    assert not (cls_pooled.encode(texts) == base.encode(texts)).all()  # it is another model indeed


def test_st_tokenizer_change_changes_the_identity(tmp_path):
    copy = shutil.copytree(minilm_folder(), tmp_path / "copy")
    (copy / "tokenizer_config.json").write_text(
        json.dumps({**json.loads((copy / "tokenizer_config.json").read_text()), "do_lower_case": False})
    )
    assert st(copy).identity.revision != st(minilm_folder()).identity.revision


def test_st_hub_id_records_the_commit_of_main_and_of_a_tag(offline_hub):
    files = model_folder_files(minilm_folder())
    model_commit(offline_hub, HUB_ID, COMMIT, files)
    model_set_ref(offline_hub, HUB_ID, COMMIT)
    model_set_ref(offline_hub, HUB_ID, COMMIT, ref="v1.0")
    for revision in (None, "main", "v1.0", COMMIT):
        encoder = st(HUB_ID, revision=revision)
        assert encoder.identity.revision == COMMIT, revision
        assert encoder.folder.name == COMMIT
    with pytest.raises(CheckpointError, match=r"revision v9\.9\) could not be downloaded.*local folder"):
        st(HUB_ID, revision="v9.9")


def test_nvembed_config_and_tokenizer_are_part_of_the_identity(tmp_path, tiny_dir, tiny_encoder):
    copy = shutil.copytree(tiny_dir, tmp_path / "copy")
    assert nvembed(copy).identity.revision == tiny_encoder.identity.revision
    config = copy / "config.json"
    config.write_text(json.dumps({**json.loads(config.read_text()), "note": "edited"}))
    edited_config = nvembed(copy).identity.revision
    tokenizer = copy / "tokenizer.json"
    tokenizer.write_text(json.dumps(json.loads(tokenizer.read_text()), indent=1))
    edited_tokenizer = nvembed(copy).identity.revision
    assert len({tiny_encoder.identity.revision, edited_config, edited_tokenizer}) == 3


def test_nvembed_branch_name_is_recorded_as_its_commit(offline_hub, tiny_dir):
    model_commit(offline_hub, "nvidia/NV-Embed-v2", COMMIT, model_folder_files(tiny_dir))
    model_set_ref(offline_hub, "nvidia/NV-Embed-v2", COMMIT)
    assert nvembed("nvidia/NV-Embed-v2", revision="main").identity.revision == COMMIT


def test_a_one_byte_change_deep_in_a_large_weight_file_changes_the_identity(tmp_path, monkeypatch):
    """The report: two checkpoints over 512 MiB differing in one encoder tensor got one identity (the fingerprint
    sampled large files). Every byte is hashed now: two sparse 600 MiB files, one byte apart in the middle."""
    from nvembed_eval.models.base import folder_revision

    monkeypatch.setenv("NVEMBED_EVAL_DIGESTS", str(tmp_path / "digests"))
    revisions = []
    for name, byte in (("a", b"\0"), ("b", b"\1")):
        weights = tmp_path / name / "model.safetensors"
        weights.parent.mkdir()
        with weights.open("wb") as handle:
            handle.truncate(600 * 1024 * 1024)
            handle.seek(300 * 1024 * 1024 + 7)
            handle.write(byte)
        revisions.append(folder_revision(weights.parent, [weights]))
    assert revisions[0] != revisions[1]


def test_two_checkpoints_one_byte_apart_share_no_identity_cached_vector_or_result(tmp_path):
    """Through the CLI: the same command on model B (one weight byte changed) after model A, into A's output_dir with
    A's cache, is refused as another model; in its own folder it encodes every text itself (no cache hit from A)."""
    from clirun import invoke
    from safetensors.torch import load_file, save_file

    model_a = shutil.copytree(minilm_folder(), tmp_path / "a")
    model_b = shutil.copytree(minilm_folder(), tmp_path / "b")
    state = load_file(str(model_b / "model.safetensors"))
    key = "encoder.layer.3.attention.self.value.weight"
    flat = state[key].view(-1).clone()
    flat[1000] = flat[1000].item() + 1e-3  # one value, i.e. a few bytes, deep in the file
    state[key] = flat.view(state[key].shape)
    save_file(state, str(model_b / "model.safetensors"), metadata={"format": "pt"})
    assert (model_a / "model.safetensors").stat().st_size == (model_b / "model.safetensors").stat().st_size
    cache = {"NVEMBED_EVAL_CACHE": str(tmp_path / "cache")}
    args = ["model=minilm", "tasks=[NVEvalSmokeSTS]"]
    run_a = invoke([*args, f"model.path={model_a}", f"output_dir={tmp_path / 'run'}"], tmp_path, env=cache)
    assert run_a.returncode == 0, run_a.stderr[-2000:]
    again = invoke([*args, f"model.path={model_b}", f"output_dir={tmp_path / 'run'}"], tmp_path, env=cache)
    assert again.returncode == 2 and "another model" in again.error_line
    run_b = invoke([*args, f"model.path={model_b}", f"output_dir={tmp_path / 'run_b'}"], tmp_path, env=cache)
    assert run_b.returncode == 0, run_b.stderr[-2000:]
    record_a = json.loads((tmp_path / "run" / "run.json").read_text())
    record_b = json.loads((tmp_path / "run_b" / "run.json").read_text())
    assert record_a["model"]["revision"] != record_b["model"]["revision"]
    assert record_b["tasks"]["NVEvalSmokeSTS"]["cache"]["hits"] == 0  # nothing of A's vectors
