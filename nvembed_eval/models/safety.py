"""Rules every model family applies before loading a checkpoint: no pickle unless allowed, and the names a checkpoint
file refers to (weight shards, module folders) stay inside the checkpoint folder.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path, PurePosixPath, PureWindowsPath

from nvembed_eval.errors import CheckpointError

# torch.save / pickle files as checkpoints name them (transformers, sentence-transformers, plain torch).
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt")
# What a hub download leaves out unless `model.allow_pickle=true` (and `*.py` never: no remote code runs).
PICKLE_PATTERNS = [f"*{suffix}" for suffix in PICKLE_SUFFIXES]


def pickle_refused(folder: Path, file_name: str) -> CheckpointError:
    """The one message for pickle weights found where `model.allow_pickle` is false, whatever the family."""
    return CheckpointError(
        f"{folder} holds only pickle weights ({file_name}); pickle can run code, so it is refused. Convert them to "
        "safetensors, or set model.allow_pickle=true if you trust the file (read with weights_only)."
    )


def refuse_pickle_folders(folders: Iterable[Path], allow_pickle: bool) -> None:
    """Raise `pickle_refused` for the first folder that holds pickle weights and no safetensors to load instead.

    Loaders (transformers, sentence-transformers modules) read `*.safetensors` when a folder has them and fall back to
    pickle otherwise, so a folder with both loads safetensors.
    """
    if allow_pickle:
        return
    for folder in folders:
        if not folder.is_dir():
            continue
        names = sorted(p.name for p in folder.iterdir() if p.is_file())
        pickled = [n for n in names if n.endswith(PICKLE_SUFFIXES)]
        if pickled and not any(n.endswith(".safetensors") for n in names):
            raise pickle_refused(folder, pickled[0])


def inside(folder: Path, name: object, source: str) -> Path:
    """`folder / name` for a relative name a checkpoint file refers to; refuse anything that leaves the folder.

    Names are checked, not link targets: a hub-cache snapshot's files are links into `../../blobs`, which is the
    cache's own layout.

    Args:
        folder: The checkpoint folder.
        name: The name as written in the referring file (a weight shard, a module folder).
        source: The referring file, for the error (e.g. "model.safetensors.index.json weight_map").

    Raises:
        CheckpointError: `name` is not a string, is absolute (POSIX or Windows), or has a `..` part.
    """
    text = name if isinstance(name, str) else None
    if (
        text is None
        or "\0" in text
        or PurePosixPath(text).is_absolute()
        or PureWindowsPath(text).anchor
        or ".." in PurePosixPath(text).parts
        or ".." in PureWindowsPath(text).parts
    ):
        raise CheckpointError(
            f"{folder / source.split()[0]} refers to {name!r} ({source}), which is outside the checkpoint folder; "
            "a checkpoint may only name files inside its own folder. Restore the checkpoint's original file."
        )
    return folder / text
