"""Leaderboard math of the 2024 MTEB(eng, v1) leaderboard: the plain average over a benchmark's tasks and the
per-type means, each labelled with its coverage. Scores come in already read (nvembed_eval.tracking.scoring).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

DEFAULT_BENCHMARK = "mteb_eng_v1"
LEADERBOARD_TYPES = (
    "Classification",
    "Clustering",
    "PairClassification",
    "Reranking",
    "Retrieval",
    "STS",
    "Summarization",
)


@dataclass(frozen=True)
class Aggregate:
    """A mean over the tasks of a group that are present, with its coverage."""

    name: str
    covered: int
    total: int
    mean: float | None

    @property
    def complete(self) -> bool:
        return self.total > 0 and self.covered == self.total

    def coverage(self) -> str:
        """Coverage text: "56 tasks" when complete, "12/56 tasks, partial" when not, "0/56 tasks" when empty."""
        if self.complete:
            return f"{self.total} task{'s' if self.total != 1 else ''}"
        suffix = ", partial" if self.covered else ""
        return f"{self.covered}/{self.total} tasks{suffix}"

    def label(self) -> str:
        """Label, e.g. "Average (56 tasks)" or "Average (12/56 tasks, partial)": never a bare full-benchmark label."""
        return f"{self.name} ({self.coverage()})"

    def value_text(self) -> str:
        return "n/a" if self.mean is None else f"{self.mean:.2f}"

    def __str__(self) -> str:
        return f"{self.label()}: {self.value_text()}"


@dataclass(frozen=True)
class Leaderboard:
    """Average over all benchmark tasks (plain mean, not a mean of type means) and per-type means."""

    benchmark: str
    average: Aggregate
    by_type: dict[str, Aggregate]
    missing: tuple[str, ...]

    def aggregates(self) -> list[Aggregate]:
        return [self.average, *self.by_type.values()]


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def leaderboard(
    scores: Mapping[str, float],
    tasks: Sequence[str],
    types: Mapping[str, str],
    benchmark: str = DEFAULT_BENCHMARK,
) -> Leaderboard:
    """Leaderboard numbers of one set of scores.

    Args:
        scores: task name -> score (0-100); tasks outside `tasks` are ignored.
        tasks: the benchmark's tasks (the denominators).
        types: task name -> task type, for every name in `tasks`.
        benchmark: name for display.

    Returns:
        The Leaderboard; groups without every task are marked partial by their Aggregate.
    """
    present = [t for t in tasks if t in scores]
    average = Aggregate("Average", len(present), len(tasks), _mean([scores[t] for t in present]))
    order = [t for t in LEADERBOARD_TYPES if any(types[x] == t for x in tasks)]
    order += sorted({types[x] for x in tasks} - set(order))
    by_type = {}
    for kind in order:
        members = [t for t in tasks if types[t] == kind]
        got = [scores[t] for t in members if t in scores]
        by_type[kind] = Aggregate(kind, len(got), len(members), _mean(got))
    return Leaderboard(benchmark, average, by_type, tuple(t for t in tasks if t not in scores))


def benchmark_leaderboard(scores: Mapping[str, float], benchmark: str = DEFAULT_BENCHMARK) -> Leaderboard:
    """`leaderboard` over the tasks of `conf/benchmark/<benchmark>.yaml`, types from their task YAMLs."""
    from nvembed_eval.tasks import benchmark_tasks, load_task_spec

    tasks = benchmark_tasks(benchmark)
    types = {t: load_task_spec(t).type for t in tasks}
    return leaderboard(scores, tasks, types, benchmark)


def format_leaderboard(board: Leaderboard) -> str:
    """One line per aggregate, e.g. "Average (56 tasks): 72.31" or "Retrieval (3/15 tasks, partial): 55.10"."""
    return "\n".join(str(agg) for agg in board.aggregates())
