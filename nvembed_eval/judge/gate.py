"""The gate's refusals (a comparison that cannot mean what it says stops with one line, exit 2; docs/bad_input.md)
and its flags for rows whose two scores the evaluators did not compute the same way (docs/fidelity.md)."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from packaging.version import InvalidVersion, Version

from nvembed_eval.errors import ConfigError, ResultsError
from nvembed_eval.results.reading import canonical_model
from nvembed_eval.results.scores import FIDELITY_KEY, ScoreSet
from nvembed_eval.tasks.benchmarks import Benchmark
from nvembed_eval.tasks.specs import load_task_spec

PRESENT = "tasks present in any input"
# Keys of a provenance data record that say where the data sat, why that commit, or whether it was checked; the rest
# (source, repository, revision, loaded_revision, sha256, subtasks) say what the data was, so any change there means
# the two numbers were made on different data. Unlike a rerun's reuse check, the loaded commit counts here.
DATA_PLACE_KEYS = frozenset({"path", "revision_source", "verified"})
HASH = re.compile(r"[0-9a-f]{16,}")
# scikit-learn releases measured to give the same clustering scores (MiniBatchKMeans, seed 42) on the fidelity
# fixture, bit for bit: 1.3.2 through 1.7.2 (../shared/data/fidelity/README.md). 1.2.2, 1.8.0 and 1.9.1 each gave
# another value, so every release outside the range is its own k-means stream.
SAME_KMEANS = (Version("1.3.2"), Version("1.8.0"))  # [first, end)
SAME_KMEANS_NAME = "1.3.2-1.7.x"


def check_tolerance(tolerance: float) -> None:
    """Raises ConfigError unless the tolerance is a finite number of points >= 0 (NaN would make every comparison
    false, i.e. every task "ok")."""
    if not math.isfinite(tolerance) or tolerance < 0:
        raise ConfigError(
            f"tolerance must be a finite number of points >= 0 <--tolerance={tolerance}>; pass e.g. --tolerance 0.5"
        )


def check_two_sides(ours: ScoreSet, reference: ScoreSet) -> None:
    """Raises ResultsError when both sides were read from the same place: every delta would be 0, a gate that always
    passes (a CI job pointing `--reference` at the run it judges)."""
    fix = "pass a baseline run or a published table"
    if Path(ours.source).resolve() == Path(reference.source).resolve() and ours.kind == reference.kind:
        raise ResultsError(f"the run and the reference are the same results ({ours.source}); {fix}")
    # The same files reached through another path: a run folder and its results/, or one of its result files.
    files = [
        {Path(s.source).resolve() for s in (*side.scores.values(), *side.subtask_scores.values())}
        for side in (ours, reference)
    ]
    if shared := sorted(p for p in files[0] & files[1] if p.is_file()):
        more = f" and {len(shared) - 1} more" if len(shared) > 1 else ""
        raise ResultsError(f"the run and the reference read the same result file {shared[0]}{more}; {fix}")


def model_notes(ours: ScoreSet, reference: ScoreSet, allow_other_model: bool) -> list[str]:
    """Warning lines the output must carry about the two sides' models: they differ (only when allowed), or a side's
    model is unknown. Raises ResultsError when both models are known and differ, without `allow_other_model`."""
    if ours.model and reference.model and canonical_model(ours.model) != canonical_model(reference.model):
        if not allow_other_model:
            raise ResultsError(
                f"reference {reference.source} is of model {reference.model} ({reference.model_source}) but the run "
                f"is of {ours.model} ({ours.model_source}); compare runs of one model, or pass --allow-other-model"
            )
        return [f"the run is of {ours.model} but the reference is of {reference.model}: deltas compare two models"]
    unknown = [(side, who) for side, who in ((ours, "run"), (reference, "reference")) if not side.model]
    return [f"model of the {who} is {side.model_text()}; not checked against the other side" for side, who in unknown]


def choose_benchmark(sets: Sequence[ScoreSet], explicit: str | None) -> tuple[Benchmark, list[str]]:
    """(benchmark, notes): the benchmark whose tasks define coverage and averages. `explicit` (`--benchmark NAME`)
    wins; else the one the runs `sets` recorded (tables and folders without run.json record none); when they recorded
    different ones, the union of their tasks (noted); when none did, every task any input has (noted). Raises
    ConfigError when `explicit` is not a benchmark, ResultsError when no input has a task."""
    if explicit:
        return Benchmark.named(explicit), []
    recorded: dict[tuple[str, ...], tuple[Benchmark, list[str]]] = {}
    for scores in sets:
        bench = scores.benchmark
        if bench is not None:
            recorded.setdefault(bench.tasks, (bench, []))[1].append(scores.label)
    if len(recorded) == 1:
        return next(iter(recorded.values()))[0], []
    if recorded:
        parts = "; ".join(f"{b.title}: {', '.join(who)}" for b, who in recorded.values())
        union = Benchmark.union("union of the runs' benchmarks", recorded, "the runs' run.json")
        return union, [f"the runs were on different benchmarks ({parts}); averages cover the {len(union.tasks)} tasks"]
    largest_first = sorted(sets, key=lambda s: -len(s.scores))  # a full table's order (type by type) leads
    union = Benchmark.union(PRESENT, (s.scores for s in largest_first), "the inputs (none records a benchmark)")
    if not union.tasks:
        raise ResultsError("nothing to compare: no input has a task score; pass folders that hold results")
    return union, [f"no input records its benchmark; averages cover the {len(union.tasks)} {PRESENT}"]


def check_shared(ours: ScoreSet, reference: ScoreSet, bench: Benchmark) -> list[str]:
    """The benchmark tasks scored on both sides, in benchmark order. Raises ResultsError when there is none (a verdict
    over nothing would say PASS)."""
    if shared := [t for t in bench.tasks if t in ours.scores and t in reference.scores]:
        return shared
    run_tasks = [t for t in bench.tasks if t in ours.scores] or list(ours.scores)
    raise ResultsError(
        f"nothing to compare: no task of benchmark {bench.describe()} has a score on both sides (run: "
        f"{_names(run_tasks)}; reference {reference.source}: {_names(list(reference.scores))}); pass a reference "
        "with the run's tasks"
    )


def data_differences(ours: ScoreSet, reference: ScoreSet, tasks: Sequence[str]) -> dict[str, str]:
    """task -> what differs between both sides' provenance data records (an aggregate's subtasks' too), e.g.
    "data.sha256 3f2a9c01b7de -> 91c0d4e2aa10" (reference -> run); tasks with the same data or without a record on a
    side (a score table, plain mteb results) are absent."""
    out = {}
    for task in tasks:
        parts = []
        for name in (task, *load_task_spec(task).subtasks):
            old, new = (_recorded(side, name, "data") for side in (reference, ours))
            if not all(isinstance(record, dict) and record for record in (old, new)):
                continue
            where = f"{name} " if name != task else ""
            for key in sorted((set(old) | set(new)) - DATA_PLACE_KEYS):
                if old.get(key) != new.get(key):
                    parts.append(f"{where}data.{key} {_value(old.get(key))} -> {_value(new.get(key))}")
        if parts:
            out[task] = ", ".join(parts)
    return out


def check_same_data(differences: dict[str, str], allow_other_data: bool) -> dict[str, str]:
    """Refuse to judge numbers made on different data (`data_differences` of the judged tasks), or with
    `--allow-other-data` return each such task's row flag: task -> "data differs: ...", empty when nothing differs.
    Raises ResultsError when some task's data differs without `allow_other_data` (a delta would measure the data)."""
    if not differences:
        return {}
    if allow_other_data:
        return {task: f"data differs: {what} (reference -> run)" for task, what in differences.items()}
    shown = "; ".join(f"{task}: {what}" for task, what in list(differences.items())[:3])
    more = f"; and {len(differences) - 3} more task(s)" if len(differences) > 3 else ""
    raise ResultsError(
        f"the run and the reference were made on different data ({shown}{more}; reference -> run), so a delta would "
        "measure the data, not the model; compare runs made on the same data, or pass --allow-other-data to judge "
        "them anyway (each such row is flagged)"
    )


