"""Encoding throughput: this implementation vs a reference-style path on the same weights and inputs, plus FLOPs.

Shared by `scripts/bench_encode.py` and `scripts/gpu_check.py`; not part of the installed package. Imports only
torch/numpy/tokenizers and this package.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import gzip
import json
import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from nvembed_eval.models.nvembed.configuration_nvembed import NVEmbedConfig
from nvembed_eval.models.nvembed.tiny import tiny_config

if TYPE_CHECKING:
    import torch

    from nvembed_eval.models.nvembed.modeling_nvembed import NVEmbedModel
    from nvembed_eval.models.nvembed.tokenization_nvembed import NVEmbedTokenizer

# Dense (no 2:4 sparsity) bf16 tensor-core peaks from NVIDIA's data sheets, in FLOP/s. The H200 has the H100 SXM's
# compute (only memory differs). Matched against torch.cuda.get_device_name(), most specific first.
PEAK_BF16 = (("H100 PCIe", 756e12), ("H100", 989.4e12), ("H200", 989.4e12), ("GH200", 989.4e12), ("A100", 312e12))


def peak_bf16_flops(device_name: str) -> float | None:
    for key, peak in PEAK_BF16:
        if key.lower() in device_name.lower():
            return peak
    return None


def bench_config() -> NVEmbedConfig:
    """The small CPU benchmark shape: hidden 256, 4 layers, GQA 8/2, and NV-Embed's latent block ratios
    (512 latents, 8 cross heads of width = hidden)."""
    return tiny_config(
        hidden_size=256,
        num_hidden_layers=4,
        num_attention_heads=8,
        num_key_value_heads=2,
        intermediate_size=896,
        num_latents_value=512,
        num_cross_heads=8,
        cross_dim_head=256,
    )


def load_corpus_texts(path: str | Path, limit: int | None = None) -> list[str]:
    """BEIR corpus rows as MTEB embeds them: (title + " " + text).strip(), in file order."""
    texts = []
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        for line in fh:
            row = json.loads(line)
            texts.append((row.get("title", "") + " " + row["text"]).strip())
            if limit is not None and len(texts) >= limit:
                break
    return texts


def flops_per_text(config: NVEmbedConfig, n_tokens: int, n_pooled: int) -> float:
    """Useful FLOPs to embed one text of `n_tokens` real tokens, `n_pooled` of them pooled (multiply-add = 2).

    Backbone, per token and layer: projections 2 * (D*H*d + 2*D*KV*d + H*d*D), MLP 2 * 3*D*F (F = intermediate
    size), attention 4 * T*H*d (QK^T and PV over all T keys: bidirectional, so no causal halving).
    Latent block, per pooled token: 2 * (D*C + C*D) projections with C = heads * cross_dim_head, 4 * n_latents*C
    attention, 2 * (D*8D + 4D*D) GEGLU FFN. Left out: norms, RoPE, element-wise ops, embedding lookup and the latents'
    K/V projection (done once per batch), all well under 1 % of the total. Padding is never counted.
    """
    text, lat = config.text_config, config.latent_attention_config
    D, F_, L = text.hidden_size, text.intermediate_size, text.num_hidden_layers
    H, KV, d = text.num_attention_heads, text.num_key_value_heads, text.attention_head_dim
    per_token = L * (2 * (D * H * d + 2 * D * KV * d + H * d * D) + 2 * 3 * D * F_ + 4 * n_tokens * H * d)
    C = lat.num_cross_heads * lat.cross_dim_head
    per_pooled = 2 * (D * C + C * D) + 4 * lat.num_latents_value * C + 2 * (D * 8 * D + 4 * D * D)
    return float(n_tokens * per_token + n_pooled * per_pooled)


def materialised_mask_sdpa(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, layout) -> torch.Tensor:
    """SDPA fed a materialised (B, 1, T, T) additive float mask: what NVIDIA's code actually ran (golden README)."""
    import torch
    import torch.nn.functional as F

    from nvembed_eval.models.nvembed.modeling_nvembed import repeat_kv

    q, k, v = (t.transpose(1, 2) for t in (q, k, v))
    k, v = repeat_kv(k, q.shape[1] // k.shape[1]), repeat_kv(v, q.shape[1] // v.shape[1])
    B, T = q.shape[0], q.shape[2]
    mask = torch.zeros(B, 1, T, T, dtype=q.dtype, device=q.device)
    if layout.key_padding_mask is not None:
        mask = mask.masked_fill(~layout.key_padding_mask[:, None, None, :], torch.finfo(q.dtype).min)
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask).transpose(1, 2)


