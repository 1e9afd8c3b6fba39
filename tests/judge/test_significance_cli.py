"""The noise-aware gate through the real CLIs: a real MiniLM run on a SciFact subset (150 queries), an STSBenchmark
subset (200 pairs) and the smoke classification and clustering tasks writes per-item data; copies of that run with
seeded noise in a few items pass `--gate significant`, planted real drops fail it (docs/significance.md)."""

from __future__ import annotations

import csv
import gzip
import hashlib
import json
import shutil
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from clirun import DATA, invoke, load_run

from nvembed_eval.errors import ItemsUnavailable
from nvembed_eval.judge.render import main as compare_main
from nvembed_eval.judge.significance import load_items
from nvembed_eval.results.reading import load_scores

pytestmark = pytest.mark.filterwarnings("ignore:.*superseded")

TASKS = ("SciFact", "STSBenchmark", "NVEvalSmokeClassification", "NVEvalSmokeClustering")
MINILM = "sentence-transformers/all-MiniLM-L6-v2"


def _jsonl(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress("".join(json.dumps(r) + "\n" for r in rows).encode(), mtime=0))


def _read(path: Path) -> list[dict]:
    return [json.loads(line) for line in gzip.decompress(path.read_bytes()).decode().splitlines()]


def subset_data(root: Path) -> Path:
    """150 SciFact test queries with their relevant documents plus other documents (500 in all), and the first 200
    STSBenchmark test pairs, in the local-data layout."""
    qrels = [line.split("\t") for line in (DATA / "SciFact" / "qrels" / "test.tsv").read_text().splitlines()[1:]]
    queries = [q for q in _read(DATA / "SciFact" / "queries.jsonl.gz") if q["_id"] in {r[0] for r in qrels}][:150]
    keep = {q["_id"] for q in queries}
    kept_qrels = [r for r in qrels if r[0] in keep]
    relevant = {r[1] for r in kept_qrels}
    corpus = _read(DATA / "SciFact" / "corpus.jsonl.gz")
    others = [d for d in corpus if d["_id"] not in relevant][: 500 - len(relevant)]
    _jsonl(root / "SciFact" / "queries.jsonl.gz", queries)
    _jsonl(root / "SciFact" / "corpus.jsonl.gz", [d for d in corpus if d["_id"] in relevant] + others)
    (root / "SciFact" / "qrels").mkdir(parents=True)
    lines = ["query-id\tcorpus-id\tscore", *("\t".join(r) for r in kept_qrels)]
    (root / "SciFact" / "qrels" / "test.tsv").write_text("\n".join(lines) + "\n")
    _jsonl(root / "STSBenchmark" / "test.jsonl.gz", _read(DATA / "STSBenchmark" / "test.jsonl.gz")[:200])
    return root


@pytest.fixture(scope="module")
def real_run(tmp_path_factory, embedding_cache) -> Path:
    """MiniLM on the subsets, through the session's embedding cache (SciFact's texts are seeded there)."""
    tmp = tmp_path_factory.mktemp("significance")
    data = subset_data(tmp / "data")
    run_dir = tmp / "run"
    args = ["model=minilm", f"tasks=[{','.join(TASKS)}]", f"data_dir={data}", f"output_dir={run_dir}"]
    proc = invoke(args, tmp, env={"NVEMBED_EVAL_CACHE": str(embedding_cache)})
    assert proc.returncode == 0, proc.stderr[-3000:]
    return run_dir


def derive(run: Path, dest: Path, changes: dict[str, Callable[[dict], None]]) -> Path:
    """A copy of `run` whose items of each task in `changes` are edited in place by the function, with the result's
    score set to what the edited items give (rounded as mteb rounds) and the provenance's sha256 updated: what a
    second run that differs only in those items would have written."""
    from nvembed_eval.judge.significance import ItemSet

    shutil.copytree(run, dest)
    record = load_run(dest)
    for task, change in changes.items():
        path = dest / "items" / f"{task}.json"
        data = json.loads(path.read_text())
        change(data["groups"][0])
        score = ItemSet.from_json(data).recomputed()
        data["score"] = score
        body = (json.dumps(data, separators=(",", ":")) + "\n").encode()
        path.write_bytes(body)
        result_path = dest / "results" / f"{task}.json"
        result = json.loads(result_path.read_text())
        entry = result["scores"]["test"][0]
        entry[data["metric"]] = entry["main_score"] = round(score, 5 if task == "SciFact" else 6)
        for provenance in (result["nvembed_eval"], record["tasks"][task]["provenance"]):
            provenance["items"]["sha256"] = hashlib.sha256(body).hexdigest()
        result_path.write_text(json.dumps(result))
    (dest / "run.json").write_text(json.dumps(record))
    return dest


