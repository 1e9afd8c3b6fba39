"""The reference a run is shown against (`reference=` in the config): found, validated whole and refused in one line
before any task runs, rather than silently dropped at the end.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from nvembed_eval.errors import ResultsError
from nvembed_eval.tracking.origin import canonical_model
from nvembed_eval.tracking.scoring import ScoreSet, check_input_kind, load_scores

if TYPE_CHECKING:
    from omegaconf import DictConfig

log = logging.getLogger(__name__)

NO_REFERENCE = (None, "null", "none")


def published_table_for(model: str, published_dir: Path) -> Path | None:
    """The table in `published_dir` whose `model` column names `model` (hub id, case-insensitive); None if none.

    Raises:
        ResultsError: a table there is unusable, or two tables claim the model.
    """
    from nvembed_eval.tracking.tables import read_score_table

    if not model or not published_dir.is_dir():
        return None
    found = []
    for path in sorted(published_dir.glob("*.csv")):
        table = read_score_table(path)
        if table.model and canonical_model(table.model) == canonical_model(model):
            found.append(path)
    if len(found) > 1:
        raise ResultsError(f"{found[0]} and {found[1]} are both tables of {model}; keep one in {published_dir}")
    return found[0] if found else None


def published_dir(cfg: DictConfig) -> Path:
    """The folder of published tables: `paths.published_dir`, or when that is null the tables shipped inside the
    package (results/published/ of the checkout), so a run from any folder or an installed wheel finds them."""
    from nvembed_eval.resources import bundled_dir

    folder = (cfg.get("paths") or {}).get("published_dir")
    return Path(str(folder)).expanduser() if folder else bundled_dir("published")


def reference_table(cfg: DictConfig) -> Path | None:
    """The reference of a run config: `reference=<path>`, or the name of a shipped table (`reference=nv_embed_v2`);
    for `auto`, the table in the published folder (`published_dir`) whose model is `model.name`; None for
    `reference=null`, or `auto` without such a table.

    Raises:
        ResultsError: a bare name that is no shipped table (the message lists them).
    """
    reference = cfg.get("reference", "auto")
    if reference in NO_REFERENCE:
        return None
    published = published_dir(cfg)
    if reference == "auto":
        return published_table_for(str(cfg.model.get("name") or ""), published)
    text = str(reference)
    if "/" in text or Path(text).suffix or text.startswith("~"):
        return Path(text).expanduser()
    if not (published / f"{text}.csv").is_file():
        shipped = ", ".join(sorted(p.stem for p in published.glob("*.csv")))
        raise ResultsError(f"<reference={text}> is no published table; use one of: {shipped}, or a CSV path")
    return published / f"{text}.csv"


def _planned_tasks(cfg: DictConfig) -> list[str]:
    """The tasks the config asks for (`tasks=[...]`, else the benchmark's), before local-data selection."""
    tasks = cfg.get("tasks")
    if tasks:
        return [tasks.strip()] if isinstance(tasks, str) else [str(t) for t in tasks]  # tasks=SciFact: one task
    bench = cfg.get("benchmark")
    return [str(t) for t in (bench.get("tasks") or [])] if bench is not None else []


def check_reference(path_or_cfg: str | Path | DictConfig) -> ScoreSet | None:
    """Validate a reference fully: it exists, and as a table its columns, tasks, metrics, model and scale are sound.

    Args:
        path_or_cfg: a score table or results folder, or a run config (its `reference`, `model.name`, `tasks` and
            `benchmark.tasks` are read).

    Returns:
        The reference's scores; None when a config has `reference=null`, or `auto` and no table for its model.

    Raises:
        ResultsError: the path does not exist or the reference is unusable (one line naming the file and the fix);
            for a config with an explicit `reference=`, also when it has none of the planned tasks.

    Examples:
        >>> check_reference("results/published/nv_embed_v2.csv").model
        'nvidia/NV-Embed-v2'
    """
    if isinstance(path_or_cfg, str | Path):
        return _load(Path(path_or_cfg), f"reference {path_or_cfg}")
    cfg = path_or_cfg
    path = reference_table(cfg)
    if path is None:
        return None
    explicit = cfg.get("reference") != "auto"
    reference = _load(path, f"reference={cfg.get('reference')}" if explicit else f"reference=auto ({path})")
    planned = _planned_tasks(cfg)
    if explicit and planned and not set(planned) & set(reference.scores):
        shown = ", ".join(planned[:4]) + (f" and {len(planned) - 4} more" if len(planned) > 4 else "")
        raise ResultsError(
            f"reference={cfg.get('reference')} has none of the run's tasks ({shown}); pass a reference with them, "
            "or reference=null"
        )
    model = str(cfg.model.get("name") or "")
    if reference.model and model and canonical_model(reference.model) != canonical_model(model):
        log.warning("reference %s is of %s; this run is of %s: deltas compare two models", path, reference.model, model)
    return reference


def _load(path: Path, what: str) -> ScoreSet:
    if not path.exists():
        raise ResultsError(f"{what} does not exist; pass an existing score table or results folder (or reference=null)")
    check_input_kind(path, what)  # named as the user wrote it, before the reader names the path
    return load_scores(path)
