"""The NV-Embed network: a bidirectional Mistral backbone, then latent-attention pooling. Written from the NV-Embed
paper (arXiv:2405.17428, section 3) and the golden set's README (`../shared/golden/nvembed-tiny/README.md`, items
8-11); the backbone keeps transformers' Mistral submodule names so the official checkpoint keys load unchanged."""

from __future__ import annotations

import functools
import inspect
import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.attention import SDPBackend, sdpa_kernel

from .configuration_nvembed import AttnImplementation, NVEmbedConfig, Pooling

# Token-wise blocks (backbone MLP, latent-attention block) run over at most this many tokens at a time, so a 32k-token
# text never materialises a (32k, 14336) or (32k, 8 * 4096) activation. Per-token math is unchanged; peak memory drops.
TOKEN_CHUNK = 32768

# SDPA backends for the backbone, cuDNN left out: it builds an execution plan for every new (B, T) shape, and
# length-sorted batches change shape every batch; on an H200 that cost ~20 % of encode time (docs/performance.md).
SDPA_BACKENDS = [SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION, SDPBackend.MATH]


@dataclass
class TokenLayout:
    """Where a batch's tokens sit and what attention may see. Padded: activations (B, T, D), `key_padding_mask` (B, T)
    True at real tokens (None if nothing is padded). Packed (varlen kernels): activations (1, N, D) of the N real
    tokens, `cu_seqlens` (B + 1,) int32 marks where each sequence starts."""

    kernel: Callable[[Tensor, Tensor, Tensor, TokenLayout], Tensor]
    position_ids: Tensor  # (B, T) or (1, N)
    causal: bool
    key_padding_mask: Tensor | None = None
    cu_seqlens: Tensor | None = None
    max_seqlen: int = 0


def repeat_kv(x: Tensor, n_rep: int) -> Tensor:
    """(B, KVH, T, d) -> (B, KVH * n_rep, T, d); query head i reads KV head i // n_rep (Mistral GQA)."""
    return x if n_rep == 1 else x.repeat_interleave(n_rep, dim=1)


