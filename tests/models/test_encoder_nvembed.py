"""NVEmbedEncoder: batching, order, invariance, identity, knobs and bad input, on a tiny random checkpoint."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from nvembed_testlib import NQ_PREFIX, REPO

from nvembed_eval.errors import CheckpointError, ConfigError, EncodingError
from nvembed_eval.models.base import TextEncoder
from nvembed_eval.models.nvembed import loading
from nvembed_eval.models.nvembed.encoder_nvembed import NVEmbedEncoder, plan_batches


def test_implements_the_project_protocol(tiny_encoder):
    assert isinstance(tiny_encoder, TextEncoder)
    assert tiny_encoder.embed_dim == 64
    assert tiny_encoder.max_tokens == 512
    assert tiny_encoder.instruction_template() == "Instruct: {instruction}\nQuery: "
    ident = tiny_encoder.identity
    assert ident.name == "local/nv_embed_tiny"
    assert ident.revision.startswith("sha256:") and len(ident.revision) == len("sha256:") + 16
    assert ident.knobs == {
        "dtype": "float32",
        "max_length": 512,
        "pooling": "latent",
        "mask_instruction": True,
        "bidirectional": True,
    }


def test_output_rows_follow_input_order(tiny_encoder, texts):
    emb = tiny_encoder.encode(texts, prefix=NQ_PREFIX)
    assert emb.shape == (len(texts), 64) and emb.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    order = np.random.default_rng(0).permutation(len(texts))
    shuffled = tiny_encoder.encode([texts[i] for i in order], prefix=NQ_PREFIX)
    np.testing.assert_allclose(shuffled, emb[order], atol=1e-5, rtol=0)


def test_batch_invariance(tiny_encoder, texts):
    """A text alone and inside any batch (other sizes, other budgets, other neighbours) gives the same vector."""
    alone = np.concatenate([tiny_encoder.encode([t], prefix=NQ_PREFIX) for t in texts])
    for batch_size in (1, 2, 3, 32):
        together = tiny_encoder.encode(texts, prefix=NQ_PREFIX, batch_size=batch_size)
        assert np.abs(together - alone).max() <= 1e-5, batch_size
    budget_before = tiny_encoder.token_budget
    try:
        tiny_encoder.token_budget = 40
        assert np.abs(tiny_encoder.encode(texts * 2, prefix=NQ_PREFIX)[: len(texts)] - alone).max() <= 1e-5
    finally:
        tiny_encoder.token_budget = budget_before


def test_plan_batches_sorts_and_respects_budget():
    lengths = [5, 50, 7, 50, 1, 300, 20, 20, 20]
    batches = plan_batches(lengths, max_texts=3, token_budget=100)
    flat = np.concatenate(batches)
    assert sorted(flat.tolist()) == list(range(len(lengths)))  # each text exactly once
    assert [lengths[i] for i in flat] == sorted(lengths, reverse=True)  # longest first
    assert flat[:3].tolist() == [5, 1, 3]  # ties keep input order
    for b in batches:
        longest = max(lengths[i] for i in b)
        assert len(b) <= 3
        assert len(b) * longest <= 100 or len(b) == 1  # a text over the budget runs alone
    assert [b.tolist() for b in plan_batches(lengths, 3, 100)] == [b.tolist() for b in batches]  # deterministic


def test_token_budget_splits_batches_and_stats_count_tokens(tiny_dir, texts):
    enc = NVEmbedEncoder(str(tiny_dir), device="cpu", max_length=512, token_budget=32, progress=False)
    enc.encode(texts, prefix="")
    lengths = [len(r) for r in enc.tokenizer.token_ids(texts, "", 512)]
    assert enc.stats["texts"] == len(texts)
    assert enc.stats["tokens"] == sum(lengths)
    assert enc.stats["batches"] == len(plan_batches(lengths, 32, 32)) > 1
    assert enc.stats["padded_tokens"] >= enc.stats["tokens"]
    assert enc.encode([], prefix="").shape == (0, 64)


@pytest.mark.parametrize(
    "knobs",
    [{"pooling": "mean"}, {"pooling": "last_token"}, {"mask_instruction": False}, {"bidirectional": False}],
    ids=lambda k: "-".join(f"{a}={b}" for a, b in k.items()),
)
def test_ablation_knobs_change_output_and_identity(tiny_dir, tiny_encoder, texts, knobs):
    enc = NVEmbedEncoder(str(tiny_dir), device="cpu", max_length=512, progress=False, **knobs)
    base = tiny_encoder.encode(texts, prefix=NQ_PREFIX)
    other = enc.encode(texts, prefix=NQ_PREFIX)
    assert np.abs(other - base).max() > 1e-3
    np.testing.assert_allclose(np.linalg.norm(other, axis=1), 1.0, atol=1e-5)
    assert enc.identity.key() != tiny_encoder.identity.key()
    for key, value in knobs.items():
        assert enc.identity.knobs[key] == value


def test_mask_instruction_false_pools_the_instruction(tiny_dir):
    enc = NVEmbedEncoder(str(tiny_dir), device="cpu", max_length=512, mask_instruction=False, progress=False)
    batch = enc.tokenize(["hello"], NQ_PREFIX)
    np.testing.assert_array_equal(batch.pool_mask, batch.attention_mask)
    # With the instruction pooled, a prefix longer than max_length is no longer degenerate.
    short = NVEmbedEncoder(str(tiny_dir), device="cpu", max_length=8, mask_instruction=False, progress=False)
    assert np.isfinite(short.encode(["hello"], prefix=NQ_PREFIX)).all()


def test_non_finite_embedding_names_the_input(tiny_encoder, texts, monkeypatch):
    original = tiny_encoder._forward
    target = texts[3]

    def poisoned(batch):
        out = original(batch)
        target_ids = tiny_encoder.tokenizer.token_ids([target], "", 512)[0].tolist()
        for row, ids in enumerate(batch.input_ids):
            if ids[: len(target_ids)].tolist() == target_ids and batch.attention_mask[row].sum() == len(target_ids):
                out[row, 0] = np.nan
        return out

    monkeypatch.setattr(tiny_encoder, "_forward", poisoned)
    with pytest.raises(EncodingError, match=r"embedding of input 3 is not finite.*model.dtype=float32"):
        tiny_encoder.encode(texts, batch_size=2)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"pooling": "avg"}, "<model.pooling=avg> is not one of: latent, mean, last_token"),
        ({"attn_implementation": "flash"}, "<model.attn_implementation=flash> is not one of: sdpa, eager, flash_"),
        ({"dtype": "float8"}, "<model.dtype=float8> is not one of: auto, float32, bfloat16, float16"),
        ({"max_length": 0}, "<model.max_length=0> must be a positive integer, e.g. 32"),
        ({"token_budget": -5}, "<model.token_budget=-5> must be a positive integer or null, e.g. 32"),
        ({"bidirectional": "yes"}, "<model.bidirectional=yes> must be true or false"),
        ({"compile": "yes"}, "<model.compile=yes> must be true or false"),
        ({"path": 7}, "<model.path=7> must be text (a name, path or revision)"),
        ({"poolng": "mean"}, "has no knob <model.poolng>; its knobs are: allow_pickle, attn_implementation"),
    ],
)
def test_knob_values_are_checked_against_the_constructor_signature(kwargs, message):
    """The run's schema checks each knob by the adapter's own parameter types (config keys = parameters)."""
    from nvembed_eval.config import check_model

    model = {"_target_": "nvembed_eval.models.nvembed.encoder_nvembed.NVEmbedEncoder", "path": "x", "name": "x"}
    with pytest.raises(ConfigError) as info:
        check_model({**model, **kwargs})
    assert message in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"device": "cuda:0"}, r"CUDA is not available here"),
        ({"device": "tpu!"}, r"is not a torch device"),
        ({"attn_implementation": "flash_attention_2"}, r"needs a CUDA device"),
        ({"attn_implementation": "varlen"}, r"<model.attn_implementation=varlen> needs a CUDA device"),
    ],
)
def test_knob_values_the_machine_cannot_run(tiny_dir, kwargs, pattern):
    if kwargs.get("device", "").startswith("cuda") and torch.cuda.is_available():
        pytest.skip("a CUDA device is present")
    with pytest.raises(ConfigError, match=pattern):
        NVEmbedEncoder(str(tiny_dir), progress=False, **{"device": "cpu", **kwargs})


@pytest.mark.parametrize(
    ("attn", "missing", "pattern"),
    [
        ("varlen", "torch.nn.attention.varlen", r"varlen> needs torch >= 2\.10 .*found torch .*use model\.attn_impl"),
        ("flash_attention_2", "flash_attn", r"flash-attn is not installed; install the `gpu` extra"),
    ],
)
def test_packed_kernel_without_its_library_on_a_cuda_device(monkeypatch, attn, missing, pattern):
    """On a CUDA device in bf16 the remaining check is the kernel's library: a torch without
    torch.nn.attention.varlen (< 2.10) or a missing flash-attn is named, with the way out."""
    import importlib.util

    from nvembed_eval.models.nvembed.configuration_nvembed import AttnImplementation
    from nvembed_eval.models.nvembed.encoder_nvembed import _check_packed_kernel

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == missing else real(name, *a))
    with pytest.raises(ConfigError, match=pattern):
        _check_packed_kernel(AttnImplementation(attn), torch.device("cuda"), torch.bfloat16)


def test_dtype_the_device_cannot_run(tiny_dir, monkeypatch):
    def refuse(dtype, device):
        raise RuntimeError(f'"addmm_impl_cpu_" not implemented for {dtype}')

    monkeypatch.setattr(loading, "_probe", refuse)
    with pytest.raises(ConfigError, match=r"<model.dtype=float16> cannot run on cpu .*use model.dtype=float32"):
        NVEmbedEncoder(str(tiny_dir), device="cpu", dtype="float16", progress=False)


def test_bfloat16_on_cpu_runs_close_to_float32(tiny_dir, tiny_encoder, texts):
    enc = NVEmbedEncoder(str(tiny_dir), device="cpu", dtype="bfloat16", max_length=512, progress=False)
    assert enc.identity.knobs["dtype"] == "bfloat16"
    cos = (enc.encode(texts) * tiny_encoder.encode(texts)).sum(1)
    assert cos.min() > 0.99


def test_missing_tiny_checkpoint_is_written_only_when_asked(tmp_path, golden_dir, monkeypatch):
    monkeypatch.setenv("NVEMBED_SHARED", str(golden_dir.parents[1]))
    with pytest.raises(CheckpointError, match="neither a checkpoint folder nor a hub id"):
        NVEmbedEncoder(str(tmp_path / "absent"), device="cpu", progress=False)
    enc = NVEmbedEncoder(str(tmp_path / "absent"), device="cpu", create_tiny_if_missing=True, progress=False)
    assert (tmp_path / "absent" / "model.safetensors").is_file()
    assert enc.encode(["x"]).shape == (1, 64)


def test_hydra_model_configs_match_the_constructor(tmp_path, golden_dir, monkeypatch):
    import inspect

    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    params = set(inspect.signature(NVEmbedEncoder.__init__).parameters) - {"self"}
    for name in ("nv_embed_v2", "nv_embed_v1", "nv_embed_tiny"):
        cfg = OmegaConf.load(REPO / "conf" / "model" / f"{name}.yaml")
        assert cfg._target_ == "nvembed_eval.models.nvembed.encoder_nvembed.NVEmbedEncoder"
        assert set(cfg) - {"_target_"} == params, name
    monkeypatch.setenv("NVEMBED_TINY_CHECKPOINT", str(tmp_path / "tiny"))
    monkeypatch.setenv("NVEMBED_SHARED", str(golden_dir.parents[1]))
    root = OmegaConf.create({"device": "cpu", "model": OmegaConf.load(REPO / "conf/model/nv_embed_tiny.yaml")})
    enc = instantiate(root.model, _convert_="all")
    assert enc.identity.name == "nvembed-eval/NV-Embed-tiny"
    assert enc.folder == (tmp_path / "tiny").resolve()
