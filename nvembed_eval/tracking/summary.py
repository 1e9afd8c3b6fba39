"""The end of a run: what each task gave (`RunSummary`, filled by the runner) and the table printed from it: task,
type, score (0-100), published score, delta.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from nvembed_eval.errors import ResultsError

if TYPE_CHECKING:
    from mteb import TaskResult
    from omegaconf import DictConfig

    from nvembed_eval.tasks import TaskSpec


@dataclass
class TaskOutcome:
    spec: TaskSpec
    result: TaskResult
    skipped: bool  # True when resumed from an existing result


@dataclass
class RunSummary:
    run_dir: Path
    outcomes: list[TaskOutcome] = field(default_factory=list)


# Published tables shipped in results/published/, by the mteb model name they describe.
PUBLISHED_BY_MODEL = {
    "nvidia/NV-Embed-v2": "nv_embed_v2.csv",
    "sentence-transformers/all-MiniLM-L6-v2": "all_minilm_l6_v2.csv",
}


def reference_table(cfg: DictConfig) -> Path | None:
    """The published table to compare against: `cfg.reference` (a CSV path, or the name of a table shipped with the
    package such as `nv_embed_v2`), or for `auto` the table shipped for the model's name; None when there is none.

    Shipped tables are read from `cfg.paths.published_dir`, or when that is null from the package itself
    (nvembed_eval.resources), so a run from any folder finds them.

    Raises:
        ResultsError: `reference` names no shipped table (lists them).
    """
    from nvembed_eval.resources import bundled_dir

    reference = cfg.get("reference", "auto")
    if reference in (None, "null", "none"):
        return None
    folder = cfg.paths.get("published_dir")
    published = Path(str(folder)) if folder else bundled_dir("published")
    if reference == "auto":
        stem = PUBLISHED_BY_MODEL.get(str(cfg.model.get("name", "")))
        return published / stem if stem else None
    text = str(reference)
    if "/" in text or Path(text).suffix:
        return Path(text)
    if not (published / f"{text}.csv").is_file():
        shipped = ", ".join(sorted(p.stem for p in published.glob("*.csv")))
        raise ResultsError(f"<reference={text}> is no published table; use one of: {shipped}, or a CSV path")
    return published / f"{text}.csv"


def published_scores(cfg: DictConfig) -> dict[str, float]:
    """task -> published score (0-100) from the reference table, read by the scoring module's own reader."""
    from nvembed_eval.tracking.scoring import load_scores

    path = reference_table(cfg)
    return load_scores(path).values if path is not None and path.exists() else {}


def format_table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        return "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(header), rule, *(line(r) for r in rows)])


def summary_rows(summary: RunSummary, cfg: DictConfig) -> list[dict[str, object]]:
    """One row per task of the run: task, type, split, subset, metric, score and published (0-100, None when there
    is none), delta (score - published) and resumed (kept from an earlier run)."""
    from nvembed_eval.tracking.scoring import task_score

    published = published_scores(cfg)
    rows: list[dict[str, object]] = []
    for outcome in summary.outcomes:
        spec = outcome.spec
        ours = task_score(outcome.result, spec)
        ref = published.get(spec.name)
        delta = ours - ref if ref is not None and ours is not None else None
        rows.append(
            {
                "task": spec.name,
                "type": spec.type,
                "split": spec.split,
                "subset": spec.subset,
                "metric": spec.metric,
                "score": ours,
                "published": ref,
                "delta": delta,
                "resumed": outcome.skipped,
            }
        )
    return rows


def print_run_table(summary: RunSummary, cfg: DictConfig) -> None:
    rows = [
        [
            row["task"],
            row["type"],
            row["metric"],
            f"{row['score']:.2f}" if row["score"] is not None else "n/a",
            f"{row['published']:.2f}" if row["published"] is not None else "",
            f"{round(row['delta'], 2) + 0.0:+.2f}" if row["delta"] is not None else "",  # + 0.0: no "-0.00"
            "resumed" if row["resumed"] else "",
        ]
        for row in summary_rows(summary, cfg)
    ]
    print(f"\nResults in {summary.run_dir}")
    print(format_table(rows, ["task", "type", "metric", "score", "published", "delta", "note"]))


def print_leaderboard(summary: RunSummary, cfg: DictConfig) -> None:
    """Leaderboard view against the reference table: per-task deltas, averages with coverage, provenance flags."""
    from nvembed_eval.tracking.compare import compare, render_markdown, write_outputs
    from nvembed_eval.tracking.scoring import load_scores

    reference = reference_table(cfg)
    if reference is None:
        return
    benchmark = str(cfg.benchmark.get("name", "mteb_eng_v1"))
    comparison = compare(load_scores(summary.run_dir), load_scores(reference), benchmark=benchmark)
    print()
    print(render_markdown(comparison))
    for path in write_outputs(comparison, summary.run_dir / "compare"):
        print(f"wrote {path}")
