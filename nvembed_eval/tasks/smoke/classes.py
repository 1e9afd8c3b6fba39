"""The seven smoke task classes: mteb abstask subclasses made from `smoke/data/tasks.json`, whose data ships in
`smoke/data/<TaskName>/` and is read by `nvembed_eval.tasks.local_data` like any local task (docs/local_data.md)."""

from __future__ import annotations

import difflib
import importlib
from typing import Any

from mteb import abstasks
from mteb.abstasks import AbsTask
from mteb.abstasks.task_metadata import TaskMetadata

from nvembed_eval.errors import TaskNotFoundError
from nvembed_eval.tasks.local_data import load_local_task_data
from nvembed_eval.tasks.smoke import DATA_DIR, SMOKE_TASK_NAMES, TASKS


class _PackagedData:
    """Loads the task's folder under `DATA_DIR` instead of the Hugging Face hub."""

    data_loaded: bool

    def load_data(self, num_proc: int | None = None, **kwargs: Any) -> None:
        if not self.data_loaded:
            load_local_task_data(self, DATA_DIR)  # type: ignore[arg-type]


def _task_class(entry: dict[str, Any], common: dict[str, Any], origin: str) -> type[AbsTask]:
    """One `tasks.json` entry as a class of this module, named after its task (so it pickles by reference)."""
    metadata = TaskMetadata(**common, **entry["metadata"], description=f"{entry['about']} {origin}")
    base = getattr(abstasks, entry["abstask"])
    attributes = {"__module__": __name__, "metadata": metadata, **entry.get("attributes", {})}
    return type(metadata.name, (_PackagedData, base), attributes)


SMOKE_TASKS: tuple[type, ...] = tuple(_task_class(t, TASKS["metadata"], TASKS["origin"]) for t in TASKS["tasks"])
globals().update({cls.__name__: cls for cls in SMOKE_TASKS})  # classes.NVEvalSmokeSTS, ... as before


def register() -> None:
    """Add the smoke tasks (idempotently) to the module dict `mteb.get_tasks._TASKS_REGISTRY` that `mteb.get_task` and
    mteb's result tooling (`TaskResult.task`) read: mteb 2.26 has no public registration call. Filter queries such as
    `mteb.get_tasks(task_types=[...])` do not list them. Raises `TaskNotFoundError` when mteb has no such registry
    dict, or another class already holds one of the names."""
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
    """A fresh instance of one smoke task (its data loads from the package on first use), leaving mteb's registry be.
    Raises `TaskNotFoundError` when `name` is not one of `SMOKE_TASK_NAMES` (the message suggests the closest one)."""
    by_name = {cls.metadata.name: cls for cls in SMOKE_TASKS}
    if name not in by_name:
        close = difflib.get_close_matches(name, SMOKE_TASK_NAMES, n=1)
        hint = f"did you mean {close[0]!r}?" if close else f"choose one of {', '.join(SMOKE_TASK_NAMES)}"
        raise TaskNotFoundError(f"unknown smoke task {name!r}; {hint}")
    return by_name[name]()
