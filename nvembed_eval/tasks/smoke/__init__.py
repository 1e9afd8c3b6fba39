"""The embedded `smoke` benchmark: seven tiny tasks written for this project, one per MTEB task type.

Importing this package does nothing; `register()` makes `mteb.get_task("NVEvalSmokeSTS")` work.
"""

from __future__ import annotations

import difflib
import importlib
from typing import TYPE_CHECKING

from nvembed_eval.errors import TaskNotFoundError

if TYPE_CHECKING:
    from mteb.abstasks import AbsTask

__all__ = ["SMOKE_TASK_NAMES", "get_smoke_task", "register"]

SMOKE_TASK_NAMES: tuple[str, ...] = (
    "NVEvalSmokeRetrieval",
    "NVEvalSmokeReranking",
    "NVEvalSmokeSTS",
    "NVEvalSmokeClassification",
    "NVEvalSmokePairClassification",
    "NVEvalSmokeClustering",
    "NVEvalSmokeSummarization",
)


def register() -> None:
    """Add the smoke tasks to the registry `mteb.get_task` reads. Safe to call any number of times.

    mteb 2.26 has no public registration call: `mteb.get_task` looks names up in the module dict
    `mteb.get_tasks._TASKS_REGISTRY`, so the classes are added there (mteb's own result tooling, e.g.
    `TaskResult.task`, then finds them too). Filter queries such as `mteb.get_tasks(task_types=[...])` do not list them.

    Raises:
        TaskNotFoundError: mteb has no such registry dict, or another class already holds one of the names.

    Examples:
        >>> from nvembed_eval.tasks import smoke
        >>> smoke.register()
        >>> task = mteb.get_task("NVEvalSmokeSTS")
    """
    from nvembed_eval.tasks.smoke.classes import SMOKE_TASKS

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
    from nvembed_eval.tasks.smoke.classes import SMOKE_TASKS

    by_name = {cls.metadata.name: cls for cls in SMOKE_TASKS}
    if name not in by_name:
        close = difflib.get_close_matches(name, SMOKE_TASK_NAMES, n=1)
        hint = f"did you mean {close[0]!r}?" if close else f"choose one of {', '.join(SMOKE_TASK_NAMES)}"
        raise TaskNotFoundError(f"unknown smoke task {name!r}; {hint}")
    return by_name[name]()
