"""`nvembed-eval-compare`, the regression gate's command, and its outputs (markdown, CSV, JUnit XML, PNG). Exit 0:
nothing regressed, 1: a task regressed, 2: unusable input or a comparison that cannot mean what it says (one `error:`
line; docs/bad_input.md). E.g. `nvembed-eval-compare outputs/run --reference results/baselines/minilm`."""

from __future__ import annotations

import csv
import io
import re
import sys
import xml.etree.ElementTree as ET
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NoReturn

from nvembed_eval.errors import NVEmbedEvalError
from nvembed_eval.io import Parser, default_out, emit, non_negative_int, publish
from nvembed_eval.judge.bootstrap import check_settings
from nvembed_eval.judge.compare import DEFAULT_TOLERANCE, Comparison, Row, Status, compare
from nvembed_eval.judge.gate import check_tolerance
from nvembed_eval.judge.significance import DEFAULT_GATE, Gate, Interval, NoiseSettings
from nvembed_eval.results.reading import load_scores
from nvembed_eval.tasks.benchmarks import Benchmark
from nvembed_eval.tasks.specs import load_task_spec

OUTPUT_NAMES = ("compare.md", "compare.csv", "compare.junit.xml", "compare_deltas.png")
# The command's on/off options, each passed to `compare` under its own name.
SWITCHES = {
    "two_sided": "also fail on improvements beyond tolerance",
    "allow_other_model": "compare runs of two different models",
    "allow_other_data": "judge tasks whose results were made on different data (provenance), flagging each such row",
    "allow_subset": "judge only the tasks the run has (default: a benchmark task the reference scored and the run did "
    "not fails the gate)",
}


def _num(value: float | None, signed: bool = False) -> str:
    if value is None:
        return "—"
    value = round(value, 2) + 0.0  # no "-0.00"
    return f"{value:+.2f}" if signed else f"{value:.2f}"


def _span(interval: Interval | None, signed: bool = False) -> str:
    return "" if interval is None else f" [{_num(interval.low, signed)}, {_num(interval.high, signed)}]"


def _with_interval(value: float | None, interval: Interval | None, signed: bool = False) -> str:
    return _num(value, signed) + ("" if value is None else _span(interval, signed))


def gate_line(cmp: Comparison) -> str:
    """What fails a task under this comparison's gate, and which tasks fell back to tolerance."""
    level = f"{cmp.settings.confidence:.0%}"
    rule = {
        Gate.tolerance: f"a drop of more than {cmp.tolerance:.2f} points",
        Gate.significant: f"a {level} paired interval of the delta entirely below 0",
        Gate.both: f"a drop of more than {cmp.tolerance:.2f} points whose {level} paired interval lies below 0",
    }[cmp.gate]
    mirror = " (and on the mirror-image improvement)" if cmp.two_sided else ""
    line = f"Gate {cmp.gate}: a task fails on {rule}{mirror}."
    if cmp.gate is not Gate.tolerance:
        line += f" Intervals: {cmp.settings.describe()} (docs/significance.md)."
    # Judged tasks the gate wanted to judge by noise but that lack a paired interval: judged by tolerance.
    if fallback := [r.task for r in cmp.rows if r.judged and cmp.gate is not Gate.tolerance and r.basis == "tolerance"]:
        line += f" {len(fallback)} task(s) without per-item data on both sides are judged by tolerance alone: "
        line += f"{', '.join(fallback)}."
    return line


def verdict(cmp: Comparison) -> str:
    if not cmp.failures:
        return "PASS"
    judged = [r for r in cmp.failures if r.judged]
    parts = [f"{len(judged)} task(s) beyond {' or '.join(sorted({r.basis for r in judged}))}"] if judged else []
    if not cmp.allow_subset and cmp.uncovered:
        parts.append(f"{len(cmp.uncovered)} reference task(s) not in the run")
    return "FAIL: " + "; ".join(parts)


def subset_note(cmp: Comparison) -> str:
    """How reference tasks missing from the run were treated, in words every output carries; "" when none is."""
    if not cmp.uncovered:
        return ""
    if cmp.allow_subset:
        return "not in the run, not judged (--allow-subset)"
    return "not in the run: fails the gate (pass --allow-subset to judge the run's tasks alone)"


