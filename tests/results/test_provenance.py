"""A stored result is reused only when everything that determines its value matches (docs/provenance.md): the
model's identity and knobs, the literal prefix on every side, the data's content or commit, the task spec's version,
split and subset, and the score-affecting package versions. Anything else is refused in one line, changing nothing.
"""

from __future__ import annotations

import copy
import functools
import gzip
import json
import re
import shutil
from pathlib import Path

import pytest
from clirun import DATA, invoke, load_run, main_scores

from nvembed_eval.errors import ResultsError
from nvembed_eval.results.provenance import SCORE_PINS, FieldDiff, summarize
from nvembed_eval.results.run_folder import RunFolder, RunPaths
from nvembed_eval.results.scores import PROVENANCE_KEY

TASK = "AskUbuntuDupQuestions"  # reranking; NV-Embed-v2 puts an instruction on its queries


def _write_jsonl(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wt", encoding="utf-8") as handle:
        handle.writelines(json.dumps(r) + "\n" for r in rows)


def _reranking_folder(root: Path) -> Path:
    """4 real SciFact claims x 6 candidates (their relevant abstracts + others), in the local reranking layout."""
    with gzip.open(DATA / "SciFact" / "corpus.jsonl.gz", "rt", encoding="utf-8") as handle:
        corpus = {d["_id"]: d for d in map(json.loads, handle)}
    with gzip.open(DATA / "SciFact" / "queries.jsonl.gz", "rt", encoding="utf-8") as handle:
        queries = {q["_id"]: q for q in map(json.loads, handle)}
    qrels: dict[str, list[str]] = {}
    for line in (DATA / "SciFact" / "qrels" / "test.tsv").read_text().splitlines()[1:]:
        qid, did, _ = line.split("\t")
        qrels.setdefault(qid, []).append(did)
    chosen = sorted(qrels)[:4]
    fillers = [d for d in corpus if all(d not in qrels[q] for q in chosen)][:24]
    folder = root / TASK
    candidates, docs = {}, set()
    for i, qid in enumerate(chosen):
        relevant = qrels[qid][:2]
        candidates[qid] = relevant + fillers[i * 6 : i * 6 + 6 - len(relevant)]
        docs.update(candidates[qid])
    _write_jsonl(folder / "corpus.jsonl.gz", [corpus[d] for d in sorted(docs)])
    _write_jsonl(folder / "queries.jsonl.gz", [queries[q] for q in chosen])
    lines = ["query-id\tcorpus-id\tscore"] + [f"{q}\t{d}\t1" for q in chosen for d in qrels[q][:2]]
    (folder / "qrels").mkdir()
    (folder / "qrels" / "test.tsv").write_text("\n".join(lines) + "\n")
    _write_jsonl(
        folder / "top_ranked" / "test.jsonl.gz", [{"query-id": q, "corpus-ids": candidates[q]} for q in chosen]
    )
    return root


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _args(data: Path, out: Path, *extra: str) -> list[str]:
    return ["model=nv_embed_tiny", f"tasks=[{TASK}]", f"data_dir={data}", f"output_dir={out}", *extra]


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    """One real run with NV-Embed-v2's instructions: (tmp, data root, run folder, score)."""
    tmp = tmp_path_factory.mktemp("provenance")
    data = _reranking_folder(tmp / "data")
    out = tmp / "run"
    result = invoke(_args(data, out, "instructions=nv_embed_v2"), tmp)
    assert result.returncode == 0, result.stderr[-3000:]
    return tmp, data, out, main_scores(out)[TASK]


def test_changed_instructions_are_refused_not_kept_and_the_folder_is_untouched(first_run):
    """The issue's reproduction: the second run used to log "result exists ... skipping", keep the first score and
    rewrite run.json to say instructions none."""
    tmp, data, out, with_instruction = first_run
    before = _snapshot(out)
    refused = invoke(_args(data, out, "instructions=none"), tmp)
    assert refused.returncode == 2
    assert refused.error_line.startswith(f"error: {out} holds results made with other settings ({TASK}: prefix.")
    assert "-> ''" in refused.error_line and f"overwrite=[{TASK}]" in refused.error_line
    assert "Traceback" not in refused.stderr
    assert _snapshot(out) == before  # run.json, .hydra/, results and log byte for byte

    fresh = tmp / "fresh-none"
    assert invoke(_args(data, fresh, "instructions=none"), tmp).returncode == 0
    without_instruction = main_scores(fresh)[TASK]
    assert without_instruction != pytest.approx(with_instruction)  # the instruction moves this score

    recomputed = invoke(_args(data, out, "instructions=none", f"overwrite=[{TASK}]"), tmp)
    assert recomputed.returncode == 0, recomputed.stderr[-2000:]
    assert main_scores(out)[TASK] == without_instruction
    assert load_run(out)["config"]["instructions"]["variant"] == "none"
    stored = json.loads((out / "results" / f"{TASK}.json").read_text())[PROVENANCE_KEY]
    assert set(stored["prefixes"].values()) == {""}


def test_an_unchanged_rerun_keeps_the_result(first_run, tmp_path):
    _, data, _, score = first_run
    out = tmp_path / "run"
    assert invoke(_args(data, out), tmp_path).returncode == 0
    result_file = out / "results" / f"{TASK}.json"
    written = result_file.read_bytes()
    again = invoke(_args(data, out), tmp_path)
    assert again.returncode == 0 and "resumed" in again.stdout
    assert result_file.read_bytes() == written and main_scores(out)[TASK] == score
    record = load_run(out)["tasks"][TASK]["provenance"]
    assert record == json.loads(written)[PROVENANCE_KEY]  # run.json holds the same record as the result file


def test_edited_local_data_is_refused(first_run, tmp_path):
    data = first_run[1]
    copy_root = tmp_path / "data"
    shutil.copytree(data, copy_root)
    out = tmp_path / "run"
    assert invoke(_args(copy_root, out), tmp_path).returncode == 0
    qrels = copy_root / TASK / "qrels" / "test.tsv"
    lines = qrels.read_text().splitlines()
    qrels.write_text("\n".join(lines[:-1]) + "\n")  # one judgement fewer
    refused = invoke(_args(copy_root, out), tmp_path)
    assert refused.returncode == 2 and "data.sha256" in refused.error_line


def test_result_without_provenance_is_refused_unless_trusted(first_run, tmp_path):
    _, data, _, score = first_run
    out = tmp_path / "run"
    assert invoke(_args(data, out), tmp_path).returncode == 0
    path = out / "results" / f"{TASK}.json"
    legacy = json.loads(path.read_text())
    del legacy[PROVENANCE_KEY]  # as plain mteb or an older nvembed-eval wrote it
    path.write_text(json.dumps(legacy))
    refused = invoke(_args(data, out), tmp_path)
    assert refused.returncode == 2
    assert "without a provenance record" in refused.error_line and "trust_existing=true" in refused.error_line
    kept = invoke(_args(data, out, "trust_existing=true"), tmp_path)
    assert kept.returncode == 0 and "resumed" in kept.stdout and main_scores(out)[TASK] == score
    assert PROVENANCE_KEY not in json.loads(path.read_text())  # kept as it is, not stamped with a guess
    record = json.loads((out / "run.json").read_text())["tasks"][TASK]  # nor does run.json claim its settings
    assert record["provenance"] is None and record["status"] == "kept" and "trust_existing" in record["note"]


def test_corrupt_result_names_the_file_and_the_one_task_fix(first_run, tmp_path):
    _, data, _, score = first_run
    out = tmp_path / "run"
    assert invoke(_args(data, out), tmp_path).returncode == 0
    path = out / "results" / f"{TASK}.json"
    path.write_bytes(path.read_bytes()[:100])  # truncated by a full disk or a bad copy
    refused = invoke(_args(data, out), tmp_path)
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert refused.error_line.startswith(f"error: unreadable result file {path}")
    assert f"overwrite=[{TASK}]" in refused.error_line
    fixed = invoke(_args(data, out, f"overwrite=[{TASK}]"), tmp_path)
    assert fixed.returncode == 0 and main_scores(out)[TASK] == score
    unknown = invoke(_args(data, out, "overwrite=[SciFact]"), tmp_path)
    assert unknown.returncode == 2 and "names tasks this run does not evaluate" in unknown.error_line


# ------------------------------------------------------------------ one test per field, on the real stored record


def _stored(first_run) -> tuple[RunFolder, dict]:
    out = first_run[2]
    folder = RunFolder(RunPaths(out))
    provenance = folder.stored_result(TASK).provenance
    assert provenance is not None
    return folder, provenance


FIELD_CHANGES = {
    "format": lambda p: p.update(format=p["format"] + 1),
    "task.version": lambda p: p["task"].update(version=p["task"]["version"] + 1),
    "task.split": lambda p: p["task"].update(split="dev"),
    "task.subset": lambda p: p["task"].update(subset="en"),
    "model.name": lambda p: p["model"].update(name="nvidia/NV-Embed-v2", identity_key="x"),
    "model.revision": lambda p: p["model"].update(revision="sha256:0000", identity_key="x"),
    "model.pooling": lambda p: (p["model"]["knobs"].update(pooling="mean"), p["model"].update(identity_key="x")),
    "prefix.query": lambda p: p["prefixes"].update(query="Instruct: other\nQuery: "),
    "prefix.document": lambda p: p["prefixes"].update(document="Instruct: x\nQuery: "),
    "prefix.none": lambda p: p["prefixes"].update(none="Instruct: x\nQuery: "),
    "data.sha256": lambda p: p["data"].update(sha256="0" * 64),
    "data.source": lambda p: p["data"].update(source="hub"),
    **{
        f"versions.{pkg}": functools.partial(lambda pkg, p: p["versions"].update({pkg: "0.0.1"}), pkg)
        for pkg in SCORE_PINS
    },
}


@pytest.mark.parametrize("field", sorted(FIELD_CHANGES))
def test_each_field_that_determines_a_result_is_compared(first_run, field):
    folder, stored = _stored(first_run)
    assert folder.reusable({TASK: stored}, overwrite=False, trust_existing=False) == {TASK: False}  # same: kept
    expected = copy.deepcopy(stored)
    FIELD_CHANGES[field](expected)
    with pytest.raises(ResultsError, match=rf"\({TASK}: [^|]*{re.escape(field)} "):
        folder.reusable({TASK: expected}, overwrite=False, trust_existing=False)
    assert folder.reusable({TASK: expected}, overwrite=True, trust_existing=False) == {}
    assert folder.reusable({TASK: expected}, overwrite=frozenset({TASK}), trust_existing=True) == {}


@pytest.mark.parametrize("info", ["path", "revision_source", "loaded_revision", "verified"])
def test_where_the_data_sat_does_not_matter(first_run, info):
    """Moving a data folder (or recording another reason for a commit) keeps a result whose content matches."""
    folder, stored = _stored(first_run)
    expected = copy.deepcopy(stored)
    expected["data"][info] = "/elsewhere"
    versions = expected["versions"]
    versions.update(torch="9.9", numpy="9.9")  # recorded, not compared: they move vectors only by rounding
    assert folder.reusable({TASK: expected}, overwrite=False, trust_existing=False) == {TASK: False}


def test_long_texts_that_differ_late_are_shown_around_their_difference():
    old = "Instruct: Retrieve semantically similar text.\nQuery: "
    new = "Instruct: Retrieve semantically similar text\nQuery: "
    (line,) = summarize([FieldDiff("prefix.query", old, new)])
    shown_old, shown_new = line.removeprefix("prefix.query ").split(" -> ")
    assert shown_old != shown_new and "text.\\n" in shown_old and "text\\n" in shown_new
    assert shown_old.count("'") == shown_new.count("'") == 2  # each cut quoted whole
