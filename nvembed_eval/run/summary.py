"""The end of a run: what each task gave (`RunSummary`, filled by the loop), the table printed from it (task, type,
score 0-100, published score, delta) and the leaderboard view against the run's reference.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from nvembed_eval.io import emit, text_table
from nvembed_eval.judge.compare import compare
from nvembed_eval.judge.gate import choose_benchmark, run_flags
from nvembed_eval.judge.render import render_markdown, write_outputs
from nvembed_eval.results.reading import canonical_model, load_scores
from nvembed_eval.results.scores import benchmark_leaderboard, format_leaderboard, task_score
from nvembed_eval.tasks.specs import content_source

if TYPE_CHECKING:
    from mteb import TaskResult

    from nvembed_eval.results.scores import ScoreSet
    from nvembed_eval.tasks.specs import TaskSpec


@dataclass
class TaskOutcome:
    spec: TaskSpec
    result: TaskResult
    skipped: bool  # True when resumed from an existing result


@dataclass
class RunSummary:
    run_dir: Path
    outcomes: list[TaskOutcome] = field(default_factory=list)
    benchmark: str = "tasks"  # run.json's benchmark name ("tasks" for an ad-hoc list)
    not_run: list[str] = field(default_factory=list)  # the benchmark's tasks without data here (skipped)


def summary_rows(summary: RunSummary, reference: ScoreSet | None) -> list[dict[str, object]]:
    """One row per task of the run: task, type, split, subset, metric, score and published (0-100, None when there
    is none), delta (score - published) and resumed (kept from an earlier run)."""
    published = reference.values if reference is not None else {}
    rows: list[dict[str, object]] = []
    for outcome in summary.outcomes:
        spec, result = outcome.spec, outcome.result
        ours, ref = task_score(result, spec), published.get(spec.name)
        delta = ours - ref if ref is not None and ours is not None else None
        row = {"task": spec.name, "type": spec.type, "split": spec.split, "subset": spec.subset, "metric": spec.metric}
        rows.append({**row, "score": ours, "published": ref, "delta": delta, "resumed": outcome.skipped})
        rows[-1]["dataset_revision"] = result.dataset_revision
    return rows


def _note(row: dict[str, object]) -> str:
    """The table's note: resumed, and for data not from the hub (`local:sha256:...`) compared with a published
    score, that the published score was made on the hub's data (a local subset is not the same test)."""
    notes = ["resumed"] if row["resumed"] else []
    content = content_source(str(row.get("dataset_revision") or ""))
    if content and row["published"] is not None:
        notes.append(f"{content[0]} data; published is on the hub's")
    return ", ".join(notes)


def print_run_table(summary: RunSummary, reference: ScoreSet | None, model: str) -> None:
    """Task, type, metric, score (0-100), the reference's score and the delta, one row per task of the run; then,
    for a partial benchmark, its coverage."""
    rows = []
    for row in summary_rows(summary, reference):
        score = f"{row['score']:.2f}" if row["score"] is not None else "n/a"
        published = f"{row['published']:.2f}" if row["published"] is not None else ""
        delta = f"{round(row['delta'], 2) + 0.0:+.2f}" if row["delta"] is not None else ""  # + 0.0: no "-0.00"
        rows.append([row["task"], row["type"], row["metric"], score, published, delta, _note(row)])
    emit(f"\nResults in {summary.run_dir}")
    if reference is not None:
        other = reference.model and model and canonical_model(reference.model) != canonical_model(model)
        warning = f" (warning: not this run's model {model})" if other else ""
        emit(f"Published column: {reference.source}, model {reference.model_text()}{warning}")
    emit(text_table(rows, ["task", "type", "metric", "score", "published", "delta", "note"]))
    if summary.not_run:  # a partial benchmark is said at the end, not only in an early warning
        total = len(summary.outcomes) + len(summary.not_run)
        more = f" and {len(summary.not_run) - 8} more" if len(summary.not_run) > 8 else ""
        coverage = f"Coverage: {len(summary.outcomes)} of {total} tasks of benchmark {summary.benchmark}"
        emit(f"{coverage}; not run (no data here): {', '.join(summary.not_run[:8])}{more}")


def print_leaderboard(summary: RunSummary, reference: ScoreSet | None) -> None:
    """Leaderboard view of the run over its own benchmark (what it ran: `tasks=[...]` or `benchmark=`), against the
    reference when there is one: per-task deltas, averages with coverage, provenance flags; written to
    `<run>/compare/`. Without a reference, or one sharing no task with the run, only the run's own averages."""
    ours = load_scores(summary.run_dir)
    bench, _ = choose_benchmark([ours], None)
    emit()
    if reference is None or not set(bench.tasks) & set(ours.scores) & set(reference.scores):
        why = "no reference (reference=null, or none shipped for this model)"
        if reference is not None:
            why = f"reference {reference.source} has none of this run's tasks"
        emit(f"Leaderboard of {ours.label} over benchmark {bench.describe()}; {why}:")
        emit(format_leaderboard(benchmark_leaderboard(ours.values, bench)))
        for flag in run_flags(ours):
            emit(f"flag: {flag}")
        return
    # An explicit reference= is the user's choice even for another model or other data: a view, not a gate (tasks
    # without data here are allowed to be missing); the output says so (notes, flagged rows, the subset line).
    allowed = {"allow_other_model": True, "allow_other_data": True, "allow_subset": True}
    comparison = compare(ours, reference, benchmark=bench, **allowed)
    emit(render_markdown(comparison))
    for path in write_outputs(comparison, summary.run_dir / "compare"):
        emit(f"wrote {path}")