def _paired_delta(cmp: Comparison, members: Sequence[str]) -> str:
    both = [r for r in cmp.rows if r.task in members and r.judged]
    if not both:
        return "—"
    mean = sum(r.delta for r in both) / len(both)  # type: ignore[misc]
    return f"{_num(mean, True)} over {len(both)} task{'s' if len(both) != 1 else ''}"


def count_lines(cmp: Comparison) -> list[str]:
    """The tasks not shown as rows, as counts (and the run's real missing list)."""
    lines = []
    if missing := cmp.ours_board.missing:  # benchmark tasks without a score in the run
        lines.append(
            f"Not in this run: {len(missing)} of the {len(cmp.benchmark.tasks)} benchmark tasks (no score, never "
            f"counted as 0): {', '.join(missing)}."
        )
    if note := subset_note(cmp):
        lines.append(f"{len(cmp.uncovered)} of them the reference scored: {note}.")
    if outside := [r for r in cmp.rows if r.status is Status.outside and r.ours is None]:  # reference-only
        lines.append(
            f"{len(outside)} reference task{'s are' if len(outside) != 1 else ' is'} not in this run's benchmark "
            f"({cmp.benchmark.title}); listed in compare.csv only."
        )
    return lines


def render_markdown(cmp: Comparison) -> str:
    tasks, judged = cmp.benchmark.tasks, sum(r.judged for r in cmp.rows)
    subset = ", subset allowed" if cmp.allow_subset and cmp.uncovered else ""
    summary = (
        f"{verdict(cmp)} ({judged} task{'s' if judged != 1 else ''} judged; tolerance {cmp.tolerance:.2f} points"
        f"{', two-sided' if cmp.two_sided else ''}{subset}; benchmark {cmp.benchmark.describe()}; gate {cmp.gate})."
    )
    models = f"Models: run {cmp.ours.model_text()}; reference {cmp.reference.model_text()}."
    lines = [f"# {cmp.ours.label} vs {cmp.reference.label}", "", summary, "", gate_line(cmp), "", models]
    lines += [f"> warning: {note}" for note in cmp.notes]
    lines += ["", "| aggregate | ours | reference | mean delta on shared tasks |", "|---|---|---|---|"]
    for mine, theirs in zip(cmp.ours_board.aggregates(), cmp.reference_board.aggregates(), strict=True):
        members = tasks if mine.name == "Average" else [t for t in tasks if load_task_spec(t).type == mine.name]
        values = [f"{side.value_text()} ({side.coverage()})" for side in (mine, theirs)]
        lines.append(f"| {mine.name} | {' | '.join(values)} | {_paired_delta(cmp, members)} |")
    level = f"{cmp.settings.confidence:.0%}"
    header = f"| task | type | ours [{level}] | reference [{level}] | delta [{level} paired] | status | flags |"
    lines += ["", header, "|---|---|---|---|---|---|---|"]
    # Rows: every task the run has (or tried); reference-only tasks are counted instead (`count_lines`).
    for r in [r for r in cmp.rows if r.ours is not None or r.task in cmp.ours.notes]:
        status = f"**{r.status}**" if r in cmp.failures else str(r.status)
        noise = r.noise
        # A paired interval made on fewer items than a side has is not the interval of the shown delta: say so.
        flags = [*r.flags, *([noise.why] if noise.delta is not None and noise.why else [])]
        values = [_with_interval(r.ours, noise.ours), _with_interval(r.reference, noise.reference)]
        values.append(_with_interval(r.delta, noise.delta, True))
        lines.append(f"| {r.task} | {r.type} | {' | '.join(values)} | {status} | {'; '.join(flags)} |")
    return "\n".join([*lines, "", *count_lines(cmp)]).rstrip() + "\n"


def render_csv(cmp: Comparison) -> str:
    writer = csv.writer(buffer := io.StringIO(), lineterminator="\n")
    ends = [f"{side}{end}" for side in ("ours", "reference", "delta") for end in ("", "_low", "_high")]
    writer.writerow(["task", "type", *ends, "interval", "status", "judged_by", "failed", "flags"])
    for r in cmp.rows:
        n = r.noise
        values = (r.ours, *_ends(n.ours), r.reference, *_ends(n.reference), r.delta, *_ends(n.delta))
        cells = ["" if v is None else f"{v:.4f}" for v in values]
        note = r.interval_note(cmp.gate)
        flags = [*r.flags, *([subset_note(cmp)] if r.status is Status.missing else [])]
        writer.writerow([r.task, r.type, *cells, note, r.status, r.basis, int(r in cmp.failures), "; ".join(flags)])
    return buffer.getvalue()


