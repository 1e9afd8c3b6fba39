"""model=mteb: a model of mteb's registry, loaded from the pinned hub snapshot (offline here), encoded by mteb's own
wrapper with mteb's own prompts, behind the harness's cache and provenance."""

from __future__ import annotations

import json

import mteb
import numpy as np
import pytest
from clirun import DATA, invoke, load_run, main_scores
from hubcache import minilm_folder, model_commit, model_folder_files, model_set_ref
from sentence_transformers import SentenceTransformer

from nvembed_eval.cache.encoder import CachedEncoder
from nvembed_eval.errors import ConfigError, EncodingError
from nvembed_eval.models.mteb_registry.encoder_mteb import PROMPT_KEY_PREFIX, MtebRegistryEncoder

MINILM = "sentence-transformers/all-MiniLM-L6-v2"
E5 = "intfloat/e5-small-v2"  # mteb: model_prompts {"query": "query: ", "document": "passage: "}
E5_INSTRUCT = "intfloat/multilingual-e5-large-instruct"  # mteb: InstructSentenceTransformerModel, no remote code
TEXTS = ["0-dimensional biomaterials show inductive properties.", "A man is playing a guitar."]


def _registry_snapshot(hf_home, name: str) -> str:
    """MiniLM's files as `name` at the commit mteb's registry lists for `name` (what mteb would download)."""
    commit = mteb.get_model_meta(name).revision
    model_commit(hf_home, name, commit, model_folder_files(minilm_folder()))
    model_set_ref(hf_home, name, commit)
    return commit


@pytest.fixture
def offline_hub(tmp_path, monkeypatch):
    import huggingface_hub.constants

    hf_home = tmp_path / "hf_home"
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(hf_home / "hub"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return hf_home


@pytest.fixture(scope="module")
def mteb_minilm_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("mteb-model")
    hf_home = tmp / "hf_home"
    commit = _registry_snapshot(hf_home, MINILM)
    run_dir = tmp / "run"
    result = invoke(
        ["model=mteb", f"model.name={MINILM}", "tasks=[STSBenchmark]", f"data_dir={DATA}", f"output_dir={run_dir}"],
        tmp,
        hub=hf_home,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return run_dir, commit


@pytest.mark.slow
def test_mteb_minilm_reproduces_the_published_sts_score(mteb_minilm_run):
    run_dir, _ = mteb_minilm_run
    assert round(main_scores(run_dir)["STSBenchmark"], 4) == 82.0325  # cosine_spearman, as published


@pytest.mark.slow
def test_mteb_model_provenance(mteb_minilm_run):
    run_dir, commit = mteb_minilm_run
    record = load_run(run_dir)
    assert (record["model"]["name"], record["model"]["revision"]) == (MINILM, commit)
    assert record["model"]["knobs"]["mteb"] == mteb.__version__
    assert record["model"]["knobs"]["loader"] == "SentenceTransformerEncoderWrapper"
    prefix = record["tasks"]["STSBenchmark"]["prefixes"]["all"]
    assert prefix.startswith(PROMPT_KEY_PREFIX)
    assert json.loads(prefix.removeprefix(PROMPT_KEY_PREFIX)) == {
        "mteb": mteb.__version__,
        "wrapper": "SentenceTransformerEncoderWrapper",
        "side": None,
        "prompt_name": None,
        "prompt": None,
    }


def test_prompts_are_mtebs_and_reach_the_model(offline_hub):
    commit = _registry_snapshot(offline_hub, E5)
    encoder = MtebRegistryEncoder(E5, device="cpu")
    assert encoder.identity.revision == commit
    assert encoder.instruction_template() is None
    keys = {
        side: json.loads(encoder.prompt_key("SciFact", side).removeprefix(PROMPT_KEY_PREFIX))
        for side in ("query", "document")
    }
    assert (keys["query"]["prompt_name"], keys["query"]["prompt"]) == ("query", "query: ")
    assert (keys["document"]["prompt_name"], keys["document"]["prompt"]) == ("document", "passage: ")
    assert json.loads(encoder.prompt_key("STSBenchmark", None).removeprefix(PROMPT_KEY_PREFIX))["prompt"] is None
    plain = SentenceTransformer(str(minilm_folder()), device="cpu")
    query = encoder.encode(TEXTS, prefix=encoder.prompt_key("SciFact", "query"), task_name="SciFact", side="query")
    np.testing.assert_allclose(query, plain.encode(["query: " + t for t in TEXTS]), atol=1e-6)
    with pytest.raises(EncodingError, match="not this model's prompt key"):
        encoder.encode(TEXTS, prefix="", task_name="SciFact", side="query")


def test_instruct_models_key_mtebs_formatted_instruction(offline_hub):
    _registry_snapshot(offline_hub, E5_INSTRUCT)
    encoder = MtebRegistryEncoder(E5_INSTRUCT, device="cpu")
    task_prompt = mteb.get_task("SciFact").metadata.prompt["query"]
    key = json.loads(encoder.prompt_key("SciFact", "query").removeprefix(PROMPT_KEY_PREFIX))
    assert key["instruction"] == f"Instruct: {task_prompt}\nQuery: "
    assert json.loads(encoder.identity.knobs["loader_kwargs"])["apply_instruction_to_passages"] is False


@pytest.mark.parametrize(
    ("name", "pattern"),
    [
        (None, r"<model.name> is required with model=mteb"),
        ("sentence-transformers/all-MiniLM-L6-v3", r"not found in MTEB registry.*all-MiniLM-L6-v2"),
        ("cross-encoder/ms-marco-MiniLM-L6-v2", r"loaded by mteb's CrossEncoderWrapper, which this harness cannot pin"),
        ("nvidia/NV-Embed-v2", r"trust_remote_code=True .* model=nv_embed_v2"),
    ],
)
def test_models_this_harness_cannot_pin_are_refused(name, pattern):
    with pytest.raises(ConfigError, match=pattern):
        MtebRegistryEncoder(name, device="cpu")


class _Recorder:
    """A TextEncoder that records the keywords it is called with."""

    embed_dim, max_tokens = 2, None

    def __init__(self, identity):
        self.identity, self.calls = identity, []

    def instruction_template(self):
        return None

    def encode(self, texts, *, prefix="", batch_size=32, task_name=None, side=None):
        self.calls.append((list(texts), prefix, task_name, side))
        return np.ones((len(texts), 2), dtype=np.float32)


def test_cached_encoder_forwards_task_and_side_and_keys_on_the_prefix(tmp_path):
    from nvembed_eval.models.base import ModelIdentity

    inner = _Recorder(ModelIdentity("test/recorder", "r1"))
    cached = CachedEncoder(inner, tmp_path)
    cached.encode(["a", "b"], prefix="k1", task_name="SciFact", side="query")
    cached.encode(["a", "b"], prefix="k1", task_name="SciFact", side="document")  # same key: served from the cache
    cached.encode(["a"], prefix="k2", task_name="NFCorpus", side="document")
    assert inner.calls == [(["a", "b"], "k1", "SciFact", "query"), (["a"], "k2", "NFCorpus", "document")]


@pytest.mark.parametrize("config", ["minilm", "mteb"])
def test_model_yaml_keys_are_the_constructor_parameters(config):
    import inspect
    from pathlib import Path

    from hydra.utils import get_class
    from omegaconf import OmegaConf

    cfg = OmegaConf.load(Path(__file__).resolve().parents[2] / "conf" / "model" / f"{config}.yaml")
    params = set(inspect.signature(get_class(cfg._target_).__init__).parameters) - {"self"}
    assert set(cfg) - {"_target_"} == params
