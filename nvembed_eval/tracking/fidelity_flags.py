"""Flags on a compared task where the two scores were not computed the same way by the evaluators, read from each
result's provenance record: clustering under scikit-learn versions whose k-means draws other random numbers, and
reranking data on which mteb 1.x and 2.x define the score differently (docs/fidelity.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from packaging.version import InvalidVersion, Version

from nvembed_eval.tracking.provenance import FIDELITY_KEY
from nvembed_eval.tracking.scoring import ScoreSet

# scikit-learn releases measured to give the same clustering scores (MiniBatchKMeans, seed 42) on the fidelity
# fixture, bit for bit: 1.3.2 through 1.7.2 (../shared/data/fidelity/README.md). 1.2.2, 1.8.0 and 1.9.1 each gave
# another value, so every release outside the range is its own k-means stream.
SAME_KMEANS = (Version("1.3.2"), Version("1.8.0"))  # [first, end)
SAME_KMEANS_NAME = "1.3.2-1.7.x"


def kmeans_stream(version: str) -> str:
    """The name of the k-means random stream of a scikit-learn version: "1.3.2-1.7.x" for the releases measured
    to agree (`SAME_KMEANS`), else the version itself (a version that does not parse also stands for itself)."""
    try:
        parsed = Version(version)
    except InvalidVersion:
        return version
    return SAME_KMEANS_NAME if SAME_KMEANS[0] <= parsed < SAME_KMEANS[1] else str(parsed)


def sklearn_version(scores: ScoreSet, task: str) -> str | None:
    """`versions.scikit-learn` of a task's provenance record; None when the result has none (plain mteb, a table)."""
    record = scores.provenance.get(task) or {}
    versions = record.get("versions") if isinstance(record, Mapping) else None
    value = versions.get("scikit-learn") if isinstance(versions, Mapping) else None
    return str(value) if value else None


def clustering_flag(task_type: str, task: str, ours: ScoreSet, reference: ScoreSet) -> str | None:
    """A flag when a clustering task's two scores may differ by k-means seed noise alone.

    Returns:
        None for other task types, or when both sides' scikit-learn versions share a k-means stream. Else one line
        naming both versions ("unknown" for a side without a provenance record).
    """
    if task_type != "Clustering" or task not in ours.scores or task not in reference.scores:
        return None
    a, b = sklearn_version(ours, task), sklearn_version(reference, task)
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


def reranking_record(scores: ScoreSet, task: str) -> dict[str, Any] | None:
    """The reranking divergence counts a task's provenance record carries (None when it carries none)."""
    record = scores.provenance.get(task) or {}
    section = record.get(FIDELITY_KEY) if isinstance(record, Mapping) else None
    reranking = section.get("reranking") if isinstance(section, Mapping) else None
    return dict(reranking) if isinstance(reranking, Mapping) else None


def reranking_flag(scores: ScoreSet, task: str) -> str | None:
    """One line when a side's reranking data has queries on which mteb 1.x and 2.x scores differ by definition."""
    from nvembed_eval.tasks import describe_divergences, divergent_total

    record = reranking_record(scores, task)
    if not record or not divergent_total(record):
        return None
    return describe_divergences(record)


def run_flags(scores: ScoreSet) -> list[str]:
    """ "<task>: <flag>" for every task of one score set whose reranking data diverges (the leaderboard view of a run
    without a reference)."""
    return [f"{task}: {flag}" for task in scores.scores if (flag := reranking_flag(scores, task))]


def evaluator_flags(task_type: str, task: str, ours: ScoreSet, reference: ScoreSet) -> list[str]:
    """Every evaluator-fidelity flag of one compared task, each side's reranking flag labelled with the side."""
    flags = [flag for flag in (clustering_flag(task_type, task, ours, reference),) if flag]
    for side in (ours, reference):
        flag = reranking_flag(side, task)
        if flag:
            flags.append(f"{side.label}: {flag}")
    return flags
