"""Weights fingerprints: a model loaded from a folder has no hub revision, so its identity is a hash of its weights."""

from __future__ import annotations

import hashlib
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


def weights_fingerprint(folder: Path, patterns: tuple[str, ...] = ("*.safetensors", "*.bin")) -> str:
    """Identity string "sha256:<16 hex>" over every weights file below `folder` (sorted by relative path)."""
    files = sorted({p for pattern in patterns for p in folder.rglob(pattern)})
    digest = hashlib.sha256()
    for weights in files:
        digest.update(str(weights.relative_to(folder)).encode())
        digest.update(file_fingerprint(weights).encode())
    return "sha256:" + digest.hexdigest()[:16]
