"""The end-of-run table: task, type, score (0-100), published score, delta."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from omegaconf import DictConfig

    from nvembed_eval.runner import RunSummary

# Published tables shipped in results/published/, by the mteb model name they describe.
PUBLISHED_BY_MODEL = {
    "nvidia/NV-Embed-v2": "nv_embed_v2.csv",
    "sentence-transformers/all-MiniLM-L6-v2": "all_minilm_l6_v2.csv",
}


def published_scores(cfg: DictConfig, model_name: str) -> dict[str, float]:
    """task -> published score (0-100) from `cfg.reference` (auto = by model name; a CSV path; null = none)."""
    reference = cfg.get("reference", "auto")
    if reference in (None, "null", "none"):
        return {}
    if reference == "auto":
        stem = PUBLISHED_BY_MODEL.get(model_name)
        if stem is None:
            return {}
        path = Path(str(cfg.paths.published_dir)) / stem
    else:
        path = Path(str(reference))
    if not path.exists():
        return {}
    with path.open(encoding="utf-8") as handle:
        return {row["task"]: float(row["score"]) for row in csv.DictReader(handle)}


def format_table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        return "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(header), rule, *(line(r) for r in rows)])


def print_run_table(summary: RunSummary, cfg: DictConfig) -> None:
    from nvembed_eval.scoring import task_score

    model_name = str(cfg.model.get("name", ""))
    published = published_scores(cfg, model_name)
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
    from nvembed_eval.compare import compare, render_markdown, write_outputs
    from nvembed_eval.scoring import load_scores

    reference = cfg.get("reference")
    if reference in (None, "auto", "null", "none"):
        stem = PUBLISHED_BY_MODEL.get(str(cfg.model.get("name", "")))
        if stem is None:
            return
        reference = Path(str(cfg.paths.published_dir)) / stem
    benchmark = str(cfg.benchmark.get("name", "mteb_eng_v1"))
    comparison = compare(load_scores(summary.run_dir), load_scores(Path(str(reference))), benchmark=benchmark)
    print()
    print(render_markdown(comparison))
    for path in write_outputs(comparison, summary.run_dir / "compare"):
        print(f"wrote {path}")
