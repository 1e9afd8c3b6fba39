"""Local task data: read `<data_dir>/<TaskName>/` (layout in docs/local_data.md) into mteb's own registered task, as its
own hub `load_data` and `dataset_transform` would leave it: one file per split, or the BEIR layout (corpus, queries,
qrels, top_ranked) read into the split data mteb's RetrievalDatasetLoader builds. The row schemas, reading and checking
JSON Lines rows, and the expected-layout text that error messages quote are here too."""

from __future__ import annotations

import functools
import gzip
import json
import math
import os
import zlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nvembed_eval.errors import ConfigError, DataError, first_line
from nvembed_eval.io import check_regular_file, human_size, parse_json, parse_size, read_text

if TYPE_CHECKING:
    from mteb.abstasks import AbsTask


_DOC = "see docs/local_data.md"
MAX_DATA_ENV, MAX_DATA_DEFAULT = "NVEMBED_EVAL_MAX_DATA_BYTES", "4GiB"
_BEIR = ("Retrieval", "Reranking")

Rows = list[tuple[int, dict[str, Any]]]  # (1-based line number, checked row)

# Row schema per file kind: key -> (check, required). Keys are the files' keys, not mteb's column names.
_SCHEMAS: dict[str, dict[str, tuple[str, bool]]] = {
    "corpus": {"_id": ("id", True), "title": ("str", False), "text": ("str", True)},
    "queries": {"_id": ("id", True), "text": ("str", True)},
    "top_ranked": {"query-id": ("id", True), "corpus-ids": ("id_list", True)},
    "STS": {"sentence1": ("str", True), "sentence2": ("str", True), "score": ("num", True)},
    "Classification": {"text": ("str", True), "label": ("label", True), "label_text": ("str", False)},
    "PairClassification": {"sentence1": ("str", True), "sentence2": ("str", True), "label": ("binary", True)},
    "Clustering": {"sentences": ("str_list", True), "labels": ("label_list", True)},
    "Summarization": {
        "text": ("str", True),
        "human_summaries": ("str_list", True),
        "machine_summaries": ("str_list", True),
        "relevance": ("num_list", True),
    },
}


def load_local_task_data(
    task: AbsTask, data_dir: Path | str, *, split: str | None = None, subset: str | None = None
) -> None:
    """Fill an mteb task object (`mteb.get_task(name)`) from `<data_dir>/<task name>/`, as its own `load_data` would
    from the hub; an aggregate (CQADupstackRetrieval) loads each of its subtasks. Every file is read and checked
    before the task is changed, so a bad folder fails before any encoding and leaves the task as it was. `split` /
    `subset` (an HF subset of a multilingual task, e.g. "en-en"): load and evaluate only that one (the task's
    eval splits / `hf_subsets` are narrowed to it); None: all eval splits / the task's current `hf_subsets`. Raises
    `DataError` (one line naming the file, the 1-based line and the fix) when the task folder, a split file or a row is
    missing or malformed, `ConfigError` when `split` or `subset` is not one of the task's."""
    from mteb.abstasks import AbsTaskClassification
    from mteb.abstasks.aggregated_task import AbsTaskAggregate

    if isinstance(task, AbsTaskAggregate):
        for subtask in task.metadata.tasks:
            load_local_task_data(subtask, data_dir, split=split, subset=subset)
        return
    data_dir, meta = Path(data_dir), task.metadata
    name, multilingual, kind = meta.name, meta.is_multilingual, _kind(task)
    if split is not None and split not in meta.eval_splits:
        raise ConfigError(f"split={split!r} is not an eval split of {name}; choose one of {meta.eval_splits}")
    splits = list(task.eval_splits) if split is None else [split]
    if not multilingual and subset not in (None, "default"):
        raise ConfigError(f"subset={subset!r} given for monolingual task {name}; use 'default'")
    if multilingual and subset is not None and subset not in meta.hf_subsets:
        raise ConfigError(f"subset={subset!r} is not an HF subset of {name}; choose one of {meta.hf_subsets}")
    subsets = ["default"] if not multilingual else [subset] if subset is not None else list(task.hf_subsets)
    required = splits
    if isinstance(task, AbsTaskClassification) and not task.is_cross_validation and task.train_split not in splits:
        required = [task.train_split, *splits]  # the classifier is fit on the train split
    root = data_dir / name
    if not root.is_dir():
        where = root / "<subset>" if multilingual else root
        raise DataError(f"data_dir={data_dir} has no folder for task {name}: expected {_layout(kind, where, splits)}")

    dataset: dict[str, Any] = {}
    for hf_subset in subsets:
        folder = root / hf_subset if multilingual else root
        if not folder.is_dir():
            raise DataError(f"missing subset folder for {name}: expected {_layout(kind, folder, splits)}")
        read = _read_beir(folder, splits, kind) if kind in _BEIR else _read_split_files(task, kind, folder, required)
        dataset[hf_subset] = read
    if not multilingual and kind not in _BEIR:
        dataset = dataset["default"]  # AbsTask.load_data keeps monolingual data as {split: Dataset}

    saved = (task.dataset, task._eval_splits, task.hf_subsets)
    task.dataset = dataset
    if split is not None:
        task.filter_eval_splits([split])
    if subset is not None:
        task.hf_subsets = [subset]
    try:
        task.dataset_transform()
    except (KeyError, ValueError, TypeError, IndexError) as e:
        task.dataset, task._eval_splits, task.hf_subsets = saved
        raise DataError(
            f"mteb's dataset_transform of {name} failed on {root} ({type(e).__name__}: {e}); "
            f"check the splits and keys against {_layout(kind, root, splits)}"
        ) from e
    task.data_loaded = True


