"""`nvembed-eval-report`: leaderboards over runs (markdown, CSV, PNG), one row per run or per Hydra sweep job. E.g.
`nvembed-eval-report multirun/2025-01-01/12-00-00` (one row per sweep job -> .../12-00-00/report)."""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from nvembed_eval.io import Parser, default_out, emit, publish
from nvembed_eval.judge.gate import choose_benchmark
from nvembed_eval.judge.render import exit_with
from nvembed_eval.results import reading
from nvembed_eval.results.scores import Aggregate, Leaderboard, ScoreSet, benchmark_leaderboard
from nvembed_eval.tasks.benchmarks import Benchmark
from nvembed_eval.tasks.specs import load_task_spec

UNVERIFIED_MARK = "†"


@dataclass
class RunRow:
    label: str
    scores: ScoreSet
    board: Leaderboard
    note: str = ""
    overrides: list[str] = field(default_factory=list)


@dataclass
class Report:
    rows: list[RunRow]
    benchmark: Benchmark
    notes: list[str]
    tasks: list[str]  # per-task columns: the benchmark's, then any other task a run (not a table) has


EMPTY = Leaderboard("", Aggregate("Average", 0, 0, None), {}, ())  # placeholder until the benchmark is chosen


def _job_row(job: Path, explicit: Benchmark | None) -> RunRow:
    overrides = reading.meaningful(reading.job_overrides(job))
    if reading.find_result_files(job):
        scores = reading.load_scores(job, label=job.name, benchmark=explicit)
        return RunRow(job.name, scores, EMPTY, overrides=overrides)
    info = reading.read_run_info(job)  # run.json, or Hydra's .hydra/config.yaml before the job wrote anything
    scores = ScoreSet(source=job, label=job.name, kind="results", run_info=info)
    scores.model, scores.model_source = reading.model_of(job, [], info)
    return RunRow(job.name, scores, EMPTY, note="no results yet", overrides=overrides)


def _plain_row(path: Path, explicit: Benchmark | None) -> RunRow:
    scores = reading.load_scores(path, benchmark=explicit)
    recorded = scores.run_info.get("overrides") if scores.kind == "results" else None
    overrides = reading.meaningful([str(o) for o in recorded]) if isinstance(recorded, list) else []
    return RunRow(scores.label, scores, EMPTY, overrides=overrides)


def label_rows(rows: list[RunRow]) -> None:
    """Label = model name plus the overrides that differ between runs, e.g. `nvembed-eval/NV-Embed-tiny
    model.pooling=mean` (a table keeps its file name). Labels that still collide get the folder name, then the path."""
    runs = [r for r in rows if r.scores.kind == "results"]
    common = set.intersection(*(set(r.overrides) for r in runs)) if runs else set()
    for row in runs:
        row.label = " ".join([row.scores.model or row.scores.label, *(o for o in row.overrides if o not in common)])
    # Reruns of one config share a label: add the folder name (or, for a folder-named row, the path), then the path.
    _dedupe(rows, lambda r: r.scores.label if r.scores.kind == "results" and r.scores.model else str(r.scores.source))
    _dedupe(rows, lambda r: str(r.scores.source))


def _dedupe(rows: list[RunRow], suffix: Callable[[RunRow], str]) -> None:
    counts = Counter(r.label for r in rows)
    for row in rows:
        if counts[row.label] > 1:
            row.label = f"{row.label} ({suffix(row)})"


def discover_runs(paths: list[Path], benchmark: str | None = None) -> Report:
    """One row per run folder, results folder, score table (CSV), or job of a Hydra multirun sweep folder in `paths`,
    on one benchmark: `--benchmark NAME`, or None for the runs' own (gate.choose_benchmark; tables never decide). A
    sweep job without results yet is an empty row (noted); an explicit path without results is an error. Raises
    ResultsError for unreadable inputs or no input with a task, ConfigError for an unknown `benchmark`."""
    rows: list[RunRow] = []
    explicit = Benchmark.named(benchmark) if benchmark else None
    for path in paths:
        jobs = reading.hydra_job_dirs(path)
        rows += [_job_row(job, explicit) for job in jobs] if jobs else [_plain_row(path, explicit)]
    label_rows(rows)
    runs = [r.scores for r in rows if r.scores.kind == "results"]
    bench, notes = choose_benchmark(runs or [r.scores for r in rows], benchmark)
    notes += [r.scores.reading_note for r in rows if r.scores.reading_note]
    extra = sorted({t for s in runs for t in s.scores} - set(bench.tasks))
    for row in rows:
        row.board = benchmark_leaderboard(row.scores.values, bench)
        if left_out := [t for t in row.scores.scores if t not in bench.tasks and t not in extra]:
            notes.append(f"{row.label}: {len(left_out)} tasks outside benchmark {bench.title} are not shown")
    return Report(rows, bench, notes, [*bench.tasks, *extra])


