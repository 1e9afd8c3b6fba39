"""Leaderboard-style tables over runs: one row per run (or per job of a Hydra multirun sweep), averages with coverage.

Writes markdown, CSV and a PNG of the averages.
"""

from __future__ import annotations

import argparse
import csv
import io
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

from nvembed_eval.errors import NVEmbedEvalError, ResultsError
from nvembed_eval.tracking.scoring import (
    DEFAULT_BENCHMARK,
    Leaderboard,
    ScoreSet,
    benchmark_leaderboard,
    find_result_files,
    hydra_job_dirs,
    load_scores,
)

OUTPUT_NAMES = ("report.md", "report.csv", "report.png")
UNVERIFIED_MARK = "†"


@dataclass
class RunRow:
    label: str
    scores: ScoreSet
    board: Leaderboard
    note: str = ""


def job_label(job: Path) -> str:
    """A sweep job's Hydra overrides joined by commas (e.g. `model.pooling=mean,instructions=none`)."""
    path = job / ".hydra" / "overrides.yaml"
    try:
        overrides = yaml.safe_load(path.read_text(encoding="utf-8")) or []
    except yaml.YAMLError:
        raise ResultsError(f"malformed {path}; fix or delete the job folder") from None
    if not isinstance(overrides, list):
        raise ResultsError(f"{path} is not a list of overrides; fix or delete the job folder")
    return ",".join(str(o) for o in overrides) or job.name


def discover_runs(paths: list[Path], benchmark: str = DEFAULT_BENCHMARK) -> list[RunRow]:
    """One row per run folder, score table, or job of a Hydra multirun sweep folder.

    A sweep job without results yet becomes an empty row (noted); an explicit path without results is an error.
    """
    rows: list[RunRow] = []
    for path in paths:
        jobs = hydra_job_dirs(path)
        if not jobs:
            scores = load_scores(path)
            rows.append(RunRow(scores.label, scores, benchmark_leaderboard(scores.values, benchmark)))
            continue
        for job in jobs:
            label = job_label(job)
            if find_result_files(job):
                scores, note = load_scores(job, label=label), ""
            else:
                scores, note = ScoreSet(source=job, label=label, kind="results"), "no results yet"
            rows.append(RunRow(label, scores, benchmark_leaderboard(scores.values, benchmark), note))
    seen: dict[str, int] = {}
    for row in rows:  # two runs may share a folder name; keep labels unique
        seen[row.label] = seen.get(row.label, 0) + 1
        if seen[row.label] > 1:
            row.label = f"{row.label} ({row.scores.source})"
    return rows


def task_columns(rows: list[RunRow], benchmark: str) -> list[str]:
    from nvembed_eval.tasks import benchmark_tasks

    order = benchmark_tasks(benchmark)
    present = {t for r in rows for t in r.scores.scores}
    return [t for t in order if t in present] + sorted(present - set(order))


def _unverified(tasks: list[str]) -> set[str]:
    from nvembed_eval.tasks import load_task_spec

    out = set()
    for task in tasks:
        spec = load_task_spec(task)
        if spec.has_instruction and not spec.instruction_verified:
            out.add(task)
    return out


