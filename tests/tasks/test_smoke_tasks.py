"""The embedded smoke benchmark: registration, configs, and a real mteb.evaluate of all seven tasks with MiniLM."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import mteb
import pytest
import yaml
from fakes import RandomEncoder
from mteb.models import SentenceTransformerEncoderWrapper

from nvembed_eval.errors import TaskNotFoundError
from nvembed_eval.tasks import smoke
from nvembed_eval.tasks.smoke import classes

REPO = Path(__file__).resolve().parents[2]

# Main-score floors on mteb's 0-1 scale. Chance, measured with random 32-d vectors over 8 seeds (max of the 8):
# retrieval 0.13, reranking 0.54, STS 0.32, classification 0.33, pair AP 0.76, clustering 0.23, summarization 0.25.
# all-MiniLM-L6-v2 scores 1.00, 0.96, 0.82, 0.96, 0.99, 0.69, 0.80.
FLOORS = {
    "NVEvalSmokeRetrieval": 0.50,
    "NVEvalSmokeReranking": 0.75,
    "NVEvalSmokeSTS": 0.60,
    "NVEvalSmokeClassification": 0.70,
    "NVEvalSmokePairClassification": 0.85,
    "NVEvalSmokeClustering": 0.45,
    "NVEvalSmokeSummarization": 0.50,
}
TYPES = {
    "NVEvalSmokeRetrieval": "Retrieval",
    "NVEvalSmokeReranking": "Reranking",
    "NVEvalSmokeSTS": "STS",
    "NVEvalSmokeClassification": "Classification",
    "NVEvalSmokePairClassification": "PairClassification",
    "NVEvalSmokeClustering": "Clustering",
    "NVEvalSmokeSummarization": "Summarization",
}


def evaluate(model) -> dict[str, float]:
    classes.register()
    tasks = [mteb.get_task(name) for name in smoke.SMOKE_TASK_NAMES]
    result = mteb.evaluate(model, tasks, cache=None, show_progress_bar=False)
    assert not result.exceptions
    return {r.task_name: r.get_score() for r in result.task_results}


@pytest.fixture(scope="module")
def minilm_scores(minilm):
    start = time.perf_counter()
    scores = evaluate(SentenceTransformerEncoderWrapper(minilm))
    return scores, time.perf_counter() - start


def test_all_seven_types_score_above_chance_with_minilm(minilm_scores):
    scores, seconds = minilm_scores
    assert sorted(scores) == sorted(smoke.SMOKE_TASK_NAMES)
    for name, floor in FLOORS.items():
        assert scores[name] > floor, (name, scores[name])
    assert seconds < 110, f"the smoke benchmark took {seconds:.0f}s with MiniLM on CPU"


def test_random_vectors_stay_below_the_floors():
    scores = evaluate(RandomEncoder())
    for name, floor in FLOORS.items():
        assert scores[name] < floor, (name, scores[name])


def test_main_score_is_the_configured_metric_and_type_matches(minilm_scores):
    for name in smoke.SMOKE_TASK_NAMES:
        spec = yaml.safe_load((REPO / "conf" / "task" / f"{name}.yaml").read_text())
        task = classes.get_smoke_task(name)
        assert spec["name"] == name and spec["type"] == task.metadata.type == TYPES[name]
        assert spec["metric"] == task.metadata.main_score
        assert (spec["split"], spec["subset"]) == ("test", "default")
        assert spec["dataset_revision"]["mteb"] == task.metadata.revision == "v1"
    benchmark = yaml.safe_load((REPO / "conf" / "benchmark" / "smoke.yaml").read_text())
    assert benchmark == {"name": "smoke", "tasks": list(smoke.SMOKE_TASK_NAMES)}


def test_register_is_idempotent_and_get_task_returns_fresh_objects():
    classes.register()
    classes.register()
    first, second = mteb.get_task("NVEvalSmokeSTS"), mteb.get_task("NVEvalSmokeSTS")
    assert first is not second and type(first).__name__ == "NVEvalSmokeSTS"
    assert not first.data_loaded


def test_unknown_smoke_task_suggests_the_closest():
    with pytest.raises(TaskNotFoundError, match="did you mean 'NVEvalSmokeSTS'"):
        classes.get_smoke_task("NVEvalSmokeSTs")


def test_packaged_data_loads_into_the_mteb_structures():
    sts = classes.get_smoke_task("NVEvalSmokeSTS")
    sts.load_data()
    assert sts.dataset["test"].num_rows == 32
    rerank = classes.get_smoke_task("NVEvalSmokeReranking")
    rerank.load_data()
    split = rerank.dataset["default"]["test"]
    assert len(split["top_ranked"]) == 12 and all(len(c) == 5 for c in split["top_ranked"].values())
    classification = classes.get_smoke_task("NVEvalSmokeClassification")
    classification.load_data()
    assert {s: classification.dataset[s].num_rows for s in ("train", "test")} == {"train": 40, "test": 24}


def test_import_does_nothing():
    code = (
        "import sys, nvembed_eval.tasks.smoke as s; "
        "assert 'mteb' not in sys.modules and 'nvembed_eval.tasks.smoke.classes' not in sys.modules; "
        "print(len(s.SMOKE_TASK_NAMES))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "7"