def _kind(task: AbsTask) -> str:
    """The local layout a task reads, named by mteb task type; chosen by its abstask class."""
    from mteb import abstasks as a

    meta = task.metadata

    def columns_are_names(*attrs: str) -> bool:  # tasks whose inputs span several modality columns are not text
        return all(isinstance(getattr(task, attr), str) for attr in attrs)

    pair = ("input1_column_name", "input2_column_name")
    by_class = (  # checked in order: subclasses first
        (a.AbsTaskMultilabelClassification, lambda: None),
        (a.AbsTaskRegression, lambda: None),
        (a.AbsTaskRetrieval, lambda: meta.type if meta.type in _BEIR else None),
        (a.AbsTaskSTS, lambda: "STS" if all(isinstance(c, str) for c in task.column_names) else None),
        (a.AbsTaskClassification, lambda: "Classification" if columns_are_names("input_column_name") else None),
        (a.AbsTaskPairClassification, lambda: "PairClassification" if columns_are_names(*pair) else None),
        (a.AbsTaskClusteringLegacy, lambda: "Clustering"),
        (a.AbsTaskClustering, lambda: "Clustering" if columns_are_names("input_column_name") else None),
        (a.AbsTaskSummarization, lambda: "Summarization"),
    )
    kind = next((pick() for cls, pick in by_class if isinstance(task, cls)), None)
    if kind is None or meta.modalities != ["text"]:
        abstask = next(k.__name__ for k in type(task).__mro__ if k.__module__.startswith("mteb.abstasks"))
        raise DataError(
            f"task {meta.name} ({meta.type}, {abstask}, modalities {meta.modalities}) has no local data layout; "
            f"supported: text Retrieval, Reranking, STS, Classification, PairClassification, Clustering, "
            f"Summarization ({_DOC}); leave data_dir unset to load it from the Hugging Face hub"
        )
    return kind


class _RowError(Exception):
    """A row that is well-formed on its own but does not fit its file: (line number, problem)."""


