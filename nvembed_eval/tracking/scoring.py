"""Reading leaderboard scores from any results folder or published score table into a ScoreSet.

Scores are read from mteb's own TaskResult JSONs (only keys are selected; no metric is recomputed); the leaderboard
math is in nvembed_eval.tracking.leaderboard and re-exported here.
"""

from __future__ import annotations

import json
import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nvembed_eval.errors import NVEmbedEvalError, ResultsError
from nvembed_eval.tracking.leaderboard import DEFAULT_BENCHMARK as DEFAULT_BENCHMARK
from nvembed_eval.tracking.leaderboard import LEADERBOARD_TYPES as LEADERBOARD_TYPES
from nvembed_eval.tracking.leaderboard import Aggregate as Aggregate
from nvembed_eval.tracking.leaderboard import Benchmark as Benchmark
from nvembed_eval.tracking.leaderboard import Leaderboard as Leaderboard
from nvembed_eval.tracking.leaderboard import benchmark_leaderboard as benchmark_leaderboard
from nvembed_eval.tracking.leaderboard import format_leaderboard as format_leaderboard
from nvembed_eval.tracking.leaderboard import leaderboard as leaderboard
from nvembed_eval.tracking.provenance import PROVENANCE_KEY

if TYPE_CHECKING:
    from mteb import TaskResult

    from nvembed_eval.tasks import TaskSpec

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

# Files a results folder may hold that are not TaskResults.
NON_RESULT_FILES = frozenset({"run.json", "model_meta.json"})
# Folders of a harness run folder (next to its run.json) that hold no TaskResults: per-item data, mteb's predictions.
RUN_SIDE_FOLDERS = frozenset({"items", "predictions"})
MAX_DEPTH = 3  # <dir>/X.json, <run>/results/X.json, <cache>/results/<model>/<revision>/X.json
# What every reader of scores accepts, for the refusals of anything else.
ACCEPTED = "pass a run folder, an mteb results folder, a TaskResult JSON (.json) or a score table (.csv)"
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

    @property
    def values(self) -> dict[str, float]:
        return {name: s.value for name, s in self.scores.items()}

    @property
    def benchmark(self) -> Benchmark | None:
        """The benchmark the run evaluated, from its run.json; None for tables and folders without one."""
        from nvembed_eval.tracking.origin import benchmark_of

        return benchmark_of(self.run_info, self.source)

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


# ---------------------------------------------------------------------------------------------------- reading


def load_scores(path: str | Path, label: str | None = None) -> ScoreSet:
    """Read scores from a harness run folder, an mteb results folder, one TaskResult JSON or a published CSV.

    Args:
        path: the folder or file.
        label: row label for tables (default: the folder or file name).

    Returns:
        The ScoreSet; CQADupstackRetrieval is the mean of its 12 subforums when only those are present.

    Raises:
        ResultsError: missing path, malformed file, duplicate results for one task, unknown task or metric, scores
            not on their scale (a table: docs/bad_input.md; a TaskResult: a fraction outside [-1, 1]), results of
            several models in one folder.

    Examples:
        >>> round(load_scores("../shared/reference/nv_embed_v2_published.csv").values["SciFact"], 3)
        80.127
    """
    p = Path(path)
    if not p.exists():
        raise ResultsError(f"results path {p} does not exist; pass a run folder, an mteb results folder or a CSV")
    check_input_kind(p, str(p))
    if p.is_file() and p.suffix.lower() == ".csv":
        from nvembed_eval.tracking.tables import read_score_table

        return read_score_table(p, label)
    if p.is_file():
        return _score_files(p.parent, [p], label or p.stem)
    if hydra_job_dirs(p):
        raise ResultsError(
            f"{p} is a Hydra multirun folder; pass one job folder (e.g. {p / '0'}) or use nvembed-eval-report"
        )
    files = find_result_files(p)
    if not files:
        raise ResultsError(f"no mteb TaskResult JSON under {p} (searched {MAX_DEPTH} levels); pass a results folder")
    return _score_files(p, files, label)


