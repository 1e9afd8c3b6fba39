"""Published score tables (CSV): columns task, metric, score on the 0-100 scale, optionally model and
dataset_revision; read whole or refused whole, with the scale rule of docs/bad_input.md.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import TYPE_CHECKING

from nvembed_eval.errors import NVEmbedEvalError, ResultsError
from nvembed_eval.tracking.scoring import ScoreSet, TaskScore, metric_aliases

if TYPE_CHECKING:
    from nvembed_eval.tasks import TaskSpec

REQUIRED_COLUMNS = ("task", "metric", "score")
# No leaderboard metric (nDCG, MAP, AP, accuracy, V-measure, Spearman) leaves [-1, 1], i.e. [-100, 100] in points.
MAX_POINTS = 100.0
# A score of at most 1 in magnitude cannot be told apart from mteb's 0-1 scale.
FRACTION_BOUND = 1.0


def read_score_table(path: Path, label: str | None = None) -> ScoreSet:
    """Read a published score table.

    Args:
        path: CSV with columns task, metric, score (0-100) and optionally model (the hub id the scores are of, the
            same on every row) and dataset_revision.
        label: row label (default: the file name without suffix).

    Returns:
        The ScoreSet; its `model` is None when the table has no model column.

    Raises:
        ResultsError: unreadable file, missing column, no rows, empty or unknown task, duplicate task, wrong metric,
            a score that is not a finite number or lies outside [-100, 100], more than one model, or scores not on
            the 0-100 scale: all of them at most 1 in magnitude (the 0-1 scale) or some (a mix).
    """
    out = ScoreSet(source=path, label=label or path.stem, kind="table", model_source=f"{path.name} column model")
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:  # -sig: spreadsheets write a byte-order mark
            reader = csv.DictReader(handle)
            rows = list(reader)
            columns = set(reader.fieldnames or ())
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise ResultsError(
            f"cannot read score table {path} ({exc}); pass a CSV with columns task,metric,score"
        ) from None
    missing = [c for c in REQUIRED_COLUMNS if c not in columns]
    if missing:
        raise ResultsError(f"score table {path} lacks column '{missing[0]}'; it needs columns task, metric, score")
    if not rows:
        raise ResultsError(f"score table {path} has no rows; add one row per task (task,metric,score)")
    lines: dict[str, int] = {}
    models: dict[str, int] = {}
    for line, row in enumerate(rows, start=2):
        name = (row.get("task") or "").strip()
        where = f"{path} line {line}"
        if not name:
            raise ResultsError(f"{where}: empty task name; fill it in or delete the row")
        if name in lines:
            raise ResultsError(f"duplicate rows for task {name} in {path} (lines {lines[name]} and {line}); keep one")
        lines[name] = line
        spec = _table_spec(name, where)
        metric = (row.get("metric") or "").strip()
        if metric not in metric_aliases(spec.metric):
            raise ResultsError(
                f"{where}: unknown metric '{metric}' for {name}; the leaderboard metric is "
                f"{' / '.join(metric_aliases(spec.metric))}"
            )
        value = _score(row.get("score"), name, where)
        if "model" in columns:
            models.setdefault((row.get("model") or "").strip(), line)
        revision = (row.get("dataset_revision") or "").strip() or None
        out.scores[name] = TaskScore(name, value, metric, where, revision)
    out.model = _one_model(models, path)
    _check_scale(out, path)
    return out


def _score(text: str | None, task: str, where: str) -> float:
    try:
        value = float((text or "").strip())
    except ValueError:
        raise ResultsError(f"{where}: score {text!r} of {task} is not a number; fix the row") from None
    if not math.isfinite(value):
        raise ResultsError(f"{where}: score of {task} is {value}; fix the row")
    if abs(value) > MAX_POINTS:
        raise ResultsError(f"{where}: score {value:g} of {task} is outside [-100, 100]; scores are on the 0-100 scale")
    return value


def _one_model(models: dict[str, int], path: Path) -> str | None:
    """The table's model: None without a model column (or with it empty throughout); refused when rows disagree."""
    if len(models) > 1:
        first = list(models.items())[:3]
        shown = ", ".join(f"'{m}' (line {line})" if m else f"none (line {line})" for m, line in first)
        raise ResultsError(f"score table {path} mixes models: {shown}; keep one model per table")
    name = next(iter(models), "")
    return name or None


def _check_scale(table: ScoreSet, path: Path) -> None:
    """Scores are on 0-100. Ones of magnitude <= 1 mean the 0-1 scale (all of them) or a mix (some): refused."""
    small = [s for s in table.scores.values() if abs(s.value) <= FRACTION_BOUND]
    if not small:
        return
    example = f"{small[0].task}={small[0].value:g}"
    if len(small) == len(table.scores):
        raise ResultsError(
            f"score table {path} looks like the 0-1 scale (every score is at most 1, e.g. {example}); "
            "write scores on the 0-100 scale (multiply by 100)"
        )
    raise ResultsError(
        f"score table {path} mixes scales: {len(small)} of {len(table.scores)} scores are at most 1 (e.g. {example}) "
        "while the others are on 0-100; write every score on the 0-100 scale"
    )


def _table_spec(name: str, where: str) -> TaskSpec:
    import difflib

    from nvembed_eval.tasks import list_task_specs, load_task_spec

    try:
        return load_task_spec(name)
    except NVEmbedEvalError:
        close = difflib.get_close_matches(name, list(list_task_specs()), n=1)
        hint = f"did you mean {close[0]}? " if close else ""
        raise ResultsError(f"{where}: unknown task '{name}'; {hint}use mteb task names") from None
