"""Local retrieval and reranking data: the BEIR layout (corpus, queries, qrels, top_ranked) read into the split data
mteb's RetrievalDatasetLoader builds."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from nvembed_eval.errors import DataError
from nvembed_eval.io import read_text
from nvembed_eval.tasks.local_rows import Rows, _data_file, _layout, _rows, max_data_bytes

_QRELS_HEADER = ["query-id", "corpus-id", "score"]


def _read_beir(folder: Path, splits: list[str], kind: str) -> dict[str, dict[str, Any]]:
    """{split: RetrievalSplitData} as mteb's RetrievalDatasetLoader builds it: corpus (id, title, text), the
    queries the split's qrels name (id, text; file order), relevant_docs {qid: {docid: int}}, top_ranked or None."""
    from datasets import Dataset

    layout = _layout(kind, folder, splits)
    paths = {stem: _data_file(folder, stem) for stem in ("corpus", "queries")}
    for stem, path in paths.items():  # every file must exist before the (possibly large) corpus is read
        if path is None:
            raise DataError(f"missing {stem} file {folder / stem}.jsonl.gz: expected {layout}")
    for s in splits:
        if not (folder / "qrels" / f"{s}.tsv").is_file():
            raise DataError(f"missing split file {folder / 'qrels' / s}.tsv: expected {layout}")
        if kind == "Reranking" and _data_file(folder / "top_ranked", s) is None:
            raise DataError(f"missing split file {folder / 'top_ranked' / s}.jsonl.gz: expected {layout}")
    corpus_path, queries_path = paths["corpus"], paths["queries"]

    docs = _unique_ids(corpus_path, _rows(corpus_path, "corpus"))
    titles, texts = [d.get("title", "") for d in docs.values()], [d["text"] for d in docs.values()]
    corpus = Dataset.from_dict({"id": list(docs), "title": titles, "text": texts})
    queries = _unique_ids(queries_path, _rows(queries_path, "queries"))
    out = {}
    for s in splits:
        qrels = _read_qrels(folder / "qrels" / f"{s}.tsv", docs, queries, corpus_path, queries_path)
        top_path = _data_file(folder / "top_ranked", s)
        top_ranked = _read_top_ranked(top_path, docs, qrels, corpus_path) if top_path else None
        kept = [q for q in queries if q in qrels]
        split_queries = Dataset.from_dict({"id": kept, "text": [queries[q]["text"] for q in kept]})
        out[s] = {"corpus": corpus, "queries": split_queries, "relevant_docs": qrels, "top_ranked": top_ranked}
    return out


def _unique_ids(path: Path, rows: Rows) -> dict[str, dict[str, Any]]:
    """Rows by `_id`, in file order."""
    by_id: dict[str, dict[str, Any]] = {}
    line_of: dict[str, int] = {}
    for lineno, row in rows:
        if row["_id"] in by_id:
            raise DataError(f"{path}:{lineno}: duplicate _id {row['_id']!r} (first on line {line_of[row['_id']]})")
        by_id[row["_id"]], line_of[row["_id"]] = row, lineno
    return by_id


def _read_qrels(path: Path, docs: dict, queries: dict, corpus_path: Path, queries_path: Path) -> dict[str, dict]:
    try:
        lines = read_text(path, max_data_bytes(), error=DataError).splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"{path}: cannot be read as UTF-8 text: {e}") from None
    qrels: dict[str, dict[str, int]] = {}
    for lineno, line in enumerate(lines, 1):
        fields = line.split("\t")
        if lineno == 1 and fields == _QRELS_HEADER:
            continue
        where = f"{path}:{lineno}"
        if len(fields) != 3:
            raise DataError(f"{where}: expected 3 tab-separated fields query-id, corpus-id, score; got {len(fields)}")
        qid, did, score = fields
        try:
            value = int(score)
        except ValueError:
            raise DataError(f"{where}: score {score!r} is not an integer (query-id, corpus-id, score)") from None
        if qid not in queries:
            raise DataError(f"{where}: query-id {qid!r} is not in {queries_path}; add the query or drop the line")
        if did not in docs:
            raise DataError(f"{where}: corpus-id {did!r} is not in {corpus_path}; add the document or drop the line")
        qrels.setdefault(qid, {})[did] = value  # a repeated pair keeps its last score, as mteb's loader does
    if not qrels:
        raise DataError(f"{path}: the split is empty (no relevance judgements); add query-id/corpus-id/score lines")
    return qrels


def _read_top_ranked(path: Path, docs: dict, qrels: dict, corpus_path: Path) -> dict[str, list[str]]:
    top_ranked: dict[str, list[str]] = {}
    for lineno, row in _rows(path, "top_ranked"):
        qid, where = row["query-id"], f"{path}:{lineno}"
        if qid not in qrels:
            raise DataError(f"{where}: query-id {qid!r} has no qrels in this split; drop the line or add qrels")
        if qid in top_ranked:
            raise DataError(f"{where}: duplicate query-id {qid!r}; give one line per query")
        unknown = next((d for d in row["corpus-ids"] if d not in docs), None)
        if unknown is not None:
            raise DataError(f"{where}: corpus-id {unknown!r} is not in {corpus_path}")
        top_ranked[qid] = row["corpus-ids"]
    lacking = next((q for q in qrels if q not in top_ranked), None)
    if lacking is not None:
        raise DataError(f"{path}: query-id {lacking!r} has qrels but no candidate list; add a line for it")
    return top_ranked