def _read_split_files(task: AbsTask, kind: str, folder: Path, required: list[str]) -> Any:
    """{split: Dataset} for every `<split>.jsonl[.gz]` in the folder, as `load_dataset` returns every split."""
    from datasets import Dataset

    missing = next((s for s in required if _data_file(folder, s) is None), None)
    if missing is not None:
        raise DataError(f"missing split file {folder / missing}.jsonl.gz: expected {_layout(kind, folder, required)}")
    labels_path, labels = folder / "labels.json", None
    if kind == "Classification" and labels_path.is_file():
        try:
            labels = parse_json(read_text(labels_path, error=DataError))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            labels = f"unreadable ({e})"
        if not isinstance(labels, dict) or not labels or not all(isinstance(v, str) for v in labels.values()):
            raise DataError(f'{labels_path}: must be a JSON object mapping label ids to names, e.g. {{"0": "sports"}}')
    stems = sorted({p.name.removesuffix(".gz").removesuffix(".jsonl") for p in folder.glob("*.jsonl*")})
    splits, label_type = {}, None
    for stem in stems:
        path = _data_file(folder, stem)
        if path is None:  # e.g. notes.jsonl.bak
            continue
        try:
            columns = _columns(task, kind, _rows(path, kind), labels)
        except _RowError as e:
            raise DataError(f"{path}:{e.args[0]}: {e.args[1]} ({_DOC})") from None
        if kind == "Classification":  # the classifier learns on one split's labels and is scored on another's
            here = type(columns[task.label_column_name][0]).__name__
            first_split, first_type = label_type = label_type or (stem, here)
            if here != first_type:
                raise DataError(
                    f"{path}: its labels are {here} values but {first_split}'s are {first_type} values; give "
                    f"every split the same kind of label ({_DOC})"
                )
        try:
            splits[stem] = Dataset.from_dict(columns)
        except (ValueError, TypeError) as e:  # pyarrow: a key holds values of different types across rows
            raise DataError(f"{path}: values of one key have mixed types across rows ({e}); {_DOC}") from None
    return _local_dataset_dict()(splits)


def _columns(task: Any, kind: str, rows: Rows, labels: dict[str, str] | None) -> dict[str, list]:
    """The rows as columns, under the names the task's evaluator reads."""
    from mteb.abstasks import AbsTask, AbsTaskClustering

    def col(key: str) -> list[Any]:  # one key of every row
        return [row[key] for _, row in rows]

    if kind == "STS":
        return {task.column_names[0]: col("sentence1"), task.column_names[1]: col("sentence2"), "score": col("score")}
    if kind == "PairClassification":
        return {
            task.input1_column_name: col("sentence1"),
            task.input2_column_name: col("sentence2"),
            task.label_column_name: col("label"),
        }
    if kind == "Classification":
        first = type(rows[0][1]["label"])
        for lineno, row in rows:
            label = row["label"]
            if type(label) is not first:
                article = "an" if first.__name__[0] in "aeiou" else "a"
                raise _RowError(lineno, f"label {label!r} is not {article} {first.__name__} like the first row's")
            if labels is not None and isinstance(label, int):
                if str(label) not in labels:
                    raise _RowError(lineno, f"label {label} is not a key of labels.json")
                if row.get("label_text", labels[str(label)]) != labels[str(label)]:
                    message = f"label_text {row['label_text']!r} != labels.json[{label}] {labels[str(label)]!r}"
                    raise _RowError(lineno, message)
        columns = {task.input_column_name: col("text"), task.label_column_name: col("label")}
        return columns | ({"label_text": col("label_text")} if all("label_text" in r for _, r in rows) else {})
    if kind == "Clustering":
        for lineno, row in rows:
            if len(row["sentences"]) != len(row["labels"]):
                raise _RowError(lineno, f"{len(row['sentences'])} sentences but {len(row['labels'])} labels")
        sentences, set_labels = col("sentences"), col("labels")
        # A per-text clustering task (AbsTaskClustering) whose own transform does not build its table from the sets.
        transform_owner = next(k for k in type(task).__mro__ if "dataset_transform" in vars(k))
        if isinstance(task, AbsTaskClustering) and transform_owner is AbsTask:
            sentences, set_labels = [x for s in sentences for x in s], [x for s in set_labels for x in s]
        return {task.input_column_name: sentences, task.label_column_name: set_labels}
    for lineno, row in rows:  # Summarization
        n, m = len(row["machine_summaries"]), len(row["relevance"])
        if n != m:
            raise _RowError(lineno, f"{n} machine_summaries but {m} relevance scores; give one score per summary")
    return {
        task.text_column_name: col("text"),
        task.human_summaries_column_name: col("human_summaries"),
        task.machine_summaries_column_name: col("machine_summaries"),
        task.relevancy_column_name: col("relevance"),
    }


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
        raise DataError(f"{path}: cannot be read as UTF-8 text ({e}); re-create the file ({_DOC})") from None
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


