"""The embedded `smoke` benchmark: seven tiny tasks written for this project, one per MTEB task type.

Importing this package imports nothing heavy; `classes.register()` makes `mteb.get_task("NVEvalSmokeSTS")` work.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["DATA_DIR", "SMOKE_TASK_NAMES"]

DATA_DIR = Path(__file__).resolve().parent / "data"  # one folder per task, shipped inside the package

SMOKE_TASK_NAMES: tuple[str, ...] = (
    "NVEvalSmokeRetrieval",
    "NVEvalSmokeReranking",
    "NVEvalSmokeSTS",
    "NVEvalSmokeClassification",
    "NVEvalSmokePairClassification",
    "NVEvalSmokeClustering",
    "NVEvalSmokeSummarization",
)
