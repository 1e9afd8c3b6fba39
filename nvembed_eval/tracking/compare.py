"""The regression gate: per-task scores of a run against a published table or a baseline run, with tolerance.

Exit codes: 0 nothing regressed beyond tolerance, 1 something did, 2 unusable input or a comparison that cannot mean
what it says (docs/bad_input.md).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from nvembed_eval.errors import NVEmbedEvalError
from nvembed_eval.tracking.fidelity_flags import evaluator_flags
from nvembed_eval.tracking.gate import check_shared, check_tolerance, choose_benchmark, model_notes
from nvembed_eval.tracking.leaderboard import Benchmark, Leaderboard, benchmark_leaderboard
from nvembed_eval.tracking.outputs import default_out, emit
from nvembed_eval.tracking.scoring import ScoreSet, load_scores

DEFAULT_TOLERANCE = 0.5  # points on the 0-100 scale


class Status(str, Enum):
    """Outcome of one task row."""

    ok = "ok"
    regression = "REGRESSION"
    improvement = "improved"  # beyond tolerance: shown, fails only with --two-sided
    missing = "missing"  # in the benchmark and the reference, not in the run
    no_reference = "no reference"  # in the run, not in the reference
    outside = "not in benchmark"  # outside the benchmark: shown, never judged

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class Row:
    task: str
    type: str
    ours: float | None
    reference: float | None
    delta: float | None
    status: Status
    flags: tuple[str, ...]

    @property
    def judged(self) -> bool:
        """Scored on both sides inside the benchmark."""
        return self.status in (Status.ok, Status.regression, Status.improvement)


@dataclass
class Comparison:
    ours: ScoreSet
    reference: ScoreSet
    tolerance: float
    two_sided: bool
    benchmark: Benchmark
    rows: list[Row]
    ours_board: Leaderboard
    reference_board: Leaderboard
    notes: tuple[str, ...] = ()  # warnings the outputs must carry (other model, unknown model, benchmark choice)

    @property
    def failures(self) -> list[Row]:
        bad = {Status.regression, Status.improvement} if self.two_sided else {Status.regression}
        return [r for r in self.rows if r.status in bad]

    @property
    def exit_code(self) -> int:
        return 1 if self.failures else 0

    @property
    def not_run(self) -> list[str]:
        """Benchmark tasks without a score in the run (never counted as 0)."""
        return [t for t in self.benchmark.tasks if t not in self.ours.scores]

    @property
    def reference_only_outside(self) -> list[Row]:
        """Reference tasks outside the benchmark that the run does not have: counted, listed in the CSV only."""
        return [r for r in self.rows if r.status is Status.outside and r.ours is None]


def _used_instruction(ours: ScoreSet, task: str) -> bool:
    """Whether the run (probably) encoded this task with the spec's instruction; unknown counts as yes."""
    if ours.instruction_variant not in (None, "nv_embed_v2"):
        return False
    record = (ours.run_info.get("tasks") or {}).get(task) or {}
    prefixes = record.get("prefixes") if isinstance(record, dict) else None
    return not (isinstance(prefixes, dict) and prefixes and not any(prefixes.values()))  # all "": model ignores them


def _flags(task: str, ours: ScoreSet, reference: ScoreSet) -> tuple[str, ...]:
    from nvembed_eval.tasks import load_task_spec

    spec = load_task_spec(task)
    flags = []
    mine, theirs = ours.scores.get(task), reference.scores.get(task)
    if mine and theirs and not spec.subtasks:  # an aggregate's "revision" is mteb's aggregate version, not a dataset
        a, b = mine.dataset_revision, theirs.dataset_revision
        if a and b and a != b:
            flags.append(f"dataset revision differs (ours {a[:8]}, reference {b[:8]})")
    if mine and spec.has_instruction and not spec.instruction_verified and _used_instruction(ours, task):
        flags.append(f"unverified instruction ({spec.instruction_source})")
    flags.extend(evaluator_flags(spec.type, task, ours, reference))
    for side in (ours, reference):
        if task in side.notes:
            flags.append(f"{side.label}: {side.notes[task]}")
        if task in side.scores and side.scores[task].note:
            flags.append(f"{side.label}: {side.scores[task].note}")
    return tuple(flags)


def _status(a: float | None, b: float | None, in_benchmark: bool, tolerance: float) -> Status:
    if not in_benchmark:
        return Status.outside
    if b is None:
        return Status.no_reference
    if a is None:
        return Status.missing
    if a - b < -tolerance:
        return Status.regression
    return Status.improvement if a - b > tolerance else Status.ok


