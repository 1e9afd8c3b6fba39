"""Per-item data from mteb's own predictions: on real task data (../shared/data, its fidelity fixtures) evaluated by
mteb 2.26 with fixed pseudo-random vectors, the items give mteb's own score back for every task type, through the
libraries mteb uses (pytrec_eval, scipy, scikit-learn, the summarization evaluator's own formula)."""

from __future__ import annotations

import json

import mteb
import numpy as np
import pytest
from clirun import DATA
from fakes import RandomEncoder

from nvembed_eval.errors import ItemsUnavailable
from nvembed_eval.judge.bootstrap import Statistic, statistic
from nvembed_eval.judge.item_values import build_items, retrieval_group
from nvembed_eval.judge.significance import ItemSet
from nvembed_eval.tasks.data_source import plan_task_data
from nvembed_eval.tasks.specs import load_task_spec

pytestmark = pytest.mark.filterwarnings("ignore:.*superseded", "ignore:.*deprecated")

FIDELITY = DATA / "fidelity"
# task -> data root; each a real task's data (or the fidelity fixture in that task's layout and evaluator).
# Classification and clustering take their items from the TaskResult alone: tests/test_significance_cli.py checks them
# on a real run (mteb's logistic regression and k-means on random vectors would cost a minute here).
TASKS = {
    "SciFact": DATA,
    "STSBenchmark": DATA,
    "AskUbuntuDupQuestions": FIDELITY,
    "SprintDuplicateQuestions": FIDELITY,
    "SummEval": FIDELITY,
}


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory):
    """task -> (TaskData with its data still loaded, its spec, mteb's prediction folder, mteb's in-memory result)."""
    out = {}
    model = RandomEncoder()  # a fixed pseudo-random vector per text: mteb's real evaluation path, no model
    for name, root in TASKS.items():
        spec = load_task_spec(name)
        data = plan_task_data([spec], data_dir=root, dataset_revision="mteb", explicit=True)[name]
        data.load()
        predictions = tmp_path_factory.mktemp(f"predictions-{name}")
        result = mteb.evaluate(model, data.task, cache=None, prediction_folder=predictions, show_progress_bar=False)
        out[name] = (data, spec, predictions, result.task_results[0])
    return out


def mteb_value(result, spec, key: str) -> float:
    entry = next(e for e in result.scores[spec.split] if e["hf_subset"] == spec.subset)
    return float(entry[key])


@pytest.mark.parametrize("name", list(TASKS))
def test_items_give_mtebs_own_score_back(evaluated, name):
    data, spec, predictions, result = evaluated[name]
    items = build_items(data, spec, predictions, result)
    score = mteb_value(result, spec, spec.metric)
    again = items.recomputed()
    if items.kind is Statistic.mean and spec.type in ("Retrieval", "Reranking"):
        assert abs(again - score) <= 5e-6 + 1e-12  # mteb rounds the mean over queries to 5 decimals
        assert round(again, 5) == score
    else:
        # Spearman over all pairs (scipy), AP over all pairs (scikit-learn), mean of the evaluator's per-text values
        assert again == pytest.approx(score, abs=1e-12)
    expected_count = {
        "SciFact": 300,
        "STSBenchmark": 1379,
        "AskUbuntuDupQuestions": 300,
        "SprintDuplicateQuestions": 646,
    }
    if name in expected_count:
        assert items.count == expected_count[name]
    ids = [i for g in items.groups for i in g.ids]
    assert len(set(ids)) == len(ids)
    back = ItemSet.from_json(json.loads(json.dumps(items.to_json())))  # the file's round trip is exact
    assert (back.kind, back.unit, back.metric, back.score) == (items.kind, items.unit, items.metric, items.score)
    for a, b in zip(items.groups, back.groups, strict=True):
        assert a.ids == b.ids and all(np.array_equal(a.arrays[k], b.arrays[k]) for k in a.arrays)


@pytest.mark.parametrize("metric", ["ndcg_at_10", "map_at_1000", "mrr_at_10", "recall_at_100", "precision_at_5"])
def test_per_query_values_average_to_every_retrieval_metric(evaluated, metric):
    """pytrec_eval per query (mteb's measure names) and mteb's own MRR, against the same result's other keys."""
    data, spec, predictions, result = evaluated["SciFact"]
    leaf = data.task
    predicted = json.loads((predictions / leaf.prediction_file_name).read_text())
    group = retrieval_group(leaf, metric, predicted, spec.split, spec.subset)
    mean = statistic(Statistic.mean, group.arrays)
    rounded = round(mean, 5) if not metric.startswith("mrr") else mean  # mteb rounds all but MRR to 5 decimals
    assert rounded == pytest.approx(mteb_value(result, spec, metric), abs=1e-12)
    assert len(group.ids) == 300 and group.ids[0] in data.task.dataset["default"]["test"]["relevant_docs"]


def test_summeval_per_text_values_use_the_deprecated_evaluator(evaluated):
    """SummEval's v1 evaluator averages Spearman's statistic with its p-value (mteb issue 1156); the per-text values
    are the evaluator's own, so they carry the same formula and average to its score."""
    data, spec, predictions, result = evaluated["SummEval"]
    items = build_items(data, spec, predictions, result)
    from scipy.stats import spearmanr

    kept = json.loads((predictions / data.task.prediction_file_name).read_text())["default"]["test"]
    first = spearmanr(kept["human_scores"][0], kept["cosine_scores"][0])
    assert items.groups[0].arrays["values"][0] == pytest.approx((first.statistic + first.pvalue) / 2, abs=1e-12)
    assert items.unit == "text" and items.count == len(kept["human_scores"])


def test_a_metric_without_a_per_query_value_is_refused(evaluated):
    data, spec, predictions, _ = evaluated["SciFact"]
    predicted = json.loads((predictions / data.task.prediction_file_name).read_text())
    with pytest.raises(ItemsUnavailable, match="no per-query value"):
        retrieval_group(data.task, "max_over_subqueries_map_at_1000", predicted, spec.split, spec.subset)
