"""The network on a tiny config (hidden 32, 2 layers): config parsing, shapes, kernels, layouts, knobs."""

from __future__ import annotations

import dataclasses
import importlib.util
import itertools
import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from nvembed_testlib import SHARED

from nvembed_eval.errors import ConfigError
from nvembed_eval.models.nvembed import modeling_nvembed as mn
from nvembed_eval.models.nvembed.configuration_nvembed import AttnImplementation, NVEmbedConfig, Pooling
from nvembed_eval.models.nvembed.tiny import build_random_model, tiny_config

OFFICIAL_CONFIG = SHARED / "reference" / "nv_embed_v2_checkpoint" / "config.json"
OFFICIAL_INDEX = SHARED / "reference" / "nv_embed_v2_checkpoint" / "model.safetensors.index.json"


def small_config(**knobs) -> NVEmbedConfig:
    cfg = tiny_config(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        intermediate_size=64,
        num_latents_value=8,
        num_cross_heads=2,
        cross_dim_head=24,  # inner width 48 != hidden: allowed (golden README item 9)
        vocab_size=100,
    )
    return dataclasses.replace(cfg, **knobs)


def batch(lengths=(7, 3, 5), prefix_len=2, vocab=100, seed=0):
    """Right-padded random inputs: (input_ids, attention_mask, pool_mask)."""
    gen = torch.Generator().manual_seed(seed)
    T = max(lengths)
    ids = torch.full((len(lengths), T), 2, dtype=torch.int64)
    am = torch.zeros_like(ids)
    for i, n in enumerate(lengths):
        ids[i, :n] = torch.randint(3, vocab, (n,), generator=gen)
        am[i, :n] = 1
    pm = am.clone()
    pm[:, :prefix_len] = 0
    return ids, am, pm


def run(cfg: NVEmbedConfig, *inputs, seed=0):
    model = build_random_model(cfg, seed)
    with torch.inference_mode():
        return model(*inputs)


def test_official_config_defaults():
    """The official v2 file gives latent_attention_config as {"model_type": ...}: NVIDIA's class defaults apply."""
    cfg = NVEmbedConfig.from_json_file(OFFICIAL_CONFIG)
    lat, text = cfg.latent_attention_config, cfg.text_config
    assert (lat.num_latents_value, lat.num_cross_heads, lat.cross_dim_head) == (512, 8, 4096)
    assert (lat.hidden_dim, lat.latent_dim, lat.output_normalize) == (4096, 4096, True)
    assert (text.hidden_size, text.num_hidden_layers, text.num_attention_heads, text.num_key_value_heads) == (
        4096,
        32,
        32,
        8,
    )
    assert (text.intermediate_size, text.rms_norm_eps, text.rope_theta, text.sliding_window) == (14336, 1e-5, 1e4, 4096)
    assert cfg.embed_dim == 4096 and cfg.is_mask_instruction


def test_module_names_equal_official_checkpoint_keys():
    """Built from the official config on the meta device, the state dict has exactly the checkpoint's keys."""
    cfg = NVEmbedConfig.from_json_file(OFFICIAL_CONFIG)
    with torch.device("meta"):
        model = mn.NVEmbedModel(cfg)
    official = set(json.loads(OFFICIAL_INDEX.read_text())["weight_map"])
    assert set(model.state_dict()) == official
    n_params = sum(p.numel() for p in model.parameters())
    assert 7.8e9 < n_params < 7.9e9  # 15.7 GB in fp16, as the index's total_size


def test_config_rejects_bad_values():
    cfg = small_config()
    with pytest.raises(ValueError, match=r"'avg' is not a valid Pooling"):  # the run's schema says it in one line
        dataclasses.replace(cfg, pooling="avg")
    with pytest.raises(ValueError, match=r"'spda' is not a valid AttnImplementation"):
        dataclasses.replace(cfg, attn_implementation="spda")
    bad = cfg.to_dict()
    bad["latent_attention_config"]["hidden_dim"] = 16
    with pytest.raises(ConfigError, match="must be equal"):
        NVEmbedConfig.from_dict(bad)
    with pytest.raises(ConfigError, match="text_config"):
        NVEmbedConfig.from_dict({"latent_attention_config": {}})


def test_config_round_trips_through_the_official_schema():
    cfg = small_config()
    again = NVEmbedConfig.from_dict(json.loads(json.dumps(cfg.to_dict())))
    assert again == cfg


def test_output_shapes_and_norms():
    ids, am, pm = batch()
    out = run(small_config(), ids, am, pm)
    assert out.embeddings.shape == out.pooled.shape == (3, 32)
    assert out.embeddings.dtype == torch.float32
    torch.testing.assert_close(out.embeddings.norm(dim=-1), torch.ones(3))
    torch.testing.assert_close(out.embeddings, F.normalize(out.pooled, dim=-1))


