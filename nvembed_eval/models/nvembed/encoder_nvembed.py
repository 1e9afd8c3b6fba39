"""NVEmbedEncoder, the `TextEncoder` for NV-Embed checkpoints: safe loading, token-budget batches, torchrun split."""

from __future__ import annotations

import importlib.util
import logging
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from nvembed_eval.errors import ConfigError, EncodingError
from nvembed_eval.models.base import ModelIdentity, check_length, folder_revision

from . import loading
from .configuration_nvembed import AttnImplementation, NVEmbedConfig, Pooling
from .distributed import all_reduce_ints, assign_batches, gather_rows, rank_and_world
from .tiny import ensure_tiny_checkpoint
from .tokenization_nvembed import EncodedBatch, NVEmbedTokenizer

if TYPE_CHECKING:
    import torch

    from .modeling_nvembed import NVEmbedModel

log = logging.getLogger(__name__)

INSTRUCTION_TEMPLATE = "Instruct: {instruction}\nQuery: "  # NV-Embed model card; identical for v1 and v2
DEFAULT_TOKEN_BUDGET = {"cuda": 32768, "cpu": 16384}  # padded tokens per forward pass; see docs/performance.md


def plan_batches(lengths: Sequence[int], max_texts: int, token_budget: int) -> list[np.ndarray]:
    """Arrays of input indices, one per batch in run order, longest texts first (ties in input order: deterministic),
    each at most `max_texts` texts and `token_budget` padded tokens (texts x longest); a longer text gets its own."""
    lengths = np.asarray(lengths, dtype=np.int64)
    order = np.lexsort((np.arange(len(lengths)), -lengths))  # longest first, then by input index
    batches, start = [], 0
    while start < len(order):
        longest = int(lengths[order[start]])
        size = max(1, min(max_texts, token_budget // max(longest, 1)))
        batches.append(order[start : start + size])
        start += size
    return batches


class NVEmbedEncoder:
    """NV-Embed-v1/v2 (or a tiny test checkpoint) behind the `TextEncoder` protocol; parameters are the model config
    keys (documented in conf/model/nv_embed_v2.yaml). `path`: checkpoint folder, HF cache snapshot folder or hub id;
    `device=auto` picks the LOCAL_RANK GPU under torchrun; `max_length` counts <s>; `name` defaults to the hub id,
    nvidia/NV-Embed-vN for such a folder, else local/<dir>; `create_tiny_if_missing` writes a tiny checkpoint first."""

    def __init__(
        self,
        path: str,
        *,
        revision: str | None = None,
        dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto",
        device: str = "auto",
        max_length: int = 32768,
        pooling: Pooling = Pooling.LATENT,
        mask_instruction: bool = True,
        bidirectional: bool = True,
        attn_implementation: AttnImplementation = AttnImplementation.SDPA,
        compile: bool = False,
        token_budget: int | None = None,
        allow_pickle: bool = False,
        name: str | None = None,
        create_tiny_if_missing: bool = False,
        progress: bool | None = None,
    ):
        import torch

        from .modeling_nvembed import NVEmbedModel

        attn = AttnImplementation(attn_implementation)  # knob values: checked by the run's schema (config.py)
        if create_tiny_if_missing and not Path(path).expanduser().is_dir():
            ensure_tiny_checkpoint(path)
        resolved = loading.resolve_checkpoint(path, revision, allow_pickle)
        folder = resolved.folder
        loading.check_files(folder)
        knobs = {"pooling": Pooling(pooling), "is_mask_instruction": mask_instruction, "bidirectional": bidirectional}
        config = NVEmbedConfig.from_json_file(folder / loading.CONFIG, **knobs, attn_implementation=attn)
        name = name or loading.default_name(resolved)
        check_length(max_length, config.text_config.max_position_embeddings, "model.max_length", name)
        device_ = loading.resolve_device(device)
        dtype_ = loading.resolve_dtype(dtype, device_)
        if dtype == "auto":
            log.info("model.dtype=auto -> %s on %s (set model.dtype to choose)", dtype_, device_)
        if token_budget is None:
            message = "model.token_budget=null -> %d padded tokens per batch on %s (set model.token_budget to choose)"
            log.info(message, DEFAULT_TOKEN_BUDGET.get(device_.type, DEFAULT_TOKEN_BUDGET["cpu"]), device_.type)
        if attn.packed:
            _check_packed_kernel(attn, device_, dtype_)
        tokenizer = NVEmbedTokenizer(folder / loading.TOKENIZER)
        with torch.device("meta"):
            model = NVEmbedModel(config)
        loading.load_weights(model, folder, allow_pickle=allow_pickle, dtype=dtype_, device=device_)
        if compile:
            model.compile_layers()
        self.folder: Path | None = folder
        # A hub snapshot is pinned by its commit; a plain folder by every file it loads (config, tokenizer, weights).
        revision_id = resolved.commit or folder_revision(folder, loading.loaded_files(folder, allow_pickle))
        self._attach(model, tokenizer, name, revision_id, max_length, token_budget, progress)
        log.info("loaded %s from %s on %s: %s", self.identity.name, folder, device_, self.identity)

    @classmethod
    def from_model(
        cls,
        model: NVEmbedModel,
        tokenizer: NVEmbedTokenizer,
        *,
        name: str = "random/NV-Embed",
        revision: str = "random",
        max_length: int = 32768,
        token_budget: int | None = None,
        progress: bool | None = False,
    ) -> NVEmbedEncoder:
        """Wrap an in-memory model (e.g. random full-size weights for a benchmark); knobs come from model.config."""
        self = cls.__new__(cls)
        self.folder = None
        self._attach(model, tokenizer, name, revision, max_length, token_budget, progress)
        return self

    def _attach(
        self,
        model: NVEmbedModel,
        tokenizer: NVEmbedTokenizer,
        name: str,
        revision: str,
        max_length: int,
        token_budget: int | None,
        progress: bool | None,
    ) -> None:
        param = next(model.parameters())
        self.model, self.config, self.tokenizer = model.eval().fuse_projections(), model.config, tokenizer
        self.device, self.dtype = param.device, param.dtype
        self.pooling = self.config.pooling
        self.mask_instruction = self.config.is_mask_instruction
        self.max_length = max_length
        self.token_budget = token_budget or DEFAULT_TOKEN_BUDGET.get(self.device.type, DEFAULT_TOKEN_BUDGET["cpu"])
        self.progress = progress
        self.embed_dim = self.config.embed_dim
        self.max_tokens: int | None = max_length
        # What changes the vectors. Kernel, compilation, token budget and fused projections change only rounding
        # (float32 parity 1e-7, tested), so runs that differ in those share cache entries (docs/cache.md).
        knobs = {
            "dtype": str(self.dtype).removeprefix("torch."),
            "max_length": max_length,
            "pooling": str(self.pooling),
            "mask_instruction": self.mask_instruction,
            "bidirectional": self.config.bidirectional,
        }
        self.identity = ModelIdentity(name=name, revision=revision, knobs=knobs)
        self.stats: dict[str, Any] = {"texts": 0, "tokens": 0, "padded_tokens": 0, "batches": 0, "seconds": 0.0}

    @staticmethod
    def template_for_config(config: Mapping[str, Any]) -> str:
        return INSTRUCTION_TEMPLATE

    def instruction_template(self) -> str:
        return INSTRUCTION_TEMPLATE

    def tokenize(self, texts: Sequence[str], prefix: str = "") -> EncodedBatch:  # as NVIDIA's encode builds them
        return self.tokenizer(texts, prefix, self.max_length, self.mask_instruction)

    def encode(
        self,
        texts: Sequence[str],
        *,
        prefix: str = "",
        batch_size: int = 32,
        task_name: str | None = None,
        side: str | None = None,
    ) -> np.ndarray:
        """float32 (len(texts), embed_dim), row i for `prefix` + texts[i] (`task_name`, `side`: unused). `batch_size`
        caps the texts per forward pass, `token_budget` its padded tokens (for GPU throughput on short texts, pass a
        large batch_size). Under torch.distributed all ranks call it with the same arguments; each gets all rows."""
        import torch
        from tqdm.auto import tqdm

        texts = list(texts)
        out = np.zeros((len(texts), self.embed_dim), dtype=np.float32)
        if not texts:
            return out
        started = time.perf_counter()
        ids = self.tokenizer.token_ids(texts, prefix, self.max_length)
        n_instr = self.tokenizer.instruction_length(prefix) if self.mask_instruction else 0
        if self.pooling is not Pooling.LAST_TOKEN:
            for i, row in enumerate(ids):
                if len(row) <= n_instr:
                    kept = f"none of the {len(row)} kept tokens to pool (<model.max_length={self.max_length}>)"
                    fix = "NVIDIA's code returns NaN here. Raise model.max_length or shorten the instruction."
                    prefix_is = f"input {i}: the instruction prefix is {n_instr} tokens"
                    raise EncodingError(f"{prefix_is} and leaves {kept}; {fix}")
        rank, world = rank_and_world()
        mine = assign_batches(plan_batches([len(r) for r in ids], batch_size, self.token_budget), rank, world)
        counts, bad_input = np.zeros(4, dtype=np.int64), -1  # texts, real tokens, padded tokens, batches (this rank)
        show = (self.progress if self.progress is not None else sys.stderr.isatty()) and rank == 0
        bar = tqdm(total=sum(len(b) for b in mine), unit="text", desc=f"encode {self.identity.name}", disable=not show)
        with torch.inference_mode(), bar:
            for index in mine:
                batch = self.tokenizer.pad([ids[i] for i in index], n_instr)
                emb = self._forward(batch)
                finite = np.isfinite(emb).all(axis=1)
                if not finite.all():
                    bad_input = int(index[np.argmin(finite)])
                    break
                out[index] = emb
                counts += (len(index), batch.attention_mask.sum(), batch.input_ids.size, 1)
                bar.update(len(index))
        if world > 1:  # agree on failure first, so no rank waits forever in the gather
            bad_input = all_reduce_ints([bad_input], op="max")[0]
        if bad_input >= 0:
            where = f"<model.dtype={self.identity.knobs['dtype']}> on {self.device}"
            fix = "retry with model.dtype=float32 and check that text."
            raise EncodingError(f"the embedding of input {bad_input} is not finite (NaN/inf) with {where}; {fix}")
        if world > 1:
            local = np.concatenate(mine) if mine else np.zeros(0, dtype=np.int64)
            out = gather_rows(local, out[local], len(texts))
            counts = all_reduce_ints(counts.tolist())
        for key, value in zip(("texts", "tokens", "padded_tokens", "batches"), counts, strict=True):
            self.stats[key] += int(value)
        self.stats["seconds"] += time.perf_counter() - started
        return out

    def _forward(self, batch: EncodedBatch) -> np.ndarray:
        import torch

        arrays = (batch.input_ids, batch.attention_mask, batch.pool_mask)
        output = self.model(*(torch.from_numpy(a).to(self.device, non_blocking=True) for a in arrays))
        return output.embeddings.float().cpu().numpy()


def _check_packed_kernel(attn: AttnImplementation, device: torch.device, dtype: torch.dtype) -> None:
    import torch  # the varlen kernels run only on CUDA in half precision, and each needs its library

    if device.type != "cuda" or dtype not in (torch.bfloat16, torch.float16):
        needs = f"<model.attn_implementation={attn}> needs a CUDA device and bfloat16/float16"
        raise ConfigError(f"{needs}, got {device} {dtype}; use model.attn_implementation=sdpa.")
    if attn is AttnImplementation.VARLEN and importlib.util.find_spec("torch.nn.attention.varlen") is None:
        needs = "<model.attn_implementation=varlen> needs torch >= 2.10 (torch.nn.attention.varlen)"
        fix = "upgrade torch or use model.attn_implementation=sdpa."
        raise ConfigError(f"{needs}, found torch {torch.__version__}; {fix}")
    if attn is AttnImplementation.FLASH_ATTENTION_2 and importlib.util.find_spec("flash_attn") is None:
        fix = "install the `gpu` extra (pip install 'nvembed-eval[gpu]') or use model.attn_implementation=sdpa."
        raise ConfigError(f"<model.attn_implementation=flash_attention_2> but flash-attn is not installed; {fix}")
