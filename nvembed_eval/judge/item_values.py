"""Per-item data of one evaluated mteb task, made at run time with the functions mteb's evaluators use (mteb 2.26),
from the task's loaded gold data and mteb's saved predictions (`mteb.evaluate(prediction_folder=...)`, `{subset:
{split: ...}}`); classification and clustering: each experiment's score, from the TaskResult."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from nvembed_eval.errors import ItemsUnavailable, NVEmbedEvalError
from nvembed_eval.judge.bootstrap import Statistic
from nvembed_eval.judge.significance import Group, ItemSet, check_score
from nvembed_eval.results.scores import score_task_result
from nvembed_eval.tasks.revisions import hub_leaves

if TYPE_CHECKING:
    from mteb import AbsTask, TaskResult

    from nvembed_eval.tasks.data_source import TaskData
    from nvembed_eval.tasks.specs import TaskSpec

log = logging.getLogger(__name__)

# Similarity function prefix of a metric key -> mteb's prediction key, and whether a higher value means more similar
# (mteb's PairClassification multiplies distances by -1 for AP).
SIMILARITY_KEYS = {
    "cosine": ("cosine_scores", True),
    "dot": ("dot_scores", True),
    "similarity": ("similarity_scores", True),
    "manhattan": ("manhattan_distances", False),
    "euclidean": ("euclidean_distances", False),
}


def text_id(index: int, *texts: str) -> str:
    """A stable id of a pair or text: its row index and the first 12 hex digits of sha256 over its texts."""
    digest = hashlib.sha256("\x1f".join(texts).encode("utf-8")).hexdigest()[:12]
    return f"{index}:{digest}"


def split_rows(task: AbsTask, split: str, subset: str) -> Any:
    """The evaluated rows, chosen as mteb's `AbsTask.evaluate` chooses them."""
    return task.dataset[split] if subset not in task.dataset and subset == "default" else task.dataset[subset][split]


def prediction_split(predictions: dict[str, Any], split: str, subset: str, name: str) -> Any:
    try:
        return predictions[subset][split]
    except (KeyError, TypeError):
        raise ItemsUnavailable(f"mteb's prediction file of {name} has no {subset}/{split}") from None


def retrieval_group(task: AbsTask, metric: str, predictions: dict[str, Any], split: str, subset: str) -> Group:
    """Per-query values of `metric` (ndcg_at_k, map_at_k, recall_at_k, precision_at_k through pytrec_eval with
    mteb's measure names; mrr_at_k through mteb's own `mrr`), after mteb's own result filters."""
    import pytrec_eval

    name = task.metadata.name
    results = {q: dict(docs) for q, docs in prediction_split(predictions, split, subset, name).items()}
    qrels = split_rows(task, split, subset)["relevant_docs"]  # mteb already dropped queries without positives
    if getattr(task, "ignore_identical_ids", False):  # as RetrievalEvaluator.evaluate
        for qid, docs in results.items():
            docs.pop(qid, None)
    if getattr(task, "skip_first_result", False):  # as calculate_retrieval_scores
        results = {q: dict(sorted(d.items(), key=lambda x: x[1], reverse=True)[1:]) for q, d in results.items()}
    family, _, k = metric.rpartition("_at_")
    if family == "mrr" and k.isdigit():
        from mteb._evaluators.retrieval_metrics import mrr

        ids, values = list(results), mrr(qrels, results, [int(k)])[f"MRR@{k}"]
    else:
        measure = {"ndcg": "ndcg_cut", "map": "map_cut", "recall": "recall", "precision": "P"}.get(family)
        if measure is None or not k.isdigit():
            raise ItemsUnavailable(f"{metric} of {name} has no per-query value (mteb computes it over all queries)")
        scores = pytrec_eval.RelevanceEvaluator(qrels, {f"{measure}.{k}"}).evaluate(results)
        ids, values = list(scores), [scores[q][f"{measure}_{k}"] for q in scores]
    return Group(name, [str(q) for q in ids], {"values": np.asarray(values, dtype=float)})


