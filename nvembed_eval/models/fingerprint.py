"""Folder fingerprints: a model loaded from a folder has no hub commit, so its identity hashes the files it loads."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path

# Whole-file hashing is exact but slow for 15 GB of shards; beyond this size we hash the safetensors header (every
# tensor name, dtype, shape and offset), the size, and evenly spaced 1 MiB blocks. Random or fine-tuned weights that
# differ anywhere but those blocks still differ in practically every block, so this separates real checkpoints.
_FULL_HASH_LIMIT = 512 * 1024 * 1024
_SAMPLE_BLOCKS = 64
_BLOCK = 1024 * 1024


def file_fingerprint(path: Path) -> str:
    """sha256 hex of a weights file (sampled for very large files, see module comment)."""
    size = path.stat().st_size
    digest = hashlib.sha256(str(size).encode())
    with path.open("rb") as handle:
        if size <= _FULL_HASH_LIMIT:
            for chunk in iter(lambda: handle.read(8 * _BLOCK), b""):
                digest.update(chunk)
        else:
            digest.update(handle.read(_BLOCK))  # safetensors header lives at the start
            for i in range(_SAMPLE_BLOCKS):
                handle.seek(size * i // _SAMPLE_BLOCKS)
                digest.update(handle.read(_BLOCK))
    return digest.hexdigest()


def files_fingerprint(folder: Path, files: Iterable[Path]) -> str:
    """Identity string "sha256:<16 hex>" over the given files of `folder`: their relative paths and contents.

    Pass every file the model reads (config, tokenizer, module configs, weights), so that changing any of them, not
    only the weights, changes the identity.

    Args:
        folder: The checkpoint folder; paths are hashed relative to it, so a copied folder keeps its fingerprint.
        files: Files inside `folder` (order and duplicates do not matter).
    """
    digest = hashlib.sha256()
    for path in sorted({Path(f) for f in files}, key=lambda p: p.relative_to(folder).as_posix()):
        digest.update(path.relative_to(folder).as_posix().encode())
        digest.update(file_fingerprint(path).encode())
    return "sha256:" + digest.hexdigest()[:16]


def weights_fingerprint(folder: Path, patterns: tuple[str, ...] = ("*.safetensors", "*.bin")) -> str:
    """`files_fingerprint` over every weights file below `folder` (weights only: prefer `files_fingerprint`)."""
    return files_fingerprint(folder, [p for pattern in patterns for p in folder.rglob(pattern)])