def few_queries_move(group: dict) -> None:
    """Run-to-run noise: 8 of the 150 queries change rank, five for the worse and three for the better."""
    values = group["values"]
    rng = np.random.default_rng(0)
    middling = [k for k, v in enumerate(values) if 0.4 <= v <= 0.9]
    picks = rng.choice(middling, size=8, replace=False)
    for k in picks[:5]:
        values[k] -= 0.4
    for k in picks[5:]:
        values[k] = min(1.0, values[k] + 0.3)


def few_pairs_move(group: dict) -> None:
    """Noise in 6 of the 200 STS pairs: their predicted similarity jitters by up to 0.15 either way."""
    rng = np.random.default_rng(1)
    for k in rng.choice(len(group["pred"]), size=6, replace=False):
        group["pred"][k] += float(rng.uniform(-0.15, 0.15))


def every_query_slightly_worse(group: dict) -> None:
    """A small real drop: every query that retrieves anything loses 0.4% of its nDCG (about -0.3 points)."""
    group["values"] = [v * 0.996 for v in group["values"]]


def many_queries_worse(group: dict) -> None:
    """A real drop: 60% of the queries lose 0.02-0.08 nDCG (about -3 points)."""
    rng = np.random.default_rng(2)
    group["values"] = [max(0.0, v - rng.uniform(0.02, 0.08)) if rng.random() < 0.6 else v for v in group["values"]]


def all_pairs_noisier(group: dict) -> None:
    """A real drop for STS: every predicted similarity gets Gaussian noise of SD 0.1."""
    rng = np.random.default_rng(3)
    group["pred"] = [p + float(rng.normal(0, 0.1)) for p in group["pred"]]


def gate(ours: Path, reference: Path, out: Path, *extra: str):
    return invoke(
        [str(ours), "--reference", str(reference), "--out", str(out), *extra],
        out.parent,
        main=compare_main,
    )


def rows(out: Path) -> dict[str, dict[str, str]]:
    return {r["task"]: r for r in csv.DictReader((out / "compare.csv").open())}


def test_real_run_writes_items_bound_to_each_result(real_run):
    record = load_run(real_run)
    scores = load_scores(real_run)  # items/ is not read as results
    assert sorted(scores.scores) == sorted(TASKS)
    units = {"SciFact": ("query", 150), "STSBenchmark": ("pair", 200), "NVEvalSmokeClassification": ("experiment", 3)}
    for task in TASKS:
        items = record["tasks"][task]["provenance"]["items"]
        result = json.loads((real_run / "results" / f"{task}.json").read_text())
        assert result["nvembed_eval"]["items"] == items and items["path"] == f"items/{task}.json"
        body = (real_run / items["path"]).read_bytes()
        assert hashlib.sha256(body).hexdigest() == items["sha256"]
        json.loads(body, parse_constant=lambda c: pytest.fail(f"non-strict JSON constant {c}"))
        score = scores.scores[task]
        loaded = load_items(Path(score.source), task, score.metric, score.value / 100)
        assert abs(loaded.recomputed() * 100 - score.value) < 1e-3  # mteb's own score back, to its rounding
        if task in units:
            assert (items["unit"], items["count"]) == units[task]


def test_seeded_noise_in_a_few_items_passes_significant_while_tolerance_fails_it(real_run, tmp_path):
    noisy = derive(real_run, tmp_path / "noisy", {"SciFact": few_queries_move, "STSBenchmark": few_pairs_move})
    by_tolerance = gate(noisy, real_run, tmp_path / "tolerance", "--gate", "tolerance")
    by_noise = gate(noisy, real_run, tmp_path / "significant", "--gate", "significant")
    assert by_tolerance.returncode == 1, by_tolerance.stdout[-2000:]  # a point lost on 8 of 150 queries
    assert by_noise.returncode == 0, by_noise.stdout[-3000:] + by_noise.stderr[-2000:]
    scifact = rows(tmp_path / "significant")["SciFact"]
    assert float(scifact["delta"]) < -0.5 < float(scifact["delta_high"])  # beyond tolerance, within noise
    assert float(scifact["delta_low"]) < float(scifact["delta"]) and scifact["interval"] == "bootstrap over 150 queries"
    assert gate(noisy, real_run, tmp_path / "both").returncode == 0  # the default gate: both


def test_small_real_drop_fails_significant_and_passes_tolerance(real_run, tmp_path):
    dropped = derive(real_run, tmp_path / "dropped", {"SciFact": every_query_slightly_worse})
    assert gate(dropped, real_run, tmp_path / "tolerance", "--gate", "tolerance").returncode == 0
    proc = gate(dropped, real_run, tmp_path / "significant", "--gate", "significant")
    assert proc.returncode == 1, proc.stdout[-3000:]
    row = rows(tmp_path / "significant")["SciFact"]
    assert -0.5 < float(row["delta"]) < 0 and float(row["delta_high"]) < 0
    assert row["status"] == "REGRESSION" and row["judged_by"] == "noise"
    assert "FAIL: 1 task(s) beyond noise" in proc.stdout


