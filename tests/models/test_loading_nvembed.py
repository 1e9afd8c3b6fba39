"""Checkpoint loading: official layouts (single file, shards, HF cache, hub id offline) and every refusal."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from nvembed_testlib import NQ_PREFIX
from safetensors.torch import load_file, save_file

from nvembed_eval.errors import CheckpointError
from nvembed_eval.models.nvembed.encoder_nvembed import NVEmbedEncoder
from nvembed_eval.models.nvembed.tiny import write_tiny_checkpoint

COMMIT = "c50d55f43bde7e6a18e0eaa15a62fd63a930f1a1"


def load(path, **kwargs) -> NVEmbedEncoder:
    return NVEmbedEncoder(str(path), device="cpu", max_length=512, progress=False, **kwargs)


def copy_ckpt(src: Path, dest: Path) -> Path:
    shutil.copytree(src, dest)
    return dest


def test_sharded_checkpoint_equals_single_file(tmp_path, golden_dir, tiny_dir, tiny_encoder, texts):
    sharded = write_tiny_checkpoint(tmp_path / "sharded", tokenizer_dir=golden_dir, num_shards=3)
    index = json.loads((sharded / "model.safetensors.index.json").read_text())
    assert sorted(set(index["weight_map"].values())) == [f"model-0000{i}-of-00003.safetensors" for i in (1, 2, 3)]
    assert not (sharded / "model.safetensors").exists()
    enc = load(sharded)
    np.testing.assert_array_equal(enc.encode(texts, prefix=NQ_PREFIX), tiny_encoder.encode(texts, prefix=NQ_PREFIX))
    for name, param in tiny_encoder.model.state_dict().items():
        assert torch.equal(enc.model.state_dict()[name], param), name


def test_identity_tracks_the_weights(tmp_path, golden_dir, tiny_dir, tiny_encoder):
    again = load(copy_ckpt(tiny_dir, tmp_path / "copy"))
    assert again.identity.revision == tiny_encoder.identity.revision  # same bytes, same fingerprint
    other = load(write_tiny_checkpoint(tmp_path / "seed1", seed=1, tokenizer_dir=golden_dir))
    assert other.identity.revision != tiny_encoder.identity.revision
    named = load(copy_ckpt(tiny_dir, tmp_path / "NV-Embed-v2"))
    assert named.identity.name == "nvidia/NV-Embed-v2"
    assert load(tiny_dir, name="me/custom").identity.name == "me/custom"


@pytest.mark.parametrize("missing", ["config.json", "tokenizer.json"])
def test_missing_files_are_named(tmp_path, tiny_dir, missing):
    ckpt = copy_ckpt(tiny_dir, tmp_path / "ckpt")
    (ckpt / missing).unlink()
    with pytest.raises(CheckpointError, match=rf"is missing {missing}; an NV-Embed checkpoint folder needs"):
        load(ckpt)


def test_missing_weights_and_shards_are_named(tmp_path, golden_dir, tiny_dir):
    ckpt = copy_ckpt(tiny_dir, tmp_path / "ckpt")
    (ckpt / "model.safetensors").unlink()
    with pytest.raises(CheckpointError, match=r"has no weights: expected model.safetensors or model.safetensors.index"):
        load(ckpt)
    sharded = write_tiny_checkpoint(tmp_path / "sharded", tokenizer_dir=golden_dir, num_shards=2)
    (sharded / "model-00002-of-00002.safetensors").unlink()
    with pytest.raises(CheckpointError, match=r"missing weight shard\(s\) model-00002-of-00002.safetensors"):
        load(sharded)


def test_key_and_shape_mismatches_are_listed(tmp_path, tiny_dir):
    ckpt = copy_ckpt(tiny_dir, tmp_path / "ckpt")
    state = load_file(str(ckpt / "model.safetensors"))
    del state["latent_attention_model.latents"]
    state["embedding_model.layers.0.self_attn.rotary_emb.inv_freq"] = torch.ones(8)
    state["embedding_model.norm.weight"] = torch.ones(65)
    save_file(state, str(ckpt / "model.safetensors"), metadata={"format": "pt"})
    with pytest.raises(CheckpointError) as err:
        load(ckpt)
    message = str(err.value)
    assert "missing keys: latent_attention_model.latents" in message
    assert "unexpected keys: embedding_model.layers.0.self_attn.rotary_emb.inv_freq" in message
    assert "shape mismatches: embedding_model.norm.weight [65] (model [64])" in message
    assert "\n" not in message


def test_config_that_disagrees_with_the_weights(tmp_path, tiny_dir):
    ckpt = copy_ckpt(tiny_dir, tmp_path / "ckpt")
    config = json.loads((ckpt / "config.json").read_text())
    config["text_config"]["num_hidden_layers"] = 3
    (ckpt / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match=r"missing keys: embedding_model.layers.2.input_layernorm.weight"):
        load(ckpt)


def test_pickle_weights_need_allow_pickle(tmp_path, tiny_dir, tiny_encoder, texts):
    ckpt = copy_ckpt(tiny_dir, tmp_path / "ckpt")
    torch.save(load_file(str(ckpt / "model.safetensors")), ckpt / "pytorch_model.bin")
    (ckpt / "model.safetensors").unlink()
    with pytest.raises(CheckpointError, match=r"pickle weights \(pytorch_model.bin\).*model.allow_pickle=true"):
        load(ckpt)
    enc = load(ckpt, allow_pickle=True)
    np.testing.assert_array_equal(enc.encode(texts), tiny_encoder.encode(texts))


def test_unreadable_files(tmp_path, tiny_dir):
    ckpt = copy_ckpt(tiny_dir, tmp_path / "ckpt")
    (ckpt / "model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(CheckpointError, match="is not a readable safetensors file"):
        load(ckpt)
    ckpt2 = copy_ckpt(tiny_dir, tmp_path / "ckpt2")
    (ckpt2 / "tokenizer.json").write_text("{")
    with pytest.raises(CheckpointError, match=r"cannot read .*tokenizer\.json"):
        load(ckpt2)
    ckpt3 = copy_ckpt(tiny_dir, tmp_path / "ckpt3")
    (ckpt3 / "config.json").write_text("{")
    with pytest.raises(CheckpointError, match="is not valid JSON"):
        load(ckpt3)


def fake_hub_cache(root: Path, tiny_dir: Path, repo: str = "nvidia/NV-Embed-v2") -> Path:
    """The Hugging Face cache layout: models--org--name/{snapshots/<commit>/..., refs/main}."""
    base = root / f"models--{repo.replace('/', '--')}"
    shutil.copytree(tiny_dir, base / "snapshots" / COMMIT)
    (base / "refs").mkdir()
    (base / "refs" / "main").write_text(COMMIT)
    return base / "snapshots" / COMMIT


def test_hub_id_resolves_through_the_cache_offline(tmp_path, tiny_dir, tiny_encoder, texts, monkeypatch):
    import huggingface_hub.constants

    snapshot = fake_hub_cache(tmp_path / "hub", tiny_dir)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    enc = load("nvidia/NV-Embed-v2")
    assert (enc.identity.name, enc.identity.revision) == ("nvidia/NV-Embed-v2", COMMIT)
    assert enc.folder == snapshot.resolve()
    np.testing.assert_array_equal(enc.encode(texts), tiny_encoder.encode(texts))
    pinned = load("nvidia/NV-Embed-v2", revision=COMMIT)
    assert pinned.identity.revision == COMMIT
    with pytest.raises(CheckpointError, match=r"'nvidia/NV-Embed-v1'.*could not be downloaded.*local folder"):
        load("nvidia/NV-Embed-v1")


def test_cache_snapshot_folder_keeps_its_id_and_commit(tmp_path, tiny_dir):
    snapshot = fake_hub_cache(tmp_path / "hub", tiny_dir, repo="nvidia/NV-Embed-v1")
    enc = load(snapshot)
    assert (enc.identity.name, enc.identity.revision) == ("nvidia/NV-Embed-v1", COMMIT)


def test_tiny_writer_refusals(tmp_path, tiny_dir):
    with pytest.raises(CheckpointError, match=r"no tokenizer.json in .*--tokenizer-dir"):
        write_tiny_checkpoint(tmp_path / "x", tokenizer_dir=tmp_path / "nowhere")
    with pytest.raises(CheckpointError, match="already exists and is not empty"):
        write_tiny_checkpoint(tiny_dir)
