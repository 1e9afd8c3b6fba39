"""The gate's noise: per task, intervals of both scores and of their paired difference, from the runs' per-item data
(items), and the gate modes that use them (docs/significance.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from pathlib import Path

import numpy as np

from nvembed_eval.tracking.bootstrap import (
    CONFIDENCE,
    RESAMPLES,
    SEED,
    Interval,
    Statistic,
    grouped_replicates,
    metric_range,
    percentile_interval,
    t_interval,
)
from nvembed_eval.tracking.item_values import Group, ItemsUnavailable
from nvembed_eval.tracking.items import ItemSet, load_items
from nvembed_eval.tracking.scoring import ScoreSet

POINTS = 100.0  # items are on mteb's fraction scale, the gate on points


class Gate(str, Enum):
    """What makes a task's drop a regression."""

    tolerance = "tolerance"  # the drop exceeds the tolerance
    significant = "significant"  # the paired interval of the difference lies below 0
    both = "both"  # both of the above

    def __str__(self) -> str:
        return self.value


# Both: a drop must be larger than what the team accepts and larger than noise. Without per-item data on both sides a
# task falls back to tolerance alone, which fails at least as often, so nothing passes that tolerance would fail.
DEFAULT_GATE = Gate.both


@dataclass(frozen=True)
class NoiseSettings:
    resamples: int = RESAMPLES
    confidence: float = CONFIDENCE
    seed: int = SEED

    def describe(self) -> str:
        return f"{self.confidence:.0%} intervals; bootstrap: {self.resamples} resamples, seed {self.seed}"


@dataclass(frozen=True)
class Noise:
    """Intervals of one task on the 0-100 scale; `delta` is None when the runs cannot be paired (`why` says why)."""

    ours: Interval | None = None
    reference: Interval | None = None
    delta: Interval | None = None
    method: str = ""  # e.g. "bootstrap over 300 queries"
    why: str | None = None  # no delta interval: the reason; else a pairing note (or None)


def plural(unit: str) -> str:
    return "queries" if unit == "query" else f"{unit}s"


def side_items(scores: ScoreSet, task: str) -> ItemSet | str:
    """The checked items of `task` on one side, or the reason there are none."""
    if scores.kind == "table":
        return "a score table has no per-item data"
    score = scores.scores.get(task)
    if score is None or not Path(score.source).is_file():
        return "no result file of its own"
    try:
        return load_items(Path(score.source), task, score.metric, score.value / POINTS)
    except ItemsUnavailable as exc:
        return str(exc)


def _aligned(ours: ItemSet, theirs: ItemSet) -> tuple[list[tuple[Group, Group]], int] | str:
    """Per group, both runs' items restricted to the ids both have, in the same order; and how many that is."""
    if (ours.kind, ours.unit) != (theirs.kind, theirs.unit):
        return f"the runs' items differ in kind ({ours.kind} per {ours.unit} vs {theirs.kind} per {theirs.unit})"
    mine = {g.name: g for g in ours.groups}
    other = {g.name: g for g in theirs.groups}
    if set(mine) != set(other):
        return "the runs' items have different groups"
    pairs, common = [], 0
    for name, a in mine.items():
        b = other[name]
        position = {i: k for k, i in enumerate(b.ids)}
        shared = [(k, position[i]) for k, i in enumerate(a.ids) if i in position]
        if not shared:
            return f"no {ours.unit} in common in {name}"
        ia, ib = (np.array(x) for x in zip(*shared, strict=True))
        ids = [a.ids[k] for k in ia]
        pairs.append((_subset(a, ids, ia), _subset(b, ids, ib)))
        common += len(ids)
    return pairs, common


def _subset(group: Group, ids: list[str], rows: np.ndarray) -> Group:
    return Group(group.name, ids, {k: v[rows] for k, v in group.arrays.items()})


def _interval(kind: Statistic, task: str, groups: list[list[Group]], settings: NoiseSettings) -> list[Interval | None]:
    """Per run (columns of `groups`), the interval of its score; for two runs also that of their difference."""
    if kind is Statistic.experiments:
        values = [np.mean([g.arrays["values"] for g in runs], axis=0) for runs in zip(*groups, strict=True)]
        out = [t_interval(v, settings.confidence) for v in values]
        return out + ([t_interval(values[0] - values[1], settings.confidence)] if len(values) == 2 else [])
    streams = [(f"{task}/{runs[0].name}", [g.arrays for g in runs]) for runs in groups]
    reps = grouped_replicates(kind, streams, settings.resamples, settings.seed)
    out = [percentile_interval(reps[:, k], settings.confidence) for k in range(reps.shape[1])]
    return out + ([percentile_interval(reps[:, 0] - reps[:, 1], settings.confidence)] if reps.shape[1] == 2 else [])


def _points(interval: Interval | None, metric: str, difference: bool = False) -> Interval | None:
    """On the 0-100 scale, clipped to what the quantity can be: the metric's range (`metric_range`: [0, 100] for
    accuracy, V-measure, nDCG, ...; [-100, 100] for correlations), or for a difference of two such scores
    [low - high, high - low]. A t interval over a few experiments can reach far past either."""
    if interval is None:
        return None
    low, high = (POINTS * end for end in metric_range(metric))
    return interval.scaled(POINTS).clipped(*((low - high, high - low) if difference else (low, high)))


def _alone(items: ItemSet, settings: NoiseSettings) -> Interval | None:
    return _points(_interval(items.kind, items.task, [[g] for g in items.groups], settings)[0], items.metric)


def _same(items: ItemSet, groups: list[Group]) -> bool:
    return [(g.name, g.ids) for g in items.groups] == [(g.name, g.ids) for g in groups]


def task_noise(task: str, ours: ItemSet | str, theirs: ItemSet | str, settings: NoiseSettings) -> Noise:
    """Intervals of one task from each side's items (or the reason a side has none).

    Returns:
        Noise with each side's score interval where that side has items, and the interval of ours - reference on
        the items both have (paired: the same resamples for both), in points.
    """
    if not isinstance(ours, ItemSet) or not isinstance(theirs, ItemSet):
        mine = _alone(ours, settings) if isinstance(ours, ItemSet) else None
        other = _alone(theirs, settings) if isinstance(theirs, ItemSet) else None
        why = "; ".join(f"{side}: {r}" for side, r in (("run", ours), ("reference", theirs)) if isinstance(r, str))
        return Noise(mine, other, None, "", f"no per-item data ({why})")
    aligned = _aligned(ours, theirs)
    if isinstance(aligned, str):
        return Noise(_alone(ours, settings), _alone(theirs, settings), None, "", aligned)
    pairs, common = aligned
    both = _interval(ours.kind, task, [list(p) for p in pairs], settings)
    # A side whose items are exactly the paired ones, in the same order, has drawn the same resamples: reuse them.
    mine = _points(both[0], ours.metric) if _same(ours, [a for a, _ in pairs]) else _alone(ours, settings)
    other = _points(both[1], theirs.metric) if _same(theirs, [b for _, b in pairs]) else _alone(theirs, settings)
    method = (
        f"t interval over {common} experiments"
        if ours.kind is Statistic.experiments
        else f"bootstrap over {common} {plural(ours.unit)}"
    )
    note = None
    if common != ours.count or common != theirs.count:
        note = f"paired on the {common} {plural(ours.unit)} both have (run {ours.count}, reference {theirs.count})"
    if both[2] is None:
        return Noise(mine, other, None, method, "the interval is undefined on too many resamples")
    return Noise(mine, other, _points(both[2], ours.metric, difference=True), method, note)
