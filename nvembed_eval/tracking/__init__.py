"""Tracking: the run folder and its result files with their provenance, reading scores from any results folder or
table, leaderboard math, the regression gate (`nvembed-eval-compare`) and its refusals, per-item data and its
intervals, sweep reports (`nvembed-eval-report`), the reference check, the end-of-run table, and the embedding
probes (`nvembed-eval-probe`). (`compare` and `report` are not imported here: `python -m` runs them as scripts.)
"""

from nvembed_eval.tracking.items import PREDICTIONS_SUBDIR, prediction_folder, write_items
from nvembed_eval.tracking.leaderboard import Benchmark, Leaderboard, benchmark_leaderboard, leaderboard
from nvembed_eval.tracking.probe import (
    PROBE_SET_VERSION,
    Baseline,
    ProbeComparison,
    ProbeSet,
    check_baseline_path,
    check_usable,
    compare_embeddings,
    default_tolerance,
    encode_probes,
    identity_difference,
    load_probe_set,
    probe_versions,
    read_baseline,
    render_comparison,
    write_baseline,
)
from nvembed_eval.tracking.provenance import FIDELITY_KEY, content_revision, differences, make_provenance
from nvembed_eval.tracking.reference import check_reference
from nvembed_eval.tracking.run_folder import RunFolder, writing
from nvembed_eval.tracking.scoring import ScoreSet, TaskScore, load_scores, task_score
from nvembed_eval.tracking.summary import (
    RunSummary,
    TaskOutcome,
    print_leaderboard,
    print_run_table,
    summary_rows,
)

__all__ = [
    "FIDELITY_KEY",
    "PREDICTIONS_SUBDIR",
    "PROBE_SET_VERSION",
    "Baseline",
    "Benchmark",
    "Leaderboard",
    "ProbeComparison",
    "ProbeSet",
    "RunFolder",
    "RunSummary",
    "ScoreSet",
    "TaskOutcome",
    "TaskScore",
    "benchmark_leaderboard",
    "check_baseline_path",
    "check_reference",
    "check_usable",
    "compare_embeddings",
    "content_revision",
    "default_tolerance",
    "differences",
    "encode_probes",
    "identity_difference",
    "leaderboard",
    "load_probe_set",
    "load_scores",
    "make_provenance",
    "prediction_folder",
    "print_leaderboard",
    "print_run_table",
    "probe_versions",
    "read_baseline",
    "render_comparison",
    "summary_rows",
    "task_score",
    "write_baseline",
    "write_items",
    "writing",
]
