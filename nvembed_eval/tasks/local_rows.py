"""Low-level reading of a local task-data folder: the row schemas, finding `<stem>.jsonl[.gz]`, reading and
checking JSON Lines rows, and the expected-layout text that error messages quote (layout in docs/local_data.md)."""

from __future__ import annotations

import gzip
import json
import math
import os
import zlib
from pathlib import Path
from typing import Any

from nvembed_eval.errors import DataError
from nvembed_eval.io import check_regular_file, human_size, parse_json, parse_size

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
        raise DataError(f"{path}: cannot be read as UTF-8 JSON Lines{gz}: {e}") from None
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
