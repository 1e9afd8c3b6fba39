"""Strict loading, one rule for every model family: a model scores only with exactly the weights its checkpoint holds.

Which files hold a folder's weights (the transformers layout: `model.safetensors` or its index's shards; pickle only
when allowed), what tensors they hold (read from the headers, no weight bytes), and whether a model got exactly those:
nothing missing (a missing tensor is left at its random initialisation), nothing unexpected (a renamed key is a
missing one in disguise), every shape equal. Libraries only warn about the first two; here they refuse the run.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from nvembed_eval.errors import CheckpointError
from nvembed_eval.models.safety import inside, pickle_refused

if TYPE_CHECKING:
    import torch

WEIGHTS, WEIGHTS_INDEX = "model.safetensors", "model.safetensors.index.json"
PICKLE_WEIGHTS, PICKLE_INDEX = "pytorch_model.bin", "pytorch_model.bin.index.json"
# Parameter names older checkpoints use and transformers renames on load (LayerNorm's TensorFlow-era names).
LEGACY_SUFFIXES = {".gamma": ".weight", ".beta": ".bias"}

Shapes = dict[str, tuple[int, ...]]


def weight_files(folder: Path, allow_pickle: bool = False, required: bool = True) -> tuple[list[Path], bool]:
    """The weight files of `folder` (one file, or its index's shards, all inside `folder`) and whether they are pickle.

    Args:
        folder: a checkpoint folder, or one module folder of a sentence-transformers model.
        allow_pickle: `model.allow_pickle`; pickle is otherwise refused whatever else the folder holds.
        required: False for a module folder that may have no weights (`([], False)` then).

    Raises:
        CheckpointError: an unreadable index, a missing shard, pickle weights without `allow_pickle`, or no weights
            at all when `required`.
    """
    for index_name, single, pickled in ((WEIGHTS_INDEX, WEIGHTS, False), (PICKLE_INDEX, PICKLE_WEIGHTS, True)):
        index, files = folder / index_name, None
        if index.is_file():
            try:
                weight_map = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
                names = sorted(set(weight_map.values()), key=str)
            except (json.JSONDecodeError, KeyError, TypeError, AttributeError) as exc:
                raise CheckpointError(f"{index} is not a valid weight index ({exc}); restore it.") from None
            files = [inside(folder, name, f"{index_name} weight_map") for name in names]
        elif (folder / single).is_file():
            files = [folder / single]
        if files is None:
            continue
        missing = [f.name for f in files if not f.is_file()]
        if missing:
            raise CheckpointError(f"{folder} is missing weight shard(s) {', '.join(missing)}; download them again.")
        if pickled and not allow_pickle:
            raise pickle_refused(folder, files[0].name)
        return files, pickled
    if not required:
        return [], False
    raise CheckpointError(
        f"{folder} has no weights: expected {WEIGHTS} or {WEIGHTS_INDEX} with its shards; download the checkpoint "
        "again."
    )


def stored_shapes(files: Iterable[Path], pickled: bool) -> Shapes:
    """Tensor name -> shape of the weight files: safetensors headers only (no weight bytes are read); pickle is read
    with `weights_only=True` (only after `allow_pickle`).

    Raises:
        CheckpointError: a file that is no readable safetensors file.
    """
    if pickled:
        return {k: tuple(v.shape) for f in files for k, v in read_pickle(f).items()}
    from safetensors import safe_open

    shapes: Shapes = {}
    for f in files:
        try:
            with safe_open(str(f), framework="pt") as handle:
                for key in handle.keys():  # noqa: SIM118 - safe_open is not a dict
                    shapes[key] = tuple(handle.get_slice(key).get_shape())
        except Exception as exc:  # safetensors raises its own SafetensorError
            raise CheckpointError(f"{f} is not a readable safetensors file ({exc}); download it again.") from None
    return shapes


def read_pickle(path: Path) -> dict[str, torch.Tensor]:
    import torch

    return torch.load(path, map_location="cpu", weights_only=True)


def check_weights(module: torch.nn.Module, stored: Shapes, folder: Path, what: str) -> None:
    """Refuse `module` unless the checkpoint tensors `stored` are exactly the ones it needs.

    Needed: every entry of `module.state_dict()` (parameters and persistent buffers), with the shape it has; names
    that share one tensor (tied weights) need it stored once. Accepted besides: non-persistent buffers that older
    checkpoints still carry (BERT's `position_ids`), LayerNorm's legacy `gamma`/`beta`, and the model's
    `base_model_prefix` present on one side only (transformers loads both).

    Args:
        module: the model as built (a meta-device module will do: only names and shapes are read).
        stored: `stored_shapes` of its weight files. folder: where they are. what: the model, for the message.

    Raises:
        CheckpointError: one line naming the folder and the first missing, unexpected and mismatched tensors.
    """
    expected = {k: tuple(v.shape) for k, v in module.state_dict().items()}
    optional = {name for name, _ in module.named_buffers()} - set(expected)
    stored = _aligned(stored, set(expected) | optional, getattr(module, "base_model_prefix", ""))
    aliases: dict[int, set[str]] = {}
    for name, param in module.named_parameters(remove_duplicate=False):
        aliases.setdefault(id(param), set()).add(name)
    tied = {name for group in aliases.values() if group & set(stored) for name in group}
    missing = sorted(set(expected) - set(stored) - tied)
    unexpected = sorted(set(stored) - set(expected) - optional)
    mismatched = sorted(
        f"{k} {list(stored[k])} (model {list(expected[k])})"
        for k in set(expected) & set(stored)
        if stored[k] != expected[k]
    )
    problems = {"missing keys": missing, "unexpected keys": unexpected, "shape mismatches": mismatched}
    found = [f"{kind}: {_listing(names)}" for kind, names in problems.items() if names]
    if found:
        raise CheckpointError(
            f"weights in {folder} do not match {what} ({'; '.join(found)}); a model with tensors left at random or "
            "ignored would give scores of other weights. Restore the checkpoint's original files."
        )


def _aligned(stored: Shapes, known: set[str], prefix: str) -> Shapes:
    """`stored` with names as the model spells them: legacy LayerNorm names, and a base-model prefix on one side."""
    out: Shapes = {}
    for name, shape in stored.items():
        for old, new in LEGACY_SUFFIXES.items():
            if name.endswith(old) and name not in known and name[: -len(old)] + new in known:
                name = name[: -len(old)] + new
        out[name] = shape
    head = f"{prefix}." if prefix else ""
    if head and not known & set(out):
        if all(k.startswith(head) for k in out):
            return {k[len(head) :]: v for k, v in out.items()}
        if all(k.startswith(head) for k in known):
            return {head + k: v for k, v in out.items()}
    return out


def _listing(names: list[str], limit: int = 6) -> str:
    return ", ".join(names[:limit]) + (f" (+{len(names) - limit} more)" if len(names) > limit else "")
