"""The in-memory lookup index of the embedding cache: sha256 keys -> (shard, row), as sorted numpy arrays."""

from __future__ import annotations

import numpy as np

KEY_BYTES = 32  # a sha256 digest per cached text


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