def _similarity(metric: str, suffix: str, name: str) -> tuple[str, bool]:
    prefix = metric.removesuffix(suffix)
    if prefix not in SIMILARITY_KEYS:
        raise ItemsUnavailable(f"{metric} of {name} is not one similarity function's statistic")
    return SIMILARITY_KEYS[prefix]


def sts_group(task: AbsTask, metric: str, predictions: dict[str, Any], split: str, subset: str) -> Group:
    """(normalised gold score, predicted similarity) per pair, for `<function>_spearman`."""
    name = task.metadata.name
    key, _ = _similarity(metric, "_spearman", name)
    rows = split_rows(task, split, subset)
    first, second = task.column_names
    gold = [task._normalize(x) for x in rows["score"]]  # the task's own normalisation, as mteb scores it
    pred = prediction_split(predictions, split, subset, name)[key]
    ids = [text_id(i, a, b) for i, (a, b) in enumerate(zip(rows[first], rows[second], strict=True))]
    return Group(name, ids, {"gold": np.asarray(gold, dtype=float), "pred": np.asarray(pred, dtype=float)})


def pair_group(task: AbsTask, metric: str, predictions: dict[str, Any], split: str, subset: str) -> Group:
    """(label, predicted similarity) per pair, for `<function>_ap` (distances negated, as mteb does)."""
    from datasets import Dataset

    name = task.metadata.name
    key, higher_is_similar = _similarity(metric, "_ap", name)
    rows = split_rows(task, split, subset)
    if len(rows) == 1:  # mteb's v1 layout: one row holding every pair (AbsTaskPairClassification._evaluate_subset)
        rows = Dataset.from_dict(rows[0])
    labels = np.asarray(rows[task.label_column_name], dtype=np.int64)
    scores = np.asarray(prediction_split(predictions, split, subset, name)[key], dtype=float)
    texts = zip(rows[task.input1_column_name], rows[task.input2_column_name], strict=True)
    ids = [text_id(i, a, b) for i, (a, b) in enumerate(texts)]
    return Group(name, ids, {"labels": labels, "scores": scores if higher_is_similar else -scores})


def summarization_group(task: AbsTask, metric: str, predictions: dict[str, Any], split: str, subset: str) -> Group:
    """The evaluator's own value per text (its `_calculate_metrics` on that text alone; the task score is their mean).
    mteb drops texts whose human or predicted scores are all equal without saying which; a kept text is matched to its
    row through its human scores, in order. When mteb dropped a text for equal predicted scores the match is ambiguous,
    and no items are made."""
    name = task.metadata.name
    rows = split_rows(task, split, subset)
    kept = prediction_split(predictions, split, subset, name)
    low, high = task.min_score, task.max_score
    gold = [((np.array(x) - low) / (high - low)).tolist() for x in rows[task.relevancy_column_name]]  # as mteb does
    candidates = [i for i, g in enumerate(gold) if len(set(g)) > 1]  # texts with equal human scores are always dropped
    if len(kept["human_scores"]) != len(candidates):
        raise ItemsUnavailable(
            f"mteb dropped {len(candidates) - len(kept['human_scores'])} text(s) of {name} for equal predicted scores; "
            "which ones is ambiguous"
        )
    if any(gold[i] != list(h) for i, h in zip(candidates, kept["human_scores"], strict=True)):
        raise ItemsUnavailable(f"mteb's kept texts of {name} do not match the task's rows")
    keys = [k for k in kept if isinstance(kept[k], list)]
    per_text = [{k: [kept[k][j]] for k in keys} for j in range(len(candidates))]
    values = [float(task.evaluator._calculate_metrics(None, one)[metric]) for one in per_text]  # mteb's own formula
    texts = rows[task.text_column_name]
    ids = [text_id(i, texts[i]) for i in candidates]
    return Group(name, ids, {"values": np.asarray(values, dtype=float)})


