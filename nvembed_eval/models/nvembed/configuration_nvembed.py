"""NV-Embed configuration: the checkpoint's `config.json` (official `nvidia/NV-Embed-v2` schema; defaults of NVIDIA's
`LatentAttentionConfig` and transformers' `MistralConfig`) as frozen dataclasses, plus the runtime knobs."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from nvembed_eval.errors import CheckpointError, ConfigError
from nvembed_eval.io import parse_json


class Pooling(StrEnum):
    """How token states become one vector. `latent` is NV-Embed; the others are ablations."""

    LATENT = "latent"  # latent-attention block, then masked mean over the pooling mask (NV-Embed)
    MEAN = "mean"  # masked mean of the backbone's last hidden states over the pooling mask
    LAST_TOKEN = "last_token"  # backbone state of the last real token (the appended </s> unless truncated)


class AttnImplementation(StrEnum):
    """Which kernel runs the backbone's self-attention."""

    SDPA = "sdpa"  # torch scaled_dot_product_attention with a key-padding mask
    EAGER = "eager"  # explicit QK^T, full additive mask, fp32 softmax: the reference-style path
    FLASH_ATTENTION_2 = "flash_attention_2"  # flash-attn varlen on unpadded tokens (CUDA + flash-attn only)
    VARLEN = "varlen"  # torch's own varlen_attn on unpadded tokens (CUDA, torch >= 2.10; no extra package)

    @property
    def packed(self) -> bool:
        """True when the kernel takes unpadded, packed tokens (cu_seqlens) instead of a padded batch."""
        return self in (AttnImplementation.FLASH_ATTENTION_2, AttnImplementation.VARLEN)


def _pick(cls: type, data: dict[str, Any]) -> dict[str, Any]:
    """Keep only the keys that are fields of dataclass `cls` (the official file carries many unused keys)."""
    names = {f.name for f in dataclasses.fields(cls)}
    return {k: v for k, v in data.items() if k in names}


@dataclass(frozen=True)
class TextConfig:
    """The Mistral backbone. Defaults are transformers' `MistralConfig` defaults (Mistral-7B-v0.1 shape)."""

    vocab_size: int = 32000
    hidden_size: int = 4096
    intermediate_size: int = 14336
    num_hidden_layers: int = 32
    num_attention_heads: int = 32
    num_key_value_heads: int = 8
    head_dim: int | None = None  # None: hidden_size // num_attention_heads
    hidden_act: str = "silu"
    max_position_embeddings: int = 131072
    rms_norm_eps: float = 1e-6  # MistralConfig default; the official file sets 1e-5
    rope_theta: float = 10000.0
    rope_scaling: dict[str, Any] | None = None
    sliding_window: int | None = 4096  # stored only: NVIDIA's code ignores it (golden README item 11), so do we
    attention_dropout: float = 0.0
    bos_token_id: int = 1
    eos_token_id: int = 2
    model_type: str = "bidir_mistral"
    name_or_path: str = ""

    @property
    def attention_head_dim(self) -> int:
        return self.head_dim or self.hidden_size // self.num_attention_heads

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TextConfig:
        cfg = cls(**(_pick(cls, data) | {"name_or_path": data.get("_name_or_path", "")}))
        cfg.validate()
        return cfg

    def validate(self) -> None:
        if self.hidden_act != "silu":
            raise ConfigError(f"<text_config.hidden_act={self.hidden_act!r}> is unsupported; NV-Embed uses 'silu'.")
        if self.rope_scaling:
            raise ConfigError(f"<text_config.rope_scaling={self.rope_scaling}> is unsupported; NV-Embed uses none.")
        if self.head_dim is None and self.hidden_size % self.num_attention_heads:
            heads = f"<text_config.num_attention_heads={self.num_attention_heads}>"
            raise ConfigError(
                f"<text_config.hidden_size={self.hidden_size}> is not divisible by {heads}; fix config.json."
            )
        if self.num_attention_heads % self.num_key_value_heads:
            heads = f"<text_config.num_attention_heads={self.num_attention_heads}>"
            kv_heads = f"<text_config.num_key_value_heads={self.num_key_value_heads}>"
            raise ConfigError(f"{heads} is not a multiple of {kv_heads}; fix config.json.")

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["_name_or_path"] = data.pop("name_or_path")
        data |= {"architectures": ["MistralModel"], "torch_dtype": "float32"}
        return {k: v for k, v in data.items() if v is not None or k not in ("head_dim", "rope_scaling")}


