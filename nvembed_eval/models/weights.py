"""Strict loading, one rule for every model family: a model scores only with exactly the weights its checkpoint holds:
nothing missing (a missing tensor is left at its random initialisation), nothing unexpected (a renamed key is a
missing one in disguise), every shape equal. Libraries only warn about the first two; here they refuse the run."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from nvembed_eval.errors import CheckpointError
from nvembed_eval.io import parse_json
from nvembed_eval.models.safety import inside, pickle_refused

if TYPE_CHECKING:
    import torch

WEIGHTS, WEIGHTS_INDEX = "model.safetensors", "model.safetensors.index.json"
PICKLE_WEIGHTS, PICKLE_INDEX = "pytorch_model.bin", "pytorch_model.bin.index.json"
# Parameter names older checkpoints use and transformers renames on load (LayerNorm's TensorFlow-era names).
LEGACY_SUFFIXES = {".gamma": ".weight", ".beta": ".bias"}

Shapes = dict[str, tuple[int, ...]]


def weight_files(folder: Path, allow_pickle: bool = False, required: bool = True) -> tuple[list[Path], bool]:
    """The weight files of `folder` (a checkpoint or one sentence-transformers module folder: one file, or its index's
    shards, all inside `folder`) and whether they are pickle; `([], False)` when there are none and not `required`.
    CheckpointError: an unreadable index, a missing shard, pickle weights without `allow_pickle` (`model.allow_pickle`;
    refused whatever else the folder holds), or no weights at all when `required`."""
    for index_name, single, pickled in ((WEIGHTS_INDEX, WEIGHTS, False), (PICKLE_INDEX, PICKLE_WEIGHTS, True)):
        index = folder / index_name
        if index.is_file():
            try:
                weight_map = parse_json(index.read_text(encoding="utf-8"))["weight_map"]
                names = sorted(set(weight_map.values()), key=str)
            except (json.JSONDecodeError, KeyError, TypeError, AttributeError) as exc:
                raise CheckpointError(f"{index} is not a valid weight index ({exc}); restore it.") from None
            files = [inside(folder, name, f"{index_name} weight_map") for name in names]
        elif (folder / single).is_file():
            files = [folder / single]
        else:
            continue
        missing = [f.name for f in files if not f.is_file()]
        if missing:
            raise CheckpointError(f"{folder} is missing weight shard(s) {', '.join(missing)}; download them again.")
        if pickled and not allow_pickle:
            raise pickle_refused(folder, files[0].name)
        return files, pickled
    if not required:
        return [], False
    expected = f"expected {WEIGHTS} or {WEIGHTS_INDEX} with its shards"
    raise CheckpointError(f"{folder} has no weights: {expected}; download the checkpoint again.")


def stored_shapes(files: Iterable[Path], pickled: bool) -> Shapes:
    """Tensor name -> shape of the weight files: safetensors headers only (no weight bytes are read); pickle is read
    with `weights_only=True` (only after `allow_pickle`). CheckpointError: a file that is not readable safetensors."""
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
    """Refuse `module` (a meta-device one will do: only names and shapes are read) unless the tensors `stored`
    (`stored_shapes` of its weight files in `folder`) are exactly its `state_dict()` entries with their shapes (tied
    weights stored once); `what` names the model. Accepted besides: non-persistent buffers older checkpoints carry
    (BERT's `position_ids`), LayerNorm's legacy `gamma`/`beta`, and `base_model_prefix` on one side only (transformers
    loads both). CheckpointError: one line naming the folder and the first missing, unexpected and mismatched tensors.
    """
    expected = {k: tuple(v.shape) for k, v in module.state_dict().items()}
    optional = {name for name, _ in module.named_buffers()} - set(expected)
    stored = _aligned(stored, set(expected) | optional, getattr(module, "base_model_prefix", ""))
    aliases: dict[int, set[str]] = {}
    for name, param in module.named_parameters(remove_duplicate=False):
        aliases.setdefault(id(param), set()).add(name)
    tied = {name for group in aliases.values() if group & set(stored) for name in group}
    problems = {
        "missing keys": sorted(set(expected) - set(stored) - tied),
        "unexpected keys": sorted(set(stored) - set(expected) - optional),
        "shape mismatches": sorted(
            f"{k} {list(stored[k])} (model {list(expected[k])})"
            for k in set(expected) & set(stored)
            if stored[k] != expected[k]
        ),
    }
    found = [
        f"{kind}: {', '.join(names[:6])}" + (f" (+{len(names) - 6} more)" if len(names) > 6 else "")
        for kind, names in problems.items()
        if names
    ]
    if found:
        why = "a model with tensors left at random or ignored would give scores of other weights"
        mismatch = f"weights in {folder} do not match {what} ({'; '.join(found)})"
        raise CheckpointError(f"{mismatch}; {why}. Restore the checkpoint's original files.")


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