def _ends(interval: Interval | None) -> tuple[float | None, float | None]:
    return (None, None) if interval is None else (interval.low, interval.high)


def _judgement(cmp: Comparison, r: Row) -> str:
    """E.g. "delta -1.20 [-2.10, -0.31] (95% paired, bootstrap over 300 queries), tolerance 0.50, gate both"."""
    note = r.interval_note(cmp.gate)
    level = f"{cmp.settings.confidence:.0%} paired, " if r.noise.delta else ""
    interval = f"{_span(r.noise.delta, True)} ({level}{note})" if note else ""
    basis = f" (judged by {r.basis})" if r.basis else ""
    return f"delta {_num(r.delta, True)}{interval}, tolerance {cmp.tolerance:.2f}, gate {cmp.gate}{basis}"


def render_junit(cmp: Comparison) -> bytes:
    """One testcase per benchmark task or task of the run: failures beyond tolerance, skips without both scores."""
    cases = [r for r in cmp.rows if r.status is not Status.outside or r.ours is not None]
    skipped = sum(not r.judged and r not in cmp.failures for r in cases)
    counts = {"tests": len(cases), "failures": len(cmp.failures), "skipped": skipped, "errors": 0}
    name = f"nvembed-eval-compare {cmp.ours.label} vs {cmp.reference.label}"
    suite = ET.Element("testsuite", name=name, **{key: str(n) for key, n in counts.items()})
    suite_name = re.sub(r"\W+", "_", cmp.benchmark.name).strip("_")  # "MTEB(eng, v2)" -> "MTEB_eng_v2"
    for r in cases:
        case = ET.SubElement(suite, "testcase", classname=f"{suite_name}.{r.type}", name=r.task)
        if r.status is Status.missing:
            message = f"{r.task}: reference {_num(r.reference)}, {subset_note(cmp)}"
            ET.SubElement(case, "failure" if r in cmp.failures else "skipped", message=message, type=r.status.name)
        elif r in cmp.failures:
            message = f"{r.task}: ours {_num(r.ours)} vs reference {_num(r.reference)} ({_judgement(cmp, r)})"
            ET.SubElement(case, "failure", message=message, type=r.status.name).text = "; ".join(r.flags)
        elif not r.judged:
            ET.SubElement(case, "skipped", message=f"{r.status.value}: not judged")
        else:
            ET.SubElement(case, "system-out").text = "; ".join([_judgement(cmp, r), *r.flags])
    return ET.tostring(suite, encoding="utf-8", xml_declaration=True)


def render_plot(cmp: Comparison, path: Path) -> None:
    """Bar plot of per-task deltas (ours - reference) with the tolerance band and, where both sides have per-item
    data, the paired interval as an error bar; each bar labelled with its delta."""
    from matplotlib.figure import Figure

    shown = [r for r in cmp.rows if r.judged]
    fig = Figure(figsize=(max(6.0, 0.45 * len(shown) + 2), 4.8), layout="constrained")
    ax = fig.subplots()
    colours = {Status.regression: "tab:red", Status.improvement: "tab:green"}
    bars = ax.bar(range(len(shown)), [r.delta for r in shown], color=[colours.get(r.status, "tab:gray") for r in shown])
    if with_interval := [(k, r) for k, r in enumerate(shown) if r.noise.delta is not None]:
        below = [max(0.0, r.delta - r.noise.delta.low) for _, r in with_interval]  # type: ignore[operator,union-attr]
        above = [max(0.0, r.noise.delta.high - r.delta) for _, r in with_interval]  # type: ignore[operator,union-attr]
        label = f"{cmp.settings.confidence:.0%} paired interval"
        xs, ys = [k for k, _ in with_interval], [r.delta for _, r in with_interval]
        ax.errorbar(xs, ys, yerr=[below, above], fmt="none", ecolor="black", elinewidth=1, capsize=3, label=label)
        ax.legend(fontsize=7, loc="best")
    ax.bar_label(bars, labels=[_num(r.delta, True) for r in shown], fontsize=7, padding=2)
    ax.set_xticks(range(len(shown)), [r.task for r in shown], rotation=90, fontsize=7)
    for bound in (-cmp.tolerance, cmp.tolerance):
        ax.axhline(bound, color="black", linestyle="--", linewidth=0.8)
    ax.axhline(0, color="black", linewidth=0.5)
    ax.margins(y=0.15)  # room for the labels
    ax.set_ylabel("delta (points)")
    uncovered = f"; {len(cmp.uncovered)} reference tasks not in the run" if cmp.uncovered else ""
    subset = ", subset allowed" if cmp.allow_subset and cmp.uncovered else ""
    title = f"{cmp.ours.label} - {cmp.reference.label} (gate {cmp.gate}, tolerance ±{cmp.tolerance:.2f}; {len(shown)}"
    ax.set_title(f"{title} shared tasks, {len(with_interval)} with intervals{uncovered}{subset})", fontsize=9)
    fig.savefig(path, dpi=110)


