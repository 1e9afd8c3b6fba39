"""The end of a run: what each task gave (`RunSummary`, filled by the runner) and the table printed from it: task,
type, score (0-100), published score, delta.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

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
    """The published table to compare against: `cfg.reference` (a CSV path), or for `auto` the table shipped for
    the model's name; None when there is none."""
    reference = cfg.get("reference", "auto")
    if reference in (None, "null", "none"):
        return None
    if reference == "auto":
        stem = PUBLISHED_BY_MODEL.get(str(cfg.model.get("name", "")))
        return Path(str(cfg.paths.published_dir)) / stem if stem else None
    return Path(str(reference))


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


def print_run_table(summary: RunSummary, cfg: DictConfig) -> None:
    from nvembed_eval.tracking.scoring import task_score

    published = published_scores(cfg)
    rows = []
    for outcome in summary.outcomes:
        spec = outcome.spec
        ours = task_score(outcome.result, spec)
        ref = published.get(spec.name)
        rows.append(
            [
                spec.name,
                spec.type,
                spec.metric,
                f"{ours:.2f}" if ours is not None else "n/a",
                f"{ref:.2f}" if ref is not None else "",
                f"{round(ours - ref, 2) + 0.0:+.2f}" if ref is not None and ours is not None else "",  # no "-0.00"
                "resumed" if outcome.skipped else "",
            ]
        )
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
