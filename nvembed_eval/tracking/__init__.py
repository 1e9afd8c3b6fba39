"""Tracking: the run folder and its result files, reading scores from any results folder or table, leaderboard math,
the regression gate (`nvembed-eval-compare`) and its refusals, per-item data and its intervals, sweep reports
(`nvembed-eval-report`), the reference check and the end-of-run table. (`compare` and `report` are not imported
here: `python -m` runs them as scripts.)
"""

from nvembed_eval.tracking.items import prediction_folder, write_items
from nvembed_eval.tracking.leaderboard import Benchmark, Leaderboard, benchmark_leaderboard
from nvembed_eval.tracking.provenance import differences, make_provenance
from nvembed_eval.tracking.reference import check_reference
from nvembed_eval.tracking.run_folder import RunFolder, writing
from nvembed_eval.tracking.scoring import ScoreSet, TaskScore, load_scores, task_score
from nvembed_eval.tracking.summary import RunSummary, TaskOutcome, print_leaderboard, print_run_table

__all__ = [
    "Benchmark",
    "Leaderboard",
    "RunFolder",
    "RunSummary",
    "ScoreSet",
    "TaskOutcome",
    "TaskScore",
    "benchmark_leaderboard",
    "check_reference",
    "differences",
    "load_scores",
    "make_provenance",
    "prediction_folder",
    "print_leaderboard",
    "print_run_table",
    "task_score",
    "write_items",
    "writing",
]