def test_pool_mask_excludes_only_pooling():
    """Masking a token from pooling changes the mean but not the other tokens' states (attention still sees it)."""
    cfg = small_config()
    model = build_random_model(cfg)
    ids, am, pm = batch()
    with torch.inference_mode():
        hidden = model.last_hidden_state(ids, am)
        states = model.latent_token_states(hidden)
        pooled = model(ids, am, pm).pooled
    expected = (states * pm[..., None]).sum(1) / pm.sum(1, keepdim=True)
    torch.testing.assert_close(pooled, expected, atol=1e-6, rtol=1e-6)


def test_kernels_agree_and_padding_is_invisible():
    cfg = small_config()
    ids, am, pm = batch()
    sdpa = run(cfg, ids, am, pm).embeddings
    eager = run(dataclasses.replace(cfg, attn_implementation="eager"), ids, am, pm).embeddings
    torch.testing.assert_close(sdpa, eager, atol=1e-6, rtol=0)
    # Extra right padding changes nothing.
    pad = torch.full((3, 4), 2)
    wider = run(cfg, torch.cat([ids, pad], 1), torch.cat([am, 0 * pad], 1), torch.cat([pm, 0 * pad], 1)).embeddings
    torch.testing.assert_close(sdpa, wider, atol=1e-6, rtol=0)


def assert_packed_kernel_matches_padded(attn_implementation: str, ids, am, pm) -> None:
    """Every pooling, bidirectional and causal: the packed kernel's embeddings equal padded SDPA's."""
    for pooling in Pooling:
        for bidirectional in (True, False):
            cfg = small_config(pooling=pooling, bidirectional=bidirectional)
            padded = run(cfg, ids, am, pm).embeddings
            packed = run(dataclasses.replace(cfg, attn_implementation=attn_implementation), ids, am, pm).embeddings
            torch.testing.assert_close(packed, padded, atol=1e-6, rtol=0)


def test_packed_layout_matches_padded(monkeypatch):
    """The flash-attn varlen layout (packed real tokens, cu_seqlens), driven by a pure-torch varlen kernel on CPU."""

    def varlen_reference(q, k, v, layout):
        out = torch.empty_like(q)
        bounds = layout.cu_seqlens.tolist()
        for start, stop in itertools.pairwise(bounds):
            qs, ks, vs = (t[:, start:stop] for t in (q, k, v))
            padded = mn.TokenLayout(mn.sdpa_attention, layout.position_ids, layout.causal)
            out[:, start:stop] = mn.sdpa_attention(qs, ks, vs, padded)
        return out

    monkeypatch.setitem(mn.ATTENTION_KERNELS, AttnImplementation.FLASH_ATTENTION_2, varlen_reference)
    ids, am, pm = batch()
    assert_packed_kernel_matches_padded("flash_attention_2", ids, am, pm)
    model = build_random_model(small_config(attn_implementation="flash_attention_2"))
    with torch.inference_mode():
        hidden = model.last_hidden_state(ids, am)
    assert hidden[~am.bool()].abs().max() == 0


