"""The regression gate: per-task scores of a run against a published table or a baseline run, with tolerance.

Exit codes: 0 nothing regressed beyond tolerance, 1 something did, 2 unusable input.
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import shutil
import sys
import tempfile
import xml.etree.ElementTree as ET
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from nvembed_eval.errors import ConfigError, NVEmbedEvalError
from nvembed_eval.tracking.scoring import DEFAULT_BENCHMARK, Leaderboard, ScoreSet, benchmark_leaderboard, load_scores

DEFAULT_TOLERANCE = 0.5  # points on the 0-100 scale
OUTPUT_NAMES = ("compare.md", "compare.csv", "compare.junit.xml", "compare_deltas.png")


class Status(str, Enum):
    """Outcome of one task row."""

    ok = "ok"
    regression = "REGRESSION"
    improvement = "improved"  # beyond tolerance: shown, fails only with --two-sided
    missing = "missing"  # in the reference, not in the results
    no_reference = "no reference"

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


@dataclass
class Comparison:
    ours: ScoreSet
    reference: ScoreSet
    tolerance: float
    two_sided: bool
    benchmark: str
    rows: list[Row]
    ours_board: Leaderboard
    reference_board: Leaderboard

    @property
    def failures(self) -> list[Row]:
        bad = {Status.regression, Status.improvement} if self.two_sided else {Status.regression}
        return [r for r in self.rows if r.status in bad]

    @property
    def exit_code(self) -> int:
        return 1 if self.failures else 0


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
    for side in (ours, reference):
        if task in side.notes:
            flags.append(f"{side.label}: {side.notes[task]}")
        if task in side.scores and side.scores[task].note:
            flags.append(f"{side.label}: {side.scores[task].note}")
    return tuple(flags)


def compare(
    ours: ScoreSet,
    reference: ScoreSet,
    tolerance: float = DEFAULT_TOLERANCE,
    benchmark: str = DEFAULT_BENCHMARK,
    two_sided: bool = False,
) -> Comparison:
    """Compare two score sets task by task.

    Args:
        ours: the results under test.
        reference: published table or baseline results.
        tolerance: allowed drop in points; a task regresses when ours < reference - tolerance.
        benchmark: benchmark whose tasks define coverage and averages.
        two_sided: also fail on improvements beyond tolerance.

    Returns:
        The Comparison; `exit_code` is 1 when a task failed, else 0. Missing tasks never fail and never count as 0.
    """
    from nvembed_eval.tasks import benchmark_tasks, load_task_spec

    if tolerance < 0:
        raise ConfigError(f"tolerance must be >= 0 <--tolerance={tolerance}>; pass a number of points")
    order = benchmark_tasks(benchmark)
    names = set(ours.scores) | set(reference.scores) | set(ours.notes)
    ranked = [t for t in order if t in names] + sorted(names - set(order))
    rows = []
    for task in ranked:
        a = ours.scores[task].value if task in ours.scores else None
        b = reference.scores[task].value if task in reference.scores else None
        delta = a - b if a is not None and b is not None else None
        if b is None:
            status = Status.no_reference
        elif a is None:
            status = Status.missing
        elif delta < -tolerance:
            status = Status.regression
        elif delta > tolerance:
            status = Status.improvement
        else:
            status = Status.ok
        rows.append(Row(task, load_task_spec(task).type, a, b, delta, status, _flags(task, ours, reference)))
    return Comparison(
        ours,
        reference,
        tolerance,
        two_sided,
        benchmark,
        rows,
        benchmark_leaderboard(ours.values, benchmark),
        benchmark_leaderboard(reference.values, benchmark),
    )


# ------------------------------------------------------------------------------------------------- rendering


def _num(value: float | None, signed: bool = False) -> str:
    if value is None:
        return "—"
    return f"{value:+.2f}" if signed else f"{value:.2f}"


def _paired_delta(cmp: Comparison, members: Sequence[str]) -> str:
    both = [r for r in cmp.rows if r.task in members and r.delta is not None]
    if not both:
        return "—"
    mean = sum(r.delta for r in both) / len(both)  # type: ignore[misc]
    return f"{mean:+.2f} over {len(both)} task{'s' if len(both) != 1 else ''}"


def render_markdown(cmp: Comparison) -> str:
    from nvembed_eval.tasks import benchmark_tasks, load_task_spec

    tasks = benchmark_tasks(cmp.benchmark)
    verdict = f"FAIL: {len(cmp.failures)} task(s) beyond tolerance" if cmp.failures else "PASS"
    lines = [
        f"# {cmp.ours.label} vs {cmp.reference.label}",
        "",
        f"{verdict} (tolerance {cmp.tolerance:.2f} points{', two-sided' if cmp.two_sided else ''}; "
        f"benchmark {cmp.benchmark}). Missing tasks are not scored as 0 and do not fail.",
        "",
        "| aggregate | ours | reference | mean delta on shared tasks |",
        "|---|---|---|---|",
    ]
    for mine, theirs in zip(cmp.ours_board.aggregates(), cmp.reference_board.aggregates(), strict=True):
        members = tasks if mine.name == "Average" else [t for t in tasks if load_task_spec(t).type == mine.name]
        lines.append(
            f"| {mine.name} | {mine.value_text()} ({mine.coverage()}) | {theirs.value_text()} ({theirs.coverage()}) "
            f"| {_paired_delta(cmp, members)} |"
        )
    lines += ["", "| task | type | ours | reference | delta | status | flags |", "|---|---|---|---|---|---|---|"]
    for r in cmp.rows:
        status = f"**{r.status}**" if r in cmp.failures else str(r.status)
        lines.append(
            f"| {r.task} | {r.type} | {_num(r.ours)} | {_num(r.reference)} | {_num(r.delta, True)} | {status} "
            f"| {'; '.join(r.flags)} |"
        )
    return "\n".join(lines) + "\n"


def render_csv(cmp: Comparison) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["task", "type", "ours", "reference", "delta", "status", "failed", "flags"])
    for r in cmp.rows:
        cells = [("" if v is None else f"{v:.4f}") for v in (r.ours, r.reference, r.delta)]
        writer.writerow([r.task, r.type, *cells, r.status.value, int(r in cmp.failures), "; ".join(r.flags)])
    return buffer.getvalue()


def render_junit(cmp: Comparison) -> bytes:
    """One testcase per task: failures for tasks beyond tolerance, skipped for tasks without both scores."""
    suite = ET.Element(
        "testsuite",
        name=f"nvembed-eval-compare {cmp.ours.label} vs {cmp.reference.label}",
        tests=str(len(cmp.rows)),
        failures=str(len(cmp.failures)),
        skipped=str(sum(r.delta is None for r in cmp.rows)),
        errors="0",
    )
    for r in cmp.rows:
        case = ET.SubElement(suite, "testcase", classname=f"{cmp.benchmark}.{r.type}", name=r.task)
        if r in cmp.failures:
            failure = ET.SubElement(
                case,
                "failure",
                message=f"{r.task}: ours {_num(r.ours)} vs reference {_num(r.reference)} "
                f"(delta {_num(r.delta, True)}, tolerance {cmp.tolerance:.2f})",
                type=r.status.name,
            )
            failure.text = "; ".join(r.flags)
        elif r.delta is None:
            ET.SubElement(case, "skipped", message=f"{r.status.value}: no score on one side")
        elif r.flags:
            ET.SubElement(case, "system-out").text = "; ".join(r.flags)
    return ET.tostring(suite, encoding="utf-8", xml_declaration=True)


def render_plot(cmp: Comparison, path: Path) -> None:
    """Bar plot of per-task deltas (ours - reference) with the tolerance band."""
    from matplotlib.figure import Figure

    shown = [r for r in cmp.rows if r.delta is not None]
    fig = Figure(figsize=(max(6.0, 0.35 * len(shown) + 2), 4.5), layout="constrained")
    ax = fig.subplots()
    if shown:
        colours = {Status.regression: "tab:red", Status.improvement: "tab:green"}
        ax.bar(
            range(len(shown)),
            [r.delta for r in shown],
            color=[colours.get(r.status, "tab:gray") for r in shown],
        )
        ax.set_xticks(range(len(shown)), [r.task for r in shown], rotation=90, fontsize=7)
    else:
        ax.text(0.5, 0.5, "no task has a score on both sides", ha="center", va="center", transform=ax.transAxes)
    for bound in (-cmp.tolerance, cmp.tolerance):
        ax.axhline(bound, color="black", linestyle="--", linewidth=0.8)
    ax.axhline(0, color="black", linewidth=0.5)
    ax.set_ylabel("delta (points)")
    ax.set_title(f"{cmp.ours.label} - {cmp.reference.label} (tolerance ±{cmp.tolerance:.2f})", fontsize=9)
    fig.savefig(path, dpi=110)


def publish(out_dir: Path, writers: dict[str, Callable[[Path], None]]) -> list[Path]:
    """Write every output into a scratch folder first and move them in only when all succeeded."""
    out_dir = out_dir.resolve()
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        for name, write in writers.items():
            write(scratch / name)
        out_dir.mkdir(exist_ok=True)
        written = []
        for name in writers:
            os.replace(scratch / name, out_dir / name)
            written.append(out_dir / name)
        return written
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def write_outputs(cmp: Comparison, out_dir: Path) -> list[Path]:
    md, table, junit = render_markdown(cmp), render_csv(cmp), render_junit(cmp)
    return publish(
        out_dir,
        {
            OUTPUT_NAMES[0]: lambda p: p.write_text(md, encoding="utf-8"),
            OUTPUT_NAMES[1]: lambda p: p.write_text(table, encoding="utf-8"),
            OUTPUT_NAMES[2]: lambda p: p.write_bytes(junit),
            OUTPUT_NAMES[3]: lambda p: render_plot(cmp, p),
        },
    )


def emit(text: str) -> None:
    """Print to stdout; a closed pipe (`| head`) must not turn the exit code into a traceback's 1."""
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def main(argv: list[str] | None = None) -> None:
    """Console script `nvembed-eval-compare`.

    Examples:
        nvembed-eval-compare outputs/2025-01-01_12-00-00 --reference results/published/nv_embed_v2.csv
        nvembed-eval-compare outputs/run --reference results/baselines/minilm --tolerance 0.01 --out ci/compare
    """
    parser = argparse.ArgumentParser(prog="nvembed-eval-compare", description="Per-task regression gate.")
    parser.add_argument("results", type=Path, help="run folder, mteb results folder, TaskResult JSON or score CSV")
    parser.add_argument("--reference", type=Path, required=True, help="published score CSV or baseline results")
    parser.add_argument("--tolerance", type=float, default=DEFAULT_TOLERANCE, help="allowed drop in points")
    parser.add_argument("--out", type=Path, default=None, help="output folder (default: RESULTS/compare)")
    parser.add_argument("--benchmark", default=DEFAULT_BENCHMARK, help="conf/benchmark name for coverage")
    parser.add_argument("--two-sided", action="store_true", help="also fail on improvements beyond tolerance")
    args = parser.parse_args(argv)
    try:
        ours = load_scores(args.results)
        reference = load_scores(args.reference)
        cmp = compare(ours, reference, args.tolerance, args.benchmark, args.two_sided)
        out = args.out or (args.results / "compare" if args.results.is_dir() else Path("compare"))
        written = write_outputs(cmp, out)
    except NVEmbedEvalError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except Exception as exc:  # exit 1 means "regressed" to CI; anything unexpected must not look like that
        print(f"error: unexpected {type(exc).__name__}: {exc}; nothing was judged", file=sys.stderr)
        sys.exit(2)
    emit(render_markdown(cmp) + "".join(f"wrote {path}\n" for path in written))
    sys.exit(cmp.exit_code)


if __name__ == "__main__":
    main()
