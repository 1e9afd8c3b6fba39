"""What a sentence-transformers folder loads: the root (config, tokenizer, weights, `modules.json`) plus each module
folder `modules.json` names (`1_Pooling/`, `2_Dense/`, ...). Used for its checks and its fingerprint.
"""

from __future__ import annotations

import json
from pathlib import Path

from nvembed_eval.errors import CheckpointError
from nvembed_eval.models.safety import PICKLE_PATTERNS, inside, refuse_pickle_folders

MODULES = "modules.json"
# Hub download: configs, tokenizer files and safetensors weights of the root and of every module folder.
HUB_PATTERNS = ["*.json", "*.safetensors", "*.txt", "*.model", "*.tiktoken", "README.md"]


def hub_patterns(allow_pickle: bool) -> list[str]:
    """`allow_patterns` for a hub download: never `*.py`; pickle weights only with `model.allow_pickle=true`."""
    return HUB_PATTERNS + (PICKLE_PATTERNS if allow_pickle else [])


def module_folders(folder: Path) -> list[Path]:
    """The folders the model loads from: `folder` itself and each module path in `modules.json` (when present).

    Raises:
        CheckpointError: `modules.json` is unreadable, or names a module folder outside `folder`.
    """
    modules = folder / MODULES
    if not modules.is_file():
        return [folder]  # a plain transformers folder: sentence-transformers adds mean pooling
    try:
        entries = json.loads(modules.read_text(encoding="utf-8"))
        paths = [entry.get("path", "") for entry in entries]
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, AttributeError, TypeError) as exc:
        raise CheckpointError(
            f"{modules} is not a readable list of modules ({str(exc).splitlines()[0]}); restore it."
        ) from None
    found = [folder]
    for path in paths:
        module = inside(folder, path, f"{MODULES} module path")
        if module not in found:
            found.append(module)
    return found


def loaded_files(folder: Path) -> list[Path]:
    """Every file the model may read: the root's files, and every file below each module folder (hidden ones aside).

    The root is not walked into (`onnx/`, `openvino/` are other runtimes); module folders are, since modules such as
    `Router` keep their own sub-modules there.
    """
    files: set[Path] = set()
    for module in module_folders(folder):
        if not module.is_dir():
            continue  # e.g. `2_Normalize`: a module with nothing to store has no folder
        candidates = module.iterdir() if module == folder else module.rglob("*")
        files.update(p for p in candidates if p.is_file() and not p.name.startswith("."))
    return sorted(files)


def check_folder(folder: Path, allow_pickle: bool, key: str = "model.path") -> list[Path]:
    """Refuse what this project never loads, before sentence-transformers reads anything.

    Returns:
        `loaded_files(folder)`, for the fingerprint.

    Raises:
        CheckpointError: not a model folder, a module outside the folder, or pickle weights without
            `model.allow_pickle=true` (`safety.pickle_refused`, the same message for every family).
    """
    if not (folder / MODULES).is_file() and not (folder / "config.json").is_file():
        raise CheckpointError(
            f"{folder} <{key}> holds neither {MODULES} nor config.json, so it is no sentence-transformers model; "
            "point it at the model folder (or a hub id) and download the model again if files are missing."
        )
    refuse_pickle_folders(module_folders(folder), allow_pickle)
    return loaded_files(folder)
