"""Multi-process encoding (torchrun, one process per GPU): every rank builds the same length-sorted batches, encodes
batches `rank, rank + world, ...`, and receives the full array; rows are bit-identical to a single-process run."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TypeVar

import numpy as np

T = TypeVar("T")


def rank_and_world() -> tuple[int, int]:
    """(rank, world_size) of the initialised default process group, or (0, 1)."""
    import torch.distributed as dist

    return (dist.get_rank(), dist.get_world_size()) if dist.is_available() and dist.is_initialized() else (0, 1)


def assign_batches(batches: Sequence[T], rank: int, world_size: int) -> list[T]:
    """Batch i goes to rank i % world_size. Batches run longest first, so the stride spreads long ones evenly."""
    return list(batches[rank::world_size])


def _comm_device():
    import torch
    import torch.distributed as dist

    return torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else torch.device("cpu")


def all_reduce_ints(values: Sequence[int], op: str = "sum") -> list[int]:
    """Element-wise "sum" or "max" of small integer values over all ranks."""
    import torch
    import torch.distributed as dist

    t = torch.tensor(list(values), dtype=torch.int64, device=_comm_device())
    dist.all_reduce(t, op=dist.ReduceOp.SUM if op == "sum" else dist.ReduceOp.MAX)
    return t.tolist()


def gather_rows(local_index: np.ndarray, local_rows: np.ndarray, n_total: int, chunk_rows: int = 8192) -> np.ndarray:
    """Assemble the (n_total, D) float32 array on every rank from each rank's (index, rows) pairs. Rows travel in
    chunks of `chunk_rows` per rank, padded to the largest rank's count (index -1), so buffers stay small."""
    import torch
    import torch.distributed as dist

    world, device, dim = dist.get_world_size(), _comm_device(), local_rows.shape[1]
    max_count = all_reduce_ints([len(local_index)], op="max")[0]
    out = np.zeros((n_total, dim), dtype=np.float32)
    for start in range(0, max_count, chunk_rows):
        stop = min(start + chunk_rows, max_count)
        rows = torch.zeros(stop - start, dim, dtype=torch.float32, device=device)
        index = torch.full((stop - start,), -1, dtype=torch.int64, device=device)
        mine = slice(start, min(stop, len(local_index)))
        n_mine = max(0, mine.stop - mine.start)
        rows[:n_mine] = torch.from_numpy(np.ascontiguousarray(local_rows[mine])).to(device)
        index[:n_mine] = torch.from_numpy(np.asarray(local_index[mine], dtype=np.int64)).to(device)
        all_rows = [torch.empty_like(rows) for _ in range(world)]
        all_index = [torch.empty_like(index) for _ in range(world)]
        dist.all_gather(all_rows, rows)
        dist.all_gather(all_index, index)
        for r_rows, r_index in zip(all_rows, all_index, strict=True):
            valid = r_index >= 0
            out[r_index[valid].cpu().numpy()] = r_rows[valid].cpu().numpy()
    return out


def init_from_env() -> bool:
    """Join the process group torchrun (or submitit with several tasks per node) describes in the environment: NCCL
    on CUDA (each rank on its LOCAL_RANK GPU), gloo on CPU. True when this process is one of several ranks."""
    import torch
    import torch.distributed as dist

    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or not dist.is_available():
        return False
    if not dist.is_initialized():
        if torch.cuda.is_available():
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
            dist.init_process_group("nccl")
        else:
            dist.init_process_group("gloo")
    return True
