"""Atomic file writes: readers (and a rerun after SIGKILL) see the old file or the whole new one, never half."""

from __future__ import annotations

import contextlib
import os
import uuid
from pathlib import Path

TEMP_SUFFIX = ".partial"  # temp files carry it; readers skip them, `nvembed-eval-cache clear`/`prune` remove them


def atomic_write(path: Path, data: bytes) -> None:
    """Write `data` to `path` via a uniquely named temp file in the same folder, fsync, then `os.replace`.

    `os.replace` is atomic on POSIX filesystems (NFS included). On any failure the temp file is removed and the
    error re-raised.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:12]}{TEMP_SUFFIX}")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise
    # Make the rename itself durable; not every filesystem allows fsync on a folder, hence best effort.
    with contextlib.suppress(OSError):
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
