"""Why `tasks/revisions.py` hands mteb's classification scoring its labels as one array: the time of one experiment's
seven scikit-learn metrics on Banking77's test split (3,080 labels, from ../shared/data), given the `datasets.Column`
mteb 2.26 passes and given one array, with the same predictions, in one run; and the check that the scores agree.

    python scripts/bench_classification_labels.py [--data-dir ../shared/data] [--repeats 5]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nvembed_eval.tasks.local_data import load_local_task_data
from nvembed_eval.tasks.revisions import build_mteb_task
from nvembed_eval.tasks.specs import load_task_spec


def seconds(score, labels, predicted, repeats: int) -> tuple[float, dict]:
    start = time.perf_counter()
    for _ in range(repeats):
        scores = score(labels, predicted)
    return (time.perf_counter() - start) / repeats, scores


def main() -> None:
    from mteb.abstasks.classification import AbsTaskClassification

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    task, _ = build_mteb_task(load_task_spec("Banking77Classification"), "mteb")
    load_local_task_data(task, args.data_dir, split="test", subset="default")
    labels = task.dataset["test"]["label"]
    predicted = np.random.default_rng(0).integers(0, 77, len(labels))
    column_s, column_scores = seconds(
        lambda y, p: AbsTaskClassification._calculate_scores(task, y, p), labels, predicted, args.repeats
    )
    array_s, array_scores = seconds(task._calculate_scores, labels, predicted, args.repeats)
    print(f"Banking77 test labels: {len(labels)} ({type(labels).__name__} as mteb hands them)")
    print(f"seven metrics, labels as datasets.Column: {column_s:.3f} s per experiment")
    print(f"seven metrics, labels as one array:       {array_s:.3f} s per experiment")
    print(f"ratio {column_s / array_s:.0f}x; scores identical: {column_scores == array_scores}")


if __name__ == "__main__":
    main()
