"""Bad input through the real CLI: one-line error naming the problem, non-zero exit, nothing half-written, earlier
tasks' results kept."""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path

import pytest
from clirun import invoke

from nvembed_eval.config import check_torch
from nvembed_eval.errors import ConfigError


def _write_jsonl_gz(path: Path, rows: list, raw_lines: dict[int, str] | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps(r) for r in rows]
    for index, raw in (raw_lines or {}).items():
        lines[index] = raw
    with gzip.open(path, "wt", encoding="utf-8") as handle:
        handle.write("".join(line + "\n" for line in lines))


STS_ROWS = [
    {
        "sentence1": f"A man is playing instrument number {i}.",
        "sentence2": f"Someone plays instrument {i}.",
        "score": float(i % 6),
    }
    for i in range(40)
]


def _sts(data: Path, task: str, rows=STS_ROWS, raw_lines=None) -> None:
    _write_jsonl_gz(data / task / "test.jsonl.gz", rows, raw_lines)


def _assert_clean_failure(result, run_dir: Path, *fragments: str) -> None:
    assert result.returncode != 0
    line = result.error_line
    assert line.startswith("error: "), result.stderr[-2000:]
    for fragment in fragments:
        assert fragment in line, line
    leftovers = [p for p in run_dir.rglob("*") if p.name.endswith((".tmp", ".partial"))] if run_dir.exists() else []
    assert leftovers == []


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["tasks=[SciFat]"], ["SciFat", "SciFact"]),
        (["model=minilmm"], ["minilmm", "minilm"]),
        (["model.poolin=mean"], ["model.poolin", "max_seq_length"]),
        (["benchmark=mteb_eng"], ["mteb_eng", "mteb_eng_v1"]),
        (["dataset_revision=latest"], ["dataset_revision=latest", "card"]),
        (["model=nv_embed_tiny", "model.pooling=max"], ["model.pooling", "latent", "mean", "last_token"]),
        (["instructions=nv_embed_v3"], ["nv_embed_v3", "nv_embed_v2", "mteb_default"]),
    ],
)
def test_config_mistakes_fail_in_one_line(tmp_path, args, fragments):
    run_dir = tmp_path / "run"
    result = invoke([*args, f"output_dir={run_dir}"], tmp_path)
    _assert_clean_failure(result, run_dir, *fragments)
    assert not (run_dir / "results").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [  # found by an adversarial try: each ran before, on something the user did not mean
        (["tasks=[]"], "<tasks=[]> names no task; name some, e.g. tasks=[SciFact], or leave tasks out"),
        (["output_dir="], "<output_dir=> is empty; give a folder, or leave output_dir out for the default"),
        (["-m", "hydra.sweep.dir="], "<hydra.sweep.dir=> is empty; give a folder, or leave hydra.sweep.dir out"),
        (["batch_size=99999999999999999999999"], "<batch_size=99999999999999999999999> is more than 2147483647"),
        (["--config-dir", "no-such-folder"], "the config folder no-such-folder (--config-dir, hydra.searchpath) is"),
        (["--config-dir", ""], "<--config-dir > is empty; give the folder of your own configs"),
    ],
)
def test_input_that_would_run_something_else_is_refused(tmp_path, args, message):
    before = sorted(tmp_path.rglob("*"))
    result = invoke(["model=minilm", "benchmark=smoke", *args], tmp_path)
    assert result.returncode == 2 and result.error_line.startswith(f"error: {message}"), result.stderr[-1500:]
    assert sorted(tmp_path.rglob("*")) == before  # nothing written, in the current folder least of all


@pytest.mark.parametrize("version", ["2.4.1", "2.5.1+cu121", "2.6.0a0+ecf3bae40a", "not-a-version"])
def test_torch_older_than_transformers_accepts_is_refused(version):
    with pytest.raises(
        ConfigError, match=rf"^torch {re.escape(version)} is too old: transformers 5 needs torch >= 2\.6"
    ):
        check_torch(version)


@pytest.mark.parametrize("version", ["2.6.0", "2.11.0+cu130", "2.13.0+cpu", None])  # None: the torch installed here
def test_torch_at_or_above_the_floor_passes(version):
    check_torch(version)


def test_invalid_hydra_override_is_rejected(tmp_path):
    result = invoke(["tasks=[STSBenchmark", f"output_dir={tmp_path / 'run'}"], tmp_path)
    assert result.returncode != 0
    assert "no viable alternative at input '[STSBenchmark'" in result.stderr  # Hydra's own grammar error


def test_data_dir_without_task_folder_names_expected_path(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    run_dir = tmp_path / "run"
    result = invoke(["tasks=[SciFact]", f"data_dir={data}", f"output_dir={run_dir}"], tmp_path)
    _assert_clean_failure(result, run_dir, str(data / "SciFact"), "docs/local_data.md")
    assert not (run_dir / "results").exists()


def test_malformed_row_names_file_and_line_and_keeps_earlier_results(tmp_path):
    data = tmp_path / "data"
    _sts(data, "STSBenchmark")
    _sts(data, "SICK-R", raw_lines={2: '{"sentence1": "broken", "sentence2": '})
    run_dir = tmp_path / "run"
    result = invoke(["tasks=[STSBenchmark,SICK-R]", f"data_dir={data}", f"output_dir={run_dir}"], tmp_path)
    _assert_clean_failure(result, run_dir, f"{data / 'SICK-R' / 'test.jsonl.gz'}:3")
    assert sorted(p.name for p in (run_dir / "results").iterdir()) == ["STSBenchmark.json"]


def test_empty_split_is_an_error(tmp_path):
    data = tmp_path / "data"
    _sts(data, "STSBenchmark", rows=[])
    run_dir = tmp_path / "run"
    result = invoke(["tasks=[STSBenchmark]", f"data_dir={data}", f"output_dir={run_dir}"], tmp_path)
    _assert_clean_failure(result, run_dir, str(data / "STSBenchmark" / "test.jsonl.gz"), "empty")
    assert not list((run_dir / "results").glob("*.json")) if (run_dir / "results").exists() else True


def _tiny_beir(data: Path, qrels: str) -> None:
    folder = data / "SciFact"
    _write_jsonl_gz(folder / "corpus.jsonl.gz", [{"_id": f"d{i}", "title": "", "text": f"doc {i}"} for i in range(3)])
    _write_jsonl_gz(folder / "queries.jsonl.gz", [{"_id": "q1", "text": "query one"}, {"_id": "q2", "text": "two"}])
    (folder / "qrels").mkdir(parents=True)
    (folder / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n" + qrels)


@pytest.mark.parametrize(
    ("qrels", "fragments"),
    [("q1\td0\t1\nq2\td999\t1\n", ["'d999'"]), ("q1\td0\t1\nq7\td1\t1\n", ["'q7'"])],
)
def test_qrels_naming_missing_document_or_query(tmp_path, qrels, fragments):
    data = tmp_path / "data"
    _tiny_beir(data, qrels)
    run_dir = tmp_path / "run"
    result = invoke(["tasks=[SciFact]", f"data_dir={data}", f"output_dir={run_dir}"], tmp_path)
    _assert_clean_failure(result, run_dir, f"{data / 'SciFact' / 'qrels' / 'test.tsv'}:3", *fragments)
    assert not (run_dir / "results").exists() or not list((run_dir / "results").glob("*.json"))