def _recorded(scores: ScoreSet, task: str, *keys: str) -> Any:
    """The value at `keys` in a task's provenance record; None where the record or a level is missing."""
    value: Any = scores.provenance.get(task)
    for key in keys:
        value = value.get(key) if isinstance(value, Mapping) else None
    return value


def _value(value: Any) -> str:
    """A record value for one line: hashes and commits shortened to 12 characters."""
    if isinstance(value, str):
        return value[:12] if HASH.fullmatch(value) else repr(value)
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def check_noise_gate(unpaired: list[tuple[str, str]]) -> None:
    """`--gate significant` judges every task by its paired interval, never by tolerance. Raises ResultsError when
    `unpaired` ((task, why) of each judged task without one) is not empty: tolerance would answer another question."""
    if not unpaired:
        return
    task, why = unpaired[0]
    more = f" and {len(unpaired) - 1} more task(s)" if len(unpaired) > 1 else ""
    raise ResultsError(
        f"--gate significant needs per-item data on both sides of every judged task; {task} has none ({why}){more}; "
        "pass --gate both (tolerance judges such tasks, flagged) or --gate tolerance, or compare run folders whose "
        "results have items/"
    )


def _names(tasks: list[str], limit: int = 4) -> str:
    more = f" and {len(tasks) - limit} more" if len(tasks) > limit else ""
    return ", ".join(tasks[:limit]) + more if tasks else "none"


