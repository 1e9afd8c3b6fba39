"""`plan=true`: a dry run from mteb's descriptive statistics. It prints per-task texts and tokens and the totals, counts
FEVER and ClimateFEVER's shared corpus once, agrees with what real runs encoded, loads no model, writes nothing, and
needs no network.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest
from clirun import REPO, invoke

from nvembed_eval.tasks.benchmarks import Benchmark
from nvembed_eval.tasks.cost_plan import plan_tasks
from nvembed_eval.tasks.specs import load_task_spec

NO_NETWORK = {  # any HTTP(S) attempt goes to a closed port and fails, so a passing run made none
    "HTTP_PROXY": "http://127.0.0.1:9",
    "HTTPS_PROXY": "http://127.0.0.1:9",
    "HF_ENDPOINT": "http://127.0.0.1:9",
    "NO_PROXY": "",
}


def _files(root: Path) -> set[Path]:
    return {p for p in root.rglob("*")}


@pytest.fixture(scope="module")
def eng_v1_plan(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("plan")
    run_dir = tmp / "run"
    (tmp / "mteb-cache").mkdir()  # `import mteb` creates its MTEB_CACHE folder (empty); here it exists, as usual
    before, outputs_before = _files(tmp), _files(REPO / "outputs") if (REPO / "outputs").exists() else set()
    start = time.perf_counter()
    res = invoke(
        ["benchmark=mteb_eng_v1", "model=nv_embed_v2", "plan=true", f"output_dir={run_dir}"], tmp, env=NO_NETWORK
    )
    seconds = time.perf_counter() - start
    assert res.returncode == 0, res.stderr
    assert _files(tmp) == before and not run_dir.exists()  # no output folder, no Hydra log, no cache
    assert (_files(REPO / "outputs") if (REPO / "outputs").exists() else set()) == outputs_before
    return res.stdout, seconds


def test_plan_prints_every_task_and_the_totals_quickly(eng_v1_plan):
    out, seconds = eng_v1_plan
    assert seconds < 60  # the goal is < 10 s (scripts/bench_plan.py measures it); this only catches a runaway
    assert "plan (no model loaded, nothing written): 56 tasks (benchmark=mteb_eng_v1), model nvidia/NV-Embed-v2" in out
    names = list(Benchmark.named("mteb_eng_v1").tasks)
    rows = {line.split()[0]: line.split() for line in out.splitlines() if line.split() and line.split()[0] in names}
    assert set(rows) == set(names)
    assert rows["SciFact"][2:7] == ["5.48k", "5.48k", "1.97M", "1.97M", "7.20k"]  # texts, distinct, tokens, ..., prefix
    assert "tasks with statistics: 56/56" in out
    assert re.search(r"this run \(cache on\): [\d.]+ GPU-hours, [\d.]+ h on 1 GPU at 32,898 tokens/s", out)


def test_fever_and_climatefever_share_one_corpus_counted_once(eng_v1_plan):
    out, _ = eng_v1_plan
    fever = next(line for line in out.splitlines() if line.startswith("FEVER "))
    assert "documents = ClimateFEVER/documents: counted once" in fever

    def total(label: str) -> tuple[str, str]:
        line = next(x for x in out.splitlines() if x.startswith(label))
        texts, tokens = re.findall(r"([\d.]+[kMG]?) (?:texts|tokens)", line)[:2]
        return texts, tokens

    assert total("distinct per task") == ("36.89M", "4.13G")
    assert total("distinct across tasks") == ("31.48M", "3.38G")  # minus FEVER's 5.42M documents
    assert "shared groups counted once: 5.42M texts" in out


def test_shared_corpus_is_the_only_saving_across_tasks_with_the_card_instructions():
    specs = [load_task_spec(n) for n in ("FEVER", "ClimateFEVER", "SciFact")]
    plan = plan_tasks(specs, variant="nv_embed_v2", template="Instruct: {instruction}\nQuery: ", max_length=32768)
    fever, climate, scifact = plan.tasks
    shared = [g for t in plan.tasks for g in t.groups if g.shared_with]
    assert [(g.task, g.group.role, g.shared_with) for g in shared] == [("ClimateFEVER", "documents", "FEVER/documents")]
    docs = {t.name: next(g for g in t.groups if g.group.role == "documents") for t in (fever, climate)}
    assert fever.shared_tokens == 0 and climate.shared_tokens == docs["ClimateFEVER"].unique_tokens  # the later one
    assert docs["FEVER"].prefix == docs["ClimateFEVER"].prefix == ""  # NV-Embed puts no instruction on documents
    assert docs["FEVER"].group.unique == 5_416_568 and docs["ClimateFEVER"].group.unique == 5_416_593
    assert docs["FEVER"].truncated and not any(g.truncated for g in scifact.groups)  # 374,597-char documents
    # queries carry different instructions, so they are never shared
    assert all(g.shared_with is None for t in plan.tasks for g in t.groups if g.group.role == "queries")


def test_sharing_follows_the_prefix_as_the_cache_does():
    """MTOPDomain and MTOPIntent classify the same utterances: shared without instructions, not with the card's."""
    specs = [load_task_spec(n) for n in ("MTOPDomainClassification", "MTOPIntentClassification")]
    plain = plan_tasks(specs, variant="none", template="Instruct: {instruction}\nQuery: ", max_length=None)
    card = plan_tasks(specs, variant="nv_embed_v2", template="Instruct: {instruction}\nQuery: ", max_length=None)
    assert [g.shared_with for g in plain.tasks[1].groups] == ["MTOPDomainClassification/test", None]  # train: sampled
    assert [g.shared_with for g in card.tasks[1].groups] == [None, None]
    assert card.tasks[1].total("prefix_tokens") > 0 and plain.tasks[1].total("prefix_tokens") == 0


