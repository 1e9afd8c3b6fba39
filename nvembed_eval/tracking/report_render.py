"""The report's outputs: markdown (averages, per-task scores, the real missing-task list), CSV, a labelled PNG."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from nvembed_eval.tracking.report import Report

UNVERIFIED_MARK = "†"


def _unverified(tasks: list[str]) -> set[str]:
    from nvembed_eval.tasks import load_task_spec

    out = set()
    for task in tasks:
        spec = load_task_spec(task)
        if spec.has_instruction and not spec.instruction_verified:
            out.add(task)
    return out


def render_csv(report: Report) -> str:
    """Rows = runs. Per aggregate three columns: the full-coverage value (empty when partial), the partial mean, and
    the coverage, so no partial mean ever sits under a full-benchmark heading. Then `missing` and per-task scores."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    rows = report.rows
    names = [a.name for a in rows[0].board.aggregates()] if rows else []
    header = ["run", "model", "source", "note"]
    for name in names:
        header += [name, f"{name} (partial)", f"{name} coverage"]
    writer.writerow([*header, "missing", *report.tasks])
    for row in rows:
        cells = [row.label, row.scores.model or "", str(row.scores.source), row.note]
        for agg in row.board.aggregates():
            value = "" if agg.mean is None else f"{agg.mean:.4f}"
            cells += [value if agg.complete else "", "" if agg.complete else value, f"{agg.covered}/{agg.total}"]
        scores = row.scores.scores
        cells.append(";".join(row.missing(report.benchmark)))
        writer.writerow(cells + [f"{scores[t].value:.4f}" if t in scores else "" for t in report.tasks])
    return buffer.getvalue()


def render_markdown(report: Report) -> str:
    rows, bench = report.rows, report.benchmark
    names = [a.name for a in rows[0].board.aggregates()] if rows else []
    lines = [f"# Leaderboard: {bench.title}", "", f"Benchmark {bench.describe()}."]
    lines += [f"> note: {note}" for note in report.notes]
    lines += ["", "| run | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    for row in rows:
        board = row.board
        cells = [a.value_text() if a.complete else f"{a.value_text()} ({a.coverage()})" for a in board.aggregates()]
        label = f"{row.label} ({row.note})" if row.note else row.label
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    unverified = _unverified(report.tasks)
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
        missing = row.missing(bench)
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
