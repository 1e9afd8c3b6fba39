"""Tiny random-weight NV-Embed checkpoints in the official layout, for the tests, `model=nv_embed_tiny` and the CPU
benchmark. Weight recipe: the golden set's (README "Weights"); fan-in scaling keeps attention and GEGLU non-trivial."""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from nvembed_eval.errors import CheckpointError

from .configuration_nvembed import LatentAttentionConfig, NVEmbedConfig, TextConfig

if TYPE_CHECKING:
    import torch

    from .modeling_nvembed import NVEmbedModel

log = logging.getLogger(__name__)

TINY_VERSION = 1  # bump when the tiny weights or config change, so cached copies are not mistaken for new ones
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "tokenizer.model")
REPO_ROOT = Path(__file__).resolve().parents[3]


def default_tokenizer_dir() -> Path:
    """`$NVEMBED_SHARED/golden/nvembed-tiny`, else `<repo root>/../shared/golden/nvembed-tiny` (CI's layout)."""
    shared = Path(os.environ["NVEMBED_SHARED"]) if os.environ.get("NVEMBED_SHARED") else REPO_ROOT.parent / "shared"
    return shared / "golden" / "nvembed-tiny"


def tiny_config(
    *,
    hidden_size: int = 64,
    num_hidden_layers: int = 2,
    num_attention_heads: int = 4,
    num_key_value_heads: int = 2,
    intermediate_size: int = 128,
    num_latents_value: int = 16,
    num_cross_heads: int = 2,
    cross_dim_head: int = 32,
    vocab_size: int = 32000,
) -> NVEmbedConfig:
    """An NV-Embed config of the given small shape (defaults: the golden set's tiny shape)."""
    text = TextConfig(
        vocab_size=vocab_size,
        hidden_size=hidden_size,
        intermediate_size=intermediate_size,
        num_hidden_layers=num_hidden_layers,
        num_attention_heads=num_attention_heads,
        num_key_value_heads=num_key_value_heads,
        max_position_embeddings=32768,
        rms_norm_eps=1e-5,
        name_or_path="nvembed-eval/NV-Embed-tiny",
    )
    latent = LatentAttentionConfig(
        num_latents_value=num_latents_value,
        num_cross_heads=num_cross_heads,
        hidden_dim=hidden_size,
        latent_dim=hidden_size,
        cross_dim_head=cross_dim_head,
    )
    return NVEmbedConfig(text, latent, hidden_size=hidden_size, name_or_path="nvembed-eval/NV-Embed-tiny")


def random_state_dict(
    model: NVEmbedModel, seed: int = 0, dtype: torch.dtype | None = None, device: torch.device | str | None = None
) -> dict[str, torch.Tensor]:
    """Random weights for every parameter of `model` (may be on the meta device), one `torch.randn` per tensor in sorted
    key order: norm weights 1 + 0.1 N, biases, token embeddings and latents 0.02 N, Linear weights N / sqrt(fan_in)."""
    import torch

    device = torch.device(device or "cpu")
    gen = torch.Generator(device=device).manual_seed(seed)
    state = {}
    for name, param in sorted(model.named_parameters()):
        noise = torch.randn(param.shape, generator=gen, device=device, dtype=torch.float32)
        if name.endswith((".bias", "embed_tokens.weight", "latents")):
            value = 0.02 * noise
        elif "norm" in name.rsplit(".", 1)[0].rsplit(".", 1)[-1]:  # RMSNorm / LayerNorm weights
            value = 1.0 + 0.1 * noise
        else:
            value = noise / param.shape[1] ** 0.5
        state[name] = value.to(dtype or torch.float32)
    return state


def build_random_model(
    config: NVEmbedConfig, seed: int = 0, dtype: torch.dtype | None = None, device: torch.device | str = "cpu"
) -> NVEmbedModel:
    """An `NVEmbedModel` with `random_state_dict` weights, allocated directly in `dtype` on `device` (no file)."""
    import torch

    from .modeling_nvembed import NVEmbedModel

    with torch.device("meta"):
        model = NVEmbedModel(config)
    model.load_state_dict(random_state_dict(model, seed, dtype or torch.float32, device), strict=True, assign=True)
    return model.eval()


