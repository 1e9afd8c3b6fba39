"""The gate's noise: a task's per-item data, read back and checked to give the result's score again, and the intervals
of both scores and of their paired difference (docs/significance.md)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import numpy as np

from nvembed_eval.errors import ItemsUnavailable
from nvembed_eval.io import parse_json
from nvembed_eval.judge import bootstrap
from nvembed_eval.judge.bootstrap import FIELDS, Interval, Statistic
from nvembed_eval.results.reading import read_items_file
from nvembed_eval.results.scores import ScoreSet

FORMAT = 1
# Items must give the result's own score back (mteb's fraction scale). mteb rounds retrieval means to 5 decimals and
# classification scores to 6, so 1e-5 (0.001 points); a stale or foreign items file is off by far more.
SCORE_TOLERANCE = 1e-5
POINTS = 100.0  # items are on mteb's fraction scale, the gate on points


@dataclass(frozen=True)
class Group:
    """Items of one (sub)task: ids and the arrays its statistic reads (`bootstrap.FIELDS`)."""

    name: str
    ids: list[str]
    arrays: dict[str, np.ndarray]


@dataclass(frozen=True)
class ItemSet:
    """A task's items: how its score is made (`kind`), on what (`unit`), and the values per group."""

    task: str
    kind: Statistic
    unit: str
    metric: str
    score: float  # the result's score on mteb's scale
    groups: tuple[Group, ...]

    @property
    def count(self) -> int:
        return sum(len(g.ids) for g in self.groups)

    def recomputed(self) -> float:
        """The score from the items alone: the mean over groups of each group's statistic (scipy, scikit-learn)."""
        return float(np.mean([bootstrap.statistic(self.kind, g.arrays) for g in self.groups]))

    def to_json(self) -> dict[str, Any]:
        groups = [
            {"name": g.name, "ids": g.ids, **{k: g.arrays[k].tolist() for k in FIELDS[self.kind]}} for g in self.groups
        ]
        head = {"format": FORMAT, "task": self.task, "statistic": self.kind.value, "unit": self.unit}
        return {**head, "metric": self.metric, "score": self.score, "groups": groups}

    @classmethod
    def from_json(cls, data: Any) -> ItemSet:
        """Parse and check an items file's content. Raises ItemsUnavailable for a wrong format, an unknown statistic,
        arrays of unequal length, repeated ids or non-numbers."""
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise ItemsUnavailable(f"not an items file of format {FORMAT}")
        try:
            kind = Statistic(data["statistic"])
            groups = []
            for raw in data["groups"]:
                ids = [str(i) for i in raw["ids"]]
                arrays = {k: np.asarray(raw[k], dtype=float) for k in FIELDS[kind]}
                if any(a.shape != (len(ids),) for a in arrays.values()) or len(set(ids)) != len(ids) or not ids:
                    raise ItemsUnavailable(f"group {raw['name']}: ids and values do not line up")
                if not all(np.all(np.isfinite(a)) for a in arrays.values()):
                    raise ItemsUnavailable(f"group {raw['name']}: a value is not a finite number")
                groups.append(Group(str(raw["name"]), ids, arrays))
            score = float(data["score"])
            return cls(str(data["task"]), kind, str(data["unit"]), str(data["metric"]), score, tuple(groups))
        except (KeyError, TypeError, ValueError) as exc:
            raise ItemsUnavailable(f"malformed items file ({type(exc).__name__}: {exc})") from None


def check_score(items: ItemSet, score: float) -> None:
    """Raise `ItemsUnavailable` unless the items give `score` (mteb's scale) back within `SCORE_TOLERANCE`."""
    again = items.recomputed()
    if not math.isfinite(again) or abs(again - score) > SCORE_TOLERANCE:
        raise ItemsUnavailable(f"its items give {items.metric}={again:.6f}, the result says {score:.6f}")


