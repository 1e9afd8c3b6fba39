"""Leaderboard scores (0-100) picked from mteb's TaskResult by key (never recomputed; not `TaskResult.get_score`, which
cannot pick STS17's `en-en` and knows no older metric names), and the 2024 MTEB(eng, v1) leaderboard's plain average and
per-type means, each labelled with its coverage."""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nvembed_eval.errors import ResultsError
from nvembed_eval.tasks.benchmarks import Benchmark
from nvembed_eval.tasks.specs import load_task_spec

if TYPE_CHECKING:
    from mteb import TaskResult

    from nvembed_eval.tasks.specs import TaskSpec

PROVENANCE_KEY = "nvembed_eval"  # top-level key of this harness's record in mteb's TaskResult JSON; mteb ignores it
# Section of that record with the evaluator-fidelity counts (tasks.fidelity); it describes the data, never compared.
FIDELITY_KEY = "fidelity"

# Leaderboard metric key as mteb 2.26 writes it -> every name the same number has in older results and tables.
# cos_sim_ap: mteb < 1.12.48 name of cosine AP (the v1 leaderboard's pair-classification metric, not max_ap).
# map: mteb 1.x reranking MAP over each query's full candidate list; candidate lists are far shorter than 1000,
# so mteb 2.x map_at_1000 is the same quantity (MindSmall: max over the user's history sub-queries, as in 1.x).
# "ap (max/cosine)": how the all-MiniLM-L6-v2 reference table labels AP where max and cosine AP coincide.
METRIC_ALIASES: dict[str, tuple[str, ...]] = {
    "ndcg_at_10": ("ndcg_at_10",),
    "map_at_1000": ("map_at_1000", "map"),
    "max_over_subqueries_map_at_1000": ("max_over_subqueries_map_at_1000", "map"),
    "cosine_ap": ("cosine_ap", "cos_sim_ap", "ap (max/cosine)"),
    "cosine_spearman": ("cosine_spearman", "cos_sim_spearman"),
    "accuracy": ("accuracy",),
    "v_measure": ("v_measure",),
}

# mteb stores every leaderboard metric as a fraction in [-1, 1]; a stored value outside it is on another scale.
FRACTION_LIMIT = 1.0 + 1e-9


def metric_aliases(metric: str) -> tuple[str, ...]:
    """All accepted names for a leaderboard metric key, the mteb 2.x key first."""
    return METRIC_ALIASES.get(metric, (metric,))


@dataclass(frozen=True)
class TaskScore:
    """One task's leaderboard score on the 0-100 scale and where it came from."""

    task: str
    value: float
    metric: str
    source: str
    dataset_revision: str | None = None
    note: str | None = None


@dataclass
class ScoreSet:
    """Scores (0-100) of one run, results folder or published table, with the model and benchmark they are of."""

    source: Path
    label: str
    kind: str  # "results" (TaskResult JSONs) or "table" (published CSV)
    scores: dict[str, TaskScore] = field(default_factory=dict)
    subtask_scores: dict[str, TaskScore] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)  # task -> why it has no score although something was found
    run_info: dict[str, Any] = field(default_factory=dict)  # run.json of a harness run folder
    model: str | None = None  # hub id of the model the scores are of; None = unknown
    model_source: str = "unknown"  # where `model` was read (run.json, model_meta.json, a table's model column, ...)
    provenance: dict[str, dict[str, Any]] = field(default_factory=dict)  # task -> its result file's provenance record
    read_for: Benchmark | None = None  # the benchmark a folder without one in run.json was read for (given or assumed)
    ignored: int = 0  # result files of tasks outside that benchmark, not read
    reading_note: str = ""  # "ignored 675 files of tasks outside MTEB(eng, v1)", "" when nothing was ignored

    @property
    def values(self) -> dict[str, float]:
        return {name: s.value for name, s in self.scores.items()}

    @property
    def benchmark(self) -> Benchmark | None:
        """The benchmark the run evaluated (its run.json), else the one the folder was read for; None for tables."""
        return benchmark_of(self.run_info, self.source) or self.read_for

    @property
    def made_here(self) -> bool:
        """Whether this harness made the results (a run folder's run.json, or provenance records in the files)."""
        return bool(self.run_info or self.provenance)

    def model_text(self) -> str:
        """E.g. "nvidia/NV-Embed-v2 (from run.json)" or "unknown (a table without a model column)"."""
        if self.model:
            return f"{self.model} (from {self.model_source})"
        return "unknown (a table without a model column)" if self.kind == "table" else "unknown (no run.json)"

    @property
    def instruction_variant(self) -> str | None:
        """The `instructions.variant` the run used, when its run.json records it."""
        instructions = (self.run_info.get("config") or {}).get("instructions") or {}
        return instructions.get("variant") if isinstance(instructions, dict) else None


