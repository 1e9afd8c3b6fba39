"""Content-addressed embedding cache around any `TextEncoder`, and the `cache.*` settings it reads; docs/cache.md
describes keys, formats, sharing and the size cap."""

from __future__ import annotations

import hashlib
import logging
import os
import sys
import time
from collections import deque
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from nvembed_eval.cache.claims import ChunkClaims
from nvembed_eval.cache.store import FORMAT, KEY_BYTES, ShardStore
from nvembed_eval.errors import EncodingError
from nvembed_eval.io import ProgressLine

if TYPE_CHECKING:
    from nvembed_eval.models.base import ModelIdentity, TextEncoder

logger = logging.getLogger(__name__)

ENV_VAR = "NVEMBED_EVAL_CACHE"
CLAIM_POLL_S = 2.0  # how often a job whose remaining chunks are all claimed looks for the other jobs' shards
CLAIM_MAX_WAIT_S = 1800.0  # with no chunk done anywhere for this long, stop deferring to other jobs' claims


def default_cache_dir() -> Path:
    """`$NVEMBED_EVAL_CACHE`, else `~/.cache/nvembed-eval/embeddings`."""
    env = os.environ.get(ENV_VAR)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "nvembed-eval" / "embeddings"


def text_keys(identity_key: str, prefix: str, texts: Sequence[str]) -> np.ndarray:
    """One sha256 per text over (format, `ModelIdentity.key()` of the encoder, the literal prefix it prepends, raw
    text), as a (len(texts), 32) uint8 array. The prefix length is hashed before the prefix, so moving characters
    between prefix and text changes the key (it matters to models that mask the instruction out of pooling)."""
    base = hashlib.sha256()
    prefix_bytes = prefix.encode("utf-8")
    for part in (FORMAT.encode("ascii"), identity_key.encode("ascii")):
        base.update(len(part).to_bytes(8, "little") + part)
    base.update(len(prefix_bytes).to_bytes(8, "little") + prefix_bytes)
    out = bytearray(KEY_BYTES * len(texts))
    for i, text in enumerate(texts):
        h = base.copy()
        h.update(text.encode("utf-8"))
        out[i * KEY_BYTES : (i + 1) * KEY_BYTES] = h.digest()
    return np.frombuffer(bytes(out), dtype=np.uint8).reshape(len(texts), KEY_BYTES)


def _chunk_id(chunk_keys: np.ndarray) -> str:
    """Names a chunk by its texts' keys, so every job encoding the same chunk names it alike."""
    return hashlib.sha256(np.ascontiguousarray(chunk_keys).tobytes()).hexdigest()[:32]