@contextlib.contextmanager
def as_reference(model: NVEmbedModel) -> Iterator[NVEmbedModel]:
    """Run `model` as NVIDIA's code does for the duration: separate q/k/v and gate/up GEMMs, eager (uncompiled)
    layers. Restores the model's own settings afterwards."""
    backbone = model.embedding_model
    fused, runners = backbone.layers[0].self_attn.use_fused, (backbone.run_layer, model.run_latent)
    model.fuse_projections(enabled=False)
    model.compile_layers(enabled=False)
    try:
        yield model
    finally:
        backbone.run_layer, model.run_latent = runners
        model.fuse_projections(enabled=fused)


def reference_style_encode(
    model: NVEmbedModel,
    tokenizer: NVEmbedTokenizer,
    texts: Sequence[str],
    *,
    prefix: str = "",
    max_length: int = 32768,
    batch_size: int = 16,
    kernel: Callable | None = None,
) -> np.ndarray:
    """NVIDIA's encode loop, restated: input order, fixed batch size, pad to the longest text, attention with a
    materialised mask (eager softmax by default), the latent block at every position, masked mean, L2 norm."""
    import torch
    import torch.nn.functional as F

    from nvembed_eval.models.nvembed.modeling_nvembed import eager_attention

    device = next(model.parameters()).device
    out = []
    with torch.inference_mode(), as_reference(model):
        for start in range(0, len(texts), batch_size):
            batch = tokenizer(texts[start : start + batch_size], prefix, max_length)
            ids, am, pm = (
                torch.from_numpy(a).to(device) for a in (batch.input_ids, batch.attention_mask, batch.pool_mask)
            )
            layout = model.token_layout(am)
            layout.kernel = kernel or eager_attention
            layout.key_padding_mask = am.bool()  # always a mask, as the reference always builds one
            states = model.latent_token_states(model.embedding_model(ids, layout))  # (B, T, D) incl. padding
            mask = pm[..., None].to(states.dtype)
            pooled = (states * mask).sum(1).float() / mask.sum(1).float()
            out.append(F.normalize(pooled, p=2, dim=-1).cpu().numpy())
    return np.concatenate(out)


@dataclass
class BenchResult:
    name: str
    texts: int
    tokens: int
    seconds: float
    tflops: float  # achieved useful TFLOP/s
    roofline_pct: float | None
    peak_memory_gib: float | None

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.seconds


