"""The one protocol every model family implements: encode texts with an already-templated instruction prefix.

Templating (which instruction, which side, which template) happens in `nvembed_eval.tasks.instructions`; caching in
`nvembed_eval.cache`; the bridge to mteb's encoder protocol in `nvembed_eval.models.mteb_adapter`.
"""

from __future__ import annotations

import hashlib
import importlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from nvembed_eval.errors import ConfigError
from nvembed_eval.io import files_sha256

if TYPE_CHECKING:
    import numpy as np


@dataclass(frozen=True)
class ModelIdentity:
    """What makes two models' embeddings interchangeable.

    `name` and `revision` feed mteb's result metadata (mteb keys its result cache by them); `knobs` holds every
    setting that changes the vectors (dtype, max_length, pooling, ...). `key()` is what the embedding cache and the
    results folder use, so two models that differ in any of these never share a result or a cached vector.
    """

    name: str  # "org/model" form, as mteb expects
    revision: str  # 40-hex hub commit of the loaded snapshot, or "sha256:<16 hex>" over every file a folder loads
    knobs: dict[str, Any] = field(default_factory=dict)

    def record(self) -> dict[str, Any]:
        """The identity as run.json and every result's provenance record it: name, revision, knobs, identity_key."""
        return {"name": self.name, "revision": self.revision, "knobs": self.knobs, "identity_key": self.key()}

    def key(self) -> str:
        """Stable hex digest over name, revision and knobs."""
        payload = json.dumps(
            {"name": self.name, "revision": self.revision, "knobs": self.knobs}, sort_keys=True, default=str
        )
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()


@runtime_checkable
class TextEncoder(Protocol):
    """A model family adapter.

    `encode` receives raw texts and the literal prefix to prepend (already templated; "" for none). It returns a
    float32 array of shape (len(texts), dim), row i for texts[i], in the caller's order. `task_name` (the mteb task)
    and `side` ("query", "document" or None) say what is being encoded; families whose prompts the model applies
    itself (`instruction_template()` is None and a `prompt_key(task_name, side)` method exists, as for mteb registry
    models) need them, and then `prefix` is that `prompt_key`, which keys the cache and the provenance. Other
    families ignore them.
    """

    identity: ModelIdentity
    embed_dim: int
    max_tokens: int | None

    def encode(
        self,
        texts: Sequence[str],
        *,
        prefix: str = "",
        batch_size: int = 32,
        task_name: str | None = None,
        side: str | None = None,
    ) -> np.ndarray: ...

    def instruction_template(self) -> str | None:
        """Template applied to an instruction, with `{instruction}` placeholder ("{instruction}" = verbatim); None =
        no instruction is prepended by the harness."""
        ...


def planned_instruction_template(model_config: Mapping[str, Any]) -> str | None:
    """The instruction template a model config would use, told without loading the model (for `plan=true`).

    The adapter class named by the config's `_target_` answers through its static `template_for_config(config)`.

    Raises:
        ConfigError: the class cannot be imported, or has no `template_for_config`.
    """
    target = str(model_config.get("_target_") or "")
    module, _, name = target.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError, ValueError):
        raise ConfigError(f"cannot import the model class <model._target_={target}>; fix the model YAML") from None
    planner = getattr(cls, "template_for_config", None)
    if planner is None:
        raise ConfigError(
            f"{target} has no template_for_config, so plan=true cannot tell its instruction prefixes without "
            "loading it; add that static method to the adapter"
        )
    return planner(dict(model_config))


def folder_revision(folder: Path, files: Iterable[Path]) -> str:
    """The revision of a model loaded from a folder, which has no hub commit: "sha256:<16 hex>" over every file it
    loads (config, tokenizer, module configs, weights), their paths relative to `folder` and every byte of each.

    Nothing is sampled: two checkpoints that differ in any byte differ here. Each file's digest is remembered by
    (path, size, mtime, ctime, inode), so a 15 GB checkpoint is read once, not on every run (`io.file_sha256`).
    """
    return "sha256:" + files_sha256(folder, files, salted=True, remember=True)[:16]
