"""Content digests of files and folders: what a result's provenance and a model's identity record about the bytes
they were made from. Exact sha256 over every byte; nothing is sampled.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

_CHUNK = 8 * 1024 * 1024


def file_sha256(path: Path) -> str:
    """sha256 hex digest of one file's bytes.

    Raises:
        OSError: the file cannot be read.
    """
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def folder_sha256(root: Path) -> str:
    """sha256 hex digest over every regular file below `root`: relative path and content, in sorted path order.

    Hidden files and folders (a leading ".", e.g. `.DS_Store`, `.git/`) are skipped: tools write them without
    touching the data. Renaming, adding, removing or editing any other file changes the digest; moving the whole
    folder does not. Symlinks are followed (a Hugging Face cache snapshot links into its blobs).

    Raises:
        OSError: a file cannot be read.
    """
    digest = hashlib.sha256()
    files = sorted(
        p
        for p in root.rglob("*")
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(root).parts)
    )
    for path in files:
        name = path.relative_to(root).as_posix().encode("utf-8")
        digest.update(len(name).to_bytes(8, "little") + name)
        digest.update(bytes.fromhex(file_sha256(path)))
    return digest.hexdigest()