@dataclass(frozen=True)
class LatentAttentionConfig:
    """The latent-attention pooling block. Defaults are those of NVIDIA's `LatentAttentionConfig`."""

    num_latents_value: int = 512
    num_cross_heads: int = 8
    output_normalize: bool = True
    hidden_dim: int = 4096  # width of the latents (norm_context, to_kv)
    latent_dim: int = 4096  # width of the LLM hidden states (norm, to_q, to_out, FFN)
    cross_dim_head: int = 4096  # per-head width; inner width = num_cross_heads * cross_dim_head
    model_type: str = "latent_attention"


@dataclass(frozen=True)
class NVEmbedConfig:
    """The whole model: backbone, pooling block, checkpoint flags, and the runtime knobs the encoder sets (`pooling`,
    `bidirectional`, `attn_implementation`; its `mask_instruction` overrides `is_mask_instruction`)."""

    text_config: TextConfig = field(default_factory=TextConfig)
    latent_attention_config: LatentAttentionConfig = field(default_factory=LatentAttentionConfig)
    hidden_size: int = 4096  # stored, unused by NVIDIA's code
    padding_side: str = "right"
    add_pad_token: bool = True
    is_mask_instruction: bool = True
    add_eos: bool = True  # stored, unused: NVIDIA's encode always appends </s>
    mask_type: str = "b"  # stored, unused
    torch_dtype: str = "float32"
    name_or_path: str = ""
    # Runtime knobs (not read from config.json).
    pooling: Pooling = Pooling.LATENT
    bidirectional: bool = True
    attn_implementation: AttnImplementation = AttnImplementation.SDPA

    def __post_init__(self) -> None:
        object.__setattr__(self, "pooling", Pooling(self.pooling))  # the run's schema has checked the name
        object.__setattr__(self, "attn_implementation", AttnImplementation(self.attn_implementation))
        self.validate()

    def validate(self) -> None:
        text, lat = self.text_config, self.latent_attention_config
        # NVIDIA's block creates the latents with width latent_dim but normalises them with hidden_dim, and applies
        # to_q/to_out/FFN (latent_dim) to the LLM states: it only runs when all three widths agree (golden item 9).
        if not (lat.hidden_dim == lat.latent_dim == text.hidden_size):
            widths = f"<latent_attention_config.hidden_dim={lat.hidden_dim}>, <latent_attention_config.latent_dim="
            widths += f"{lat.latent_dim}> and <text_config.hidden_size={text.hidden_size}>"
            raise ConfigError(f"{widths} must be equal; fix config.json.")
        if self.padding_side != "right":
            raise ConfigError(f"<padding_side={self.padding_side!r}> is unsupported; NV-Embed pads on the right.")

    @property
    def embed_dim(self) -> int:
        return self.text_config.hidden_size

    @classmethod
    def from_dict(cls, data: dict[str, Any], **knobs: Any) -> NVEmbedConfig:
        """Build from a parsed `config.json` dict; `knobs` set the runtime fields (pooling, bidirectional, ...)."""
        if not isinstance(data.get("text_config"), dict):
            raise ConfigError("config.json has no `text_config` object; this is not an NV-Embed checkpoint config.")
        text = TextConfig.from_dict(data["text_config"])
        latent = LatentAttentionConfig(**_pick(LatentAttentionConfig, data.get("latent_attention_config") or {}))
        parsed = {"text_config": text, "latent_attention_config": latent, "name_or_path": data.get("_name_or_path", "")}
        return cls(**(_pick(cls, data) | parsed | knobs))

    @classmethod
    def from_json_file(cls, path: str | Path, **knobs: Any) -> NVEmbedConfig:
        path = Path(path)
        try:
            data = parse_json(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            needs = "an NV-Embed checkpoint folder needs its config.json."
            raise CheckpointError(f"{path} does not exist; {needs}") from None
        except json.JSONDecodeError as exc:
            raise CheckpointError(f"{path} is not valid JSON ({exc}); restore the checkpoint's config.json.") from None
        return cls.from_dict(data, **knobs)

    def to_dict(self) -> dict[str, Any]:
        """The official `config.json` schema (runtime knobs are left out)."""
        return {
            "_name_or_path": self.name_or_path,
            "add_eos": self.add_eos,
            "add_pad_token": self.add_pad_token,
            "architectures": ["NVEmbedModel"],
            "hidden_size": self.hidden_size,
            "is_mask_instruction": self.is_mask_instruction,
            "latent_attention_config": dataclasses.asdict(self.latent_attention_config),
            "mask_type": self.mask_type,
            "model_type": "nvembed",
            "padding_side": self.padding_side,
            "text_config": self.text_config.to_dict(),
            "torch_dtype": self.torch_dtype,
        }
