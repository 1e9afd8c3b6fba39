"""Why the paired bootstrap is ours (nvembed_eval/judge/bootstrap.py) and not `scipy.stats.bootstrap`: the time of 2,000
paired resamples of the difference of two runs' statistics, for task sizes of MTEB(eng, v1), both ways, in one run.

    python scripts/bench_bootstrap.py

scipy is given its best form for each statistic: a vectorized statistic (`axis=-1`) for the mean and for Spearman
(ranks by `scipy.stats.rankdata(axis=-1)`, then Pearson's r along the axis); for average precision there is no
vectorized form in scikit-learn or scipy, so scipy calls `average_precision_score` once per resample.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nvembed_eval.judge.bootstrap import Statistic, replicates

RESAMPLES = 2000


def ours(kind: Statistic, sides: list[dict[str, np.ndarray]]) -> np.ndarray:
    out = replicates(kind, sides, RESAMPLES, np.random.default_rng(0))
    return out[:, 0] - out[:, 1]


def scipy_mean(a: np.ndarray, b: np.ndarray) -> None:
    from scipy.stats import bootstrap

    bootstrap(
        (a, b),
        lambda x, y, axis: x.mean(axis) - y.mean(axis),
        paired=True,
        vectorized=True,
        n_resamples=RESAMPLES,
        method="percentile",
        random_state=0,
    )


def _spearman(gold: np.ndarray, pred: np.ndarray, axis: int = -1) -> np.ndarray:
    from scipy.stats import pearsonr, rankdata

    return pearsonr(rankdata(gold, axis=axis), rankdata(pred, axis=axis), axis=axis).statistic


def scipy_spearman(gold: np.ndarray, a: np.ndarray, b: np.ndarray) -> None:
    from scipy.stats import bootstrap

    bootstrap(
        (gold, a, b),
        lambda g, x, y, axis: _spearman(g, x, axis) - _spearman(g, y, axis),
        paired=True,
        vectorized=True,
        n_resamples=RESAMPLES,
        method="percentile",
        random_state=0,
        batch=200,
    )


def scipy_ap(labels: np.ndarray, a: np.ndarray, b: np.ndarray) -> None:
    from scipy.stats import bootstrap
    from sklearn.metrics import average_precision_score as ap

    bootstrap(
        (labels, a, b),
        lambda y, x, z: ap(y, x) - ap(y, z),
        paired=True,
        vectorized=False,
        n_resamples=RESAMPLES,
        method="percentile",
        random_state=0,
    )


def timed(run, *args) -> float:
    start = time.perf_counter()
    run(*args)
    return time.perf_counter() - start


def main() -> int:
    rng = np.random.default_rng(1)
    rows = []
    for name, n in (("SciFact queries (mean)", 300), ("MSMARCO dev queries (mean)", 6980)):
        a, b = rng.random(n), rng.random(n)
        sides = [{"values": a}, {"values": b}]
        rows.append((name, timed(ours, Statistic.mean, sides), timed(scipy_mean, a, b)))
    for name, n in (("STSBenchmark pairs (Spearman)", 1379), ("SICK-R pairs (Spearman)", 9927)):
        gold = np.round(rng.random(n) * 5, 1)
        a, b = gold + rng.normal(0, 1, n), gold + rng.normal(0, 1, n)
        sides = [{"gold": gold, "pred": a}, {"gold": gold, "pred": b}]
        rows.append((name, timed(ours, Statistic.spearman, sides), timed(scipy_spearman, gold, a, b)))
    for name, n in (("SprintDuplicateQuestions pairs (AP)", 3000), ("TwitterSemEval2015 pairs (AP)", 16777)):
        labels = (rng.random(n) < 0.3).astype(int)
        a, b = labels + rng.normal(0, 1, n), labels + rng.normal(0, 1, n)
        sides = [{"labels": labels, "scores": a}, {"labels": labels, "scores": b}]
        rows.append((name, timed(ours, Statistic.ap, sides), timed(scipy_ap, labels, a, b)))
    print(f"{RESAMPLES} paired resamples of a difference of two runs' statistics")
    print(f"{'task size':40} {'ours s':>8} {'scipy s':>8} {'scipy/ours':>10}")
    for name, mine, theirs in rows:
        print(f"{name:40} {mine:8.2f} {theirs:8.2f} {theirs / mine:10.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
