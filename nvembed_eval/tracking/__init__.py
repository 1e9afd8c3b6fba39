"""Tracking: the run folder and its result files, reading scores from any results folder or table, leaderboard math,
the regression gate (`nvembed-eval-compare`), sweep reports (`nvembed-eval-report`), the end-of-run table, and the
embedding probes (`nvembed-eval-probe`: versioned texts, baseline files, per-text comparison).
"""

from nvembed_eval.tracking.compare import Comparison, compare
from nvembed_eval.tracking.leaderboard import Leaderboard, benchmark_leaderboard
from nvembed_eval.tracking.probe import (
    PROBE_SET_VERSION,
    Baseline,
    ProbeComparison,
    ProbeSet,
    check_usable,
    compare_embeddings,
    default_tolerance,
    encode_probes,
    identity_difference,
    load_probe_set,
    package_versions,
    read_baseline,
    render_comparison,
    write_baseline,
)
from nvembed_eval.tracking.run_folder import RunFolder
from nvembed_eval.tracking.scoring import ScoreSet, TaskScore, load_scores, task_score
from nvembed_eval.tracking.summary import RunSummary, TaskOutcome, print_leaderboard, print_run_table

__all__ = [
    "PROBE_SET_VERSION",
    "Baseline",
    "Comparison",
    "Leaderboard",
    "ProbeComparison",
    "ProbeSet",
    "RunFolder",
    "RunSummary",
    "ScoreSet",
    "TaskOutcome",
    "TaskScore",
    "benchmark_leaderboard",
    "check_usable",
    "compare",
    "compare_embeddings",
    "default_tolerance",
    "encode_probes",
    "identity_difference",
    "load_probe_set",
    "load_scores",
    "package_versions",
    "print_leaderboard",
    "print_run_table",
    "read_baseline",
    "render_comparison",
    "task_score",
    "write_baseline",
]
