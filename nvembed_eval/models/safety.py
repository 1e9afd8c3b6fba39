"""Rules every model family applies before loading a checkpoint: no pickle unless allowed, and the names a checkpoint
file refers to (weight shards, module folders) stay inside the checkpoint folder."""

from __future__ import annotations

from pathlib import Path, PurePosixPath, PureWindowsPath

from nvembed_eval.errors import CheckpointError

# torch.save / pickle files as checkpoints name them (transformers, sentence-transformers, plain torch).
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt")
# What a hub download leaves out unless `model.allow_pickle=true` (and `*.py` never: no remote code runs).
PICKLE_PATTERNS = [f"*{suffix}" for suffix in PICKLE_SUFFIXES]


def pickle_refused(folder: Path, file_name: str) -> CheckpointError:
    """The one message for pickle weights found where `model.allow_pickle` is false, whatever the family."""
    return CheckpointError(
        f"{folder} holds pickle weights ({file_name}) and no model.safetensors; pickle can run code, so it is "
        "refused. Convert them to safetensors, or set model.allow_pickle=true if you trust the file (read with "
        "weights_only)."
    )


def inside(folder: Path, name: object, source: str) -> Path:
    """`folder / name` for a relative name that `source` (a file in `folder`, e.g. "model.safetensors.index.json
    weight_map") refers to. CheckpointError when `name` is not a string, is absolute (POSIX or Windows) or has a `..`
    part. Names are checked, not link targets: a hub-cache snapshot's files are links into `../../blobs`."""
    pure = (PurePosixPath(name), PureWindowsPath(name)) if isinstance(name, str) and "\0" not in name else None
    if pure is None or pure[0].is_absolute() or pure[1].anchor or any(".." in p.parts for p in pure):
        rule = "a checkpoint may only name files inside its own folder. Restore the checkpoint's original file."
        outside = f"{folder / source.split()[0]} refers to {name!r} ({source}), which is outside the checkpoint folder"
        raise CheckpointError(f"{outside}; {rule}")
    return folder / name
