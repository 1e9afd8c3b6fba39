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
