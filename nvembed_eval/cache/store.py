"""On-disk layer of the embedding cache: immutable, checksummed safetensors shards written atomically, one folder per
model identity, and their in-memory lookup index (sha256 keys -> (shard, row), as sorted numpy arrays); listing,
clearing and LRU pruning of the cache root."""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import stat
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from nvembed_eval.cache.claims import is_claim_file
from nvembed_eval.io import TEMP_SUFFIX, atomic_write, parse_json

logger = logging.getLogger(__name__)

FORMAT = "nvembed-eval-cache/1"
SHARD_PREFIX = "shard-"
SHARD_SUFFIX = ".safetensors"
PARTIAL_SUFFIX = TEMP_SUFFIX  # temp files; never read, removed by `clear` (and by `prune` once stale)
IDENTITY_FILE = "identity.json"
KEY_BYTES = 32  # a sha256 digest per cached text
MODEL_DIR_RE = re.compile(r"^[0-9a-f]{16}$")


class ShardCorrupt(Exception):
    """A shard failed a structural or checksum check. Internal: callers delete the file and recompute."""


class ShardForeign(Exception):
    """A shard is intact but not usable by this encoder (other format, identity or dimension). Internal."""


def model_folders(root: Path) -> list[Path]:
    """The model folders (16 hex digits) under the cache root, sorted; [] when there is no root."""
    return sorted(p for p in root.iterdir() if p.is_dir() and MODEL_DIR_RE.match(p.name)) if root.is_dir() else []


def _meta_digest(meta: dict[str, str]) -> str:
    body = {k: v for k, v in meta.items() if k != "meta_sha256"}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode("utf-8")).hexdigest()


def encode_shard(keys: np.ndarray, vectors: np.ndarray, identity_key: str) -> tuple[str, bytes]:
    """Serialize one shard. Returns (file name, bytes); the name is derived from the content checksums."""
    from safetensors.numpy import save

    keys = np.ascontiguousarray(keys, dtype=np.uint8)
    vectors = np.ascontiguousarray(vectors, dtype="<f4")
    meta = {"format": FORMAT, "identity_key": identity_key, "rows": str(keys.shape[0]), "dim": str(vectors.shape[1])}
    meta.update(keys_sha256=hashlib.sha256(keys).hexdigest(), vectors_sha256=hashlib.sha256(vectors).hexdigest())
    meta["meta_sha256"] = _meta_digest(meta)
    name_digest = hashlib.sha256((meta["keys_sha256"] + meta["vectors_sha256"]).encode("ascii")).hexdigest()
    return f"{SHARD_PREFIX}{name_digest[:32]}{SHARD_SUFFIX}", save({"keys": keys, "vectors": vectors}, metadata=meta)


def read_shard_keys(path: Path, identity_key: str, dim: int) -> np.ndarray:
    """Open a shard, check its header and the checksum of its keys, and return the keys (rows, 32) uint8. Raises
    ShardCorrupt (unreadable header, bad metadata checksum, shapes that disagree, keys checksum mismatch), ShardForeign
    (an intact shard of another format version, model identity or embedding size) or FileNotFoundError (the file
    vanished: another process cleared it)."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="numpy") as f:
            meta = f.metadata() or {}
            if meta.get("format") != FORMAT:
                raise ShardForeign(f"format {meta.get('format')!r}, expected {FORMAT!r}")
            if meta.get("meta_sha256") != _meta_digest(meta):
                raise ShardCorrupt("header checksum mismatch")
            if meta["identity_key"] != identity_key:
                raise ShardForeign(f"identity key {meta['identity_key'][:16]}... is not {identity_key[:16]}...")
            rows, file_dim = int(meta["rows"]), int(meta["dim"])
            if file_dim != dim:
                raise ShardForeign(f"embedding size {file_dim}, encoder has {dim}")
            kslice, vslice = f.get_slice("keys"), f.get_slice("vectors")
            layout = (list(kslice.get_shape()), kslice.get_dtype(), list(vslice.get_shape()), vslice.get_dtype())
            if layout != ([rows, KEY_BYTES], "U8", [rows, dim], "F32"):
                raise ShardCorrupt("tensor shapes or dtypes disagree with the header")
            keys = f.get_tensor("keys")
    except (SafetensorError, KeyError, ValueError) as e:
        raise ShardCorrupt(f"unreadable ({e})") from e
    if hashlib.sha256(np.ascontiguousarray(keys)).hexdigest() != meta["keys_sha256"]:
        raise ShardCorrupt("keys checksum mismatch")
    return keys


def read_shard_vectors(path: Path) -> np.ndarray:
    """Read all vectors (rows, dim) float32 of a shard and verify their checksum (the header was checked when the shard
    was indexed). Raises ShardCorrupt (unreadable file, checksum mismatch) or FileNotFoundError (vanished)."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="numpy") as f:
            meta = f.metadata() or {}
            vectors = f.get_tensor("vectors")
    except SafetensorError as e:
        raise ShardCorrupt(f"unreadable ({e})") from e
    if meta.get("meta_sha256") != _meta_digest(meta):
        raise ShardCorrupt("header checksum mismatch")
    if hashlib.sha256(np.ascontiguousarray(vectors)).hexdigest() != meta.get("vectors_sha256"):
        raise ShardCorrupt("vectors checksum mismatch")
    return vectors


