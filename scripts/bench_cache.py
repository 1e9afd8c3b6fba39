"""Benchmark the embedding cache: MiniLM on SciFact, run twice through mteb with two different query instructions.

Run 1 starts from a cold cache; run 2 changes only the query instruction, so only the 300 queries are re-encoded and
the 5183 documents come from the cache. Prints both wall times and their ratio (goal: <= 0.1).

Examples:
    python scripts/bench_cache.py
    python scripts/bench_cache.py --data-dir ../shared/data --cache-dir /tmp/bench-cache --batch-size 64
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
INSTRUCTION_A = "Instruct: Given a scientific claim, retrieve documents that support or refute the claim\nQuery: "
INSTRUCTION_B = "Instruct: Given a claim about biomedicine, find the abstracts that give evidence for it\nQuery: "


def run_once(encoder, query_prefix: str, data_dir: Path, batch_size: int) -> tuple[float, float, dict]:
    """One full mteb evaluation of SciFact through `encoder`. Returns (wall seconds, nDCG@10, cache counter deltas)."""
    import mteb

    from nvembed_eval.models.mteb_adapter import MtebEncoder
    from nvembed_eval.tasks.local_data import load_local_task_data

    before = {k: v for k, v in encoder.counters.items() if isinstance(v, int)}
    start = time.perf_counter()
    task = mteb.get_task("SciFact")
    load_local_task_data(task, data_dir)
    bridge = MtebEncoder(encoder, lambda _task, side: query_prefix if side == "query" else "", batch_size)
    result = mteb.evaluate(
        bridge,
        task,
        cache=None,
        encode_kwargs={"batch_size": batch_size},
        overwrite_strategy="always",
        co2_tracker=False,
        show_progress_bar=False,
    )
    wall = time.perf_counter() - start
    score = result.task_results[0].get_score()
    delta = {k: encoder.counters[k] - before[k] for k in before}
    return wall, score, delta


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=REPO.parent / "shared" / "data", help="holds SciFact/")
    parser.add_argument("--cache-dir", type=Path, default=None, help="cache root (default: a fresh temp folder)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--shard-size", type=int, default=2048)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    from nvembed_eval.cache.encoder import CachedEncoder
    from nvembed_eval.models.sentence_transformer.encoder_st import SentenceTransformerEncoder

    with tempfile.TemporaryDirectory(prefix="bench-cache-") as tmp:
        cache_dir = args.cache_dir or Path(tmp)
        if args.cache_dir is not None and any(cache_dir.glob("*/shard-*")):
            print(f"error: {cache_dir} already holds cache entries; run 1 must start cold", file=sys.stderr)
            return 2
        model = SentenceTransformerEncoder(device="cpu", show_progress=False)
        # The same loaded model in both runs: model loading is not what the cache saves.
        encoder = CachedEncoder(model, cache_dir, shard_size=args.shard_size)
        wall_a, score_a, counts_a = run_once(encoder, INSTRUCTION_A, args.data_dir, args.batch_size)
        wall_b, score_b, counts_b = run_once(encoder, INSTRUCTION_B, args.data_dir, args.batch_size)

    print(f"cache dir: {cache_dir}")
    print(f"run 1 (cold, query instruction A): {wall_a:8.2f} s  nDCG@10 {score_a:.5f}  cache {counts_a}")
    print(f"run 2 (warm, query instruction B): {wall_b:8.2f} s  nDCG@10 {score_b:.5f}  cache {counts_b}")
    ratio = wall_b / wall_a
    print(f"ratio run2/run1: {ratio:.4f} (goal <= 0.1: {'met' if ratio <= 0.1 else 'NOT met'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
