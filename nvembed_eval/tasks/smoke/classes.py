"""The seven smoke task classes: mteb abstask subclasses whose data ships in `smoke/data/<TaskName>/`.

The data is read by `nvembed_eval.tasks.local_data`, in the same layout as any local task (docs/local_data.md).
"""

from __future__ import annotations

import difflib
import importlib
from typing import Any

from mteb.abstasks import (
    AbsTask,
    AbsTaskClassification,
    AbsTaskClusteringLegacy,
    AbsTaskPairClassification,
    AbsTaskRetrieval,
    AbsTaskSTS,
    AbsTaskSummarization,
)
from mteb.abstasks.task_metadata import TaskMetadata

from nvembed_eval.errors import TaskNotFoundError
from nvembed_eval.tasks.local_data import load_local_task_data
from nvembed_eval.tasks.smoke import DATA_DIR, SMOKE_TASK_NAMES

_ORIGIN = (
    "Every text and label was written for nvembed-eval by an AI assistant working on the project; nothing is "
    "drawn from an existing dataset. Meant to expose a broken pipeline, not to rank models."
)


def _metadata(
    name: str, task_type: str, category: str, main_score: str, about: str, prompt: Any, subtypes: list[str]
) -> TaskMetadata:
    return TaskMetadata(
        name=name,
        description=f"{about} {_ORIGIN}",
        reference=None,
        dataset={"path": "nvembed-eval/smoke", "revision": "v1"},
        type=task_type,
        category=category,
        modalities=["text"],
        eval_splits=["test"],
        eval_langs=["eng-Latn"],
        main_score=main_score,
        date=("2026-11-26", "2026-11-26"),
        domains=["Constructed", "Written"],
        task_subtypes=subtypes,
        license="apache-2.0",
        annotations_creators="LM-generated",
        dialect=[],
        sample_creation="created",
        bibtex_citation="",
        contributed_by="nvembed-eval",
        prompt=prompt,
    )


class _PackagedData:
    """Loads the task's folder under `DATA_DIR` instead of the Hugging Face hub."""

    data_loaded: bool

    def load_data(self, num_proc: int | None = None, **kwargs: Any) -> None:
        if not self.data_loaded:
            load_local_task_data(self, DATA_DIR)  # type: ignore[arg-type]


class NVEvalSmokeRetrieval(_PackagedData, AbsTaskRetrieval):
    metadata = _metadata(
        "NVEvalSmokeRetrieval",
        "Retrieval",
        "t2t",
        "ndcg_at_10",
        "24 everyday how/why questions over 36 short how-to and science passages, one relevant passage each.",
        {"query": "Given a question about everyday science or household tasks, retrieve the passage that answers it"},
        ["Question answering"],
    )


class NVEvalSmokeReranking(_PackagedData, AbsTaskRetrieval):
    metadata = _metadata(
        "NVEvalSmokeReranking",
        "Reranking",
        "t2t",
        "map_at_1000",
        "12 hobby questions, each with 5 candidate answers from the same hobby (1 or 2 relevant) to rerank.",
        {"query": "Given a question about a hobby, retrieve the passages that answer it"},
        ["Question answering"],
    )


class NVEvalSmokeSTS(_PackagedData, AbsTaskSTS):
    metadata = _metadata(
        "NVEvalSmokeSTS",
        "STS",
        "t2t",
        "cosine_spearman",
        "32 sentence pairs about everyday scenes, scored for similarity from 0 (unrelated) to 5 (same meaning).",
        "Retrieve sentences that mean the same as the given sentence",
        [],
    )
    min_score = 0
    max_score = 5


class NVEvalSmokeClassification(_PackagedData, AbsTaskClassification):
    metadata = _metadata(
        "NVEvalSmokeClassification",
        "Classification",
        "t2c",
        "accuracy",
        "Single sentences in 4 topics (weather, food, sport, computing): 10 train and 6 test per topic.",
        "Classify the topic of the given sentence as weather, food, sport or computing",
        ["Topic classification"],
    )
    samples_per_label = 8  # of the 10 train sentences per label, so the 3 experiments draw different subsets
    n_experiments = 3