def render_csv(report: Report) -> str:
    """Rows = runs. Per aggregate three columns: the full-coverage value (empty when partial), the partial mean, and
    the coverage, so no partial mean ever sits under a full-benchmark heading. Then `missing` and per-task scores."""
    writer = csv.writer(buffer := io.StringIO(), lineterminator="\n")
    rows = report.rows
    names = [a.name for a in rows[0].board.aggregates()] if rows else []
    header = [column for name in names for column in (name, f"{name} (partial)", f"{name} coverage")]
    writer.writerow(["run", "model", "source", "note", *header, "missing", *report.tasks])
    for row in rows:
        cells = [row.label, row.scores.model or "", str(row.scores.source), row.note]
        for agg in row.board.aggregates():
            value = "" if agg.mean is None else f"{agg.mean:.4f}"
            cells += [value if agg.complete else "", "" if agg.complete else value, f"{agg.covered}/{agg.total}"]
        scores = row.scores.scores
        cells.append(";".join(row.board.missing))
        writer.writerow(cells + [f"{scores[t].value:.4f}" if t in scores else "" for t in report.tasks])
    return buffer.getvalue()


def render_markdown(report: Report) -> str:
    rows, bench = report.rows, report.benchmark
    names = [a.name for a in rows[0].board.aggregates()] if rows else []
    lines = [f"# Leaderboard: {bench.title}", "", f"Benchmark {bench.describe()}."]
    lines += [f"> note: {note}" for note in report.notes]
    lines += ["", "| run | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    for row in rows:
        cells = [a.value_text() if a.complete else f"{a.value_text()} ({a.coverage()})" for a in row.board.aggregates()]
        label = f"{row.label} ({row.note})" if row.note else row.label
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    specs = {task: load_task_spec(task) for task in report.tasks}
    unverified = {task for task, spec in specs.items() if spec.has_instruction and not spec.instruction_verified}
    lines += ["", "## Per task", "", "| task | " + " | ".join(r.label for r in rows) + " |"]
    lines.append("|---" * (len(rows) + 1) + "|")
    for task in report.tasks:
        mark = UNVERIFIED_MARK if task in unverified else ""
        cells = [f"{r.scores.scores[task].value:.2f}" if task in r.scores.scores else "—" for r in rows]
        lines.append(f"| {task}{mark} | " + " | ".join(cells) + " |")
    if unverified:
        lines += ["", f"{UNVERIFIED_MARK} NV-Embed-v2 instruction unverified (stand-in for the paper's Table 7)."]
    lines += ["", "## Missing tasks", ""]
    for row in rows:
        missing = row.board.missing
        text = f"{len(missing)} of {len(bench.tasks)}: {', '.join(missing)}" if missing else "none"
        lines.append(f"- {row.label}: {text}")
    lines += ["", "Averages cover only the tasks present; partial ones show their coverage. A missing task is never 0."]
    return "\n".join(lines) + "\n"


def render_plot(report: Report, path: Path) -> None:
    """Grouped bars of Average and type means per run, each labelled with its value; partial means hatched and
    labelled with their coverage too."""
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    rows = report.rows
    names = [a.name for a in rows[0].board.aggregates()] if rows else []
    width = 0.8 / max(1, len(rows))
    fig = Figure(figsize=(max(7.0, 0.5 * len(rows) * len(names) + 3), 5.2), layout="constrained")
    ax = fig.subplots()
    for i, row in enumerate(rows):
        for j, agg in enumerate(row.board.aggregates()):
            if agg.mean is None:
                continue
            x = j + (i - (len(rows) - 1) / 2) * width
            bars = ax.bar(x, agg.mean, width, color=f"C{i % 10}", hatch=None if agg.complete else "//", alpha=0.9)
            text = agg.value_text() if agg.complete else f"{agg.value_text()}\n{agg.covered}/{agg.total}"
            ax.bar_label(bars, labels=[text], fontsize=6, padding=1)
    ax.set_xticks(range(len(names)), names, rotation=30, fontsize=8)
    ax.axhline(0, color="black", linewidth=0.5)
    ax.margins(y=0.12)  # room for the labels
    handles = [Patch(color=f"C{i % 10}") for i in range(len(rows))]
    ax.legend(handles, [r.label for r in rows], fontsize=7, loc="upper left", bbox_to_anchor=(1, 1))
    ax.set_ylabel("score, 0-100 (hatched: partial coverage)")
    ax.set_title(f"benchmark {report.benchmark.describe()}", fontsize=9)
    fig.savefig(path, dpi=110)


def write_report(report: Report, out_dir: Path) -> list[Path]:
    """report.md, report.csv and report.png into `out_dir`, all or none (`io.publish`)."""
    texts = {"report.md": render_markdown(report), "report.csv": render_csv(report)}
    writers = {name: (lambda p, text=text: p.write_text(text, encoding="utf-8")) for name, text in texts.items()}
    return publish(out_dir, {**writers, "report.png": lambda p: render_plot(report, p)})


def main(argv: list[str] | None = None) -> None:
    """Console script `nvembed-eval-report`: one leaderboard row per run, table or sweep job."""
    parser = Parser(prog="nvembed-eval-report", description="Leaderboard table over runs.")
    parser.add_argument("runs", type=Path, nargs="+", help="run folders, sweep folders, results folders or CSVs")
    parser.add_argument("--out", type=Path, default=None, help="output folder (default: <first folder>/report)")
    parser.add_argument("--benchmark", default=None, help="conf/benchmark name (default: the runs' own)")
    args = parser.parse_args(argv)

    def run() -> int:
        report = discover_runs(args.runs, args.benchmark)
        written = write_report(report, args.out or default_out(args.runs, "report"))
        emit(render_markdown(report) + "".join(f"wrote {path}\n" for path in written), end="")
        return 0

    exit_with(run, "", exit_on_success=False)


if __name__ == "__main__":
    main()
