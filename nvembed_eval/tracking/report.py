"""Leaderboard-style tables over runs: one row per run (or per job of a Hydra multirun sweep), on the benchmark the
runs evaluated, labelled by model and the overrides that differ between runs. Writes markdown, CSV and a PNG.
"""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from nvembed_eval.arguments import Parser
from nvembed_eval.errors import NVEmbedEvalError
from nvembed_eval.tracking.gate import choose_benchmark
from nvembed_eval.tracking.leaderboard import Aggregate, Benchmark, Leaderboard, benchmark_leaderboard
from nvembed_eval.tracking.origin import job_overrides, meaningful, model_of, read_run_info
from nvembed_eval.tracking.outputs import default_out, emit, publish
from nvembed_eval.tracking.scoring import ScoreSet, find_result_files, hydra_job_dirs, load_scores

OUTPUT_NAMES = ("report.md", "report.csv", "report.png")


@dataclass
class RunRow:
    label: str
    scores: ScoreSet
    board: Leaderboard
    note: str = ""
    overrides: list[str] = field(default_factory=list)

    def missing(self, bench: Benchmark) -> list[str]:
        """Benchmark tasks this run has no score for."""
        return [t for t in bench.tasks if t not in self.scores.scores]


@dataclass
class Report:
    rows: list[RunRow]
    benchmark: Benchmark
    notes: list[str]
    tasks: list[str]  # per-task columns: the benchmark's, then any other task a run (not a table) has


EMPTY = Leaderboard("", Aggregate("Average", 0, 0, None), {}, ())  # placeholder until the benchmark is chosen


def _job_row(job: Path) -> RunRow:
    overrides = meaningful(job_overrides(job))
    if find_result_files(job):
        return RunRow(job.name, load_scores(job, label=job.name), EMPTY, overrides=overrides)
    info = read_run_info(job)  # run.json, or Hydra's .hydra/config.yaml before the job wrote anything
    scores = ScoreSet(source=job, label=job.name, kind="results", run_info=info)
    scores.model, scores.model_source = model_of(job, [], info)
    return RunRow(job.name, scores, EMPTY, note="no results yet", overrides=overrides)


def _plain_row(path: Path) -> RunRow:
    scores = load_scores(path)
    recorded = scores.run_info.get("overrides") if scores.kind == "results" else None
    overrides = meaningful([str(o) for o in recorded]) if isinstance(recorded, list) else []
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
    """One row per run folder, score table, or job of a Hydra multirun sweep folder, on one benchmark.

    Args:
        paths: run folders, results folders, CSVs, sweep folders.
        benchmark: `--benchmark NAME`; None takes the runs' own (gate.choose_benchmark; tables never decide).

    Returns:
        The Report. A sweep job without results yet is an empty row (noted); an explicit path without results is an
        error.

    Raises:
        ResultsError: unreadable inputs, or no input with a task.
        ConfigError: unknown `benchmark`.
    """
    rows: list[RunRow] = []
    for path in paths:
        jobs = hydra_job_dirs(path)
        rows += [_job_row(job) for job in jobs] if jobs else [_plain_row(path)]
    label_rows(rows)
    runs = [r.scores for r in rows if r.scores.kind == "results"]
    bench, notes = choose_benchmark(runs or [r.scores for r in rows], benchmark)
    for row in rows:
        row.board = benchmark_leaderboard(row.scores.values, bench)
    extra = sorted({t for s in runs for t in s.scores} - set(bench.tasks))
    for row in rows:
        left_out = [t for t in row.scores.scores if t not in bench.tasks and t not in extra]
        if left_out:
            notes.append(f"{row.label}: {len(left_out)} tasks outside benchmark {bench.title} are not shown")
    return Report(rows, bench, notes, [*bench.tasks, *extra])


def main(argv: list[str] | None = None) -> None:
    """Console script `nvembed-eval-report`.

    Examples:
        nvembed-eval-report outputs/run_a outputs/run_b results/published/nv_embed_v2.csv   # -> outputs/run_a/report
        nvembed-eval-report multirun/2025-01-01/12-00-00     # one row per sweep job -> multirun/.../12-00-00/report
    """
    from nvembed_eval.tracking.report_render import render_csv, render_markdown, render_plot

    parser = Parser(prog="nvembed-eval-report", description="Leaderboard table over runs.")
    parser.add_argument("runs", type=Path, nargs="+", help="run folders, sweep folders, results folders or CSVs")
    parser.add_argument("--out", type=Path, default=None, help="output folder (default: <first folder>/report)")
    parser.add_argument("--benchmark", default=None, help="conf/benchmark name (default: the runs' own)")
    args = parser.parse_args(argv)
    try:
        report = discover_runs(args.runs, args.benchmark)
        out = args.out or default_out(args.runs, "report")
        md, table = render_markdown(report), render_csv(report)
        written = publish(
            out,
            {
                OUTPUT_NAMES[0]: lambda p: p.write_text(md, encoding="utf-8"),
                OUTPUT_NAMES[1]: lambda p: p.write_text(table, encoding="utf-8"),
                OUTPUT_NAMES[2]: lambda p: render_plot(report, p),
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