def experiment_group(name: str, entry: dict[str, Any], metric: str) -> Group:
    """One value per mteb experiment: classification's `scores_per_experiment`, clustering's `v_measures`."""
    if "scores_per_experiment" in entry:
        values = [e.get(metric) for e in entry["scores_per_experiment"]]
        ids = [f"experiment {i}" for i in range(len(values))]
    elif metric == "v_measure" and "v_measures" in entry:
        measures = entry["v_measures"]
        if isinstance(measures, dict):  # fast clustering: per hierarchy level
            ids = [f"{level}/{i}" for level, vs in measures.items() for i in range(len(vs))]
            values = [v for vs in measures.values() for v in vs]
        else:
            ids, values = [f"set {i}" for i in range(len(measures))], list(measures)
    else:
        raise ItemsUnavailable(f"{name}'s result has no per-experiment {metric}")
    if any(not isinstance(v, int | float) or isinstance(v, bool) for v in values):
        raise ItemsUnavailable(f"{name}'s per-experiment {metric} has a missing value")
    return Group(name, ids, {"values": np.asarray(values, dtype=float)})


GROUP_MAKERS = {
    "Retrieval": (Statistic.mean, "query", retrieval_group),
    "Reranking": (Statistic.mean, "query", retrieval_group),
    "STS": (Statistic.spearman, "pair", sts_group),
    "PairClassification": (Statistic.ap, "pair", pair_group),
    "Summarization": (Statistic.mean, "text", summarization_group),
}


def build_items(data: TaskData, spec: TaskSpec, prediction_dir: Path, result: TaskResult) -> ItemSet:
    """The items of one evaluated task, from mteb's prediction files in `prediction_dir` and the loaded task data.
    Raises ItemsUnavailable when the metric has no per-item form, mteb's files lack the split, or the items do not give
    the result's score back (`SCORE_TOLERANCE`)."""
    kind, unit, make = GROUP_MAKERS.get(spec.type, (Statistic.experiments, "experiment", None))
    score = score_task_result(result, spec, Path(f"<{spec.name} result>")).value / 100
    if make is None:
        entry = next(e for e in result.scores[spec.split] if e.get("hf_subset") == spec.subset)
        groups: list[Group] = [experiment_group(spec.name, entry, spec.metric)]
    else:
        groups = []
        for leaf in hub_leaves(data.task):
            path = prediction_dir / leaf.prediction_file_name
            if not path.is_file():
                raise ItemsUnavailable(f"mteb wrote no predictions for {leaf.metadata.name}")
            predictions = json.loads(path.read_text(encoding="utf-8"))  # mteb wrote it in the run's scratch folder
            groups.append(make(leaf, spec.metric, predictions, leaf.eval_splits[0], leaf.hf_subsets[0]))
    items = ItemSet(spec.name, kind, unit, spec.metric, score, tuple(groups))
    check_score(items, score)
    return items


Writer = Callable[[str, bytes], dict[str, str]]


def make_items(
    data: TaskData, spec: TaskSpec, prediction_dir: Path, result: TaskResult, write: Writer
) -> dict[str, Any]:
    """Make the per-item data of a task the run is about to record (`data`: the task and its still-loaded data) and
    hand its bytes to `write` ((task name, bytes) -> {"path", "sha256"}: the run folder's `write_items`). Returns the
    record for the result's provenance (`items`): {"path", "sha256", "unit", "count"}, or {"unavailable": reason}.
    Per-item data is an addition to the score: when it cannot be made the run goes on, and the record says why (the
    gate then judges that task by tolerance, or refuses `--gate significant`). Raises ResultsError when the file cannot
    be written (full disk, read-only folder)."""
    try:
        items = build_items(data, spec, prediction_dir, result)
    except NVEmbedEvalError as exc:  # ItemsUnavailable, or a score the result cannot give (non-finite)
        log.warning("%s: no per-item data (%s); the gate judges it by tolerance", spec.name, exc)
        return {"unavailable": str(exc)}
    except Exception as exc:  # per-item data must never cost the run its score; the reason is recorded
        log.warning("%s: no per-item data (unexpected %s: %s)", spec.name, type(exc).__name__, exc)
        return {"unavailable": f"unexpected {type(exc).__name__}: {exc}"[:300]}
    body = (json.dumps(items.to_json(), allow_nan=False, separators=(",", ":")) + "\n").encode("utf-8")
    return {**write(spec.name, body), "unit": items.unit, "count": items.count}
