"""Two CPU processes (gloo) split the batches and gather rows in input order: identical to one process."""

from __future__ import annotations

import numpy as np
import torch.multiprocessing as mp
from nvembed_testlib import NQ_PREFIX, TEXTS

from nvembed_eval.models.nvembed.distributed import assign_batches

WORLD = 2
MANY = [t + f" variant {i}" * (i % 4) for i, t in enumerate(TEXTS * 3)]  # 21 texts, mixed lengths, 4+ batches


def _worker(rank: int, ckpt: str, init_file: str, out_dir: str) -> None:
    import torch
    import torch.distributed as dist

    from nvembed_eval.models.nvembed.encoder_nvembed import NVEmbedEncoder

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=WORLD)
    try:
        enc = NVEmbedEncoder(ckpt, device="cpu", max_length=512, progress=False)
        emb = enc.encode(MANY, prefix=NQ_PREFIX, batch_size=3)
        np.save(f"{out_dir}/rank{rank}.npy", emb)
        np.save(f"{out_dir}/stats{rank}.npy", np.array([enc.stats["texts"], enc.stats["tokens"]]))
    finally:
        dist.destroy_process_group()


def test_two_gloo_processes_match_one(tmp_path, tiny_dir, tiny_encoder):
    mp.spawn(_worker, args=(str(tiny_dir), str(tmp_path / "init"), str(tmp_path)), nprocs=WORLD, join=True)
    single = tiny_encoder.encode(MANY, prefix=NQ_PREFIX, batch_size=3)
    tokens = sum(len(r) for r in tiny_encoder.tokenizer.token_ids(MANY, NQ_PREFIX, 512))
    for rank in range(WORLD):
        gathered = np.load(tmp_path / f"rank{rank}.npy")
        assert gathered.shape == single.shape
        assert np.abs(gathered - single).max() <= 1e-6, rank
        texts, toks = np.load(tmp_path / f"stats{rank}.npy")
        assert (texts, toks) == (len(MANY), tokens)  # counters are summed over ranks


def test_batches_are_split_by_stride():
    batches = [f"b{i}" for i in range(7)]
    shares = [assign_batches(batches, r, 3) for r in range(3)]
    assert shares == [["b0", "b3", "b6"], ["b1", "b4"], ["b2", "b5"]]
