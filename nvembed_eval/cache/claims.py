"""Claims on chunks of texts, so concurrent jobs sharing a cache split the encoding instead of repeating it: a claim is
a file created with O_EXCL next to the shards (`claim-<chunk>.json`: the owner's host and pid), touched every
`HEARTBEAT_S` while its owner encodes and deleted once the chunk's shard is stored. Another job encodes other chunks
first and reads the claimed one from the cache later. A claim whose owner died (same host, pid gone) or went silent
(`STALE_S`) is broken and taken over. Best effort: in a rare race two jobs encode the same chunk, as without claims,
and the stored vectors are identical either way."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import threading
import time
from pathlib import Path

from nvembed_eval.io import parse_json

logger = logging.getLogger(__name__)

CLAIM_PREFIX = "claim-"
CLAIM_SUFFIX = ".json"
HEARTBEAT_S = 30.0
STALE_S = 300.0  # ten missed heartbeats


def is_claim_file(name: str) -> bool:
    return name.startswith(CLAIM_PREFIX) and name.endswith(CLAIM_SUFFIX)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        pass
    return True


class Claim:
    """A held claim: a heartbeat thread keeps its file fresh until `release()`."""

    def __init__(self, path: Path, heartbeat_s: float) -> None:
        self.path = path
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, args=(heartbeat_s,), daemon=True, name="cache-claim")
        self._thread.start()

    def _beat(self, every: float) -> None:
        while not self._stop.wait(every):
            with contextlib.suppress(OSError):
                os.utime(self.path)

    def release(self) -> None:
        self._stop.set()
        self._thread.join()
        with contextlib.suppress(OSError):
            self.path.unlink(missing_ok=True)


class ChunkClaims:
    """Claims in one model folder of the cache."""

    def __init__(self, folder: Path, *, heartbeat_s: float = HEARTBEAT_S, stale_s: float = STALE_S) -> None:
        self.folder = folder
        self.heartbeat_s = heartbeat_s
        self.stale_s = stale_s
        self.host = socket.gethostname()

    def try_acquire(self, chunk_id: str) -> Claim | None:
        """The claim if this process got it; None while another live job holds it. Raises OSError if the folder cannot
        be written."""
        path = self.folder / f"{CLAIM_PREFIX}{chunk_id}{CLAIM_SUFFIX}"
        self.folder.mkdir(parents=True, exist_ok=True)
        for _ in range(2):  # a second try after breaking a stale claim
            try:
                fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                if not self._break_if_stale(path):
                    return None
                continue
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump({"host": self.host, "pid": os.getpid(), "since": time.time()}, handle)
            return Claim(path, self.heartbeat_s)
        return None

    def _break_if_stale(self, path: Path) -> bool:
        """Delete a claim whose owner is gone; True if it is gone now (deleted here, or released meanwhile)."""
        try:
            before = path.stat()
        except FileNotFoundError:
            return True
        try:
            owner = parse_json(path.read_text(encoding="utf-8") or "{}")
        except FileNotFoundError:
            return True
        except (OSError, ValueError):
            owner = {}  # being written right now, or unreadable: judge by age alone
        dead = owner.get("host") == self.host and isinstance(owner.get("pid"), int) and not _pid_alive(owner["pid"])
        silent = time.time() - before.st_mtime > self.stale_s
        if not (dead or silent):
            return False
        with contextlib.suppress(FileNotFoundError):
            now = path.stat()
            if (now.st_ino, now.st_mtime_ns) != (before.st_ino, before.st_mtime_ns):
                return False  # taken over or refreshed since we looked
            path.unlink()
            why = f"pid {owner['pid']} on this host is gone" if dead else f"no heartbeat for {self.stale_s:.0f} s"
            logger.info("embedding cache: took over the claim %s (%s)", path.name, why)
        return True
