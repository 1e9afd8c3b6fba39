"""Confidence intervals of a task score and of two runs' paired difference, from per-item data: seeded percentile
bootstrap over items, stratified within a task's groups (CQADupstackRetrieval's subforums, averaged as mteb does);
classification and clustering have no per-item data and get a Student t interval over mteb's experiments."""

from __future__ import annotations

import re
import warnings
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import numpy as np

from nvembed_eval.errors import ConfigError, NVEmbedEvalError

RESAMPLES = 2000  # endpoints move by ~1% of the interval width between seeds (docs/significance.md)
CONFIDENCE = 0.95
SEED = 0
BLOCK_CELLS = 2_000_000  # resamples x items per block: bounds memory (~16 MB per float64 matrix)
MAX_UNDEFINED = 0.01  # share of resamples whose statistic is undefined (e.g. no positive pair) before giving up


class Statistic(StrEnum):
    """How a task's score is made from its items (docs/significance.md)."""

    mean = "mean"  # mean of per-item values (retrieval, reranking: per query; summarization: per text)
    spearman = "spearman"  # Spearman correlation of gold and predicted similarity over pairs (STS)
    ap = "ap"  # average precision of predicted similarity against binary labels (pair classification)
    experiments = "experiments"  # mean over mteb's experiments (classification, clustering): t interval


Arrays = dict[str, np.ndarray]
FIELDS: dict[Statistic, tuple[str, ...]] = {
    Statistic.mean: ("values",),
    Statistic.spearman: ("gold", "pred"),
    Statistic.ap: ("labels", "scores"),
    Statistic.experiments: ("values",),
}


@dataclass(frozen=True)
class Interval:
    """A two-sided confidence interval, on the scale of the values it was computed from."""

    low: float
    high: float


# Metric keys (mteb's, any prefix such as cosine_ or max_over_subqueries_) that are correlations, in [-1, 1]; and the
# keys of the metrics that are shares, means of shares or averages of gains over [0, 1] and so cannot be negative.
CORRELATION = re.compile(r"(^|_)(spearman|pearson)(_|$)")
SHARE = re.compile(r"(^|_)(accuracy|v_measure|ap|ndcg|map|mrr|recall|precision|f1|hit_rate)(_|$)")


def metric_range(metric: str) -> tuple[float, float]:
    """The values mteb's metric key (e.g. "ndcg_at_10") can take, on mteb's fraction scale: (0, 1) for the shares
    (`SHARE`); (-1, 1) for correlations and for keys this does not know (e.g. mteb's nAUC, which can be negative)."""
    key = metric.lower()
    if key.startswith("nauc") or CORRELATION.search(key) or not SHARE.search(key):
        return (-1.0, 1.0)
    return (0.0, 1.0)


def statistic(kind: Statistic, arrays: Arrays) -> float:
    """The statistic over one group's items (`arrays`: `FIELDS[kind]` -> equal-length 1-D arrays), with mteb's libraries
    (scipy, scikit-learn), on mteb's fraction scale; NaN when undefined (constant input, no positive label)."""
    if kind in (Statistic.mean, Statistic.experiments):
        return float(np.mean(arrays["values"]))
    if kind is Statistic.spearman:
        from scipy.stats import spearmanr

        return float(spearmanr(arrays["gold"], arrays["pred"]).statistic)
    from sklearn.metrics import average_precision_score

    return float(average_precision_score(arrays["labels"], arrays["scores"]))


