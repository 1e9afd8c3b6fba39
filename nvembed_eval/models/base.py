"""The one protocol every model family implements: encode texts with an already-templated instruction prefix."""

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
    """What makes two models' embeddings interchangeable: `name` and `revision` (mteb keys its results by them) and
    `knobs`, every setting that changes the vectors. `key()` keys the embedding cache and the results folder."""

    name: str  # "org/model" form, as mteb expects
    revision: str  # 40-hex hub commit of the loaded snapshot, or "sha256:<16 hex>" over every file a folder loads
    knobs: dict[str, Any] = field(default_factory=dict)

    def record(self) -> dict[str, Any]:
        """The identity as run.json and every result's provenance record it: name, revision, knobs, identity_key."""
        return {"name": self.name, "revision": self.revision, "knobs": self.knobs, "identity_key": self.key()}

    def experiment_kwargs(self, overrides: Iterable[str]) -> dict[str, str] | None:
        """mteb's `experiment_kwargs`: the knobs set on the command line (`model.<knob>=...`, as run.json records
        the overrides), as text; None when there is none. mteb files results with experiment kwargs apart from the
        model's own (`ResultCache.load_results` skips them by default), so a plain reproduction records none."""
        changed = {o.lstrip("+~").split("=", 1)[0].removeprefix("model.") for o in overrides if "=" in o}
        return {k: str(v) for k, v in sorted(self.knobs.items()) if k in changed} or None

    def key(self) -> str:
        payload = {"name": self.name, "revision": self.revision, "knobs": self.knobs}
        return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode("utf-8")).hexdigest()


@runtime_checkable
class TextEncoder(Protocol):
    """A model family adapter: `encode` gets raw texts and the literal, already templated prefix ("" for none) and
    returns float32 (len(texts), dim), row i for texts[i]. `task_name` (the mteb task) and `side` ("query", "document",
    None) matter only when the model applies its own prompts (`instruction_template()` is None and it has a
    `prompt_key(task_name, side)`, as mteb registry models do); then `prefix` is that key, which keys cache and
    provenance."""

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
        """Template with an `{instruction}` placeholder; None = the harness prepends no instruction."""


def planned_instruction_template(model_config: Mapping[str, Any]) -> str | None:
    """The instruction template a model config would use, without loading the model (`plan=true`), from the static
    `template_for_config(config)` of its `_target_` class; ConfigError if that cannot be imported or has none."""
    target = str(model_config.get("_target_") or "")
    module, _, name = target.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError, ValueError):
        raise ConfigError(f"cannot import the model class <model._target_={target}>; fix the model YAML") from None
    planner = getattr(cls, "template_for_config", None)
    if planner is None:
        why = "so plan=true cannot tell its instruction prefixes without loading it"
        raise ConfigError(f"{target} has no template_for_config, {why}; add that static method to the adapter")
    return planner(dict(model_config))


def folder_revision(folder: Path, files: Iterable[Path]) -> str:
    """The revision of a folder (no hub commit): "sha256:<16 hex>" over every file it loads, paths and all bytes. Each
    file's digest is remembered by (path, size, mtime, ctime, inode): a 15 GB checkpoint is read once (`io`)."""
    return "sha256:" + files_sha256(folder, files, salted=True, remember=True)[:16]


def check_length(value: int, limit: int | None, key: str, model: str) -> None:
    """Refuse (ConfigError, one line naming both and the key) a length setting `value` above the `limit` the model can
    embed, when the model is loaded and before any data is read (past its position embeddings a model fails mid-run,
    or embeds garbage)."""
    if limit is not None and int(value) > limit:
        raise ConfigError(f"<{key}={value}> is more than {model} can embed ({limit} tokens); use {key}={limit} or less")
