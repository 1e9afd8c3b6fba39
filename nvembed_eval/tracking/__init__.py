"""Tracking: the run folder and its result files, reading scores from any results folder or table, leaderboard math,
the regression gate (`nvembed-eval-compare`), sweep reports (`nvembed-eval-report`) and the end-of-run table.
"""

from nvembed_eval.tracking.compare import Comparison, compare
from nvembed_eval.tracking.leaderboard import Leaderboard, benchmark_leaderboard, leaderboard
from nvembed_eval.tracking.provenance import differences, make_provenance
from nvembed_eval.tracking.run_folder import RunFolder, writing
from nvembed_eval.tracking.scoring import ScoreSet, TaskScore, load_scores, task_score
from nvembed_eval.tracking.summary import (
    RunSummary,
    TaskOutcome,
    print_leaderboard,
    print_run_table,
    reference_table,
    summary_rows,
)

__all__ = [
    "Comparison",
    "Leaderboard",
    "RunFolder",
    "RunSummary",
    "ScoreSet",
    "TaskOutcome",
    "TaskScore",
    "benchmark_leaderboard",
    "compare",
    "differences",
    "leaderboard",
    "load_scores",
    "make_provenance",
    "print_leaderboard",
    "print_run_table",
    "reference_table",
    "summary_rows",
    "task_score",
    "writing",
]