def write_tiny_checkpoint(
    out_dir: str | Path,
    *,
    seed: int = 0,
    tokenizer_dir: str | Path | None = None,
    num_shards: int = 1,
    config: NVEmbedConfig | None = None,
    overwrite: bool = False,
) -> Path:
    """Write a random-weight checkpoint (config.json, weights, tokenizer files) to `out_dir` atomically (a temp
    folder renamed into place: concurrent first uses are safe) and return it. `tokenizer_dir` (default:
    `default_tokenizer_dir()`; nothing is downloaded) holds the Mistral tokenizer files; `num_shards` > 1 writes
    sharded weights plus `model.safetensors.index.json`; `config` defaults to `tiny_config()`."""
    from safetensors.torch import save_file

    out_dir = Path(out_dir).expanduser()
    tok_dir = Path(tokenizer_dir) if tokenizer_dir is not None else default_tokenizer_dir()
    if not (tok_dir / "tokenizer.json").is_file():
        raise CheckpointError(
            f"no tokenizer.json in {tok_dir}; tokenizer files cannot be downloaded here. Pass --tokenizer-dir (or "
            "tokenizer_dir=) pointing at a folder with the Mistral tokenizer files, e.g. "
            "../shared/golden/nvembed-tiny, or set NVEMBED_SHARED."
        )
    if out_dir.exists() and any(out_dir.iterdir()) and not overwrite:
        raise CheckpointError(f"{out_dir} already exists and is not empty; pass overwrite=True or pick another folder.")
    config = config or tiny_config()
    state = {k: v.contiguous() for k, v in build_random_model(config, seed).state_dict().items()}
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        tiny = {"seed": seed, "version": TINY_VERSION}
        meta = config.to_dict() | {"torch_dtype": "float32", "nvembed_eval_tiny": tiny}
        (tmp / "config.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
        if num_shards <= 1:
            save_file(state, str(tmp / "model.safetensors"), metadata={"format": "pt"})
        else:
            weight_map = {}
            for i in range(num_shards):
                name = f"model-{i + 1:05d}-of-{num_shards:05d}.safetensors"
                part = {k: state[k] for k in sorted(state)[i::num_shards]}
                save_file(part, str(tmp / name), metadata={"format": "pt"})
                weight_map.update(dict.fromkeys(part, name))
            total = sum(t.numel() * t.element_size() for t in state.values())
            index = {"metadata": {"total_size": total}, "weight_map": dict(sorted(weight_map.items()))}
            (tmp / "model.safetensors.index.json").write_text(json.dumps(index, indent=2) + "\n", encoding="utf-8")
        for name in TOKENIZER_FILES:
            if (tok_dir / name).is_file():
                shutil.copyfile(tok_dir / name, tmp / name)
        for f in tmp.iterdir():  # mkdtemp makes 0700: give the result ordinary permissions
            f.chmod(0o644)
        tmp.chmod(0o755)
        if overwrite and out_dir.exists():
            shutil.rmtree(out_dir)
        elif out_dir.exists():
            out_dir.rmdir()  # empty (checked above); os.replace needs it gone
        os.replace(tmp, out_dir)
    except OSError:
        if not (out_dir / "config.json").is_file():
            raise
        log.info("another process wrote %s first; keeping its copy", out_dir)  # identical: same seed and version
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out_dir


def ensure_tiny_checkpoint(path: str | Path, seed: int = 0, tokenizer_dir: str | Path | None = None) -> Path:
    path = Path(path).expanduser()
    if not (path / "config.json").is_file():
        log.info("writing a tiny random-weight NV-Embed checkpoint to %s (set model.create_tiny_if_missing=false "
                 "to require an existing one)", path)  # fmt: skip
        try:
            write_tiny_checkpoint(path, seed=seed, tokenizer_dir=tokenizer_dir)
        except CheckpointError:
            if not (path / "config.json").is_file():  # not merely another process finishing first
                raise
    return path