def _sync(device: torch.device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


@contextlib.contextmanager
def _peak_memory(device: torch.device) -> Iterator[list[float | None]]:
    import torch

    box: list[float | None] = [None]
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    yield box
    if device.type == "cuda":
        box[0] = torch.cuda.max_memory_allocated(device) / 2**30


def measure(
    name: str,
    fn: Callable[[], np.ndarray],
    *,
    device: torch.device,
    n_texts: int,
    tokens: int,
    flops: float,
    peak: float | None,
) -> tuple[BenchResult, np.ndarray]:
    """Time one full encode call (tokenization included) and derive throughput figures."""
    _sync(device)
    with _peak_memory(device) as mem:
        start = time.perf_counter()
        result = fn()
        _sync(device)
        seconds = time.perf_counter() - start
    achieved = flops / seconds
    pct = 100 * achieved / peak if peak else None
    return BenchResult(name, n_texts, tokens, seconds, achieved / 1e12, pct, mem[0]), result


def workload(config: NVEmbedConfig, tokenizer: NVEmbedTokenizer, texts, prefix: str, max_length: int):
    """(real tokens, useful FLOPs) to embed `texts`, with NVIDIA's truncation and instruction masking."""
    ids = tokenizer.token_ids(texts, prefix, max_length)
    n_instr = tokenizer.instruction_length(prefix)
    flops = sum(flops_per_text(config, len(r), max(0, len(r) - n_instr)) for r in ids)
    return sum(len(r) for r in ids), flops


REFERENCE_KERNELS = {"eager": "reference (eager, padded, input order)", "sdpa_mask": "reference (sdpa + 4D mask)"}


def parse_variant(variant: str) -> tuple[str, bool]:
    """ "sdpa", "varlen+compile", ... -> (attn_implementation, compile)."""
    attn, _, extra = variant.partition("+")
    if extra not in ("", "compile"):
        raise ValueError(f"benchmark variant {variant!r}: expected <attn_implementation>[+compile]")
    return attn, extra == "compile"


@contextlib.contextmanager
def as_variant(model: NVEmbedModel, variant: str) -> Iterator[NVEmbedModel]:
    """Run `model` with a variant's attention kernel and compile setting; eager sdpa again afterwards."""
    attn, compiled = parse_variant(variant)
    with_attention(model, attn)
    model.compile_layers(enabled=compiled)
    try:
        yield model
    finally:
        with_attention(model, "sdpa")
        model.compile_layers(enabled=False)


def variant_row_prefix(variant: str) -> str:
    """How `compare_paths` names this variant's row, up to the token budget (unique among variants)."""
    attn, compiled = parse_variant(variant)
    return f"ours ({attn}{', compiled' if compiled else ''}, sorted,"


def compare_paths(
    model: NVEmbedModel,
    tokenizer: NVEmbedTokenizer,
    texts: Sequence[str],
    *,
    prefix: str = "",
    max_length: int = 32768,
    batch_size: int = 1024,
    ref_batch_size: int = 16,
    token_budget: int | None = None,
    variants: Sequence[str] = ("sdpa",),
    reference_kernels: Sequence[str] = ("eager",),
    warmup: int = 8,
    on_error: Callable[[str, Exception], None] | None = None,
) -> tuple[list[BenchResult], dict[str, float]]:
    """Encode `texts` with each variant of this implementation and with the reference-style path(s).

    Args:
        variants: "<attn_implementation>[+compile]" each, e.g. "sdpa", "varlen", "sdpa+compile". The first is the
            baseline of the returned differences. A compiled variant gets one untimed pass over all of `texts` first,
            so compilation (one per new shape class) is not timed.
        reference_kernels: "eager" and/or "sdpa_mask" (REFERENCE_KERNELS).
        on_error: called with a path's row name and its exception instead of raising; that row is then left out.

    Returns:
        The result rows (variants in order, then references) and the max abs difference of each other row's
        embeddings to the first row's.
    """
    import torch

    from nvembed_eval.models.nvembed.encoder_nvembed import NVEmbedEncoder

    device = next(model.parameters()).device
    peak = peak_bf16_flops(torch.cuda.get_device_name(device)) if device.type == "cuda" else None
    encoder = NVEmbedEncoder.from_model(model, tokenizer, max_length=max_length, token_budget=token_budget)
    tokens, flops = workload(model.config, tokenizer, texts, prefix, max_length)
    budget = encoder.token_budget

    def ours(subset: Sequence[str]) -> np.ndarray:
        return encoder.encode(subset, prefix=prefix, batch_size=batch_size)

    def reference(kernel: Callable | None) -> Callable[[Sequence[str]], np.ndarray]:
        return functools.partial(
            reference_style_encode, model, tokenizer,
            prefix=prefix, max_length=max_length, batch_size=ref_batch_size, kernel=kernel,
        )  # fmt: skip

    paths = [(f"{variant_row_prefix(v)} token budget {budget})", v, ours) for v in variants]  # (row, variant, run)
    kernels = {"eager": None, "sdpa_mask": materialised_mask_sdpa}
    paths += [(REFERENCE_KERNELS[key], "sdpa", reference(kernels[key])) for key in reference_kernels]

    rows, outputs = [], []
    for name, variant, run in paths:
        try:
            with as_variant(model, variant):
                if warmup:
                    run(list(texts) if parse_variant(variant)[1] else list(texts[:warmup]))
                row, out = measure(
                    name, lambda run=run: run(texts), device=device, n_texts=len(texts), tokens=tokens, flops=flops,
                    peak=peak,
                )  # fmt: skip
        except Exception as exc:
            if on_error is None:
                raise
            on_error(name, exc)
            continue
        rows.append(row)
        outputs.append(out)
    diffs = {row.name: max_abs_diff(outputs[0], out) for row, out in zip(rows[1:], outputs[1:], strict=True)}
    return rows, diffs


def format_table(rows: list[BenchResult], baseline: BenchResult | None = None) -> str:
    """A Markdown table of benchmark rows, with the speed-up over `baseline`."""
    lines = [
        "| path | texts | tokens | seconds | tokens/s | TFLOP/s | % bf16 roofline | peak GiB | vs reference |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        ratio = f"{r.tokens_per_s / baseline.tokens_per_s:.2f}x" if baseline else ""
        pct = f"{r.roofline_pct:.1f}" if r.roofline_pct is not None else "n/a"
        mem = f"{r.peak_memory_gib:.1f}" if r.peak_memory_gib is not None else "n/a"
        lines.append(
            f"| {r.name} | {r.texts} | {r.tokens} | {r.seconds:.2f} | {r.tokens_per_s:,.0f} | {r.tflops:.3g} | {pct} "
            f"| {mem} | {ratio} |"
        )
    return "\n".join(lines)


def with_attention(model: NVEmbedModel, implementation: str) -> NVEmbedModel:
    """Switch the backbone kernel of `model` in place (weights untouched) and return it."""
    model.config = dataclasses.replace(model.config, attn_implementation=implementation)
    return model


def max_abs_diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(a - b))) if a.size else 0.0


def min_cosine(a: np.ndarray, b: np.ndarray) -> float:
    cos = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    return float(cos.min()) if cos.size else math.nan