def sdpa_attention(q: Tensor, k: Tensor, v: Tensor, layout: TokenLayout) -> Tensor:
    """torch SDPA, q (B, T, H, d), k/v (B, T, KVH, d) -> (B, T, H, d); the padding mask is a broadcast (B, 1, 1, T)
    boolean, never a materialised (B, 1, T, T) float mask. Bidirectional GQA without copying K/V: the `rep` query heads
    sharing a KV head are stacked along the query axis, (B, KVH, rep * T, d), exact as no mask depends on the query."""
    B, T, H, d = q.shape
    kvh = k.shape[2]
    k, v = k.transpose(1, 2), v.transpose(1, 2)  # (B, KVH, T, d)
    if layout.causal:  # ablation only: with right padding, is_causal alone is exact (real queries see real keys)
        q = q.transpose(1, 2)
        k, v = repeat_kv(k, H // kvh), repeat_kv(v, H // kvh)
        with sdpa_kernel(SDPA_BACKENDS):
            return F.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(1, 2)
    q = q.view(B, T, kvh, H // kvh, d).permute(0, 2, 3, 1, 4).reshape(B, kvh, H // kvh * T, d)  # (B, KVH, rep*T, d)
    # NV-Embed: bidirectional, so the only mask is key padding (no causal mask, no sliding window).
    mask = None if layout.key_padding_mask is None else layout.key_padding_mask[:, None, None, :]  # (B, 1, 1, T)
    with sdpa_kernel(SDPA_BACKENDS):
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)  # (B, KVH, rep*T, d)
    return out.view(B, kvh, H // kvh, T, d).permute(0, 3, 1, 2, 4).reshape(B, T, H, d)


def eager_attention(q: Tensor, k: Tensor, v: Tensor, layout: TokenLayout) -> Tensor:
    """Explicit softmax(QK^T / sqrt(d) + mask) V with a materialised additive mask: the reference-style path."""
    q, k, v = (t.transpose(1, 2) for t in (q, k, v))  # (B, H, T, d)
    k, v = repeat_kv(k, q.shape[1] // k.shape[1]), repeat_kv(v, q.shape[1] // v.shape[1])
    B, _, T, d = q.shape
    scores = torch.matmul(q, k.transpose(2, 3)) / math.sqrt(d)  # (B, H, T, T)
    blocked = torch.zeros(B, 1, T, T, dtype=torch.bool, device=q.device)
    if layout.key_padding_mask is not None:
        blocked |= ~layout.key_padding_mask[:, None, None, :]
    if layout.causal:
        blocked |= torch.ones(T, T, dtype=torch.bool, device=q.device).triu(1)
    bias = torch.zeros(B, 1, T, T, dtype=scores.dtype, device=q.device).masked_fill(blocked, torch.finfo(q.dtype).min)
    probs = torch.softmax((scores + bias).float(), dim=-1).to(q.dtype)  # fp32 softmax, as Mistral's eager path
    return torch.matmul(probs, v).transpose(1, 2)


def flash_attention_2(q: Tensor, k: Tensor, v: Tensor, layout: TokenLayout) -> Tensor:
    """flash-attn varlen over packed tokens: no compute on padding. q (1, N, H, d), k/v (1, N, KVH, d)."""
    from flash_attn import flash_attn_varlen_func  # optional `gpu` extra; the encoder checks it is importable

    out = flash_attn_varlen_func(
        q[0], k[0], v[0],
        cu_seqlens_q=layout.cu_seqlens, cu_seqlens_k=layout.cu_seqlens,
        max_seqlen_q=layout.max_seqlen, max_seqlen_k=layout.max_seqlen,
        causal=layout.causal,
    )  # fmt: skip
    return out[None]


@functools.cache
def _varlen_attn_parameters() -> frozenset[str]:
    from torch.nn.attention.varlen import varlen_attn

    return frozenset(inspect.signature(varlen_attn).parameters)


def varlen_attention(q: Tensor, k: Tensor, v: Tensor, layout: TokenLayout) -> Tensor:
    """torch's varlen_attn (FlashAttention-2 in torch >= 2.10) over packed tokens, q (1, N, H, d), k/v (1, N, KVH, d)
    -> (1, N, H, d). torch 2.12 added `enable_gqa`; before, the `rep` query heads sharing a KV head become `rep`
    consecutive query rows of it (cu_seqlens scaled by `rep`): exact, as no mask depends on the query; no K/V copy."""
    from torch.nn.attention.varlen import varlen_attn

    q, k, v = q[0], k[0], v[0]
    N, H, d = q.shape
    kvh = k.shape[1]
    rep = H // kvh
    accepted = _varlen_attn_parameters()
    options: dict[str, object] = {}
    if layout.causal:  # ablation only
        options = {"window_size": (-1, 0)} if "window_size" in accepted else {"is_causal": True}
    cu, longest = layout.cu_seqlens, layout.max_seqlen
    if rep > 1 and "enable_gqa" in accepted:
        options["enable_gqa"] = True
    elif rep > 1 and layout.causal:
        k, v = k.repeat_interleave(rep, dim=1), v.repeat_interleave(rep, dim=1)
    elif rep > 1:
        folded = q.view(N, kvh, rep, d).transpose(1, 2).reshape(N * rep, kvh, d)  # row t*rep + r: head g*rep + r
        out = varlen_attn(folded, k, v, cu * rep, cu, longest * rep, longest, **options)
        return out.view(N, rep, kvh, d).transpose(1, 2).reshape(1, N, H, d)
    return varlen_attn(q, k, v, cu, cu, longest, longest, **options)[None]


ATTENTION_KERNELS: dict[AttnImplementation, Callable[[Tensor, Tensor, Tensor, TokenLayout], Tensor]] = {
    AttnImplementation.SDPA: sdpa_attention,
    AttnImplementation.EAGER: eager_attention,
    AttnImplementation.FLASH_ATTENTION_2: flash_attention_2,
    AttnImplementation.VARLEN: varlen_attention,
}


class NVEmbedRMSNorm(nn.Module):
    """x / sqrt(mean(x^2) + eps) * weight, statistics in fp32 (torch's rms_norm)."""

    def __init__(self, hidden_size: int, eps: float):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(hidden_size))
        self.eps = eps

    def forward(self, x: Tensor) -> Tensor:
        # Mistral rounds to the model dtype before the weight multiply; rms_norm rounds once, after it. Identical
        # in float32; in bf16 it differs by one rounding, far inside the bf16-vs-fp32 gap (golden README: 5e-3).
        return F.rms_norm(x, (x.shape[-1],), self.weight, self.eps)


class NVEmbedRotaryEmbedding(nn.Module):
    """cos/sin tables of rotate-half RoPE, built in fp32 per call. No buffers, so meta-device construction is free."""

    def __init__(self, config: NVEmbedConfig):
        super().__init__()
        self.dim = config.text_config.attention_head_dim
        self.base = config.text_config.rope_theta

    def forward(self, position_ids: Tensor, dtype: torch.dtype) -> tuple[Tensor, Tensor]:
        """Returns cos (B, T, d) and sin (B, T, d) with its first half negated (see `apply_rotary`)."""
        exponents = torch.arange(0, self.dim, 2, dtype=torch.int64, device=position_ids.device).float() / self.dim
        inv_freq = 1.0 / (self.base**exponents)  # (d/2,)
        freqs = position_ids[..., None].float() * inv_freq  # (B, T, d/2)
        emb = torch.cat((freqs, freqs), dim=-1)  # (B, T, d): rotate-half pairs i with i + d/2, not interleaved
        sin = emb.sin()
        sin[..., : self.dim // 2].neg_()
        return emb.cos().to(dtype), sin.to(dtype)


def apply_rotary(x: Tensor, cos: Tensor, signed_sin: Tensor) -> Tensor:
    """x * cos + rotate_half(x) * sin, x (B, T, H, d). rotate_half(x) = (-x2, x1) = roll(x, d/2) with the first half
    negated; that sign lives in `signed_sin`, so the rotation costs one roll instead of a chunk, a neg and a cat."""
    rolled = torch.roll(x, x.shape[-1] // 2, dims=-1)
    return torch.addcmul(x * cos[:, :, None, :], rolled, signed_sin[:, :, None, :])


def fuse_linears(linears: list[nn.Linear]) -> Tensor:
    """Concatenate bias-free Linear weights along the output axis into one (sum(out), in) tensor, and re-point each
    Linear's weight at its rows of it: one GEMM can then replace several, with no second copy of the weights."""
    fused = torch.cat([linear.weight.detach() for linear in linears])
    start = 0
    for linear in linears:
        rows = linear.weight.shape[0]
        linear.weight = nn.Parameter(fused[start : start + rows], requires_grad=False)  # a view; same values
        start += rows
    return fused


class NVEmbedAttention(nn.Module):
    """Grouped-query self-attention projections (NV-Embed: bidirectional, padding mask only, no sliding window); the
    decoder layer calls `project`, then the kernel, then `o_proj`."""

    def __init__(self, config: NVEmbedConfig):
        super().__init__()
        text = config.text_config
        self.num_heads = text.num_attention_heads
        self.num_kv_heads = text.num_key_value_heads
        self.head_dim = text.attention_head_dim
        self.q_proj = nn.Linear(text.hidden_size, self.num_heads * self.head_dim, bias=False)
        self.k_proj = nn.Linear(text.hidden_size, self.num_kv_heads * self.head_dim, bias=False)
        self.v_proj = nn.Linear(text.hidden_size, self.num_kv_heads * self.head_dim, bias=False)
        self.o_proj = nn.Linear(self.num_heads * self.head_dim, text.hidden_size, bias=False)
        self.qkv_weight: Tensor | None = None  # q, k, v weights stacked, set by NVEmbedModel.fuse_projections
        self.use_fused = False

    def fuse(self) -> None:
        if self.qkv_weight is None:  # not a registered buffer: the checkpoint keys stay q_proj/k_proj/v_proj
            self.qkv_weight = fuse_linears([self.q_proj, self.k_proj, self.v_proj])

    def project(self, x: Tensor, cos: Tensor, sin: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """x (B, T, D) -> q (B, T, H, d) and k, v (B, T, KVH, d), RoPE applied to q and k."""
        B, T, _ = x.shape
        if self.use_fused and self.qkv_weight is not None:  # one GEMM; q, k, v are column blocks of its output
            q, k, v = F.linear(x, self.qkv_weight).split(
                [self.num_heads * self.head_dim, *2 * [self.num_kv_heads * self.head_dim]], dim=-1
            )
        else:
            q, k, v = self.q_proj(x), self.k_proj(x), self.v_proj(x)
        q = q.view(B, T, self.num_heads, self.head_dim)
        k = k.view(B, T, self.num_kv_heads, self.head_dim)
        v = v.view(B, T, self.num_kv_heads, self.head_dim)
        return apply_rotary(q, cos, sin), apply_rotary(k, cos, sin), v


class NVEmbedMLP(nn.Module):
    """SiLU-gated MLP: down(silu(gate(x)) * up(x))."""

    def __init__(self, config: NVEmbedConfig):
        super().__init__()
        text = config.text_config
        self.gate_proj = nn.Linear(text.hidden_size, text.intermediate_size, bias=False)
        self.up_proj = nn.Linear(text.hidden_size, text.intermediate_size, bias=False)
        self.down_proj = nn.Linear(text.intermediate_size, text.hidden_size, bias=False)
        self.gate_up_weight: Tensor | None = None  # gate and up weights stacked, set by NVEmbedModel.fuse_projections
        self.use_fused = False

    def fuse(self) -> None:
        if self.gate_up_weight is None:
            self.gate_up_weight = fuse_linears([self.gate_proj, self.up_proj])

    def gated(self, x: Tensor) -> Tensor:
        """silu(gate(x)) * up(x), (N, D) -> (N, F)."""
        if self.use_fused and self.gate_up_weight is not None:  # one GEMM, then the two halves of its output
            gate, up = F.linear(x, self.gate_up_weight).chunk(2, dim=-1)
            return F.silu(gate) * up
        return F.silu(self.gate_proj(x)) * self.up_proj(x)

    def forward(self, x: Tensor) -> Tensor:
        flat = x.reshape(-1, x.shape[-1])  # (B*T, D)
        out = [self.down_proj(self.gated(c)) for c in flat.split(TOKEN_CHUNK)]
        return (out[0] if len(out) == 1 else torch.cat(out)).view_as(x)


class NVEmbedDecoderLayer(nn.Module):
    """Pre-norm transformer block: x + attn(norm(x)), then x + mlp(norm(x))."""

    def __init__(self, config: NVEmbedConfig):
        super().__init__()
        eps = config.text_config.rms_norm_eps
        self.self_attn = NVEmbedAttention(config)
        self.mlp = NVEmbedMLP(config)
        self.input_layernorm = NVEmbedRMSNorm(config.text_config.hidden_size, eps)
        self.post_attention_layernorm = NVEmbedRMSNorm(config.text_config.hidden_size, eps)

    def forward(self, x: Tensor, cos: Tensor, sin: Tensor, layout: TokenLayout) -> Tensor:
        # Split at the attention kernel for torch.compile: each half is dense per-token work whose element-wise chains
        # fuse; the kernel, its mask and packed-layout metadata (cu_seqlens, a max length that changes every batch)
        # stay outside the graphs, so nothing recompiles per batch.
        q, k, v = self.attention_inputs(x, cos, sin)
        return self.attention_output_and_mlp(x, layout.kernel(q, k, v, layout))  # kernel: (B, T, H, d)

    def attention_inputs(self, x: Tensor, cos: Tensor, sin: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        return self.self_attn.project(self.input_layernorm(x), cos, sin)

    def attention_output_and_mlp(self, x: Tensor, attended: Tensor) -> Tensor:
        x = x + self.self_attn.o_proj(attended.flatten(-2))  # (B, T, H, d) -> (B, T, D)
        return x + self.mlp(self.post_attention_layernorm(x))


def run_layer(layer: NVEmbedDecoderLayer, x: Tensor, cos: Tensor, sin: Tensor, layout: TokenLayout) -> Tensor:
    return layer(x, cos, sin, layout)


@functools.cache  # one pair of compiled functions per process: a fresh torch.compile would compile again
def compiled_layer_runner() -> Callable[..., Tensor]:
    """A `run_layer` whose two dense halves are torch.compile'd (dynamic shapes). Plain functions taking the layer,
    so one compilation serves all layers and models: weights are graph inputs."""
    before = torch.compile(NVEmbedDecoderLayer.attention_inputs, dynamic=True)
    after = torch.compile(NVEmbedDecoderLayer.attention_output_and_mlp, dynamic=True)

    def run(layer: NVEmbedDecoderLayer, x: Tensor, cos: Tensor, sin: Tensor, layout: TokenLayout) -> Tensor:
        q, k, v = before(layer, x, cos, sin)
        return after(layer, x, layout.kernel(q, k, v, layout))

    return run


class NVEmbedMistralModel(nn.Module):
    """Token embeddings -> decoder layers -> final RMSNorm (checkpoint prefix `embedding_model.`)."""

    def __init__(self, config: NVEmbedConfig):
        super().__init__()
        text = config.text_config
        self.embed_tokens = nn.Embedding(text.vocab_size, text.hidden_size)
        self.layers = nn.ModuleList(NVEmbedDecoderLayer(config) for _ in range(text.num_hidden_layers))
        self.norm = NVEmbedRMSNorm(text.hidden_size, text.rms_norm_eps)
        self.rotary_emb = NVEmbedRotaryEmbedding(config)
        self.run_layer: Callable[..., Tensor] = run_layer  # compiled_layer_runner() after compile_layers

    def forward(self, input_ids: Tensor, layout: TokenLayout) -> Tensor:
        x = self.embed_tokens(input_ids)  # (B, T, D) or (1, N, D)
        cos, sin = self.rotary_emb(layout.position_ids, x.dtype)  # shared by every layer
        for layer in self.layers:
            x = self.run_layer(layer, x, cos, sin, layout)
        return self.norm(x)


class NVEmbedCrossAttention(nn.Module):
    """Each token (query) attends to the learned latents (keys and values). NV-Embed paper, eq. (1)."""

    def __init__(self, config: NVEmbedConfig):
        super().__init__()
        lat = config.latent_attention_config
        self.heads = lat.num_cross_heads
        self.dim_head = lat.cross_dim_head
        inner = self.heads * self.dim_head
        self.to_q = nn.Linear(lat.latent_dim, inner, bias=False)
        self.to_kv = nn.Linear(lat.hidden_dim, 2 * inner, bias=False)
        self.to_out = nn.Linear(inner, lat.latent_dim, bias=False)
        self.scale = self.dim_head**-0.5  # SDPA's default scale, 1/sqrt(cross_dim_head), as the reference uses

    def split_heads(self, x: Tensor) -> Tensor:
        """(N, h*d) -> (h, N, d); the head is the slow index of the feature axis ("(h d)")."""
        return x.view(x.shape[0], self.heads, self.dim_head).transpose(0, 1)

    def key_values(self, context: Tensor) -> tuple[Tensor, Tensor]:
        """context (L, D) normalised latents -> K, V, each (h, L, d)."""
        k, v = self.to_kv(context).chunk(2, dim=-1)  # first half keys, second half values
        return self.split_heads(k), self.split_heads(v)

    def forward(self, x: Tensor, kv: tuple[Tensor, Tensor]) -> Tensor:
        k, v = kv
        q = self.split_heads(self.to_q(x))  # (h, N, d)
        # softmax(q k^T * scale) v, unmasked. Written out rather than SDPA: d is 4096 in the real model, above every
        # fused kernel's limit, and SDPA's fallback scales the whole (h, N, d) query; this scales (h, N, latents).
        scores = torch.matmul(q, k.transpose(1, 2)) * self.scale  # (h, N, L)
        probs = torch.softmax(scores.float(), dim=-1).to(v.dtype)
        out = torch.matmul(probs, v)  # (h, N, d)
        return self.to_out(out.transpose(0, 1).reshape(x.shape[0], self.heads * self.dim_head))


class NVEmbedGEGLU(nn.Module):
    """GEGLU: first half (value) times exact erf-GELU of the second half (gate)."""

    def forward(self, x: Tensor) -> Tensor:
        value, gate = x.chunk(2, dim=-1)
        return value * F.gelu(gate)  # approximate="none": the reference uses the exact GELU


class NVEmbedFeedForward(nn.Module):
    """Linear(D, 8D) -> GEGLU -> Linear(4D, D); the multiplier 4 is fixed in NVIDIA's code."""

    def __init__(self, dim: int, mult: int = 4):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(dim, 2 * mult * dim), NVEmbedGEGLU(), nn.Linear(mult * dim, dim))

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class NVEmbedPreNorm(nn.Module):
    """Holds a block's LayerNorm(s) and its function; the caller applies norm, fn and the residual."""

    def __init__(self, dim: int, fn: nn.Module, context_dim: int | None = None):
        super().__init__()
        self.fn = fn
        self.norm = nn.LayerNorm(dim)  # eps 1e-5, torch's default, as the reference
        self.norm_context = nn.LayerNorm(context_dim) if context_dim is not None else None


class NVEmbedLatentAttentionModel(nn.Module):
    """Per-token latent attention + GEGLU feed-forward, both with residuals; tokens never interact here (checkpoint
    prefix `latent_attention_model.`)."""

    def __init__(self, config: NVEmbedConfig):
        super().__init__()
        lat = config.latent_attention_config
        attn = NVEmbedPreNorm(lat.latent_dim, NVEmbedCrossAttention(config), context_dim=lat.hidden_dim)
        ff = NVEmbedPreNorm(lat.latent_dim, NVEmbedFeedForward(lat.latent_dim))
        self.cross_attend_blocks = nn.ModuleList([attn, ff])
        self.latents = nn.Parameter(torch.randn(lat.num_latents_value, lat.latent_dim))

    def forward(self, hidden: Tensor) -> Tensor:
        """hidden (N, D) token states -> (N, D) latent-attended token states."""
        attn, ff = self.cross_attend_blocks
        kv = attn.fn.key_values(attn.norm_context(self.latents))  # the same latents for every token: once per call
        out = []
        for x in hidden.split(TOKEN_CHUNK):
            x = attn.fn(attn.norm(x), kv) + x
            out.append(ff.fn(ff.norm(x)) + x)
        return out[0] if len(out) == 1 else torch.cat(out)


def run_latent_block(block: NVEmbedLatentAttentionModel, hidden: Tensor) -> Tensor:
    return block(hidden)


@functools.cache
def compiled_latent_runner() -> Callable[[NVEmbedLatentAttentionModel, Tensor], Tensor]:
    """`run_latent_block`, torch.compile'd with dynamic shapes; cached like compiled_layer_runner."""
    return torch.compile(NVEmbedLatentAttentionModel.forward, dynamic=True)


@dataclass
class NVEmbedOutput:
    embeddings: Tensor  # (B, D) float32, L2-normalised if output_normalize
    pooled: Tensor  # (B, D) float32, before normalisation


class NVEmbedModel(nn.Module):
    """Backbone + pooling. `forward(input_ids, attention_mask, pool_mask)` -> one fp32 vector per row. Inputs are
    right-padded (B, T) tensors as built by `NVEmbedTokenizer`: `attention_mask` marks real tokens, `pool_mask` the
    tokens averaged by the pooling (the real tokens minus the leading instruction tokens)."""

    def __init__(self, config: NVEmbedConfig):
        super().__init__()
        self.config = config
        self.embedding_model = NVEmbedMistralModel(config)
        self.latent_attention_model = NVEmbedLatentAttentionModel(config)
        self.run_latent: Callable[[NVEmbedLatentAttentionModel, Tensor], Tensor] = run_latent_block

    def fuse_projections(self, enabled: bool = True) -> NVEmbedModel:
        """Run q/k/v and gate/up as one GEMM each (enabled), or as the checkpoint's separate Linears. The first call
        stacks the weights and makes the Linears views of the stack (one copy). Call it after loading, on the final
        device: `.to()` afterwards would copy the views apart."""
        for layer in self.embedding_model.layers:
            for block in (layer.self_attn, layer.mlp):
                if enabled:
                    block.fuse()
                block.use_fused = enabled
        return self

    def compile_layers(self, enabled: bool = True) -> NVEmbedModel:
        """torch.compile the decoder layers' dense work and the latent block (dynamic shapes) so element-wise chains
        fuse (RMSNorm + residual, RoPE, SiLU * up, softmax, GEGLU); GEMMs and attention keep their library kernels."""
        self.embedding_model.run_layer = compiled_layer_runner() if enabled else run_layer
        self.run_latent = compiled_latent_runner() if enabled else run_latent_block
        return self

    def token_layout(self, attention_mask: Tensor) -> TokenLayout:
        """Build the layout for the configured kernel: packed for the varlen kernels, padded otherwise."""
        B, T = attention_mask.shape
        kernel = ATTENTION_KERNELS[self.config.attn_implementation]
        causal = not self.config.bidirectional  # NV-Embed: bidirectional unless the ablation knob says otherwise
        real = attention_mask.bool()
        positions = torch.arange(T, device=attention_mask.device).expand(B, T)  # right padding: 0..n-1 per row
        if self.config.attn_implementation.packed:
            lengths = real.sum(1)
            cu_seqlens = F.pad(lengths.cumsum(0, dtype=torch.int32), (1, 0))
            return TokenLayout(kernel, positions[real][None], causal, None, cu_seqlens, int(lengths.max()))
        return TokenLayout(kernel, positions, causal, None if bool(real.all()) else real)

    def last_hidden_state(self, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
        """Backbone output (B, T, D) after the final RMSNorm; pad rows are zero in the packed layout."""
        layout = self.token_layout(attention_mask)
        if layout.cu_seqlens is None:
            return self.embedding_model(input_ids, layout)
        real = attention_mask.bool()
        packed = self.embedding_model(input_ids[real][None], layout)[0]  # (N, D)
        out = packed.new_zeros(*input_ids.shape, packed.shape[-1])
        out[real] = packed
        return out

    def latent_token_states(self, hidden: Tensor) -> Tensor:
        """The latent block applied at every position of (B, T, D) states, as the reference does before pooling."""
        return self.latent_attention_model(hidden.flatten(0, 1)).view_as(hidden)

    def forward(self, input_ids: Tensor, attention_mask: Tensor, pool_mask: Tensor) -> NVEmbedOutput:
        B, T = input_ids.shape
        layout = self.token_layout(attention_mask)
        if layout.cu_seqlens is None:
            hidden = self.embedding_model(input_ids, layout).flatten(0, 1)  # (B*T, D)
            grid_index = torch.arange(B * T, device=input_ids.device)  # row i of `hidden` sits at grid cell i
        else:
            real = attention_mask.bool()
            hidden = self.embedding_model(input_ids[real][None], layout)[0]  # (N, D): real tokens only
            grid_index = real.flatten().nonzero().squeeze(1)  # (N,) cell of each packed token in the (B*T) grid
        pooling = self.config.pooling
        if pooling is Pooling.LAST_TOKEN:
            last_cell = torch.arange(B, device=input_ids.device) * T + attention_mask.sum(1) - 1  # (B,)
            pooled = hidden[torch.searchsorted(grid_index, last_cell)].float()
        else:
            rows = pool_mask.flatten().bool()[grid_index].nonzero().squeeze(1)  # rows of `hidden` to average
            states = hidden[rows]
            if pooling is Pooling.LATENT:
                states = self.run_latent(self.latent_attention_model, states)  # NV-Embed: pooled tokens only
            grid = states.new_zeros(B * T, states.shape[-1], dtype=torch.float32)
            grid[grid_index[rows]] = states.float()
            # Sum over positions per row (a fixed-order reduction, deterministic on GPU too), then divide: masked mean.
            pooled = grid.view(B, T, -1).sum(1) / pool_mask.sum(1, keepdim=True).float()
        embeddings = pooled
        if self.config.latent_attention_config.output_normalize:
            embeddings = F.normalize(pooled, p=2, dim=-1)
        return NVEmbedOutput(embeddings=embeddings, pooled=pooled)