def varlen_attn_stand_in(with_gqa_flag: bool):
    """torch.nn.attention.varlen.varlen_attn's contract in plain torch, for CPU: packed (N, H, d) inputs, per-sequence
    attention over cu_seq_q / cu_seq_k. Without the flag (torch < 2.12) it refuses fewer KV heads than query heads."""

    def attend(q, k, v, cu_q, cu_k, max_q, max_k, *, window_size=(-1, -1), enable_gqa=False):
        assert (q.shape[1] == k.shape[1]) or enable_gqa, "query and KV head counts differ without enable_gqa"
        assert int((cu_q[1:] - cu_q[:-1]).max()) == max_q and int((cu_k[1:] - cu_k[:-1]).max()) == max_k
        out = torch.empty_like(q)
        for (q0, q1), (k0, k1) in zip(
            itertools.pairwise(cu_q.tolist()), itertools.pairwise(cu_k.tolist()), strict=True
        ):
            qs, ks, vs = (t.transpose(0, 1) for t in (q[q0:q1], k[k0:k1], v[k0:k1]))  # (H, n, d)
            ks, vs = (t.repeat_interleave(qs.shape[0] // t.shape[0], dim=0) for t in (ks, vs))
            causal = tuple(window_size) == (-1, 0)
            out[q0:q1] = F.scaled_dot_product_attention(qs, ks, vs, is_causal=causal).transpose(0, 1)
        return out

    if with_gqa_flag:
        return attend

    def attend_without_flag(q, k, v, cu_q, cu_k, max_q, max_k, *, window_size=(-1, -1)):
        return attend(q, k, v, cu_q, cu_k, max_q, max_k, window_size=window_size)

    return attend_without_flag


@pytest.mark.skipif(
    importlib.util.find_spec("torch.nn.attention.varlen") is None,
    reason="torch.nn.attention.varlen arrived in torch 2.10 (CI runs 2.13; the encoder refuses varlen below 2.10)",
)
@pytest.mark.parametrize("with_gqa_flag", [True, False], ids=["torch>=2.12", "torch2.10-2.11"])
def test_torch_varlen_kernel_matches_padded(monkeypatch, with_gqa_flag):
    """attn_implementation=varlen (packed tokens, torch's varlen_attn) equals the padded SDPA path, with GQA passed
    as a flag or, on torch without it, folded into the query rows."""
    import torch.nn.attention.varlen as varlen

    monkeypatch.setattr(varlen, "varlen_attn", varlen_attn_stand_in(with_gqa_flag))
    mn._varlen_attn_parameters.cache_clear()
    try:
        assert_packed_kernel_matches_padded("varlen", *batch())
    finally:
        mn._varlen_attn_parameters.cache_clear()


def test_fused_projections_match_the_separate_linears():
    """q/k/v and gate/up as single GEMMs give the same embeddings; the weights are stored once (the separate
    Linears become views of the stack) and the state dict keeps the checkpoint's keys."""
    cfg = small_config()
    model = build_random_model(cfg)
    keys = set(model.state_dict())
    ids, am, pm = batch()
    with torch.inference_mode():
        separate = model(ids, am, pm).embeddings
        fused = model.fuse_projections()(ids, am, pm).embeddings
        again = model.fuse_projections(enabled=False)(ids, am, pm).embeddings
    torch.testing.assert_close(fused, separate, atol=1e-6, rtol=0)
    torch.testing.assert_close(again, separate, atol=0, rtol=0)
    assert set(model.state_dict()) == keys
    attn, mlp = model.embedding_model.layers[0].self_attn, model.embedding_model.layers[0].mlp
    assert attn.q_proj.weight.data_ptr() == attn.qkv_weight.data_ptr()
    assert attn.v_proj.weight.untyped_storage().data_ptr() == attn.qkv_weight.untyped_storage().data_ptr()
    assert mlp.up_proj.weight.untyped_storage().data_ptr() == mlp.gate_up_weight.untyped_storage().data_ptr()
    assert attn.qkv_weight.shape == (4 * 8 + 2 * 2 * 8, 32) and mlp.gate_up_weight.shape == (2 * 64, 32)


def test_token_chunking_changes_nothing(monkeypatch):
    cfg = small_config()
    ids, am, pm = batch(lengths=(9, 4))
    whole = run(cfg, ids, am, pm).embeddings
    monkeypatch.setattr(mn, "TOKEN_CHUNK", 5)
    chunked = run(cfg, ids, am, pm).embeddings
    torch.testing.assert_close(whole, chunked, atol=1e-6, rtol=0)


def test_knobs_change_the_output():
    ids, am, pm = batch()
    base = run(small_config(), ids, am, pm).embeddings
    for knobs in ({"pooling": "mean"}, {"pooling": "last_token"}, {"bidirectional": False}):
        other = run(small_config(**knobs), ids, am, pm).embeddings
        assert (other - base).abs().max() > 1e-3, knobs


def test_causal_sdpa_matches_causal_eager():
    cfg = small_config(bidirectional=False)
    ids, am, pm = batch()
    sdpa = run(cfg, ids, am, pm).embeddings
    eager = run(dataclasses.replace(cfg, attn_implementation="eager"), ids, am, pm).embeddings
    torch.testing.assert_close(sdpa, eager, atol=1e-6, rtol=0)


def test_last_token_pools_the_last_real_token():
    cfg = small_config(pooling="last_token")
    model = build_random_model(cfg)
    ids, am, pm = batch()
    with torch.inference_mode():
        hidden = model.last_hidden_state(ids, am)
        emb = model(ids, am, pm).embeddings
    last = am.sum(1) - 1
    np.testing.assert_allclose(emb, F.normalize(hidden[torch.arange(3), last], dim=-1), atol=1e-6)


def test_sliding_window_is_ignored():
    """NVIDIA's code ignores text_config.sliding_window (golden README item 11): any value gives the same output."""
    ids, am, pm = batch(lengths=(12, 5))
    cfg = small_config()
    outs = [
        run(dataclasses.replace(cfg, text_config=dataclasses.replace(cfg.text_config, sliding_window=w)), ids, am, pm)
        for w in (None, 2, 4096)
    ]
    for out in outs[1:]:
        torch.testing.assert_close(out.embeddings, outs[0].embeddings, atol=0, rtol=0)