def replicates(kind: Statistic, sides: Sequence[Arrays], resamples: int, rng: np.random.Generator) -> np.ndarray:
    """Paired bootstrap replicates, shape (resamples, len(sides)), of the statistic (mean, spearman or ap; mteb's scale,
    NaN where undefined) for runs on the same n items (`sides`: per run, `FIELDS[kind]` -> aligned arrays)."""
    n = len(sides[0][FIELDS[kind][0]])
    prepared = [_RESAMPLED[kind](*(a[f] for f in FIELDS[kind])) for a in sides]
    out = np.empty((resamples, len(sides)))
    block = max(1, min(resamples, BLOCK_CELLS // max(n, 1)))  # depends on n only, so the stream does too
    for start in range(0, resamples, block):
        idx = rng.integers(0, n, size=(min(block, resamples - start), n))
        for col, side in enumerate(prepared):
            out[start : start + len(idx), col] = side(idx, check=start == 0)
    return out


def grouped_replicates(
    kind: Statistic, groups: Sequence[tuple[str, Sequence[Arrays]]], resamples: int, seed: int
) -> np.ndarray:
    """Replicates, shape (resamples, runs), of the mean of the groups' statistics, resampled within each group.
    `groups`: (stream name, per-run aligned arrays); a group's stream is seeded by `seed` and the crc32 of its name,
    so a task's interval does not depend on which other tasks are compared."""
    total = np.zeros((resamples, len(groups[0][1])))
    for name, sides in groups:
        stream = np.random.SeedSequence([seed, zlib.crc32(name.encode("utf-8"))])
        total += replicates(kind, sides, resamples, np.random.default_rng(stream))
    return total / len(groups)


class _RankedValues:
    """Gold and predicted scores of pairs, for the Spearman correlation of many resamples. Spearman's rho is Pearson's
    r of average ranks (scipy's definition); a drawn item's average rank depends only on the counts of drawn items below
    and tied with it, so values are coded once by tie group (`np.unique`) and ranks come from counts: no sort per
    resample. tests/judge/test_significance.py checks every resample against `spearmanr`."""

    def __init__(self, gold: np.ndarray, pred: np.ndarray) -> None:
        self.codes = [np.unique(values, return_inverse=True)[1].ravel() for values in (gold, pred)]

    def __call__(self, idx: np.ndarray, check: bool = False) -> np.ndarray:
        """Spearman's rho of each row of the index matrix `idx` (rows, n)."""
        from scipy.stats import pearsonr

        rows = np.arange(len(idx))[:, None]
        ranks = []
        for code in self.codes:
            groups = int(code.max()) + 1
            drawn = code[idx]  # (rows, n) tie group of each draw
            counts = np.bincount((drawn + rows * groups).ravel(), minlength=len(idx) * groups).reshape(-1, groups)
            average = np.cumsum(counts, axis=1) - (counts - 1) / 2.0  # average rank of each group in the resample
            ranks.append(np.take_along_axis(average, drawn, axis=1))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a constant resample gives NaN (counted by the caller), not a warning
            return np.asarray(pearsonr(ranks[0], ranks[1], axis=1).statistic, dtype=float)


class _RankedPairs:
    """Pairs sorted once by predicted score, for the average precision of many resamples. A resample's AP equals
    scikit-learn's AP of the original pairs weighted by their multiplicities (ties share a threshold either way). AP
    sums recall gained times precision over the thresholds (distinct scores, descending), and only thresholds holding a
    positive pair gain recall; so each pair is assigned once to the segment ending at the next such threshold, and a
    resample needs only the counts of drawn (and drawn positive) pairs per segment: one gather and one bincount per
    block. The first resample is checked against scikit-learn (tests/judge/test_significance.py checks every one, with
    ties)."""

    def __init__(self, labels: np.ndarray, scores: np.ndarray) -> None:
        self.labels, self.scores = labels, scores
        n = len(scores)
        order = np.argsort(scores, kind="mergesort")[::-1]  # scikit-learn's order: descending score
        ordered, positive = scores[order], labels[order] == 1
        tie = np.r_[0, np.cumsum(np.diff(ordered) != 0)]  # tie group of each sorted pair
        has_positive = np.zeros(tie[-1] + 1 if n else 0, dtype=bool)
        has_positive[tie[positive]] = True
        # segment k ends with the k-th tie group holding a positive pair; pairs after the last one: segment K
        self.segments = int(has_positive.sum())
        segment_of_group = np.searchsorted(np.flatnonzero(has_positive), np.arange(len(has_positive)))
        self.code = np.empty(n, dtype=np.int64)
        self.code[order] = 2 * segment_of_group[tie] + positive  # (segment, positive?) of each pair, in input order

    def __call__(self, idx: np.ndarray, check: bool = False) -> np.ndarray:
        """AP of each row of the index matrix `idx` (rows, n); NaN for a resample without a positive pair. `check`:
        compare the first row with scikit-learn's own `average_precision_score`."""
        rows, width = len(idx), 2 * (self.segments + 1)
        flat = (self.code[idx] + (np.arange(rows) * width)[:, None]).ravel()
        counts = np.bincount(flat, minlength=rows * width).reshape(rows, self.segments + 1, 2)[:, : self.segments]
        tps = np.cumsum(counts[..., 1], axis=1).astype(float)
        predicted = np.cumsum(counts.sum(axis=2), axis=1).astype(float)  # integer sums: exact
        total = tps[:, -1:] if self.segments else np.zeros((rows, 1))
        with np.errstate(invalid="ignore", divide="ignore"):
            gains = np.diff(tps, axis=1, prepend=0.0) / total  # recall gained at each threshold
            precision = np.where(predicted > 0, tps / predicted, 0.0)
        ap = np.sum(gains * precision, axis=1)
        ap[total[:, 0] == 0] = np.nan  # no positive pair drawn: AP undefined
        if check and total[0, 0] > 0:
            from sklearn.metrics import average_precision_score

            weights = np.bincount(idx[0], minlength=len(self.code))
            reference = average_precision_score(self.labels, self.scores, sample_weight=weights)
            if abs(reference - ap[0]) > 1e-9:
                raise NVEmbedEvalError(
                    f"bootstrap AP {ap[0]!r} differs from scikit-learn's {reference!r}; this is a harness bug"
                )
        return ap


# Per statistic: a callable made once from the item arrays that returns the statistic of each row of an index matrix.
_RESAMPLED: dict[Statistic, Any] = {
    Statistic.mean: lambda values: lambda idx, check=False: values[idx].mean(axis=1),  # per-item values' mean
    Statistic.spearman: _RankedValues,
    Statistic.ap: _RankedPairs,
}


def percentile_interval(values: np.ndarray, confidence: float) -> Interval | None:
    """Percentile interval of bootstrap replicates; None when too many are undefined (`MAX_UNDEFINED`)."""
    finite = values[np.isfinite(values)]
    if len(finite) < (1 - MAX_UNDEFINED) * len(values) or not len(finite):
        return None
    tail = 100 * (1 - confidence) / 2
    low, high = np.percentile(finite, [tail, 100 - tail])
    return Interval(float(low), float(high))


def t_interval(values: np.ndarray, confidence: float) -> Interval | None:
    """Student t interval of the mean of `values` (n >= 2); None for fewer values or a non-finite one."""
    from scipy.stats import t

    values = np.asarray(values, dtype=float)
    if len(values) < 2 or not np.all(np.isfinite(values)):
        return None
    mean = float(np.mean(values))
    half = float(t.ppf((1 + confidence) / 2, len(values) - 1) * np.std(values, ddof=1) / np.sqrt(len(values)))
    return Interval(mean - half, mean + half)


def check_settings(resamples: int, confidence: float) -> None:
    """Resamples in [100, 1000000] and a confidence level strictly between 0.5 and 1. Raises ConfigError when either
    is out of range (fewer resamples make the percentile endpoints noise)."""
    if not 100 <= resamples <= 1_000_000:
        raise ConfigError(f"resamples must be between 100 and 1000000 <--resamples={resamples}>; pass e.g. 2000")
    if not 0.5 < confidence < 1:  # NaN fails the comparison too
        raise ConfigError(f"confidence must be strictly between 0.5 and 1 <--confidence={confidence}>; pass e.g. 0.95")