@functools.cache
def _local_dataset_dict() -> type:
    """The DatasetDict subclass local splits are built as (defined on first use: `datasets` is a heavy import)."""
    from datasets import DatasetDict

    class LocalDatasetDict(DatasetDict):
        """Renames skip a column the local files already store under its mteb name: a task transform that renames its
        hub copy's columns (SprintDuplicateQuestions: sent1 -> sentence1) finds them already renamed, and its other
        steps (subsampling, filtering) run as they would on the hub copy."""

        def _done(self, old: str, new: str) -> bool:
            return all(old not in ds.column_names and new in ds.column_names for ds in self.values())

        def rename_column(self, original_column_name: str, new_column_name: str) -> DatasetDict:
            if self._done(original_column_name, new_column_name):
                return self
            return LocalDatasetDict(super().rename_column(original_column_name, new_column_name))

        def rename_columns(self, column_mapping: dict[str, str]) -> DatasetDict:
            todo = {old: new for old, new in column_mapping.items() if not self._done(old, new)}
            return LocalDatasetDict(super().rename_columns(todo)) if todo else self

    return LocalDatasetDict


def _layout(kind: str, folder: Path, splits: list[str]) -> str:
    """The files a task folder must hold, for error messages."""
    if kind in _BEIR:
        files = ["corpus.jsonl.gz", "queries.jsonl.gz", *(f"qrels/{s}.tsv" for s in splits)]
        files += [f"top_ranked/{s}.jsonl.gz" for s in splits] if kind == "Reranking" else []
        extra = " + top_ranked" if kind == "Reranking" else ""
        return f"{folder}/{{{','.join(files)}}} (BEIR layout{extra}, {_DOC})"
    names = ",".join(f"{s}.jsonl.gz" for s in splits)
    labels = " + optional labels.json" if kind == "Classification" else ""
    return f"{folder}/{{{names}}}{labels} ({kind} rows {_schema(kind)}, {_DOC})"


def _schema(kind: str) -> str:
    return "{" + ", ".join(k if required else k + "?" for k, (_, required) in _SCHEMAS[kind].items()) + "}"


def _data_file(folder: Path, stem: str) -> Path | None:
    """`<stem>.jsonl.gz` or `<stem>.jsonl`, whichever exists."""
    gz, plain = folder / f"{stem}.jsonl.gz", folder / f"{stem}.jsonl"
    if gz.is_file() and plain.is_file():
        raise DataError(f"both {gz} and {plain} exist; keep only one of them")
    if not_file := next((p for p in (gz, plain) if p.exists() and not p.is_file()), None):
        raise DataError(f"{not_file} is not a regular file; put the split's rows in that file ({_DOC})")
    return gz if gz.is_file() else plain if plain.is_file() else None


def max_data_bytes() -> int:
    """The most text one data file may hold once decompressed: `$NVEMBED_EVAL_MAX_DATA_BYTES` (a size, e.g. 16GiB),
    default 4 GiB (MSMARCO's corpus, the largest of MTEB(eng, v1), is 3.2 GB). A gzip bomb then stops at the bound
    with its name, not in a MemoryError."""
    return parse_size(os.environ.get(MAX_DATA_ENV) or MAX_DATA_DEFAULT, MAX_DATA_ENV)