def _flatten(scores: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in scores.items():
        if isinstance(value, Mapping):
            flat.update(_flatten(value, f"{prefix}{key}_"))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def task_score(result: TaskResult, spec: TaskSpec) -> float | None:
    """The leaderboard score (0-100) of one in-memory TaskResult, or None when it lacks the split, subset or metric."""
    try:
        return score_task_result(result, spec, Path(f"<{spec.name} result>")).value
    except ResultsError:
        return None


def score_task_result(result: TaskResult, spec: TaskSpec, path: Path) -> TaskScore:
    """Select the leaderboard number (0-100) of one TaskResult: the spec's split, subset and metric. Raises
    ResultsError, naming `path`, when one is missing or the metric is not a fraction in [-1, 1]."""
    entries = result.scores.get(spec.split)
    if not entries:
        raise ResultsError(
            f"results file {path} has no '{spec.split}' split for {spec.name} (has: {', '.join(result.scores)}); "
            f"rerun {spec.name} on split {spec.split}"
        )
    entry = next((e for e in entries if e.get("hf_subset") == spec.subset), None)
    if entry is None:
        found = ", ".join(str(e.get("hf_subset")) for e in entries)
        raise ResultsError(
            f"results file {path} has no '{spec.subset}' subset for {spec.name} (has: {found}); "
            f"rerun {spec.name} with subset {spec.subset}"
        )
    flat = _flatten(entry)
    for key in [k for k in metric_aliases(spec.metric) if k in flat]:
        value = flat[key]
        if not isinstance(value, numbers.Real) or isinstance(value, bool) or not math.isfinite(value):
            raise ResultsError(f"results file {path}: {spec.name} {key}={value!r} is not a number; rerun the task")
        if abs(value) > FRACTION_LIMIT:
            raise ResultsError(
                f"results file {path}: {spec.name} {key}={value:g} is outside mteb's 0-1 range (another scale?); "
                "rerun the task with mteb"
            )
        return TaskScore(spec.name, float(value) * 100.0, key, str(path), result.dataset_revision)
    numeric = sorted(k for k, v in flat.items() if isinstance(v, numbers.Real) and not isinstance(v, bool))
    raise ResultsError(
        f"unknown metric in {path}: {spec.name} has no {' / '.join(metric_aliases(spec.metric))} "
        f"(its keys: {', '.join(numeric[:10])}{', ...' if len(numeric) > 10 else ''}); "
        f"fix metric: in conf/task/{spec.name}.yaml or rerun with mteb 2.x"
    )


def benchmark_of(run_info: dict[str, Any], where: Path) -> Benchmark | None:
    """The benchmark a run evaluated, from its run.json: the top-level `"benchmark": {"name", "tasks"}` the runner
    records, else `config.tasks` (an ad-hoc list), else `config.benchmark.tasks` (and `.name`); None when it records
    none (mteb folders, tables). Raises ResultsError when the record exists but is not a list of task names."""
    config = run_info.get("config") if isinstance(run_info.get("config"), dict) else {}
    bench = config.get("benchmark") if isinstance(config.get("benchmark"), dict) else {}
    candidates = (
        (run_info.get("benchmark"), "run.json benchmark"),
        ({"name": "tasks", "tasks": config.get("tasks")}, "run.json config.tasks"),
        (bench, "run.json config.benchmark"),
    )
    for record, source in candidates:
        if not isinstance(record, dict) or not record.get("tasks"):
            continue
        tasks = record["tasks"]
        if isinstance(tasks, str) and source == "run.json config.tasks":  # `tasks=SciFact`: one task
            tasks = [tasks]
        if not isinstance(tasks, list) or not all(isinstance(t, str) and t for t in tasks):
            raise ResultsError(f"{where}: {source}.tasks is not a list of task names; fix or remove the file")
        return Benchmark(str(record.get("name") or "tasks"), tuple(dict.fromkeys(tasks)), source)
    return None


DEFAULT_BENCHMARK = "mteb_eng_v1"
# The leaderboard's order of task types; other types follow, sorted.
LEADERBOARD_TYPES = ("Classification", "Clustering", "PairClassification", "Reranking", "Retrieval", "STS")
LEADERBOARD_TYPES += ("Summarization",)


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
        tasks = f"{self.total} task{'s' if self.total != 1 else ''}"
        return tasks if self.complete else f"{self.covered}/{tasks}{', partial' if self.covered else ''}"

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


def benchmark_leaderboard(scores: Mapping[str, float], benchmark: str | Benchmark = DEFAULT_BENCHMARK) -> Leaderboard:
    """The leaderboard of `scores` (task name -> 0-100; others ignored) over a Benchmark's tasks, or those of
    `conf/benchmark/<benchmark>.yaml`, types from the task specs; a group missing a task is partial (its Aggregate)."""
    bench = benchmark if isinstance(benchmark, Benchmark) else Benchmark.named(benchmark)
    tasks = bench.tasks
    types = {t: load_task_spec(t).type for t in tasks}

    def aggregate(name: str, members: Sequence[str]) -> Aggregate:
        got = [scores[t] for t in members if t in scores]
        return Aggregate(name, len(got), len(members), sum(got) / len(got) if got else None)

    order = [t for t in LEADERBOARD_TYPES if any(types[x] == t for x in tasks)]
    order += sorted({types[x] for x in tasks} - set(order))
    by_type = {kind: aggregate(kind, [t for t in tasks if types[t] == kind]) for kind in order}
    return Leaderboard(bench.name, aggregate("Average", tasks), by_type, tuple(t for t in tasks if t not in scores))


def format_leaderboard(board: Leaderboard) -> str:
    """One line per aggregate, e.g. "Average (56 tasks): 72.31" or "Retrieval (3/15 tasks, partial): 55.10"."""
    return "\n".join(str(agg) for agg in board.aggregates())