def kmeans_stream(version: str) -> str:
    """The name of the k-means random stream of a scikit-learn version: "1.3.2-1.7.x" for the releases measured
    to agree (`SAME_KMEANS`), else the version itself (a version that does not parse also stands for itself)."""
    try:
        parsed = Version(version)
    except InvalidVersion:
        return version
    return SAME_KMEANS_NAME if SAME_KMEANS[0] <= parsed < SAME_KMEANS[1] else str(parsed)


def clustering_flag(task_type: str, task: str, ours: ScoreSet, reference: ScoreSet) -> str | None:
    """A flag naming both sides' scikit-learn versions ("unknown" without a provenance record: plain mteb, a table)
    when a clustering task's scores may differ by k-means seed noise alone; else None."""
    if task_type != "Clustering" or task not in ours.scores or task not in reference.scores:
        return None
    a, b = (str(v) if (v := _recorded(side, task, "versions", "scikit-learn")) else None for side in (ours, reference))
    if a is not None and b is not None and kmeans_stream(a) == kmeans_stream(b):
        return None
    if a is None or b is None:
        return (
            f"scikit-learn {a or 'unknown'} (ours) vs {b or 'unknown'} (reference): k-means depends on it, a side "
            "without a provenance record cannot be checked (docs/fidelity.md)"
        )
    return (
        f"scikit-learn {a} (ours) vs {b} (reference): k-means draws other random numbers; the scores differ by "
        "seed noise (±0.2-0.5 points per task) (docs/fidelity.md)"
    )


def divergence_kinds(record: Mapping[str, Any]) -> dict[str, int]:
    """The counts of a reranking divergence record (`tasks.fidelity.reranking_divergences`), by kind, in its order."""
    return {k: int(v) for k, v in record.items() if k not in ("queries", "examples") and isinstance(v, int)}


def describe_divergences(record: Mapping[str, Any]) -> str:
    """One line for logs and flags, e.g. "mteb 1/2 reranking definitions differ on 3 of 300 queries (no negative
    candidate 2, duplicate candidate texts 1)"."""
    counts = divergence_kinds(record)
    parts = [f"{kind.replace('_', ' ')} {n}" for kind, n in counts.items() if n]
    return (
        f"mteb 1/2 reranking definitions differ on {sum(counts.values())} of {record.get('queries', '?')} queries "
        f"({', '.join(parts)})"
    )


def reranking_flag(scores: ScoreSet, task: str) -> str | None:
    """One line when a side's reranking data has queries on which mteb 1.x and 2.x scores differ by definition."""
    record = _recorded(scores, task, FIDELITY_KEY, "reranking")
    if not isinstance(record, Mapping) or not sum(divergence_kinds(record).values()):
        return None
    return describe_divergences(record)


def run_flags(scores: ScoreSet) -> list[str]:
    """ "<task>: <flag>" for every task of one score set whose reranking data diverges (the leaderboard view of a run
    without a reference)."""
    return [f"{task}: {flag}" for task in scores.scores if (flag := reranking_flag(scores, task))]


def evaluator_flags(task_type: str, task: str, ours: ScoreSet, reference: ScoreSet) -> list[str]:
    """Every evaluator-fidelity flag of one compared task, each side's reranking flag labelled with the side."""
    flags = [f"{side.label}: {flag}" for side in (ours, reference) if (flag := reranking_flag(side, task))]
    clustering = clustering_flag(task_type, task, ours, reference)
    return [clustering, *flags] if clustering else flags
