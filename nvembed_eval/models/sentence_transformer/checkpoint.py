"""What a sentence-transformers folder loads (root plus the module folders in `modules.json`): checks, fingerprint."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from nvembed_eval.errors import CheckpointError
from nvembed_eval.io import parse_json
from nvembed_eval.models.safety import PICKLE_PATTERNS, PICKLE_SUFFIXES, inside, pickle_refused
from nvembed_eval.models.weights import check_weights, stored_shapes, weight_files

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

MODULES = "modules.json"
# Hub download: configs, tokenizer files and safetensors weights of the root and of every module folder.
HUB_PATTERNS = ["*.json", "*.safetensors", "*.txt", "*.model", "*.tiktoken", "README.md"]


def hub_patterns(allow_pickle: bool) -> list[str]:
    """`allow_patterns` for a hub download: never `*.py`; pickle weights only with `model.allow_pickle=true`."""
    return HUB_PATTERNS + (PICKLE_PATTERNS if allow_pickle else [])


def module_paths(folder: Path) -> list[Path]:
    """The folder of each module, in the model's order (`modules.json`; without it, a plain transformers folder:
    `[folder]`, to which sentence-transformers adds mean pooling). CheckpointError when `modules.json` is unreadable
    or names a module folder outside `folder`."""
    modules = folder / MODULES
    if not modules.is_file():
        return [folder]
    try:
        entries = parse_json(modules.read_text(encoding="utf-8"))
        paths = [entry.get("path", "") for entry in entries]
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, AttributeError, TypeError) as exc:
        reason = str(exc).splitlines()[0]
        raise CheckpointError(f"{modules} is not a readable list of modules ({reason}); restore it.") from None
    return [inside(folder, path, f"{MODULES} module path") for path in paths]


def loaded_files(folder: Path) -> list[Path]:
    """Every file the model may read: the root's files (not walked into: `onnx/`, `openvino/` are other runtimes) and
    every non-hidden file below each module folder (`Router` keeps its sub-modules there)."""
    files: set[Path] = set()
    for module in dict.fromkeys([folder, *module_paths(folder)]):
        if not module.is_dir():
            continue  # e.g. `2_Normalize`: a module with nothing to store has no folder
        candidates = module.iterdir() if module == folder else module.rglob("*")
        files.update(p for p in candidates if p.is_file() and not p.name.startswith("."))
    return sorted(files)


def check_folder(folder: Path, allow_pickle: bool, key: str = "model.path") -> list[Path]:
    """Refuse what this project never loads before sentence-transformers reads anything (CheckpointError: no model
    folder, a module outside it, or a module whose weights are pickle without model.allow_pickle=true — a stray
    other `*.safetensors` beside them does not count); returns `loaded_files(folder)`."""
    if not (folder / MODULES).is_file() and not (folder / "config.json").is_file():
        fix = "point it at the model folder (or a hub id) and download the model again if files are missing."
        neither = f"{folder} <{key}> holds neither {MODULES} nor config.json"
        raise CheckpointError(f"{neither}, so it is no sentence-transformers model; {fix}")
    for module in dict.fromkeys([folder, *module_paths(folder)]):
        files, _ = weight_files(module, allow_pickle, required=False)
        pickled = sorted(p.name for p in module.glob("*") if p.suffix in PICKLE_SUFFIXES) if module.is_dir() else []
        if pickled and not files and not allow_pickle:  # a custom module's own pickle file: never read either
            raise pickle_refused(module, pickled[0])
    return loaded_files(folder)


def check_loaded(model: SentenceTransformer, folder: Path, allow_pickle: bool) -> None:
    """Strict loading (`weights.check_weights`) for each module of a loaded sentence-transformers model against its
    folder's weight files (CheckpointError, one line naming the offenders): the library leaves a missing or renamed
    tensor at random initialisation and says so only in a warning."""
    for module, path in zip(model, module_paths(folder), strict=False):
        target = getattr(module, "auto_model", module)  # the transformers model inside a Transformer module
        files, pickled = weight_files(path, allow_pickle, required=False)
        stored = stored_shapes(files, pickled)
        if stored or target.state_dict():
            check_weights(target, stored, path, f"its {type(module).__name__} module ({type(target).__name__})")
