"""Build `results/baselines/ci_minilm.csv`: the all-MiniLM-L6-v2 baseline of `benchmark=ci`, one row per task, each
saying where its number comes from (docs/ci.md).

Rows for tasks with local data are read from the committed run folder `results/baselines/ci_minilm/` (computed here:
`nvembed-eval model=minilm benchmark=ci data_dir=../shared/data output_dir=results/baselines/ci_minilm`); the other
rows are MiniLM's published scores from `results/published/all_minilm_l6_v2.csv`.

    python scripts/make_ci_baseline.py            # (re)write the CSV
    python scripts/make_ci_baseline.py --check    # exit 1 if the committed CSV is stale (tested)
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from pathlib import Path

from nvembed_eval.results.reading import load_scores
from nvembed_eval.tasks.benchmarks import Benchmark
from nvembed_eval.tasks.specs import load_task_spec

REPO = Path(__file__).resolve().parents[1]
RUN = REPO / "results" / "baselines" / "ci_minilm"
PUBLISHED = REPO / "results" / "published" / "all_minilm_l6_v2.csv"
OUT = REPO / "results" / "baselines" / "ci_minilm.csv"
COLUMNS = ["task", "type", "split", "subset", "metric", "score", "dataset_revision", "source"]


def build() -> str:
    run = load_scores(RUN)
    mteb_version = json.loads((RUN / "run.json").read_text(encoding="utf-8"))["versions"]["mteb"]
    with PUBLISHED.open(newline="", encoding="utf-8") as handle:
        published = {row["task"]: row for row in csv.DictReader(handle)}
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, COLUMNS, lineterminator="\n")
    writer.writeheader()
    for name in list(Benchmark.named("ci").tasks):
        spec = load_task_spec(name)
        row = {"task": name, "type": spec.type, "split": spec.split, "subset": spec.subset}
        if name in run.scores:
            score = run.scores[name]
            row |= {
                "metric": score.metric,
                "score": repr(score.value),
                "dataset_revision": score.dataset_revision or "",
                "source": f"computed: {RUN.relative_to(REPO)} (local data ../shared/data/{name}, mteb {mteb_version})",
            }
        elif name in published:
            pub = published[name]
            row |= {
                "metric": pub["metric"],
                "score": pub["score"],
                "dataset_revision": pub["dataset_revision"],
                "source": f"published: results/published/all_minilm_l6_v2.csv (mteb {pub['mteb_version']} results)",
            }
        else:
            raise SystemExit(f"error: {name} has neither a computed nor a published MiniLM score; drop it from ci")
        writer.writerow(row)
    return buffer.getvalue()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the committed CSV differs from a rebuild")
    args = parser.parse_args(argv)
    text = build()
    if args.check:
        if not OUT.is_file() or OUT.read_text(encoding="utf-8") != text:
            print(f"error: {OUT} is stale; run python scripts/make_ci_baseline.py", file=sys.stderr)
            return 1
        print(f"{OUT} is up to date")
        return 0
    OUT.write_text(text, encoding="utf-8")
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