def render_csv(rows: list[RunRow], tasks: list[str]) -> str:
    """Rows = runs. Per aggregate three columns: the full-coverage value (empty when partial), the partial mean, and
    the coverage, so no partial mean ever sits under a full-benchmark heading."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    names = [a.name for a in rows[0].board.aggregates()] if rows else []
    header = ["run", "source", "note"]
    for name in names:
        header += [name, f"{name} (partial)", f"{name} coverage"]
    writer.writerow(header + tasks)
    for row in rows:
        cells = [row.label, str(row.scores.source), row.note]
        for agg in row.board.aggregates():
            value = "" if agg.mean is None else f"{agg.mean:.4f}"
            cells += [value if agg.complete else "", "" if agg.complete else value, f"{agg.covered}/{agg.total}"]
        scores = row.scores.scores
        writer.writerow(cells + [f"{scores[t].value:.4f}" if t in scores else "" for t in tasks])
    return buffer.getvalue()


def render_markdown(rows: list[RunRow], tasks: list[str], benchmark: str) -> str:
    names = [a.name for a in rows[0].board.aggregates()] if rows else []
    lines = [f"# Leaderboard ({benchmark})", "", "| run | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    for row in rows:
        cells = [a.value_text() if a.complete else f"{a.value_text()} ({a.coverage()})" for a in row.board.aggregates()]
        label = f"{row.label} ({row.note})" if row.note else row.label
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    unverified = _unverified(tasks)
    lines += ["", "## Per task", "", "| task | " + " | ".join(r.label for r in rows) + " |"]
    lines.append("|---" * (len(rows) + 1) + "|")
    for task in tasks:
        mark = UNVERIFIED_MARK if task in unverified else ""
        cells = [f"{r.scores.scores[task].value:.2f}" if task in r.scores.scores else "—" for r in rows]
        lines.append(f"| {task}{mark} | " + " | ".join(cells) + " |")
    if unverified:
        lines += ["", f"{UNVERIFIED_MARK} NV-Embed-v2 instruction unverified (stand-in for the paper's Table 7)."]
    lines.append("Averages cover only the tasks present; partial ones show their coverage. Missing tasks: —.")
    return "\n".join(lines) + "\n"


def render_plot(rows: list[RunRow], path: Path) -> None:
    """Grouped bars of Average and type means per run; partial means hatched and labelled with their coverage."""
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    names = [a.name for a in rows[0].board.aggregates()] if rows else []
    width = 0.8 / max(1, len(rows))
    fig = Figure(figsize=(max(7.0, 1.2 * len(names) + 2), 4.8), layout="constrained")
    ax = fig.subplots()
    for i, row in enumerate(rows):
        for j, agg in enumerate(row.board.aggregates()):
            if agg.mean is None:
                continue
            x = j + (i - (len(rows) - 1) / 2) * width
            ax.bar(x, agg.mean, width, color=f"C{i % 10}", hatch=None if agg.complete else "//", alpha=0.9)
            if not agg.complete:
                ax.text(x, agg.mean, f"{agg.covered}/{agg.total}", ha="center", va="bottom", fontsize=6)
    ax.set_xticks(range(len(names)), names, rotation=30, fontsize=8)
    handles = [Patch(color=f"C{i % 10}") for i in range(len(rows))]
    ax.legend(handles, [r.label for r in rows], fontsize=7, loc="upper left", bbox_to_anchor=(1, 1))
    ax.set_ylabel("score (hatched: partial coverage)")
    fig.savefig(path, dpi=110)


def main(argv: list[str] | None = None) -> None:
    """Console script `nvembed-eval-report`.

    Examples:
        nvembed-eval-report outputs/run_a outputs/run_b results/published/nv_embed_v2.csv --out reports/ab
        nvembed-eval-report multirun/2025-01-01/12-00-00          # one row per sweep job, labelled by overrides
    """
    from nvembed_eval.tracking.compare import emit, publish

    parser = argparse.ArgumentParser(prog="nvembed-eval-report", description="Leaderboard table over runs.")
    parser.add_argument("runs", type=Path, nargs="+", help="run folders, sweep folders, results folders or CSVs")
    parser.add_argument("--out", type=Path, default=Path("report"), help="output folder (default: ./report)")
    parser.add_argument("--benchmark", default=DEFAULT_BENCHMARK, help="conf/benchmark name for coverage")
    args = parser.parse_args(argv)
    try:
        rows = discover_runs(args.runs, args.benchmark)
        tasks = task_columns(rows, args.benchmark)
        md, table = render_markdown(rows, tasks, args.benchmark), render_csv(rows, tasks)
        written = publish(
            args.out,
            {
                OUTPUT_NAMES[0]: lambda p: p.write_text(md, encoding="utf-8"),
                OUTPUT_NAMES[1]: lambda p: p.write_text(table, encoding="utf-8"),
                OUTPUT_NAMES[2]: lambda p: render_plot(rows, p),
            },
        )
    except NVEmbedEvalError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except Exception as exc:
        print(f"error: unexpected {type(exc).__name__}: {exc}", file=sys.stderr)
        sys.exit(2)
    emit(md + "".join(f"wrote {path}\n" for path in written))


if __name__ == "__main__":
    main()