class NVEvalSmokePairClassification(_PackagedData, AbsTaskPairClassification):
    metadata = _metadata(
        "NVEvalSmokePairClassification",
        "PairClassification",
        "t2t",
        "cosine_ap",
        "32 question pairs, half asking the same thing and half a related but different question.",
        "Retrieve questions that ask the same thing as the given question",
        ["Duplicate Detection"],
    )


class NVEvalSmokeClustering(_PackagedData, AbsTaskClusteringLegacy):
    metadata = _metadata(
        "NVEvalSmokeClustering",
        "Clustering",
        "t2c",
        "v_measure",
        "2 sets of 24 sentences, each set spanning 4 topics with 6 sentences per topic.",
        "Identify the topic of the given sentence",
        ["Thematic clustering"],
    )


class NVEvalSmokeSummarization(_PackagedData, AbsTaskSummarization):
    metadata = _metadata(
        "NVEvalSmokeSummarization",
        "Summarization",
        "t2t",
        "cosine_spearman",
        "6 short local news stories with 2 reference summaries and 5 candidate summaries rated 1 (off topic) to 5.",
        "Given a summary of a short news story, retrieve summaries that convey the same content",
        [],
    )
    min_score = 1
    max_score = 5


SMOKE_TASKS: tuple[type, ...] = (
    NVEvalSmokeRetrieval,
    NVEvalSmokeReranking,
    NVEvalSmokeSTS,
    NVEvalSmokeClassification,
    NVEvalSmokePairClassification,
    NVEvalSmokeClustering,
    NVEvalSmokeSummarization,
)


def register() -> None:
    """Add the smoke tasks to the registry `mteb.get_task` reads. Safe to call any number of times.

    mteb 2.26 has no public registration call: `mteb.get_task` looks names up in the module dict
    `mteb.get_tasks._TASKS_REGISTRY`, so the classes are added there (mteb's own result tooling, e.g.
    `TaskResult.task`, then finds them too). Filter queries such as `mteb.get_tasks(task_types=[...])` do not list them.

    Raises:
        TaskNotFoundError: mteb has no such registry dict, or another class already holds one of the names.

    Examples:
        >>> from nvembed_eval.tasks.smoke import classes
        >>> classes.register()
        >>> task = mteb.get_task("NVEvalSmokeSTS")
    """
    registry = getattr(importlib.import_module("mteb.get_tasks"), "_TASKS_REGISTRY", None)
    if not isinstance(registry, dict):
        raise TaskNotFoundError(
            "this mteb version has no mteb.get_tasks._TASKS_REGISTRY dict to register the smoke tasks in; "
            "use nvembed_eval.tasks.smoke.get_smoke_task(name) instead"
        )
    for cls in SMOKE_TASKS:
        name = cls.metadata.name
        if registry.get(name, cls) is not cls:
            raise TaskNotFoundError(f"mteb already has a different task named {name!r}; cannot register the smoke task")
        registry[name] = cls


def get_smoke_task(name: str) -> AbsTask:
    """A fresh instance of one smoke task, without touching mteb's registry.

    Args:
        name: One of `SMOKE_TASK_NAMES`.

    Returns:
        The task; its data loads from the package on first use.

    Raises:
        TaskNotFoundError: `name` is not a smoke task (the message suggests the closest one).
    """
    by_name = {cls.metadata.name: cls for cls in SMOKE_TASKS}
    if name not in by_name:
        close = difflib.get_close_matches(name, SMOKE_TASK_NAMES, n=1)
        hint = f"did you mean {close[0]!r}?" if close else f"choose one of {', '.join(SMOKE_TASK_NAMES)}"
        raise TaskNotFoundError(f"unknown smoke task {name!r}; {hint}")
    return by_name[name]()