def test_real_drops_fail_every_gate_with_their_intervals_in_every_output(real_run, tmp_path):
    dropped = derive(real_run, tmp_path / "dropped", {"SciFact": many_queries_worse, "STSBenchmark": all_pairs_noisier})
    for mode in ("tolerance", "significant", "both"):
        assert gate(dropped, real_run, tmp_path / mode, "--gate", mode).returncode == 1, mode
    out = tmp_path / "both"
    table = rows(out)
    assert {t for t, r in table.items() if r["failed"] == "1"} == {"SciFact", "STSBenchmark"}
    assert table["STSBenchmark"]["interval"] == "bootstrap over 200 pairs"
    assert table["NVEvalSmokeClassification"]["interval"] == "t interval over 3 experiments"
    sts = table["STSBenchmark"]
    markdown = (out / "compare.md").read_text()
    assert f"{float(sts['delta']):+.2f} [{float(sts['delta_low']):+.2f}, {float(sts['delta_high']):+.2f}]" in markdown
    assert (
        "Gate both: a task fails on a drop of more than 0.50 points whose 95% paired interval lies below 0" in markdown
    )
    junit = ET.parse(out / "compare.junit.xml").getroot()
    failure = next(c for c in junit.iter("testcase") if c.get("name") == "SciFact").find("failure")
    assert "95% paired, bootstrap over 150 queries" in failure.get("message")
    assert (out / "compare_deltas.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_without_items_on_one_side_both_falls_back_to_tolerance_and_significant_is_refused(real_run, tmp_path):
    table = tmp_path / "published.csv"
    table.write_text(
        f"task,metric,score,model\nSciFact,ndcg_at_10,60.0,{MINILM}\nSTSBenchmark,cosine_spearman,99.0,{MINILM}\n"
    )
    proc = gate(real_run, table, tmp_path / "both", "--benchmark", "smoke")
    assert proc.returncode == 2  # --benchmark smoke shares no task with the table: refused, not passed
    proc = gate(real_run, table, tmp_path / "both")
    assert proc.returncode == 1  # STSBenchmark is far below 99: judged by tolerance, flagged
    assert "2 task(s) without per-item data on both sides are judged by tolerance alone: SciFact, STSBenchmark" in (
        proc.stdout
    )
    row = rows(tmp_path / "both")["STSBenchmark"]
    assert row["judged_by"] == "tolerance" and row["failed"] == "1" and row["ours_low"]  # its own interval is shown
    assert row["interval"] == "tolerance only: no per-item data (reference: a score table has no per-item data)"
    refused = gate(real_run, table, tmp_path / "significant", "--gate", "significant")
    assert refused.returncode == 2 and not (tmp_path / "significant").exists()
    assert refused.error_line == (
        "error: --gate significant needs per-item data on both sides of every judged task; SciFact has none (no "
        "per-item data (reference: a score table has no per-item data)) and 1 more task(s); pass --gate both "
        "(tolerance judges such tasks, flagged) or --gate tolerance, or compare run folders whose results have items/"
    )


def test_an_items_file_that_is_not_the_recorded_one_is_not_used(real_run, tmp_path):
    edited = tmp_path / "edited"
    shutil.copytree(real_run, edited)
    path = edited / "items" / "SciFact.json"
    path.write_text(path.read_text().replace('"values":[', '"values":[0.0,', 1))
    score = load_scores(edited).scores["SciFact"]
    with pytest.raises(ItemsUnavailable, match="sha256 differs"):
        load_items(Path(score.source), "SciFact", score.metric, score.value / 100)
    proc = gate(edited, real_run, tmp_path / "significant", "--gate", "significant")
    assert proc.returncode == 2 and "SciFact has none" in proc.error_line and "sha256 differs" in proc.error_line


def last_queries_dropped(group: dict) -> None:
    """A run on a subset: its items lack the last 30 of the 150 queries (e.g. a smaller query file)."""
    group["ids"], group["values"] = group["ids"][:-30], group["values"][:-30]


def test_an_interval_paired_on_fewer_items_says_so_in_every_output(real_run, tmp_path):
    ours = derive(real_run, tmp_path / "subset", {"SciFact": last_queries_dropped})
    out = tmp_path / "out"
    proc = gate(ours, real_run, out)
    assert proc.returncode in (0, 1), proc.stderr
    note = "paired on the 120 queries both have (run 120, reference 150)"
    scifact_lines = [line for line in proc.stdout.splitlines() if line.startswith("| SciFact |")]
    assert len(scifact_lines) == 1 and note in scifact_lines[0]  # the console, not only compare.csv
    assert note in next(line for line in (out / "compare.md").read_text().splitlines() if "| SciFact |" in line)
    assert note in rows(out)["SciFact"]["interval"]
