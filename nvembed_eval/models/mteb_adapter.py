"""Bridge from our `TextEncoder` protocol to mteb's encoder protocol (`AbsEncoder`).

mteb hands us a DataLoader of batches plus the task metadata and the side (`prompt_type`); we flatten it to texts,
ask the instruction resolver for the literal prefix, and call the (cached) encoder once per side with the task name
and side. A model from mteb's own registry (`mteb_registry`) also scores with its own similarity function.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from mteb.models.abs_encoder import AbsEncoder
from mteb.models.model_meta import ModelMeta

from nvembed_eval.errors import EncodingError

if TYPE_CHECKING:
    from mteb.abstasks.task_metadata import TaskMetadata
    from mteb.types import PromptType

    from nvembed_eval.models.base import TextEncoder

log = logging.getLogger(__name__)

# (task name, side) -> literal prefix to prepend ("" for none). Side is "query", "document" or None.
PrefixResolver = Callable[[str, "str | None"], str]


@dataclass
class TaskEncodeStats:
    """What one task cost: recorded in run.json next to its result."""

    texts: int = 0
    tokens: int = 0
    prefixes: dict[str, str] = field(default_factory=dict)  # side -> prefix actually used


def build_model_meta(encoder: TextEncoder) -> ModelMeta:
    """mteb metadata from our identity: name + revision are what mteb writes into every TaskResult.

    For a model from mteb's registry (an encoder with an `mteb_model`), the similarity function and the use of
    instructions are that model's own.
    """
    identity = encoder.identity
    inner_meta = getattr(getattr(encoder, "mteb_model", None), "mteb_model_meta", None)
    return ModelMeta(
        loader=None,
        name=identity.name,
        revision=identity.revision,
        release_date=None,
        languages=None,
        n_parameters=None,
        memory_usage_mb=None,
        max_tokens=encoder.max_tokens,
        embed_dim=encoder.embed_dim,
        license=None,
        open_weights=True,
        public_training_code=None,
        public_training_data=None,
        similarity_fn_name=inner_meta.similarity_fn_name if inner_meta else "cosine",
        framework=["PyTorch"],
        reference=None,
        use_instructions=inner_meta.use_instructions if inner_meta else encoder.instruction_template() is not None,
        training_datasets=None,
        experiment_kwargs={k: str(v) for k, v in sorted(identity.knobs.items())} or None,
    )


class MtebEncoder(AbsEncoder):
    """An mteb encoder over a `TextEncoder` plus a prefix resolver.

    Args:
        encoder: the model adapter (usually wrapped in `CachedEncoder`).
        resolve_prefix: (task name, side) -> prefix string.
        batch_size: forwarded to the encoder (a token budget may override it inside NV-Embed).
    """

    def __init__(self, encoder: TextEncoder, resolve_prefix: PrefixResolver, batch_size: int = 32) -> None:
        self.encoder = encoder
        self.resolve_prefix = resolve_prefix
        self.batch_size = batch_size
        self.mteb_model_meta = build_model_meta(encoder)
        self.task_stats: dict[str, TaskEncodeStats] = {}

    def encode(
        self,
        inputs: Any,
        *,
        task_metadata: TaskMetadata,
        hf_split: str,
        hf_subset: str,
        prompt_type: PromptType | None = None,
        **kwargs: Any,
    ) -> np.ndarray:
        texts = [text for batch in inputs for text in batch["text"]]
        side = prompt_type.value if prompt_type is not None else None
        prefix = self.resolve_prefix(task_metadata.name, side)
        stats = self.task_stats.setdefault(task_metadata.name, TaskEncodeStats())
        stats.prefixes[side or "all"] = prefix
        tokens_before = _tokens_seen(self.encoder)
        vectors = self.encoder.encode(
            texts, prefix=prefix, batch_size=self.batch_size, task_name=task_metadata.name, side=side
        )
        stats.texts += len(texts)
        stats.tokens += _tokens_seen(self.encoder) - tokens_before
        if vectors.shape[0] != len(texts):
            raise EncodingError(
                f"{self.encoder.identity.name} returned {vectors.shape[0]} vectors for {len(texts)} texts "
                f"in {task_metadata.name}; the model adapter must return one row per text"
            )
        bad = np.flatnonzero(~np.isfinite(vectors).all(axis=1))
        if bad.size:
            raise EncodingError(
                f"non-finite embedding for input {int(bad[0])} of {task_metadata.name} ({side or 'all'} side, "
                f"{bad.size} bad rows); check model.dtype and the input text"
            )
        return vectors

    def similarity(self, embeddings1: Any, embeddings2: Any) -> Any:
        """The wrapped mteb model's own similarity when there is one (e.g. sentence-transformers' configured one)."""
        inner = getattr(self.encoder, "mteb_model", None)
        return (
            inner.similarity(embeddings1, embeddings2)
            if inner is not None
            else super().similarity(embeddings1, embeddings2)
        )

    def similarity_pairwise(self, embeddings1: Any, embeddings2: Any) -> Any:
        """Pairwise form of `similarity`, likewise delegated."""
        inner = getattr(self.encoder, "mteb_model", None)
        if inner is not None:
            return inner.similarity_pairwise(embeddings1, embeddings2)
        return super().similarity_pairwise(embeddings1, embeddings2)


def _tokens_seen(encoder: TextEncoder) -> int:
    stats = getattr(encoder, "stats", None) or {}
    return int(stats.get("tokens", 0))