def _rows(path: Path, kind: str) -> Rows:
    """Every line of a JSON Lines file, checked against the kind's schema; ids become strings as mteb casts them."""
    rows, limit, read = [], max_data_bytes(), 0
    check_regular_file(path, error=DataError)
    try:
        with gzip.open(path, "rt", encoding="utf-8") if path.suffix == ".gz" else path.open(encoding="utf-8") as f:
            for lineno, line in enumerate(f, 1):
                read += len(line)
                if read > limit:
                    raise DataError(
                        f"{path}: more than {human_size(limit)} of text once decompressed, the bound per data file; "
                        f"check the file, or raise the bound: {MAX_DATA_ENV}=16GiB"
                    )
                rows.append((lineno, _check_row(f"{path}:{lineno}", line, kind)))
    except (OSError, EOFError, UnicodeDecodeError, zlib.error) as e:
        gz = " (gzip)" if path.suffix == ".gz" else ""
        raise DataError(
            f"{path}: cannot be read as UTF-8 JSON Lines{gz} ({first_line(e)}); re-create the file ({_DOC})"
        ) from None
    if not rows:
        raise DataError(f"{path}: the file is empty (no rows); add rows or remove it ({_DOC})")
    return rows


def _check_row(where: str, line: str, kind: str) -> dict[str, Any]:
    if not line.strip():
        raise DataError(f"{where}: empty line; JSON Lines needs one JSON object per line ({_DOC})")
    try:
        row = parse_json(line)
    except json.JSONDecodeError as e:
        raise DataError(f"{where}: not valid JSON ({e.msg}, column {e.colno}); rows are {_schema(kind)}") from None
    if not isinstance(row, dict):
        raise DataError(f"{where}: expected a JSON object {_schema(kind)}, got {type(row).__name__}")
    checked = {}
    for key, (check, required) in _SCHEMAS[kind].items():
        if key not in row:
            if required:
                raise DataError(f"{where}: missing key {key!r}; {kind} rows are {_schema(kind)} ({_DOC})")
            continue
        value, expected = _check_value(check, row[key])
        if expected:
            got = json.dumps(row[key])
            got = got if len(got) <= 60 else got[:57] + "..."
            raise DataError(f"{where}: key {key!r} must be {expected}, got {got}; {kind} rows are {_schema(kind)}")
        checked[key] = value
    return checked


def _check_value(check: str, v: Any) -> tuple[Any, str | None]:
    """(the value as stored, None) when `v` passes `check`, else (v, what it must be)."""

    def is_num(x: Any) -> bool:
        return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)

    def is_label(x: Any) -> bool:
        return isinstance(x, str) or (isinstance(x, int) and not isinstance(x, bool))

    def as_id(x: Any) -> str | None:
        return x if isinstance(x, str) and x else str(x) if type(x) is int else None

    is_list = isinstance(v, list) and len(v) > 0
    if check == "str":
        return v, None if isinstance(v, str) else "a string"
    if check == "num":
        return (float(v), None) if is_num(v) else (v, "a finite number")
    if check == "label":
        return v, None if is_label(v) else "an integer or string label"
    if check == "binary":
        return v, None if type(v) is int and v in (0, 1) else "the integer 0 or 1"
    if check == "id":
        return (as_id(v), None) if as_id(v) is not None else (v, "a non-empty string id")
    if check == "id_list":
        ok = is_list and all(as_id(x) is not None for x in v)
        return ([as_id(x) for x in v], None) if ok else (v, "a non-empty list of string ids")
    if check == "str_list":
        return v, None if is_list and all(isinstance(x, str) for x in v) else "a non-empty list of strings"
    if check == "label_list":
        return v, None if is_list and all(is_label(x) for x in v) else "a non-empty list of integer or string labels"
    ok = is_list and all(is_num(x) for x in v)  # num_list
    return ([float(x) for x in v], None) if ok else (v, "a non-empty list of finite numbers")
