"""The embedded `smoke` benchmark: seven tiny tasks written for this project, one per MTEB task type. Importing this
package imports nothing heavy; `classes.register()` makes `mteb.get_task("NVEvalSmokeSTS")` work."""

from __future__ import annotations

import json
from pathlib import Path

__all__ = ["DATA_DIR", "SMOKE_TASK_NAMES"]

DATA_DIR = Path(__file__).resolve().parent / "data"  # one folder per task, shipped inside the package
# data/tasks.json: each task's mteb metadata, abstask and class attributes, in benchmark order (read by `classes`)
TASKS = json.loads((DATA_DIR / "tasks.json").read_text(encoding="utf-8"))
SMOKE_TASK_NAMES: tuple[str, ...] = tuple(task["metadata"]["name"] for task in TASKS["tasks"])