class CachedEncoder:
    """A `TextEncoder` that serves embeddings from an on-disk cache and encodes only what is missing: the unique texts
    are cut into chunks of `shard_size` (`cache.shard_size`), each chunk's misses stored as one shard once encoded, so a
    run killed mid-corpus resumes from the last finished shard and concurrent jobs claim chunks to split shared work
    (`cache.claims`). Cached vectors are the exact float32 the wrapped encoder returned. An unwritable cache location
    (permission, full disk) logs one warning and the run continues without storing (`counters["disabled_reason"]`
    says why). `cache_dir` is `cache.dir` (entries go to `cache_dir/<identity.key()[:16]>/`); `enabled=False`
    (`cache.enabled`) makes it a plain pass-through."""

    def __init__(
        self, encoder: TextEncoder, cache_dir: str | os.PathLike[str], *, enabled: bool = True, shard_size: int = 2048
    ) -> None:
        self._encoder = encoder
        self.cache_dir = Path(cache_dir).expanduser().absolute()
        self.enabled = bool(enabled)
        self.shard_size = shard_size
        self.counters: dict[str, Any] = {
            "hits": 0,  # unique texts served from the cache
            "misses": 0,  # unique texts this process encoded
            "from_peers": 0,  # unique texts missing at first, then stored meanwhile by a concurrent job
            "claim_waits": 0,  # pauses while every remaining chunk was claimed by other jobs
            "duplicates": 0,  # repeats inside one call, served from the first occurrence
            "encode_calls": 0,  # calls to the wrapped encoder
            "shards_written": 0,
            "shards_reused": 0,  # shard files read to serve hits
            "corrupt": 0,  # shard files that failed a check and were deleted
            "disabled_reason": None if self.enabled else "cache.enabled=false",
        }
        self._store: ShardStore | None = None
        self._writable = self.enabled
        self._readable = self.enabled

    @property
    def identity(self) -> ModelIdentity:
        return self._encoder.identity

    @property
    def embed_dim(self) -> int:
        return self._encoder.embed_dim

    @property
    def max_tokens(self) -> int | None:
        return getattr(self._encoder, "max_tokens", None)

    def instruction_template(self) -> str | None:
        return self._encoder.instruction_template()

    def __getattr__(self, name: str) -> Any:
        # The rest (`stats`, ...; AttributeError as for the bare encoder when it has none). Only reached for
        # attributes not defined here; the `_encoder` guard keeps copy/pickle from recursing.
        if name.startswith("__") or "_encoder" not in self.__dict__:
            raise AttributeError(name)
        return getattr(self._encoder, name)

    @property
    def model_dir(self) -> Path:
        """Folder holding this encoder's shards."""
        return self.cache_dir / self.identity.key()[:16]

    def encode(self, texts: Sequence[str], *, prefix: str = "", batch_size: int = 32, **context: Any) -> np.ndarray:
        """Embed raw `texts` with `prefix` prepended, from the cache where possible: float32 (len(texts), embed_dim),
        row i for texts[i]. `prefix`: the literal, templated prefix ("" for none), part of the cache key (for a model
        that applies its own prompts, its `prompt_key(task_name, side)`, which says all they do). `batch_size` and
        `context` (`task_name`, `side`) go to the wrapped encoder as given; the context is not part of the key."""
        if not self.enabled:
            return self._encoder.encode(texts, prefix=prefix, batch_size=batch_size, **context)
        position: dict[str, int] = {}
        inverse = np.fromiter((position.setdefault(t, len(position)) for t in texts), dtype=np.int64, count=len(texts))
        unique = list(position)
        self.counters["duplicates"] += len(texts) - len(unique)
        out = np.empty((len(unique), self.embed_dim), dtype=np.float32)
        keys = text_keys(self.identity.key(), prefix, unique)
        filled = np.zeros(len(unique), dtype=bool)
        if self._store is None and self._readable:
            self._store = ShardStore(self.cache_dir, self.identity.key(), self.embed_dim, self.counters)
        if self._store is not None and self._readable and len(unique):
            try:
                self._store.refresh()
                filled = self._store.fill(*self._store.lookup(keys), out)
            except OSError as e:
                self._disable(e, reads=True)
        # Under torchrun every rank runs this call and the wrapped encoder runs collectives: all ranks must encode
        # the same misses, so a text counts as a hit only if every rank found it.
        missing = ~_on_every_rank(filled)
        cached = len(unique) - int(missing.sum())
        self.counters["hits"] += cached
        todo = len(unique) - cached
        logger.info(
            "embedding cache: %d texts, %d unique, %d cached, %d to encode", len(texts), len(unique), cached, todo
        )
        self._encode_misses(unique, missing, keys, out, {"prefix": prefix, "batch_size": batch_size, **context})
        return out[inverse]

    def _encode_misses(
        self, unique: list[str], missing: np.ndarray, keys: np.ndarray, out: np.ndarray, call: dict[str, Any]
    ) -> None:
        """Encode the missing rows chunk by chunk, storing each chunk's shard once done. Chunks are fixed slices of
        `shard_size` unique texts, whatever is cached, so concurrent jobs see the same chunks; each is claimed first
        (`cache.claims`), and one another live job holds is left for later and read from the shard that job stores."""
        size = self.shard_size
        pending = deque(
            (start, todo)
            for start in range(0, len(unique), size)
            if len(todo := np.flatnonzero(missing[start : start + size]) + start)
        )
        # Claims need a writable cache and a single process (torchrun's ranks must make identical calls).
        single = self._writable and self._store is not None and _process_group() is None
        claims = ChunkClaims(self.model_dir) if single else None
        last_progress = time.monotonic()
        what = " ".join(str(call[k]) for k in ("task_name", "side") if call.get(k)) or "encoding"
        bar = ProgressLine(what, int(missing.sum()))
        try:
            while pending:
                if claims is not None and (
                    not self._readable or time.monotonic() - last_progress > CLAIM_MAX_WAIT_S
                ):  # the others' shards cannot be read, or they are stuck: do the rest here
                    logger.warning("embedding cache: not waiting for other jobs' claims any longer; encoding here")
                    claims = None
                progressed = False
                for _ in range(len(pending)):
                    start, todo = pending.popleft()
                    claim = None
                    if claims is not None:
                        try:
                            claim = claims.try_acquire(_chunk_id(keys[start : start + size]))
                        except OSError as e:
                            self._disable(e, reads=False)
                            claims = None
                    if claims is None:
                        self._encode_rows(todo, unique, keys, out, call)
                    elif claim is None:  # another job is encoding this chunk
                        pending.append((start, todo))
                        continue
                    else:
                        try:  # a job may have stored this chunk between our lookup and our claim
                            left = self._take_from_peers(todo, keys, out)
                            if len(left):
                                self._encode_rows(left, unique, keys, out, call)
                        finally:
                            claim.release()
                    bar.update(len(todo))
                    progressed = True
                    last_progress = time.monotonic()
                if pending and not progressed:  # every remaining chunk is held by others: wait for their shards
                    self.counters["claim_waits"] += 1
                    time.sleep(CLAIM_POLL_S)
                    waiting = list(pending)
                    pending.clear()
                    self._refresh_store()
                    for start, todo in waiting:
                        left = self._take_from_peers(todo, keys, out, refresh=False)
                        if len(left):
                            pending.append((start, left))
                        else:
                            last_progress = time.monotonic()
                        bar.update(len(todo) - len(left))
        finally:
            bar.close()

    def _encode_rows(
        self, rows: np.ndarray, unique: list[str], keys: np.ndarray, out: np.ndarray, call: dict[str, Any]
    ) -> None:
        """Encode `unique[rows]` into `out[rows]` and store them as one shard; `call` = the encode keywords."""
        vectors = self._encoder.encode([unique[i] for i in rows], **call)
        n = len(rows)
        self.counters["encode_calls"] += 1
        self.counters["misses"] += n
        name = type(self._encoder).__name__
        if not isinstance(vectors, np.ndarray) or vectors.dtype != np.float32:
            got = getattr(vectors, "dtype", type(vectors).__name__)
            raise EncodingError(f"{name}.encode returned {got}; a TextEncoder must return a float32 numpy array")
        if vectors.shape != (n, self.embed_dim):
            raise EncodingError(
                f"{name}.encode returned shape {vectors.shape} for {n} texts; expected ({n}, {self.embed_dim}) "
                "(check the encoder's embed_dim)"
            )
        out[rows] = vectors
        self._store_shard(keys[rows], vectors)

    def _refresh_store(self) -> bool:
        if self._store is None or not self._readable:
            return False
        try:
            self._store.refresh()
        except OSError as e:
            self._disable(e, reads=True)
            return False
        return True

    def _take_from_peers(
        self, todo: np.ndarray, keys: np.ndarray, out: np.ndarray, *, refresh: bool = True
    ) -> np.ndarray:
        """Fill the rows of `todo` that other jobs have stored since this call looked; return those still missing."""
        if (refresh and not self._refresh_store()) or self._store is None or not self._readable:
            return todo
        found = np.empty((len(todo), self.embed_dim), dtype=np.float32)
        try:
            filled = self._store.fill(*self._store.lookup(keys[todo]), found)
        except OSError as e:
            self._disable(e, reads=True)
            return todo
        out[todo[filled]] = found[filled]
        self.counters["from_peers"] += int(filled.sum())
        return todo[~filled]

    def _store_shard(self, keys: np.ndarray, vectors: np.ndarray) -> None:
        dist = _process_group()
        if not self._writable or self._store is None or (dist is not None and dist.get_rank() != 0):
            return  # ranks hold identical rows; one writes
        if not np.isfinite(vectors).all():
            logger.warning("embedding cache: not storing a shard with non-finite values; it will be re-encoded")
            return
        ident = self.identity
        meta = {"key": ident.key(), "name": ident.name, "revision": ident.revision, "knobs": ident.knobs}
        try:
            self._store.write(keys, vectors, {**meta, "embed_dim": self.embed_dim})
        except OSError as e:
            self._disable(e, reads=False)

    def _disable(self, error: OSError, *, reads: bool) -> None:
        what = "cache reads and writes" if reads else "cache writes"
        reason = f"{type(error).__name__}: {error}"
        if self.counters["disabled_reason"] is None:
            logger.warning(
                f"embedding cache: {what} turned off for this run: cannot use {self.model_dir} ({reason}). The run "
                "continues without storing embeddings; free space or fix permissions, set cache.dir=<writable dir>, "
                "or use cache=off."
            )
            self.counters["disabled_reason"] = reason
        self._writable = False
        if reads:
            self._readable = False


def _process_group() -> Any:
    """`torch.distributed` if a multi-rank process group is running, else None. Never imports torch itself."""
    dist = sys.modules.get("torch.distributed")
    if dist is None or not dist.is_available() or not dist.is_initialized() or dist.get_world_size() < 2:
        return None
    return dist


def _on_every_rank(mask: np.ndarray) -> np.ndarray:
    """Element-wise AND of a boolean mask over all ranks (the mask itself when not distributed)."""
    dist = _process_group()
    if dist is None or mask.size == 0:  # every rank has the same number of texts, so all skip together
        return mask
    import torch

    device = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else "cpu"
    t = torch.from_numpy(mask.astype(np.uint8)).to(device)
    dist.all_reduce(t, op=dist.ReduceOp.MIN)
    return t.cpu().numpy().astype(bool)
