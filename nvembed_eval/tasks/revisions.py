"""Which dataset commit a hub run loads: the card's (mteb 1.x) where mteb can still read it, else mteb's, with the
reason: mteb 2.x re-uploaded several datasets under new names (reranking tasks as retrieval, MTOP, AmazonReviews) where
the card's commits do not exist, and older commits of others can need loading scripts current `datasets` refuses."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import numpy as np

from nvembed_eval.errors import DataError, first_line
from nvembed_eval.tasks import hub_data
from nvembed_eval.tasks.specs import REVISION_KINDS

if TYPE_CHECKING:
    from mteb import AbsTask

    from nvembed_eval.tasks.specs import TaskSpec

log = logging.getLogger(__name__)

CARD, MTEB = REVISION_KINDS


def build_mteb_task(spec: TaskSpec, dataset_revision: str) -> tuple[AbsTask, str]:
    """mteb's own registered task, restricted to the leaderboard split and subset, on the chosen dataset commit
    (`dataset_revision` "card" prefers the one the published score was computed on, "mteb" takes mteb's), and where
    its commit comes from: "card", "mteb", or "mteb (<why the card's commit is not used>)"."""
    import mteb
    from mteb.abstasks.aggregated_task import AbsTaskAggregate

    task = mteb.get_task(spec.name, eval_splits=[spec.split], hf_subsets=[spec.subset])
    _read_labels_once(task)
    card = (spec.dataset_revision or {}).get(CARD)
    # Aggregates (CQADupstackRetrieval) have no dataset of their own; their subtasks keep mteb's revisions.
    if dataset_revision != CARD or not card or isinstance(task, AbsTaskAggregate):
        return task, MTEB
    if card == task.metadata.revision:
        return task, CARD
    card_repo, repo = (spec.dataset_path or {}).get(CARD), (task.metadata.dataset or {}).get("path")
    if card_repo and repo and card_repo != repo:
        reason = f"the card's commit {card[:8]} is in {card_repo}, which mteb {mteb.__version__} no longer reads"
        reason += f" (it reads {repo})"
        log.warning("%s: %s; loading mteb's commit %s. Its score is flagged as on another revision.", spec.name,
                    reason, task.metadata.revision[:8])  # fmt: skip
        return task, f"{MTEB} ({reason})"
    # The metadata is copied: mteb shares one metadata object per task class across the process.
    task.metadata = task.metadata.model_copy(update={"dataset": {**task.metadata.dataset, "revision": card}})
    return task, CARD


def _read_labels_once(task: AbsTask) -> None:
    """Hand a classification task's scoring its test labels as one array. mteb 2.26 passes the label column as a
    `datasets.Column`, which scikit-learn converts to an array row by row, about 280 times per experiment over its
    seven metrics: Banking77 (3,080 labels) spent 41 of its 44 s of scoring there (cProfile, 2 CPU cores), and
    AmazonPolarity (400,000) would spend hours. The metrics see the same labels, so every score is unchanged."""
    from mteb.abstasks.classification import AbsTaskClassification

    calculate = getattr(task, "_calculate_scores", None)
    if getattr(calculate, "__func__", None) is AbsTaskClassification._calculate_scores:  # mteb's own, as measured
        task._calculate_scores = lambda y_test, y_pred: calculate(np.asarray(y_test), y_pred)


def hub_leaves(task: AbsTask) -> list[AbsTask]:
    """The tasks that load a hub dataset: an aggregate's subtasks (CQADupstackRetrieval), else the task itself."""
    from mteb.abstasks.aggregated_task import AbsTaskAggregate

    return list(task.metadata.tasks) if isinstance(task, AbsTaskAggregate) else [task]


def hub_datasets(task: AbsTask) -> list[tuple[str, str]]:
    """(repository, commit) of every hub dataset the task reads, in subtask order."""
    return [(leaf.metadata.dataset["path"], leaf.metadata.revision) for leaf in hub_leaves(task)]


def load_hub_data(spec: TaskSpec, task: AbsTask, source: str) -> tuple[AbsTask, str, bool]:
    """Load a task's hub data on its chosen commit and check which commit the files came from. A card commit that
    cannot be read (rewritten history, a loading script `datasets` no longer runs, a format mteb 2.x no longer parses)
    is replaced by mteb's commit with a warning; a network failure fails at once, on no other commit.

    Returns the loaded task (a fresh one on mteb's commit after a fallback), its commit's source (with the fallback's
    reason, for run.json), and whether every file-backed dataset was checked to come from the requested commit
    (`hub_data.verify_loaded_commit`). Raises `DataError` when the hub (or, offline, the datasets cache) cannot provide
    the commit, the data came from another commit, or mteb cannot read its own commit either."""
    try:
        return task, source, _load_and_verify(spec, task)
    except _Unreadable as failure:
        exc = failure.__cause__
        if source != CARD:
            raise _unreadable(spec, task, exc) from None
        message = (str(exc).strip().splitlines() or [""])[0][:200]
        reason = f"the card's commit {task.metadata.revision[:8]} failed to load: {type(exc).__name__}: {message}"
    fresh, _ = build_mteb_task(spec, MTEB)
    log.warning("%s: %s; loading mteb's commit %s instead.", spec.name, reason, fresh.metadata.revision[:8])
    try:
        return fresh, f"{MTEB} ({reason})", _load_and_verify(spec, fresh)
    except _Unreadable as failure:
        raise _unreadable(spec, fresh, failure.__cause__) from None


class _Unreadable(Exception):
    """mteb's own loading of a commit failed for a reason other than the network (the error is its `__cause__`)."""


def _load_and_verify(spec: TaskSpec, task: AbsTask) -> bool:
    datasets = hub_datasets(task)
    for repo, revision in datasets:
        if not hub_data.select_cached_commit(repo, revision) and hub_data.hub_offline():
            raise hub_data.network_error(spec.name, repo, revision, ConnectionError("not cached"))
    try:
        task.load_data()
    except Exception as exc:  # only mteb's and datasets' own loading is in this block
        if hub_data.is_network_error(exc):
            repo, revision = datasets[0]
            raise hub_data.network_error(spec.name, repo, revision, exc) from None
        raise _Unreadable() from exc
    leaves = zip(hub_leaves(task), datasets, strict=True)
    return all([hub_data.verify_loaded_commit(leaf, repo, revision) for leaf, (repo, revision) in leaves])


def _unreadable(spec: TaskSpec, task: AbsTask, exc: BaseException) -> DataError:
    import mteb

    repo, revision = hub_datasets(task)[0]
    reason = first_line(exc, 160)
    return DataError(
        f"{spec.name}: mteb {mteb.__version__} cannot read {repo}@{revision[:8]} ({type(exc).__name__}: {reason}); "
        "try dataset_revision=mteb, or give the data with data_dir=<folder> (docs/local_data.md)"
    )