def check_input_kind(path: Path, what: str) -> None:
    """Refuse, in one line, an existing path that is neither a folder, a score CSV nor a TaskResult JSON.

    Args:
        path: an existing path. what: how the message names it (e.g. "reference=/dev/null").

    Raises:
        ResultsError: a device, pipe or socket; a file that is neither .csv nor .json; a .json that parses but is no
            TaskResult (no task_name and scores). A .json that does not parse is left to the reader ("malformed").
    """
    if path.is_dir():
        return
    if not path.is_file():
        kind = "a device" if path.is_char_device() or path.is_block_device() else "not a regular file"
        raise ResultsError(f"{what} is {kind}, not results; {ACCEPTED}")
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return
    if suffix != ".json":
        raise ResultsError(f"{what} is a {suffix or 'suffix-less'} file, not results; {ACCEPTED}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return  # a damaged result file: read_task_result says so and what to do
    if not isinstance(data, dict) or not ({"task_name", "mteb_dataset_name"} & set(data) or "scores" in data):
        raise ResultsError(f"{what} is a JSON file but not an mteb TaskResult (no task_name, no scores); {ACCEPTED}")


def hydra_job_dirs(path: Path) -> list[Path]:
    """Job folders of a Hydra multirun sweep (`<sweep>/<n>/.hydra/overrides.yaml`), numerically ordered."""
    if not path.is_dir():
        return []
    jobs = [d for d in path.iterdir() if d.is_dir() and (d / ".hydra" / "overrides.yaml").is_file()]
    return sorted(jobs, key=lambda d: (not d.name.isdigit(), int(d.name) if d.name.isdigit() else 0, d.name))


def find_result_files(root: Path) -> list[Path]:
    """TaskResult JSON candidates up to three levels below `root`; skips run.json, model_meta.json, dot-folders and a
    run folder's `items/` and `predictions/`."""
    found: list[Path] = []

    def walk(folder: Path, depth: int) -> None:
        for child in sorted(folder.iterdir()):
            if child.name.startswith("."):
                continue
            if child.is_dir():
                if depth < MAX_DEPTH and not (child.name in RUN_SIDE_FOLDERS and (folder / "run.json").is_file()):
                    walk(child, depth + 1)
            elif (
                child.suffix == ".json"
                and child.name not in NON_RESULT_FILES
                and not child.name.endswith("_predictions.json")
            ):
                found.append(child)

    walk(root, 1)
    return found


def read_task_result(path: Path) -> TaskResult:
    """mteb's own reader (it also upgrades results written by mteb 1.x)."""
    from mteb import TaskResult

    try:
        return TaskResult.from_disk(path)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        reason = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
        raise ResultsError(f"malformed results file {path} ({reason}); delete or regenerate it") from None
    except OSError as exc:
        raise ResultsError(f"cannot read results file {path} ({exc.strerror}); check the path") from None


def _provenance_record(path: Path) -> dict[str, Any] | None:
    """The `nvembed_eval` provenance record of a result file mteb has already read (None for plain mteb results)."""
    data = json.loads(path.read_text(encoding="utf-8"))
    record = data.get(PROVENANCE_KEY) if isinstance(data, dict) else None
    return record if isinstance(record, dict) else None


def _spec(name: str, path: Path) -> TaskSpec:
    from nvembed_eval.tasks import load_task_spec

    try:
        return load_task_spec(name)
    except NVEmbedEvalError:
        raise ResultsError(
            f"results file {path} is for task '{name}', unknown to this harness and to mteb; remove it or register "
            "the task"
        ) from None


def _flatten(scores: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in scores.items():
        if isinstance(value, Mapping):
            flat.update(_flatten(value, f"{prefix}{key}_"))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def select_metric(entry: Mapping[str, Any], spec: TaskSpec, path: Path) -> tuple[str, float]:
    """The leaderboard metric of one split/subset score dict, on the 0-100 scale."""
    flat = _flatten(entry)
    for key in metric_aliases(spec.metric):
        if key in flat:
            value = flat[key]
            if not isinstance(value, numbers.Real) or isinstance(value, bool) or not math.isfinite(value):
                raise ResultsError(f"results file {path}: {spec.name} {key}={value!r} is not a number; rerun the task")
            if abs(value) > FRACTION_LIMIT:
                raise ResultsError(
                    f"results file {path}: {spec.name} {key}={value:g} is outside mteb's 0-1 range (another scale?); "
                    "rerun the task with mteb"
                )
            return key, float(value) * 100.0
    numeric = sorted(k for k, v in flat.items() if isinstance(v, numbers.Real) and not isinstance(v, bool))
    raise ResultsError(
        f"unknown metric in {path}: {spec.name} has no {' / '.join(metric_aliases(spec.metric))} "
        f"(its keys: {', '.join(numeric[:10])}{', ...' if len(numeric) > 10 else ''}); "
        f"fix metric: in conf/task/{spec.name}.yaml or rerun with mteb 2.x"
    )


def task_score(result: TaskResult, spec: TaskSpec) -> float | None:
    """The leaderboard score (0-100) of one in-memory TaskResult, or None when it lacks the split, subset or metric.

    Examples:
        >>> task_score(model_result.task_results[0], load_task_spec("SciFact"))  # mteb.evaluate's output
        64.508
    """
    try:
        return score_task_result(result, spec, Path(f"<{spec.name} result>")).value
    except ResultsError:
        return None


def score_task_result(result: TaskResult, spec: TaskSpec, path: Path) -> TaskScore:
    """Select the leaderboard number of one TaskResult: the spec's split, subset and metric.

    Raises:
        ResultsError: the split, subset or metric is missing (the message names `path`).
    """
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
    key, value = select_metric(entry, spec, path)
    return TaskScore(spec.name, value, key, str(path), result.dataset_revision)


def _default_label(root: Path) -> str:
    if root.name == "results" and (root.parent / "run.json").is_file():
        return root.parent.name
    return root.name


def _score_files(root: Path, files: list[Path], label: str | None) -> ScoreSet:
    from nvembed_eval.tasks import list_task_specs
    from nvembed_eval.tracking.origin import model_of, read_run_info

    parents = {sub: spec for spec in list_task_specs().values() for sub in spec.subtasks}
    info = read_run_info(root)
    out = ScoreSet(source=root, label=label or _default_label(root), kind="results", run_info=info)
    out.model, out.model_source = model_of(root, files, info)
    seen: dict[str, Path] = {}
    for path in files:
        result = read_task_result(path)
        name = result.task_name
        if name in seen:
            raise ResultsError(
                f"duplicate results for task {name}: {seen[name]} and {path}; keep one (point at one model/revision)"
            )
        seen[name] = path
        record = _provenance_record(path)
        if record is not None:
            out.provenance[name] = record
        spec = _spec(name, path)
        score = score_task_result(result, spec, path)
        (out.subtask_scores if name in parents else out.scores)[name] = score

    for parent in {spec.name: spec for spec in parents.values()}.values():
        if parent.name in out.scores:
            continue
        present = [out.subtask_scores[s] for s in parent.subtasks if s in out.subtask_scores]
        if present and len(present) == len(parent.subtasks):
            mean = sum(s.value for s in present) / len(present)
            out.scores[parent.name] = TaskScore(
                parent.name,
                mean,
                parent.metric,
                f"mean of {len(present)} subtask results under {root}",
                None,
                note=f"mean of {len(present)} subtasks",
            )
        elif present:
            out.notes[parent.name] = f"only {len(present)}/{len(parent.subtasks)} subtasks; not scored"
    return out
