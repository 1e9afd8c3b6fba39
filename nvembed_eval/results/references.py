"""The reference a run is shown against (`reference=`): a published table shipped with the package, found by the run's
model, or any table or results folder; validated whole and refused in one line before any task runs."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from nvembed_eval.errors import ResultsError
from nvembed_eval.io import bundled_dir, names_a_path
from nvembed_eval.results.reading import canonical_model, check_input_kind, load_scores, read_score_table
from nvembed_eval.results.scores import ScoreSet

log = logging.getLogger(__name__)

NO_REFERENCE = (None, "null", "none")


def reference_table(reference: str | None, model: str, published: str | None = None) -> Path | None:
    """Where `reference=` points: a path (`reference=my.csv`), the name of a published table (`reference=nv_embed_v2`),
    for `auto` the published table whose `model` column names `model` (hub id, case-insensitive); None for
    `reference=null`, or `auto` without a table. Published tables sit in `published` (`paths.published_dir`), else in
    the package (results/published/ of the checkout, found from any folder or a wheel). Raises ResultsError: a bare
    name that is no shipped table (the message lists them); for `auto`, an unusable table or two tables of the model."""
    if reference in NO_REFERENCE:
        return None
    folder = Path(published).expanduser() if published else bundled_dir("published")
    if reference == "auto":
        if not model or not folder.is_dir():
            return None
        tables = [(path, read_score_table(path).model) for path in sorted(folder.glob("*.csv"))]
        found = [path for path, of in tables if of and canonical_model(of) == canonical_model(model)]
        if len(found) > 1:
            raise ResultsError(f"{found[0]} and {found[1]} are both tables of {model}; keep one in {folder}")
        return found[0] if found else None
    text = str(reference)
    if names_a_path(text):
        return Path(text).expanduser()
    if not (folder / f"{text}.csv").is_file():
        shipped = ", ".join(sorted(p.stem for p in folder.glob("*.csv")))
        raise ResultsError(f"<reference={text}> is no published table; use one of: {shipped}, or a CSV path")
    return folder / f"{text}.csv"


def load_reference(
    reference: str | None, model: str, planned: Sequence[str], published: str | None = None
) -> ScoreSet | None:
    """The reference of a run, loaded and validated whole, once, before any task: `reference=` (auto, null, a shipped
    table's name, or a path) for the run's `model.name`, the tasks it plans and `paths.published_dir`; None for
    `reference=null`, or `auto` and no table. Raises ResultsError: the path does not exist or is unusable (one line
    naming the file and the fix); an explicit reference sharing no task with the run."""
    path = reference_table(reference, model, published)
    if path is None:
        return None
    explicit = reference != "auto"
    scores = check_reference(path, f"reference={reference}" if explicit else f"reference=auto ({path})")
    if explicit and planned and not set(planned) & set(scores.scores):
        shown = ", ".join(planned[:4]) + (f" and {len(planned) - 4} more" if len(planned) > 4 else "")
        raise ResultsError(
            f"reference={reference} has none of the run's tasks ({shown}); pass a reference with them, or "
            "reference=null"
        )
    if scores.model and model and canonical_model(scores.model) != canonical_model(model):
        log.warning("reference %s is of %s; this run is of %s: deltas compare two models", path, scores.model, model)
    return scores


def check_reference(path: str | Path, what: str | None = None) -> ScoreSet:
    """A reference table or results folder, validated whole. Raises ResultsError when it does not exist or is unusable
    (one line naming it as `what`)."""
    path = Path(path)
    what = what or f"reference {path}"
    if not path.exists():
        raise ResultsError(f"{what} does not exist; pass an existing score table or results folder (or reference=null)")
    check_input_kind(path, what)  # named as the user wrote it, before the reader names the path
    return load_scores(path)