def compare(
    ours: ScoreSet,
    reference: ScoreSet,
    tolerance: float = DEFAULT_TOLERANCE,
    benchmark: str | Benchmark | None = None,
    two_sided: bool = False,
    allow_other_model: bool = False,
) -> Comparison:
    """Compare two score sets task by task, or refuse.

    Args:
        ours: the results under test.
        reference: published table or baseline results.
        tolerance: allowed drop in points (0-100 scale); a task regresses when ours < reference - tolerance.
        benchmark: tasks that define coverage, averages and which tasks are judged; None takes the run's own
            (its run.json), else the reference's, else every task either side has (gate.choose_benchmark).
        two_sided: also fail on improvements beyond tolerance.
        allow_other_model: compare although both sides name different models (the outputs then say so).

    Returns:
        The Comparison; `exit_code` is 1 when a judged task failed, else 0. Tasks without a score on one side, or
        outside the benchmark, never fail and never count as 0.

    Raises:
        ConfigError: non-finite or negative tolerance; unknown benchmark name.
        ResultsError: the models differ (without `allow_other_model`); no benchmark task has a score on both sides.
    """
    from nvembed_eval.tasks import load_task_spec

    check_tolerance(tolerance)
    notes = model_notes(ours, reference, allow_other_model)
    if isinstance(benchmark, Benchmark):
        bench, bench_notes = benchmark, []
    else:
        bench, bench_notes = choose_benchmark([ours] if ours.benchmark else [ours, reference], benchmark)
    theirs = reference.benchmark
    if theirs is not None and theirs.tasks != bench.tasks:
        bench_notes.append(f"the reference ran benchmark {theirs.describe()}; judged here: {bench.title}")
    check_shared(ours, reference, bench)
    names = set(ours.scores) | set(reference.scores) | set(ours.notes)
    ranked = [t for t in bench.tasks if t in names] + sorted(names - set(bench.tasks))
    rows = []
    for task in ranked:
        a = ours.scores[task].value if task in ours.scores else None
        b = reference.scores[task].value if task in reference.scores else None
        delta = a - b if a is not None and b is not None else None
        status = _status(a, b, task in bench.tasks, tolerance)
        rows.append(Row(task, load_task_spec(task).type, a, b, delta, status, _flags(task, ours, reference)))
    rows.sort(key=lambda r: not r.judged)  # stable: shared tasks first, each group in benchmark order
    return Comparison(
        ours,
        reference,
        tolerance,
        two_sided,
        bench,
        rows,
        benchmark_leaderboard(ours.values, bench),
        benchmark_leaderboard(reference.values, bench),
        tuple(notes + bench_notes),
    )


def main(argv: list[str] | None = None) -> None:
    """Console script `nvembed-eval-compare`.

    Examples:
        nvembed-eval-compare outputs/2025-01-01_12-00-00 --reference results/published/nv_embed_v2.csv
        nvembed-eval-compare outputs/run --reference results/baselines/minilm --tolerance 0.01 --out ci/compare
    """
    from nvembed_eval.tracking.compare_render import render_markdown, write_outputs

    parser = argparse.ArgumentParser(prog="nvembed-eval-compare", description="Per-task regression gate.")
    parser.add_argument("results", type=Path, help="run folder, mteb results folder, TaskResult JSON or score CSV")
    parser.add_argument("--reference", type=Path, required=True, help="published score CSV or baseline results")
    parser.add_argument("--tolerance", type=float, default=DEFAULT_TOLERANCE, help="allowed drop in points (>= 0)")
    parser.add_argument("--out", type=Path, default=None, help="output folder (default: RESULTS/compare)")
    parser.add_argument("--benchmark", default=None, help="conf/benchmark name (default: the run's own)")
    parser.add_argument("--two-sided", action="store_true", help="also fail on improvements beyond tolerance")
    parser.add_argument("--allow-other-model", action="store_true", help="compare runs of two different models")
    args = parser.parse_args(argv)
    try:
        check_tolerance(args.tolerance)  # before any file is read
        ours = load_scores(args.results)
        reference = load_scores(args.reference)
        cmp = compare(ours, reference, args.tolerance, args.benchmark, args.two_sided, args.allow_other_model)
        out = args.out or default_out([args.results], "compare")
        written = write_outputs(cmp, out)
    except NVEmbedEvalError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except Exception as exc:  # exit 1 means "regressed" to CI; anything unexpected must not look like that
        print(f"error: unexpected {type(exc).__name__}: {exc}; nothing was judged", file=sys.stderr)
        sys.exit(2)
    emit("".join(f"warning: {note}\n" for note in cmp.notes), sys.stderr)
    emit(render_markdown(cmp) + "".join(f"wrote {path}\n" for path in written))
    sys.exit(cmp.exit_code)


if __name__ == "__main__":
    main()
