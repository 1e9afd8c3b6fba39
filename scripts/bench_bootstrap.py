"""Cost of the noise-aware gate at full MTEB sizes, on synthetic data of those sizes (docs/significance.md).

1. At run time, per-item data of an MSMARCO-size retrieval task: mteb's prediction file (6,980 queries x top 1,000
   documents, written as mteb writes it), read back, and pytrec_eval's per-query nDCG@10 (`item_values`).
2. At compare time, intervals of both scores and of the paired difference (`significance.task_noise`, 2,000
   resamples) for the largest task of each kind: MSMARCO (6,980 queries), SICK-R (9,927 pairs, Spearman),
   SprintDuplicateQuestions (101,000 pairs, AP), a classification task (10 experiments).

Usage:
    python scripts/bench_bootstrap.py [--resamples 2000] [--skip-predictions]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from nvembed_eval.judge.bootstrap import RESAMPLES, Statistic
from nvembed_eval.judge.item_values import retrieval_group
from nvembed_eval.judge.significance import Group, ItemSet, NoiseSettings, task_noise

MSMARCO_QUERIES, TOP_K, MSMARCO_CORPUS = 6980, 1000, 8_841_823


def item_set(task: str, kind: Statistic, unit: str, n: int, arrays: dict[str, np.ndarray]) -> ItemSet:
    group = Group(task, [str(i) for i in range(n)], arrays)
    partial = ItemSet(task, kind, unit, "metric", 0.0, (group,))
    return ItemSet(task, kind, unit, "metric", partial.recomputed(), (group,))


def two_runs(rng: np.random.Generator) -> dict[str, tuple[ItemSet, ItemSet]]:
    """Two runs per kind: the second a slightly perturbed copy of the first, as two checkpoints are."""
    out = {}
    ndcg = rng.beta(0.6, 0.4, MSMARCO_QUERIES)
    ndcg_b = np.clip(ndcg + rng.normal(0, 0.05, MSMARCO_QUERIES) * (rng.random(MSMARCO_QUERIES) < 0.3), 0, 1)
    out["MSMARCO (6,980 queries, mean)"] = (
        item_set("MSMARCO", Statistic.mean, "query", MSMARCO_QUERIES, {"values": ndcg}),
        item_set("MSMARCO", Statistic.mean, "query", MSMARCO_QUERIES, {"values": ndcg_b}),
    )
    n = 9927
    gold = rng.uniform(0, 1, n)
    pred = gold + rng.normal(0, 0.3, n)
    out["SICK-R (9,927 pairs, Spearman)"] = tuple(
        item_set("SICK-R", Statistic.spearman, "pair", n, {"gold": gold, "pred": p})
        for p in (pred, pred + rng.normal(0, 0.05, n))
    )
    n = 101_000
    labels = (rng.random(n) < 0.01).astype(float)
    scores = labels * 0.3 + rng.normal(0, 0.1, n)
    out["SprintDuplicateQuestions (101,000 pairs, AP)"] = tuple(
        item_set("Sprint", Statistic.ap, "pair", n, {"labels": labels, "scores": s})
        for s in (scores, scores + rng.normal(0, 0.02, n))
    )
    acc = rng.normal(0.8, 0.01, 10)
    out["Banking77 (10 experiments, t)"] = (
        item_set("Banking77", Statistic.experiments, "experiment", 10, {"values": acc}),
        item_set(
            "Banking77", Statistic.experiments, "experiment", 10, {"values": acc - 0.002 + rng.normal(0, 0.002, 10)}
        ),
    )
    return out


def bench_compare(resamples: int) -> None:
    print(f"Compare time: both scores' intervals and the paired difference's, {resamples} resamples")
    total = 0.0
    for label, (a, b) in two_runs(np.random.default_rng(0)).items():
        start = time.perf_counter()
        noise = task_noise(a.task, a, b, NoiseSettings(resamples=resamples))
        seconds = time.perf_counter() - start
        total += seconds
        print(f"  {label:<46} {seconds:7.2f} s   delta interval [{noise.delta.low:+.3f}, {noise.delta.high:+.3f}]")
    print(f"  {'all four':<46} {total:7.2f} s")


def bench_predictions() -> None:
    print(f"Run time: per-item data of an MSMARCO-size task ({MSMARCO_QUERIES} queries x top {TOP_K})")
    rng = np.random.default_rng(1)
    qrels = {f"q{q}": {f"d{rng.integers(MSMARCO_CORPUS)}": 1} for q in range(MSMARCO_QUERIES)}
    results = {}
    for q, rel in qrels.items():
        docs = {
            f"d{d}": float(s) for d, s in zip(rng.integers(MSMARCO_CORPUS, size=TOP_K), rng.random(TOP_K), strict=True)
        }
        if rng.random() < 0.6:  # the relevant document is retrieved for most queries
            docs[next(iter(rel))] = float(rng.uniform(0.5, 1.0))
        results[q] = docs
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "MSMARCO_predictions.json"
        start = time.perf_counter()
        path.write_text(json.dumps({"default": {"dev": results}}))  # mteb: json.dump of the same dict
        written = time.perf_counter() - start
        start = time.perf_counter()
        predictions = json.loads(path.read_text())
        read = time.perf_counter() - start
        size = path.stat().st_size
    task = SimpleNamespace(
        metadata=SimpleNamespace(name="MSMARCO"),
        dataset={"default": {"dev": {"relevant_docs": qrels}}},
        ignore_identical_ids=False,
        skip_first_result=False,
    )
    start = time.perf_counter()
    group = retrieval_group(task, "ndcg_at_10", predictions, "dev", "default")  # type: ignore[arg-type]
    scored = time.perf_counter() - start
    body = json.dumps({"values": group.arrays["values"].tolist(), "ids": group.ids}, separators=(",", ":"))
    print(f"  mteb writes its prediction file        {written:7.2f} s   ({size / 2**20:.0f} MiB)")
    print(f"  read it back                           {read:7.2f} s")
    print(f"  pytrec_eval per-query nDCG@10          {scored:7.2f} s   ({len(group.ids)} queries)")
    print(f"  items file                                        {len(body) / 2**10:.0f} KiB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resamples", type=int, default=RESAMPLES)
    parser.add_argument("--skip-predictions", action="store_true", help="only the compare-time part")
    args = parser.parse_args()
    bench_compare(args.resamples)
    if not args.skip_predictions:
        bench_predictions()


if __name__ == "__main__":
    main()
