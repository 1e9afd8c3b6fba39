"""Environment and filesystem faults through the real entry point: one line naming what is wrong and what to set,
exit 2, nothing written — a HOME that is a file, a run folder that is a link loop or cannot be made, a data file that
decompresses past its bound, a per-item file made huge."""

from __future__ import annotations

import gzip
import json
import os
import shutil

import pytest
from clirun import DATA, invoke

SMOKE = ["model=minilm", "tasks=[NVEvalSmokeSTS]"]


def _refused(result, *fragments: str) -> str:
    assert result.returncode == 2, result.stderr[-2000:]
    assert "Traceback" not in result.stderr and result.error_line.startswith("error: ")
    for fragment in fragments:
        assert fragment in result.error_line, result.error_line
    return result.error_line


@pytest.mark.parametrize(
    ("env", "fragment"),
    [
        ({"MTEB_CACHE": None}, "mteb's cache folder {home}/.cache/mteb lies under the regular file {home}; set MTEB"),
        ({"NVEMBED_EVAL_CACHE": None}, "the embedding cache {home}/.cache/nvembed-eval/embeddings lies under the"),
    ],
)
def test_a_home_that_is_a_file_names_the_folder_to_set(tmp_path, env, fragment):
    home = tmp_path / "home"
    home.write_text("not a folder")
    result = invoke([*SMOKE, f"output_dir={tmp_path / 'run'}"], tmp_path, env={"HOME": str(home), **env})
    _refused(result, fragment.format(home=home))
    assert not (tmp_path / "run").exists()


def test_a_run_without_home_runs(tmp_path):
    """HOME unset: the cache's default folder was an interpolation error (a traceback); it is now `~`, which Python
    finds without HOME."""
    result = invoke([*SMOKE, f"output_dir={tmp_path / 'run'}"], tmp_path, env={"HOME": None})
    assert result.returncode == 0, result.stderr[-2000:]


def test_a_run_folder_that_is_a_link_loop_or_cannot_be_made(tmp_path):
    (tmp_path / "a").symlink_to(tmp_path / "b")
    (tmp_path / "b").symlink_to(tmp_path / "a")
    result = invoke([*SMOKE, f"output_dir={tmp_path / 'a'}"], tmp_path)
    _refused(result, f"<output_dir={tmp_path / 'a'}> is a symbolic link that leads nowhere (or in a loop)")
    result = invoke([*SMOKE, "hydra.run.dir=/proc/no/such"], tmp_path)
    _refused(result, "<hydra.run.dir=/proc/no/such>: cannot create folders in /proc", "choose another hydra.run.dir")


def test_hydra_run_dir_is_where_the_run_goes(tmp_path):
    """`hydra.run.dir=` was silently ignored by single runs (they wrote to output_dir's default)."""
    assert invoke([*SMOKE, f"hydra.run.dir={tmp_path / 'here'}"], tmp_path).returncode == 0
    assert (tmp_path / "here" / "results" / "NVEvalSmokeSTS.json").is_file()


def test_a_data_file_past_its_decompressed_bound_is_refused_with_the_bound(tmp_path):
    """A gzip bomb in local data ended in a MemoryError; the bound is per file and can be raised."""
    data = tmp_path / "data" / "STSBenchmark"
    data.mkdir(parents=True)
    row = json.dumps({"sentence1": "a " * 200, "sentence2": "b", "score": 1.0}) + "\n"
    with gzip.open(data / "test.jsonl.gz", "wt") as handle:
        handle.writelines([row] * 20)  # 8 KB of text, a few hundred bytes on disk
    args = ["model=minilm", "tasks=[STSBenchmark]", f"data_dir={tmp_path / 'data'}", f"output_dir={tmp_path / 'r'}"]
    result = invoke(args, tmp_path, env={"NVEMBED_EVAL_MAX_DATA_BYTES": "4KiB"})
    _refused(result, "more than 4.0 KiB of text once decompressed", "NVEMBED_EVAL_MAX_DATA_BYTES=16GiB")
    assert not (tmp_path / "r" / "results").exists()


def test_a_per_item_file_made_huge_is_not_read(tmp_path):
    """A tampered `items/` file made huge (or a pipe) used to be read whole, or waited on; now the gate says why it
    judges that task by tolerance alone."""
    from nvembed_eval.judge.compare import compare
    from nvembed_eval.results.reading import load_scores

    run = tmp_path / "run"
    assert invoke([*SMOKE, f"output_dir={run}", f"data_dir={DATA}"], tmp_path).returncode == 0
    baseline = shutil.copytree(run, tmp_path / "baseline")
    items = run / "items" / "NVEvalSmokeSTS.json"
    with items.open("ab") as handle:
        handle.truncate(600 * 1024 * 1024)  # sparse: 600 MiB to a reader, nothing on disk
    row = compare(load_scores(run), load_scores(baseline)).rows[0]
    assert row.noise.delta is None and "larger than" not in (row.noise.why or "")
    assert f"{items} is 600.0 MiB, more than the 512.0 MiB" in row.noise.why
    os.unlink(items)
    os.mkfifo(items)
    row = compare(load_scores(run), load_scores(baseline)).rows[0]
    assert f"{items} is a pipe, not a regular file" in row.noise.why


def test_an_unreachable_hub_is_known_in_seconds_and_the_caches_answer(tmp_path, hf_home, embedding_cache, monkeypatch):
    """No network and no HF_HUB_OFFLINE: the libraries retried with back-off for 165 s before failing. One probe of
    the endpoint (here a port that refuses at once) switches them offline: cached data is used, the rest refused."""
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "ENDPOINT", "http://127.0.0.1:9")
    online = {"HF_HUB_OFFLINE": None, "HF_DATASETS_OFFLINE": None, "TRANSFORMERS_OFFLINE": None}
    env = {**online, "NVEMBED_EVAL_CACHE": str(embedding_cache)}
    args = ["model=minilm", "tasks=[STSBenchmark]", f"output_dir={tmp_path / 'run'}"]
    result = invoke(args, tmp_path, hub=hf_home, env=env, offline=False)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stderr.count("the Hugging Face hub (http://127.0.0.1:9) cannot be reached") == 1
    assert "| STSBenchmark | STS  | cosine_spearman | 82.03 |" in result.stdout
    args = ["model=minilm", "tasks=[ArguAna]", f"output_dir={tmp_path / 'other'}"]
    result = invoke(args, tmp_path, hub=hf_home, env=env, offline=False)
    _refused(result, "offline (HF_HUB_OFFLINE set, or the hub unreachable) and the datasets cache has no mteb/arguana")
