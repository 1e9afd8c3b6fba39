"""Bridge from our `TextEncoder` to mteb's `AbsEncoder`: mteb's batches become texts plus the resolver's prefix; a model
from mteb's registry keeps its own similarity function."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from mteb.abstasks.task_metadata import TaskMetadata
from mteb.models.abs_encoder import AbsEncoder
from mteb.models.model_meta import ModelMeta
from mteb.types import PromptType

from nvembed_eval.errors import EncodingError
from nvembed_eval.models.base import TextEncoder

# (task name, side) -> literal prefix to prepend ("" for none). Side is "query", "document" or None.
PrefixResolver = Callable[[str, "str | None"], str]


@dataclass
class TaskEncodeStats:
    """What one task cost: recorded in run.json next to its result."""

    texts: int = 0
    tokens: int = 0
    prefixes: dict[str, str] = field(default_factory=dict)  # side -> prefix actually used


def build_model_meta(encoder: TextEncoder, overrides: Sequence[str] = ()) -> ModelMeta:
    """mteb metadata from our identity (mteb writes name + revision into every TaskResult); a model from mteb's
    registry (an encoder with an `mteb_model`) keeps its own similarity function and use of instructions. `overrides`:
    the run's command line, whose model knobs make the run an experiment to mteb (`ModelIdentity.experiment_kwargs`)."""
    identity = encoder.identity
    inner_meta = getattr(getattr(encoder, "mteb_model", None), "mteb_model_meta", None)
    unknown = ("loader", "release_date", "languages", "n_parameters", "memory_usage_mb", "license")
    unknown += ("public_training_code", "public_training_data", "training_datasets")  # required by mteb, unknown here
    return ModelMeta(
        **dict.fromkeys(unknown),
        name=identity.name,
        revision=identity.revision,
        max_tokens=encoder.max_tokens,
        embed_dim=encoder.embed_dim,
        open_weights=True,
        similarity_fn_name=inner_meta.similarity_fn_name if inner_meta else "cosine",
        framework=["PyTorch"],
        use_instructions=inner_meta.use_instructions if inner_meta else encoder.instruction_template() is not None,
        experiment_kwargs=identity.experiment_kwargs(overrides),
    )


class MtebEncoder(AbsEncoder):
    """An mteb encoder over a `TextEncoder` (usually a `CachedEncoder`) plus a prefix resolver; `batch_size` is
    forwarded to the encoder (a token budget may override it inside NV-Embed)."""

    def __init__(
        self, encoder: TextEncoder, resolve_prefix: PrefixResolver, batch_size: int = 32, overrides: Sequence[str] = ()
    ) -> None:
        self.encoder = encoder
        self.resolve_prefix = resolve_prefix
        self.batch_size = batch_size
        self.mteb_model_meta = build_model_meta(encoder, overrides)
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
        task, side = task_metadata.name, prompt_type.value if prompt_type is not None else None
        prefix = self.resolve_prefix(task, side)
        stats = self.task_stats.setdefault(task, TaskEncodeStats())
        stats.prefixes[side or "all"] = prefix
        tokens_before = _tokens_seen(self.encoder)
        vectors = self.encoder.encode(texts, prefix=prefix, batch_size=self.batch_size, task_name=task, side=side)
        stats.texts += len(texts)
        stats.tokens += _tokens_seen(self.encoder) - tokens_before
        if vectors.shape[0] != len(texts):
            returned = (
                f"{self.encoder.identity.name} returned {vectors.shape[0]} vectors for {len(texts)} texts in {task}"
            )
            raise EncodingError(f"{returned}; the model adapter must return one row per text")
        bad = np.flatnonzero(~np.isfinite(vectors).all(axis=1))
        if bad.size:
            where = f"input {int(bad[0])} of {task} ({side or 'all'} side, {bad.size} bad rows)"
            raise EncodingError(f"non-finite embedding for {where}; check model.dtype and the input text")
        return vectors

    def similarity(self, embeddings1: Any, embeddings2: Any) -> Any:
        """The wrapped mteb model's own similarity when there is one (e.g. sentence-transformers' configured one)."""
        inner = getattr(self.encoder, "mteb_model", None)
        return (super() if inner is None else inner).similarity(embeddings1, embeddings2)

    def similarity_pairwise(self, embeddings1: Any, embeddings2: Any) -> Any:
        inner = getattr(self.encoder, "mteb_model", None)
        return (super() if inner is None else inner).similarity_pairwise(embeddings1, embeddings2)


def _tokens_seen(encoder: TextEncoder) -> int:
    return int((getattr(encoder, "stats", None) or {}).get("tokens", 0))
