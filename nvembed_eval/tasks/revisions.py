"""Which dataset commit a hub run loads: the card's where mteb can still read it, else mteb's, with the reason.

The NV-Embed-v2 card was scored on mteb 1.x dataset commits. mteb 2.x re-uploaded several datasets under new
repository names (the reranking tasks in the retrieval format, MTOP, AmazonReviews), where the card's commits do not
exist, and older commits of the remaining repositories can need loading scripts that current `datasets` refuses.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from nvembed_eval.tasks.specs import REVISION_KINDS

if TYPE_CHECKING:
    from mteb import AbsTask

    from nvembed_eval.tasks.specs import TaskSpec

log = logging.getLogger(__name__)

CARD, MTEB = REVISION_KINDS


def with_revision(task: AbsTask, revision: str) -> AbsTask:
    """Point `task` at another commit of its dataset. The metadata is copied: mteb shares one metadata object per
    task class across the process."""
    dataset = {**task.metadata.dataset, "revision": revision}
    task.metadata = task.metadata.model_copy(update={"dataset": dataset})
    return task


def build_mteb_task(spec: TaskSpec, dataset_revision: str) -> tuple[AbsTask, str]:
    """mteb's own registered task, restricted to the leaderboard split and subset, on the chosen dataset commit.

    Args:
        spec: the task's spec (its card and mteb commits and repositories).
        dataset_revision: "card" to prefer the commit the published score was computed on, "mteb" for mteb's.

    Returns:
        The task and where its commit comes from: "card", "mteb", or "mteb (<why the card's commit is not used>)".
    """
    import mteb
    from mteb.abstasks.aggregated_task import AbsTaskAggregate

    task = mteb.get_task(spec.name, eval_splits=[spec.split], hf_subsets=[spec.subset])
    card = (spec.dataset_revision or {}).get(CARD)
    # Aggregates (CQADupstackRetrieval) have no dataset of their own; their subtasks keep mteb's revisions.
    if dataset_revision != CARD or not card or isinstance(task, AbsTaskAggregate):
        return task, MTEB
    if card == task.metadata.revision:
        return task, CARD
    card_repo, repo = (spec.dataset_path or {}).get(CARD), (task.metadata.dataset or {}).get("path")
    if card_repo and repo and card_repo != repo:
        reason = (
            f"the card's commit {card[:8]} is in {card_repo}, which mteb {mteb.__version__} no longer reads "
            f"(it reads {repo})"
        )
        log.warning("%s: %s; loading mteb's commit %s. Its score is flagged as on another revision.", spec.name,
                    reason, task.metadata.revision[:8])  # fmt: skip
        return task, f"{MTEB} ({reason})"
    return with_revision(task, card), CARD


def load_hub_data(spec: TaskSpec, task: AbsTask, source: str) -> tuple[AbsTask, str]:
    """Load a task that uses the card's commit now, so that a commit current `datasets` cannot read falls back.

    A card commit that fails to load (rewritten history, a loading script `datasets` no longer runs, a format
    mteb 2.x no longer parses) is replaced by mteb's commit with a warning, and the reason is returned for run.json.
    Tasks on mteb's commit are left to `mteb.evaluate` to load.

    Returns:
        The task to evaluate (a fresh one on mteb's commit after a fallback) and its commit's source.
    """
    if source != CARD:
        return task, source
    try:
        task.load_data()
    except Exception as exc:  # any failure of the old commit; mteb's commit is the documented alternative
        message = (str(exc).strip().splitlines() or [""])[0][:200]
        reason = f"the card's commit {task.metadata.revision[:8]} failed to load: {type(exc).__name__}: {message}"
        fresh, _ = build_mteb_task(spec, MTEB)
        log.warning("%s: %s; loading mteb's commit %s instead.", spec.name, reason, fresh.metadata.revision[:8])
        return fresh, f"{MTEB} ({reason})"
    return task, CARD