def test_planned_texts_match_what_a_real_run_encoded():
    """results/baselines/minilm/run.json records the texts mteb handed MiniLM for three tasks."""
    record = json.loads((REPO / "results/baselines/minilm/run.json").read_text())["tasks"]
    names = ["STSBenchmark", "SciFact", "Banking77Classification"]
    plan = plan_tasks([load_task_spec(n) for n in names], variant="none", template=None, max_length=None)
    planned = {t.name: t.texts for t in plan.tasks}
    assert planned["STSBenchmark"] == record["STSBenchmark"]["texts_encoded"] == 2758
    assert planned["SciFact"] == record["SciFact"]["texts_encoded"] == 5483
    # classification: the expected union of mteb's 10 undersamplings of 8 texts per label (7699), vs 7696 drawn
    assert planned["Banking77Classification"] == pytest.approx(
        record["Banking77Classification"]["texts_encoded"], rel=0.01
    )
    sts = plan.tasks[0]
    assert sts.unique == 2593  # = the embedding cache's misses for STSBenchmark (2758 texts, 165 duplicates)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["plan=maybe"], "<plan=maybe> must be true or false"),
        (["plan=true", "plan.gpus=0"], "<plan.gpus=0> must be a positive integer"),
        (["plan=true", "plan.tokens_per_second=0"], "<plan.tokens_per_second=0> must be a positive number"),
        (["plan=true", "plan.chars_per_token=-1"], "<plan.chars_per_token=-1"),
        (["-m", "plan=true", "model=minilm,nv_embed_tiny"], "plan=true plans one run; drop -m"),
        (["plan=true", "tasks=[SciFakt]"], "unknown task 'SciFakt'"),
        (["plan=true", "plan.tokens_per_second=inf"], "<plan.tokens_per_second=inf> must be a positive number"),
        (["plan=true", "plan.chars_per_token=1e-300"], "<plan.chars_per_token=1e-300> must be a positive number"),
        (["plan=true", "model.max_seq_length=0"], "<model.max_seq_length=0> must be a positive integer"),
    ],
)
def test_bad_plan_settings_exit_2_with_one_line(args, message, tmp_path):
    res = invoke(args, tmp_path)
    assert res.returncode == 2 and message in res.error_line, res.stderr
    assert res.error_line.startswith("error: ") and len([x for x in res.stderr.splitlines() if x.strip()]) == 1


def test_plan_of_a_named_mteb_benchmark(tmp_path):
    res = invoke(["model=nv_embed_v2", "plan=true", "benchmark=mteb", 'benchmark.name="MTEB(eng, v2)"'], tmp_path)
    assert res.returncode == 0, res.stderr
    assert "41 tasks (benchmark=MTEB(eng, v2))" in res.stdout and "distinct across tasks" in res.stdout


def test_plan_for_minilm_on_eight_gpus(tmp_path):
    res = invoke(["model=minilm", "tasks=[SciFact,STSBenchmark]", "plan=true", "plan.gpus=8"], tmp_path)
    assert res.returncode == 0, res.stderr
    assert "prefix template None, max_length unknown" in res.stdout  # MiniLM adds no instructions
    rows = {line.split()[0]: line.split() for line in res.stdout.splitlines() if line.startswith(("SciFact", "STSB"))}
    assert rows["SciFact"][6] == rows["STSBenchmark"][6] == "0"  # no prefix tokens
    assert re.search(r"this run \(cache on\): [\d.]+ GPU-minutes, [\d.]+ min on 8 GPUs", res.stdout)


@pytest.mark.parametrize("model", ["model=minilm", "model=mteb", "model=nv_embed_tiny"])
def test_every_shipped_model_family_can_be_planned(model, tmp_path):
    """Each family tells its prefix template without loading (`template_for_config`): model=mteb adds none of the
    harness's (mteb's own prompts are not counted, as its run's token counts do not count them)."""
    res = invoke([model, "tasks=[SciFact]", "plan=true", f"output_dir={tmp_path / 'run'}"], tmp_path)
    assert res.returncode == 0, res.stderr
    assert "SciFact Retrieval 5.48k 5.48k" in res.stdout
    assert not (tmp_path / "run").exists()
