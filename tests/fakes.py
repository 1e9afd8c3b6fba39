"""Models for tests that need vectors, not a model: deterministic, instant, no weights."""

from __future__ import annotations

import hashlib

import numpy as np
from mteb.models.abs_encoder import AbsEncoder
from mteb.models.model_meta import ModelMeta


class RandomEncoder(AbsEncoder):
    """A broken model: a fixed pseudo-random vector per text."""

    def __init__(self) -> None:
        self.mteb_model_meta = ModelMeta.create_empty(overwrites={"name": "test/random-vectors", "revision": "0"})

    def encode(self, inputs, *, task_metadata, hf_split, hf_subset, prompt_type=None, **kwargs):
        vectors = []
        for batch in inputs:
            for text in batch["text"]:
                seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")
                vectors.append(np.random.default_rng(seed).standard_normal(32))
        return np.asarray(vectors, dtype=np.float32)