def load_items(result_path: Path, task: str, metric: str, score: float) -> ItemSet:
    """The checked items of one result file of a harness run folder (`<run>/results/<Task>.json`), for `task` and its
    leaderboard `metric`; `score` is the task's score on mteb's scale, as read from that file. Raises ItemsUnavailable,
    with the reason, when the result records no items, the file is missing, not the one the result recorded (sha256),
    malformed, of another task or metric, or does not give the score back."""
    body = read_items_file(result_path)
    try:
        items = ItemSet.from_json(parse_json(body, parse_constant=_refuse))
    except ValueError as exc:
        raise ItemsUnavailable(f"the items file of {result_path.name} is not strict JSON ({exc})") from None
    if items.task != task or items.metric != metric:
        raise ItemsUnavailable(f"its items file holds {items.task} {items.metric}, not {task} {metric}")
    check_score(items, score)
    return items


def _refuse(name: str) -> Any:
    raise ValueError(f"non-standard constant {name}")


class Gate(StrEnum):
    """What makes a task's drop a regression."""

    tolerance = "tolerance"  # the drop exceeds the tolerance
    significant = "significant"  # the paired interval of the difference lies below 0
    both = "both"  # both of the above


# Both: a drop must be larger than what the team accepts and larger than noise. Without per-item data on both sides a
# task falls back to tolerance alone, which fails at least as often, so nothing passes that tolerance would fail.
DEFAULT_GATE = Gate.both


@dataclass(frozen=True)
class NoiseSettings:
    resamples: int = bootstrap.RESAMPLES
    confidence: float = bootstrap.CONFIDENCE
    seed: int = bootstrap.SEED

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
    mine, other = ({g.name: g for g in side.groups} for side in (ours, theirs))
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
    if kind is Statistic.experiments:  # t interval over the experiments' values
        columns = [np.mean([g.arrays["values"] for g in runs], axis=0) for runs in zip(*groups, strict=True)]
        interval = bootstrap.t_interval
    else:  # percentile interval of the bootstrap replicates
        streams = [(f"{task}/{runs[0].name}", [g.arrays for g in runs]) for runs in groups]
        columns = list(bootstrap.grouped_replicates(kind, streams, settings.resamples, settings.seed).T)  # per run
        interval = bootstrap.percentile_interval
    if len(columns) == 2:
        columns.append(columns[0] - columns[1])
    return [interval(column, settings.confidence) for column in columns]


def _points(interval: Interval | None, metric: str, difference: bool = False) -> Interval | None:
    """On the 0-100 scale, clipped to what the quantity can be: the metric's range (`metric_range`: [0, 100] for
    accuracy, V-measure, nDCG, ...; [-100, 100] for correlations), or for a difference of two such scores
    [low - high, high - low]. A t interval over a few experiments can reach far past either."""
    if interval is None:
        return None
    low, high = (POINTS * end for end in bootstrap.metric_range(metric))
    if difference:
        low, high = low - high, high - low
    return Interval(min(max(interval.low * POINTS, low), high), max(min(interval.high * POINTS, high), low))


def _alone(items: ItemSet, settings: NoiseSettings) -> Interval | None:
    return _points(_interval(items.kind, items.task, [[g] for g in items.groups], settings)[0], items.metric)


def _same(items: ItemSet, groups: list[Group]) -> bool:
    return [(g.name, g.ids) for g in items.groups] == [(g.name, g.ids) for g in groups]


def task_noise(task: str, ours: ItemSet | str, theirs: ItemSet | str, settings: NoiseSettings) -> Noise:
    """Intervals of one task in points, from each side's items (or the reason a side has none): each side's score,
    and ours - reference on the items both have (paired: the same resamples for both)."""
    if not isinstance(ours, ItemSet) or not isinstance(theirs, ItemSet):
        mine, other = (_alone(side, settings) if isinstance(side, ItemSet) else None for side in (ours, theirs))
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
    units = "queries" if ours.unit == "query" else f"{ours.unit}s"
    experiments = ours.kind is Statistic.experiments
    method = f"t interval over {common} experiments" if experiments else f"bootstrap over {common} {units}"
    note = None
    if common != ours.count or common != theirs.count:
        note = f"paired on the {common} {units} both have (run {ours.count}, reference {theirs.count})"
    if both[2] is None:
        return Noise(mine, other, None, method, "the interval is undefined on too many resamples")
    return Noise(mine, other, _points(both[2], ours.metric, difference=True), method, note)
