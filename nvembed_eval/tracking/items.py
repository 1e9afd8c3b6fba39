"""Per-item data of a task result, `<run>/items/<Task>.json`: made at run time from mteb's predictions and the task's
gold data (item_values), written only for a result the run records, bound to that result by its sha256 in the result's
provenance (`nvembed_eval.items`), and read back, checked, by the gate (docs/significance.md).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from nvembed_eval.atomic import atomic_write
from nvembed_eval.errors import NVEmbedEvalError
from nvembed_eval.tracking.bootstrap import FIELDS, Statistic, statistic
from nvembed_eval.tracking.item_values import GROUP_MAKERS, Group, ItemsUnavailable, experiment_group, kind_of
from nvembed_eval.tracking.provenance import PROVENANCE_KEY

if TYPE_CHECKING:
    from mteb import TaskResult

    from nvembed_eval.tasks import TaskData, TaskSpec

log = logging.getLogger(__name__)

ITEMS_SUBDIR = "items"
PREDICTIONS_SUBDIR = "predictions"
FORMAT = 1
# Items must give the result's own score back (mteb's fraction scale). mteb rounds retrieval means to 5 decimals and
# classification scores to 6, so 1e-5 (0.001 points); a stale or foreign items file is off by far more.
SCORE_TOLERANCE = 1e-5


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
        return float(np.mean([statistic(self.kind, g.arrays) for g in self.groups]))

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "task": self.task,
            "statistic": self.kind.value,
            "unit": self.unit,
            "metric": self.metric,
            "score": self.score,
            "groups": [
                {"name": g.name, "ids": g.ids, **{k: g.arrays[k].tolist() for k in FIELDS[self.kind]}}
                for g in self.groups
            ],
        }

    @classmethod
    def from_json(cls, data: Any) -> ItemSet:
        """Parse and check an items file's content.

        Raises:
            ItemsUnavailable: wrong format, unknown statistic, arrays of unequal length, repeated ids, non-numbers.
        """
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


@contextlib.contextmanager
def prediction_folder(run_dir: Path, *, keep: bool, enabled: bool = True) -> Iterator[Path | None]:
    """Where mteb writes its predictions for one task: `<run>/predictions/` when they are kept, else a temporary
    folder removed afterwards; None when disabled (ranks other than 0 under torchrun write nothing)."""
    if not enabled:
        yield None
    elif keep:
        yield run_dir / PREDICTIONS_SUBDIR
    else:
        with tempfile.TemporaryDirectory(prefix="nvembed-eval-predictions-") as scratch:
            yield Path(scratch)


def build_items(data: TaskData, spec: TaskSpec, prediction_dir: Path, result: TaskResult) -> ItemSet:
    """The items of one evaluated task: from mteb's prediction files in `prediction_dir` and the loaded task data.

    Raises:
        ItemsUnavailable: the metric has no per-item form, mteb's files lack the split, or the items do not give
            the result's score back (`SCORE_TOLERANCE`).
    """
    from nvembed_eval.tasks import hub_leaves
    from nvembed_eval.tracking.scoring import score_task_result

    kind, unit = kind_of(spec)
    score = score_task_result(result, spec, Path(f"<{spec.name} result>")).value / 100
    if kind is Statistic.experiments:
        entry = next(e for e in result.scores[spec.split] if e.get("hf_subset") == spec.subset)
        groups: list[Group] = [experiment_group(spec.name, entry, spec.metric)]
    else:
        make = GROUP_MAKERS[spec.type][2]
        groups = []
        for leaf in hub_leaves(data.task):
            path = prediction_dir / leaf.prediction_file_name
            if not path.is_file():
                raise ItemsUnavailable(f"mteb wrote no predictions for {leaf.metadata.name}")
            predictions = json.loads(path.read_text(encoding="utf-8"))
            groups.append(make(leaf, spec.metric, predictions, leaf.eval_splits[0], leaf.hf_subsets[0]))
    items = ItemSet(spec.name, kind, unit, spec.metric, score, tuple(groups))
    check_score(items, score)
    return items


def check_score(items: ItemSet, score: float) -> None:
    """Raise `ItemsUnavailable` unless the items give `score` (mteb's scale) back within `SCORE_TOLERANCE`."""
    again = items.recomputed()
    if not math.isfinite(again) or abs(again - score) > SCORE_TOLERANCE:
        raise ItemsUnavailable(f"its items give {items.metric}={again:.6f}, the result says {score:.6f}")


def write_items(
    data: TaskData, spec: TaskSpec, prediction_dir: Path | None, run_dir: Path, result: TaskResult
) -> dict[str, Any] | None:
    """Make and write `<run>/items/<Task>.json` for a task the run is about to record (the runner's hook).

    Per-item data is an addition to the score: when it cannot be made the run goes on, and the record says why (the
    gate then judges that task by tolerance, or refuses `--gate significant`).

    Args:
        data: the task and its still-loaded data. spec: its spec. prediction_dir: where mteb wrote its predictions
            (None: this process writes nothing). run_dir: the run folder. result: mteb's TaskResult of the task.

    Returns:
        The record for the result's provenance (`items`): {"path", "sha256", "unit", "count"}, or
        {"unavailable": reason}; None when `prediction_dir` is None.

    Raises:
        ResultsError: the file cannot be written (full disk, read-only folder).
    """
    from nvembed_eval.tracking.run_folder import writing

    if prediction_dir is None:
        return None
    try:
        items = build_items(data, spec, prediction_dir, result)
    except NVEmbedEvalError as exc:  # ItemsUnavailable, or a score the result cannot give (non-finite)
        log.warning("%s: no per-item data (%s); the gate judges it by tolerance", spec.name, exc)
        return {"unavailable": str(exc)}
    except Exception as exc:  # per-item data must never cost the run its score; the reason is recorded
        log.warning("%s: no per-item data (unexpected %s: %s)", spec.name, type(exc).__name__, exc)
        return {"unavailable": f"unexpected {type(exc).__name__}: {exc}"[:300]}
    body = (json.dumps(items.to_json(), allow_nan=False, separators=(",", ":")) + "\n").encode("utf-8")
    relative = f"{ITEMS_SUBDIR}/{spec.name}.json"
    with writing(run_dir / relative):
        (run_dir / ITEMS_SUBDIR).mkdir(exist_ok=True)
        atomic_write(run_dir / relative, body)
    return {"path": relative, "sha256": hashlib.sha256(body).hexdigest(), "unit": items.unit, "count": items.count}


def load_items(result_path: Path, task: str, metric: str, score: float) -> ItemSet:
    """The checked items of one result file of a harness run folder (`<run>/results/<Task>.json`).

    Args:
        result_path: the TaskResult JSON. task, metric: the task and its leaderboard metric key.
        score: the task's score on mteb's scale, as read from that file.

    Raises:
        ItemsUnavailable: with the reason, when the result records no items, the file is missing, not the one the
            result recorded (sha256), malformed, of another task or metric, or does not give the score back.
    """
    try:
        record = (json.loads(result_path.read_text(encoding="utf-8")).get(PROVENANCE_KEY) or {}).get("items")
    except (OSError, ValueError, AttributeError):
        record = None
    if not isinstance(record, dict):
        raise ItemsUnavailable("its result records no per-item data")
    if "unavailable" in record:
        raise ItemsUnavailable(f"none was made: {record['unavailable']}")
    run_dir = result_path.resolve().parent.parent
    path = (run_dir / str(record.get("path"))).resolve()
    if run_dir not in path.parents:
        raise ItemsUnavailable(f"its result points outside the run folder ({record.get('path')})")
    try:
        body = path.read_bytes()
    except OSError:
        raise ItemsUnavailable(f"{path} is missing") from None
    if hashlib.sha256(body).hexdigest() != record.get("sha256"):
        raise ItemsUnavailable(f"{path} is not the file its result recorded (sha256 differs); rerun the task")
    try:
        items = ItemSet.from_json(json.loads(body, parse_constant=_refuse))
    except ValueError as exc:
        raise ItemsUnavailable(f"{path} is not strict JSON ({exc})") from None
    if items.task != task or items.metric != metric:
        raise ItemsUnavailable(f"{path} holds {items.task} {items.metric}, not {task} {metric}")
    check_score(items, score)
    return items


def _refuse(name: str) -> Any:
    raise ValueError(f"non-standard constant {name}")