class KeyIndex:
    """Maps 32-byte keys to (shard id, row). Sorted on the first 8 key bytes and searched with numpy, because a Python
    dict of tens of millions of keys (a full-benchmark corpus set) would cost gigabytes."""

    def __init__(self) -> None:
        self._parts: dict[int, np.ndarray] = {}
        self._sorted: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None = None

    def add(self, shard_id: int, keys: np.ndarray) -> None:
        self._parts[shard_id] = keys
        self._sorted = None

    def drop(self, shard_id: int) -> None:
        if self._parts.pop(shard_id, None) is not None:
            self._sorted = None

    def _build(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        if self._sorted is None:
            parts, no_ids = self._parts.items(), [np.empty(0, np.int64)]
            keys = np.concatenate([k for _, k in parts] or [np.empty((0, KEY_BYTES), np.uint8)])
            sids = np.concatenate([np.full(len(k), s, dtype=np.int64) for s, k in parts] or no_ids)
            rows = np.concatenate([np.arange(len(k), dtype=np.int64) for _, k in parts] or no_ids)
            head = _key_head(keys)
            order = np.argsort(head, kind="stable")
            self._sorted = (head[order], keys[order], sids[order], rows[order])
        return self._sorted

    def lookup(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Return (shard ids, rows) for each key; shard id -1 where the key is absent."""
        head, skeys, sids, srows = self._build()
        out_sid = np.full(len(keys), -1, dtype=np.int64)
        out_row = np.zeros(len(keys), dtype=np.int64)
        if len(head) == 0 or len(keys) == 0:
            return out_sid, out_row
        qhead = _key_head(keys)
        pos = np.searchsorted(head, qhead, side="left")
        posc = np.minimum(pos, len(head) - 1)
        cand = np.flatnonzero((pos < len(head)) & (head[posc] == qhead))
        exact = (skeys[posc[cand]] == keys[cand]).all(axis=1)
        out_sid[cand[exact]] = sids[posc[cand[exact]]]
        out_row[cand[exact]] = srows[posc[cand[exact]]]
        # Two distinct keys sharing their first 8 bytes: walk the run of equal heads (astronomically rare).
        for i in cand[~exact]:
            j = pos[i] + 1
            while j < len(head) and head[j] == qhead[i]:
                if (skeys[j] == keys[i]).all():
                    out_sid[i], out_row[i] = sids[j], srows[j]
                    break
                j += 1
        return out_sid, out_row


def _key_head(keys: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(keys[:, :8]).view(">u8").reshape(-1)


@dataclass
class ShardStore:
    """The shards of one model identity under `root/<identity_key[:16]>/`. Several processes may share the folder:
    shards are immutable and appear atomically, `refresh` picks up shards written by others, and a shard that vanishes
    between listing and reading is treated as a miss."""

    root: Path
    identity_key: str
    dim: int
    counters: dict[str, Any] = field(default_factory=dict)
    _names: list[str] = field(default_factory=list, init=False)
    _ids: dict[str, int] = field(default_factory=dict, init=False)
    _index: KeyIndex = field(default_factory=KeyIndex, init=False)

    @property
    def folder(self) -> Path:
        return self.root / self.identity_key[:16]

    def refresh(self) -> None:
        """Index shards that appeared since the last call. Raises OSError if the folder exists but is unreadable."""
        if not self.folder.is_dir():
            return
        for entry in sorted(os.listdir(self.folder)):
            if entry in self._ids or cache_file_kind(entry) != "shard":
                continue
            path = self.folder / entry
            try:
                keys = read_shard_keys(path, self.identity_key, self.dim)
            except FileNotFoundError:
                continue
            except ShardCorrupt as e:
                self._discard(path, str(e))
            except ShardForeign as e:
                logger.warning("embedding cache: ignoring %s: %s", path, e)
                self._ids[entry] = -1  # do not re-open it on every refresh
            else:
                self._register(entry, keys)

    def _register(self, name: str, keys: np.ndarray) -> None:
        self._ids[name] = len(self._names)
        self._names.append(name)
        self._index.add(self._ids[name], keys)

    def lookup(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(shard ids, rows) of each key of (n, 32) uint8 `keys`; shard id -1 where the key is absent."""
        return self._index.lookup(keys)

    def fill(self, sids: np.ndarray, rows: np.ndarray, out: np.ndarray) -> np.ndarray:
        """Copy the cached vectors of found keys (`lookup`'s output) into `out` (n, dim), shard by shard, verifying each
        shard's checksum. Returns the (n,) bool mask of rows filled; keys whose shard turned out corrupt or gone are
        left unfilled, so the caller recomputes them."""
        filled = np.zeros(len(sids), dtype=bool)
        found = np.flatnonzero(sids >= 0)
        found = found[np.argsort(sids[found], kind="stable")]  # grouped by shard, each shard read once
        for group in np.split(found, np.flatnonzero(np.diff(sids[found])) + 1) if len(found) else []:
            sid = int(sids[group[0]])
            path = self.folder / self._names[sid]
            try:
                vectors = read_shard_vectors(path)
            except FileNotFoundError:  # cleared by another process; index it again if it is ever rewritten
                self._index.drop(sid)
                self._ids.pop(self._names[sid], None)
                continue
            except ShardCorrupt as e:
                self._index.drop(sid)
                self._discard(path, str(e))
                continue
            # A hit is a use: the mtime is what `prune_root` evicts by. A read-only shared cache cannot record it.
            with contextlib.suppress(OSError):
                os.utime(path)
            out[group] = vectors[rows[group]]
            filled[group] = True
            self.counters["shards_reused"] = self.counters.get("shards_reused", 0) + 1
        return filled

    def write(self, keys: np.ndarray, vectors: np.ndarray, identity: dict[str, Any]) -> Path:
        """Store one shard atomically and index it. Raises OSError when the location is unwritable or full."""
        self.folder.mkdir(parents=True, exist_ok=True)
        ident_path = self.folder / IDENTITY_FILE
        if not ident_path.exists():
            atomic_write(ident_path, json.dumps(identity, sort_keys=True, indent=2, default=str).encode("utf-8"))
        name, data = encode_shard(keys, vectors, self.identity_key)
        path = self.folder / name
        atomic_write(path, data)
        if self._ids.get(name, -1) < 0:
            self._register(name, np.ascontiguousarray(keys, dtype=np.uint8))
        self.counters["shards_written"] = self.counters.get("shards_written", 0) + 1
        return path

    def _discard(self, path: Path, reason: str) -> None:
        self.counters["corrupt"] = self.counters.get("corrupt", 0) + 1
        logger.warning(
            "embedding cache: corrupt shard %s (%s); deleting it, its texts will be re-encoded", path, reason
        )
        try:
            path.unlink(missing_ok=True)
        except OSError as e:
            logger.warning("embedding cache: could not delete %s (%s); skipping it for this run", path, e)
            self._ids[path.name] = -1  # not re-opened (and re-warned) on every refresh
            return
        self._ids.pop(path.name, None)  # a sound copy written later under the same name gets indexed again


def scan_root(root: Path) -> list[dict[str, Any]]:
    """Summarize every model folder under `root` (no checksums are verified): key, identity, counts, bytes."""
    from safetensors import SafetensorError, safe_open

    out: list[dict[str, Any]] = []
    for folder in model_folders(root):
        info: dict[str, Any] = {"key": folder.name, "name": "?", "revision": "?", "shards": 0, "entries": 0}
        info.update(bytes=0, partial_files=0, partial_bytes=0, unreadable_shards=0)
        with contextlib.suppress(OSError, ValueError):
            ident = parse_json((folder / IDENTITY_FILE).read_text(encoding="utf-8"))
            info.update(name=ident.get("name", "?"), revision=ident.get("revision", "?"))
        for path in folder.iterdir():
            try:
                size = path.stat().st_size
            except OSError:
                continue
            info["bytes"] += size
            if path.name.endswith(PARTIAL_SUFFIX):
                info["partial_files"] += 1
                info["partial_bytes"] += size
            elif cache_file_kind(path.name) == "shard":
                try:
                    with safe_open(str(path), framework="numpy") as f:
                        info["entries"] += int((f.metadata() or {})["rows"])
                    info["shards"] += 1
                except (SafetensorError, KeyError, ValueError, OSError):
                    info["unreadable_shards"] += 1
        out.append(info)
    return out


def cache_file_kind(name: str) -> str | None:
    """The kind of a cache file ("shard", "identity", "partial", "claim") from its name; None if not ours."""
    if name == IDENTITY_FILE:
        return "identity"
    if name.endswith(PARTIAL_SUFFIX):
        return "partial"
    if is_claim_file(name):
        return "claim"
    return "shard" if name.startswith(SHARD_PREFIX) and name.endswith(SHARD_SUFFIX) else None


def clear_folder(folder: Path) -> tuple[int, int]:
    """Delete the cache files in one model folder (only files this module writes), then the folder if empty. Returns
    (files removed, bytes removed)."""
    n_files = n_bytes = 0
    for path in folder.iterdir():
        if cache_file_kind(path.name) is None or not path.is_file():
            continue
        size = path.stat().st_size
        path.unlink(missing_ok=True)
        n_files += 1
        n_bytes += size
    with contextlib.suppress(OSError):
        folder.rmdir()
    return n_files, n_bytes


@dataclass
class PruneSummary:
    """What `prune_root` removed (or, in a dry run, would remove) and the bytes of cache files left."""

    files_removed: int = 0  # shards, stale temp files and claims, and identity.json files
    bytes_removed: int = 0
    bytes_left: int = 0
    shards_removed: dict[str, int] = field(default_factory=dict)  # model key -> shards removed


def prune_root(root: Path, max_bytes: int, *, dry_run: bool = False, partial_age_s: float = 86400) -> PruneSummary:
    """Shrink the cache under `root` (`cache.dir`; only its 16-hex-digit model folders) to at most `max_bytes` of cache
    files. Temp files and chunk claims older than `partial_age_s` were left by killed writers and go first (younger ones
    may be a live writer's and stay); then shards, least recently used first (mtime: last write or hit, which
    `ShardStore.fill` records; ties by name), until shards + identity.json + temp files fit. A folder left with no
    shards loses its identity.json and is removed, unless a live writer's temp file or claim is in it. A file another
    process deleted meanwhile is no error (running jobs treat a vanished shard as a miss). `dry_run`: work out what
    would be removed, remove nothing. Raises ValueError when `max_bytes` is negative."""
    if max_bytes < 0:
        raise ValueError(f"max_bytes must be >= 0, got {max_bytes}")
    summary = PruneSummary()

    def remove(path: Path, size: int) -> bool:
        """Unlink (unless a dry run) and count it; False if another process removed it first."""
        if not dry_run:
            try:
                os.unlink(path)
            except FileNotFoundError:
                return False
        summary.files_removed += 1
        summary.bytes_removed += size
        return True

    stale_before = time.time_ns() - int(partial_age_s * 1e9)
    shards: list[tuple[int, str, str, int]] = []  # (mtime, name, model key, size): sorts least recently used first
    shards_left: dict[str, int] = {}
    identity_size: dict[str, int] = {}
    live_writer: set[str] = set()
    total = 0
    for folder in model_folders(root):
        shards_left[folder.name] = 0
        try:
            entries = list(os.scandir(folder))
        except FileNotFoundError:  # removed by another process meanwhile
            entries = []
        for entry in entries:
            kind, name = cache_file_kind(entry.name), entry.name
            try:
                st = entry.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue
            if kind is None or not stat.S_ISREG(st.st_mode):  # only this module's regular files
                continue
            if kind in ("partial", "claim") and st.st_mtime_ns < stale_before:
                remove(folder / name, st.st_size)
                continue
            total += st.st_size
            if kind in ("partial", "claim"):  # a job is writing into this folder
                live_writer.add(folder.name)
            elif kind == "identity":
                identity_size[folder.name] = st.st_size
            else:
                shards.append((st.st_mtime_ns, name, folder.name, st.st_size))
                shards_left[folder.name] += 1

    for _, name, key, size in sorted(shards):
        if total <= max_bytes:
            break
        if remove(root / key / name, size):
            summary.shards_removed[key] = summary.shards_removed.get(key, 0) + 1
        total -= size  # gone either way
        shards_left[key] -= 1

    for key, left in shards_left.items():
        if left or key in live_writer:
            continue
        if key in identity_size:
            remove(root / key / IDENTITY_FILE, identity_size[key])
            total -= identity_size[key]
        if not dry_run:
            with contextlib.suppress(OSError):  # unrelated files in it are kept, and so is the folder
                (root / key).rmdir()
    summary.bytes_left = total
    return summary
