"""Where the 2024 leaderboard's reranking evaluator (mteb 1.x) and mteb 2.x define a task's score differently, counted
on the loaded task data before anything is encoded (docs/fidelity.md)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mteb import AbsTask

# Each kind of query on which the two evaluators disagree by definition, not by arithmetic. Sources: mteb 1.12
# RerankingEvaluator (drops samples without a positive or a negative, scores AP with scikit-learn over the candidates
# it holds) and mteb 2.26 AbsTaskRetrieval + pytrec_eval (scores every query with qrels, AP over all judged-relevant
# documents, ties ordered by document id, descending).
DIVERGENCES: dict[str, str] = {
    "no_negative_candidate": "every candidate is judged relevant: mteb 1 drops the query, mteb 2 scores it (AP 1)",
    "no_relevant_candidate": "no candidate is judged relevant: mteb 1 drops the query, mteb 2 scores it (AP 0)",
    "relevant_outside_candidates": (
        "a judged-relevant document is not among the candidates: mteb 2 counts it against recall, mteb 1 never sees it"
    ),
    "duplicate_candidate_texts": (
        "two candidates have the same text, hence the same score: the two versions break such ties differently"
    ),
}
EXAMPLES = 3  # query ids kept per kind, to find them in the data


def fidelity_record(task: AbsTask) -> dict[str, Any] | None:
    """The `fidelity` section of a result's provenance and run.json entry, counted on the loaded data before
    `mteb.evaluate` (which filters it): {"reranking": `reranking_divergences(task)`} for a reranking task, else None.
    The gate describes it (judge.gate.describe_divergences)."""
    divergences = reranking_divergences(task)
    return None if divergences is None else {"reranking": divergences}


def reranking_divergences(task: AbsTask) -> dict[str, Any] | None:
    """Count the queries of a loaded reranking task (narrowed to the evaluated splits and subsets) on which mteb 1.x
    and 2.x scores differ by definition. Counted: the queries mteb 2.x evaluates (in the split's queries, with qrels).
    Relevant: qrels score > 0 (trec_eval's rule); a candidate without a qrels line is a negative. Texts are compared as
    mteb 2.x encodes a document: title and text joined by a space, stripped (mteb/_create_dataloaders.py). None when
    the task has no candidate lists (`top_ranked`: not reranking); else {"queries": n, <kind>: count per kind of
    `DIVERGENCES`, "examples": {kind: [up to EXAMPLES query ids]}} summed over subsets and splits (a query may count
    under several kinds)."""
    dataset = getattr(task, "dataset", None)
    splits = []  # the evaluated split dicts of a retrieval-style task ({subset: {split: RetrievalSplitData}})
    for subset in task.hf_subsets if isinstance(dataset, Mapping) else ():
        for split in task.eval_splits:
            data = (dataset.get(subset) or {}).get(split) if isinstance(dataset.get(subset), Mapping) else None
            if isinstance(data, Mapping) and "top_ranked" in data and "relevant_docs" in data:
                splits.append(data)
    if not splits or any(split.get("top_ranked") is None for split in splits):
        return None
    counts = dict.fromkeys(DIVERGENCES, 0)
    examples: dict[str, list[str]] = {}
    total = 0
    for split in splits:
        relevant_docs: Mapping[str, Mapping[str, Any]] = split["relevant_docs"]
        top_ranked: Mapping[str, list[str]] = split["top_ranked"]
        evaluated = [str(q) for q in split["queries"]["id"] if relevant_docs.get(str(q))]
        wanted = {str(d) for q in evaluated for d in top_ranked.get(q, ())}
        corpus = split["corpus"]
        ids, bodies = [str(i) for i in corpus["id"]], corpus["text"]
        titles = corpus["title"] if "title" in corpus.column_names else [""] * len(ids)
        texts = {  # candidate id -> the text mteb 2.x encodes for it
            i: f"{title} {body}".strip() if title else str(body).strip()  # mteb strips both forms
            for i, title, body in zip(ids, titles, bodies, strict=True)
            if i in wanted
        }
        for qid in evaluated:
            total += 1
            candidates = [str(d) for d in top_ranked.get(qid, ())]
            relevant = {str(d) for d, score in relevant_docs[qid].items() if score > 0}
            candidate_texts = [texts.get(d, f"\0{d}") for d in candidates]  # an id not in the corpus ties with nothing
            found = {
                "no_negative_candidate": bool(candidates) and all(d in relevant for d in candidates),
                "no_relevant_candidate": not relevant.intersection(candidates),
                "relevant_outside_candidates": bool(relevant.difference(candidates)),
                "duplicate_candidate_texts": len(set(candidate_texts)) < len(candidate_texts),
            }
            for kind in [k for k, hit in found.items() if hit]:
                counts[kind] += 1
                if len(examples.setdefault(kind, [])) < EXAMPLES:
                    examples[kind].append(qid)
    return {"queries": total, **counts, "examples": examples}
