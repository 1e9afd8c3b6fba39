"""Leaderboard math of the 2024 MTEB(eng, v1) leaderboard: the plain average over a benchmark's tasks and the
per-type means, each labelled with its coverage. Scores come in already read (nvembed_eval.tracking.scoring).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
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
        return f"{self.covered}/{self.total} task{'s' if self.total != 1 else ''}{suffix}"

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


@dataclass(frozen=True)
class Benchmark:
    """The tasks whose scores make up the averages (the denominators), and where that list came from.

    Attributes:
        name: a conf/benchmark name ("smoke", "mteb_eng_v1", "retrieval"), an mteb benchmark name ("MTEB(eng, v2)"),
            "tasks" for an ad-hoc `tasks=[...]` list, or a description such as "tasks present in any input".
        tasks: task names in benchmark order, no duplicates.
        source: where the list was read, e.g. "--benchmark", "run.json benchmark", "run.json config.tasks".
    """

    name: str
    tasks: tuple[str, ...]
    source: str

    @classmethod
    def named(cls, name: str, source: str = "--benchmark") -> Benchmark:
        """The benchmark of `conf/benchmark/<name>.yaml`.

        Raises:
            ConfigError: no such benchmark (the message lists the available ones).
        """
        from nvembed_eval.tasks import benchmark_tasks

        return cls(name, tuple(dict.fromkeys(benchmark_tasks(name))), source)

    @classmethod
    def union(cls, name: str, task_lists: Iterable[Iterable[str]], source: str) -> Benchmark:
        """Every task of `task_lists`, in order of first appearance."""
        return cls(name, tuple(dict.fromkeys(t for tasks in task_lists for t in tasks)), source)

    @property
    def title(self) -> str:
        """The name, or for an ad-hoc list the list itself: "tasks=[SciFact,NFCorpus]"."""
        if self.name != "tasks":
            return self.name
        return f"tasks=[{','.join(self.tasks[:4])}{',...' if len(self.tasks) > 4 else ''}]"

    def describe(self) -> str:
        """E.g. "smoke (7 tasks, from run.json config.benchmark)"."""
        count = len(self.tasks)
        return f"{self.title} ({count} task{'s' if count != 1 else ''}, from {self.source})"


def benchmark_leaderboard(scores: Mapping[str, float], benchmark: str | Benchmark = DEFAULT_BENCHMARK) -> Leaderboard:
    """`leaderboard` over a Benchmark's tasks, or the tasks of `conf/benchmark/<benchmark>.yaml`; types from the task
    specs."""
    from nvembed_eval.tasks import load_task_spec

    bench = benchmark if isinstance(benchmark, Benchmark) else Benchmark.named(benchmark)
    types = {t: load_task_spec(t).type for t in bench.tasks}
    return leaderboard(scores, bench.tasks, types, bench.name)


def format_leaderboard(board: Leaderboard) -> str:
    """One line per aggregate, e.g. "Average (56 tasks): 72.31" or "Retrieval (3/15 tasks, partial): 55.10"."""
    return "\n".join(str(agg) for agg in board.aggregates())