def write_outputs(cmp: Comparison, out_dir: Path) -> list[Path]:
    """compare.md, compare.csv, compare.junit.xml and compare_deltas.png into `out_dir`, all or none (`io.publish`)."""
    bodies = (render_markdown(cmp).encode("utf-8"), render_csv(cmp).encode("utf-8"), render_junit(cmp))
    writers = {name: lambda p, body=body: p.write_bytes(body) for name, body in zip(OUTPUT_NAMES, bodies, strict=False)}
    return publish(out_dir, {**writers, OUTPUT_NAMES[3]: lambda p: render_plot(cmp, p)})


def main(argv: list[str] | None = None) -> NoReturn:
    """Console script `nvembed-eval-compare`: per-task regression gate of a run against a reference."""
    parser = Parser(prog="nvembed-eval-compare", description="Per-task regression gate.")
    parser.add_argument("results", type=Path, help="run folder, mteb results folder, TaskResult JSON or score CSV")
    parser.add_argument("--reference", type=Path, required=True, help="published score CSV or baseline results")
    parser.add_argument("--tolerance", type=float, default=DEFAULT_TOLERANCE, help="allowed drop in points (>= 0)")
    parser.add_argument("--out", type=Path, default=None, help="output folder (default: RESULTS/compare)")
    parser.add_argument("--benchmark", default=None, help="conf/benchmark name (default: the run's own)")
    for name, text in SWITCHES.items():
        parser.add_argument(f"--{name.replace('_', '-')}", action="store_true", help=text)
    rule = "what fails a task: its drop exceeds the tolerance, its paired interval lies below 0 (significant), or both"
    rule += " (default; tolerance alone where a side has no per-item data); docs/significance.md"
    parser.add_argument("--gate", choices=[g.value for g in Gate], default=DEFAULT_GATE, help=rule)
    parser.add_argument("--confidence", type=float, default=NoiseSettings.confidence, help="interval level (0.95)")
    parser.add_argument("--resamples", type=int, default=NoiseSettings.resamples, help="bootstrap resamples (2000)")
    parser.add_argument("--seed", type=non_negative_int, default=NoiseSettings.seed, help="bootstrap seed (0)")
    args = parser.parse_args(argv)

    def run() -> int:
        check_tolerance(args.tolerance)  # before any file is read
        check_settings(args.resamples, args.confidence)
        explicit = Benchmark.named(args.benchmark) if args.benchmark else None
        ours = load_scores(args.results, benchmark=explicit)
        reference = load_scores(args.reference, benchmark=explicit or ours.benchmark)  # a folder: for the same tasks
        settings = NoiseSettings(args.resamples, args.confidence, args.seed)
        switches = {name: getattr(args, name) for name in SWITCHES}
        cmp = compare(ours, reference, args.tolerance, explicit, gate=Gate(args.gate), settings=settings, **switches)
        written = write_outputs(cmp, args.out or default_out([args.results], "compare"))
        emit("".join(f"warning: {note}\n" for note in cmp.notes), sys.stderr, end="")
        emit(render_markdown(cmp) + "".join(f"wrote {path}\n" for path in written), end="")
        return cmp.exit_code

    exit_with(run, "; nothing was judged")


def exit_with(run: Callable[[], int], unexpected_suffix: str, *, exit_on_success: bool = True) -> None:
    """Run a command and exit with its code; a refusal is one `error:` line and exit 2. Exit 1 means "regressed" to
    CI, so nothing unexpected may exit 1 either."""
    try:
        code = run()
    except NVEmbedEvalError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except Exception as exc:
        print(f"error: unexpected {type(exc).__name__}: {exc}{unexpected_suffix}", file=sys.stderr)
        sys.exit(2)
    if code or exit_on_success:
        sys.exit(code)


if __name__ == "__main__":
    main()
