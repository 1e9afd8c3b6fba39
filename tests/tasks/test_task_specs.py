"""The 56 task YAMLs and the benchmark configs against mteb's own metadata; name resolution and bad YAML."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path
from typing import Any

import mteb
import numpy as np
import pytest
from clirun import SHARED

from nvembed_eval.errors import ConfigError, TaskNotFoundError
from nvembed_eval.io import conf_dir
from nvembed_eval.results.scores import metric_aliases
from nvembed_eval.tasks.benchmarks import Benchmark
from nvembed_eval.tasks.instructions import instructions_dir
from nvembed_eval.tasks.specs import TaskSpec, list_task_specs, load_task_spec, resolve_task_names

REPO = Path(__file__).resolve().parents[2]
SHIPPED = {
    name: {row["task"]: float(row["score"]) for row in csv.DictReader((REPO / "results/published" / file).open())}
    for name, file in (("nv_embed_v2", "nv_embed_v2.csv"), ("all_minilm_l6_v2", "all_minilm_l6_v2.csv"))
}
REFERENCE = SHARED / "reference"
BENCHMARK = {t.metadata.name: t for t in mteb.get_benchmark("MTEB(eng, v1)").tasks}


def load_nv_instructions() -> dict[str, dict[str, str]]:
    """NV-Embed-v2's own instructions.json (verbatim copy), keyed by task or group name ("STS", "SUMM")."""
    return json.loads((instructions_dir() / "nv_embed_v2_instructions.json").read_text(encoding="utf-8"))


def load_table7() -> dict[str, Any]:
    """The stand-in table for tasks missing from instructions.json (every entry carries provenance)."""
    import yaml

    return yaml.safe_load((instructions_dir() / "nv_embed_v2_table7_standin.yaml").read_text(encoding="utf-8"))


def test_benchmark_config_is_exactly_mtebs_benchmark_with_same_splits_and_subsets():
    names = resolve_task_names(None, list(Benchmark.named("mteb_eng_v1").tasks))
    assert len(names) == 56 and sorted(names) == sorted(BENCHMARK)
    for name in names:
        spec, task = load_task_spec(name), BENCHMARK[name]
        assert list(task.eval_splits) == [spec.split], name
        assert list(task.hf_subsets) == [spec.subset], name


def test_retrieval_benchmark_is_the_15_retrieval_tasks():
    expected = sorted(n for n, t in BENCHMARK.items() if t.metadata.type == "Retrieval")
    assert sorted(list(Benchmark.named("retrieval").tasks)) == expected and len(expected) == 15


@pytest.mark.parametrize("name", sorted(BENCHMARK))
def test_task_yaml_validates_against_mteb_metadata(name):
    spec = load_task_spec(name)
    task = mteb.get_task(name)
    md = task.metadata
    assert spec.name == name and (conf_dir() / "task" / f"{name}.yaml").is_file()
    assert spec.type == md.type
    assert spec.split in md.eval_splits
    assert spec.subset in task.hf_subsets
    assert spec.dataset_revision["mteb"] == md.revision and spec.dataset_revision["card"]
    aggregate = bool(getattr(md, "tasks", None))
    assert spec.dataset_path["mteb"] == (None if aggregate else md.dataset["path"])
    assert (spec.dataset_path["card"] is None) == aggregate
    assert name in SHIPPED["nv_embed_v2"] and name in SHIPPED["all_minilm_l6_v2"]  # both published tables score it
    if md.type == "PairClassification":
        assert spec.metric == "cosine_ap"  # the v1 leaderboard metric; mteb 2.x's main score is max_ap
    else:
        assert spec.metric == md.main_score
    assert spec.instruction_source in {"nv_instructions_json", "table7_unverified"}
    assert spec.instruction_verified == (spec.instruction_source == "nv_instructions_json")
    if (md.type == "Retrieval" and name != "QuoraRetrieval") or md.type == "Reranking":
        assert spec.instructions["query"] and spec.instructions["document"] is None
    else:
        assert spec.instructions["query"] and spec.instructions["query"] == spec.instructions["document"]


def test_pair_classification_metric_is_a_key_mteb_writes():
    # mteb's own metric computation on toy similarities: the spec's key must be among its outputs.
    task = mteb.get_task("TwitterURLCorpus")
    rng = np.random.default_rng(0)
    sims = {
        k: rng.random(20).tolist()
        for k in ("similarity_scores", "cosine_scores", "manhattan_distances", "euclidean_distances", "dot_scores")
    }
    written = task._compute_metrics(sims, [0, 1] * 10)
    assert "cosine_ap" in written and "max_ap" in written
    assert load_task_spec("TwitterURLCorpus").metric in written


def test_cqadupstack_records_its_12_subforums():
    spec = load_task_spec("CQADupstackRetrieval")
    assert list(spec.subtasks) == [t.metadata.name for t in BENCHMARK["CQADupstackRetrieval"].metadata.tasks]
    assert len(spec.subtasks) == 12


def test_task_yamls_agree_with_instructions_folder():
    nv, table7 = load_nv_instructions(), load_table7()
    assert all(entry["verified"] is False for entry in table7["entries"].values())
    for name in BENCHMARK:
        spec = load_task_spec(name)
        if spec.instruction_source == "nv_instructions_json":
            key = {"STS": "STS", "Summarization": "SUMM"}.get(spec.type, name)
            entry = nv[key]
            query = entry.get("text") or entry["query"]
            document = entry.get("text") or entry.get("corpus") or None
            assert (spec.instructions["query"], spec.instructions["document"]) == (query, document), name
        else:
            entry = table7["entries"][name]
            assert spec.instructions["query"] == entry["instruction"], name
            assert [s for s in ("query", "document") if spec.instructions[s]] == entry["sides"], name


def test_generated_files_are_up_to_date_and_instructions_json_is_verbatim():
    sys.path.insert(0, str(REPO / "scripts"))
    try:
        import gen_task_configs
    finally:
        sys.path.pop(0)
    assert gen_task_configs.main(["--check", "--import-instructions"]) == 0
    nv_copy = instructions_dir() / "nv_embed_v2_instructions.json"
    assert nv_copy.read_bytes() == (REFERENCE / "nv_embed_v2_instructions.json").read_bytes()


def test_published_scores_match_the_card_table():
    import csv

    with (REFERENCE / "nv_embed_v2_published.csv").open() as handle:
        rows = {r["task"]: r for r in csv.DictReader(handle)}
    for name, row in rows.items():
        spec = load_task_spec(name)
        assert SHIPPED["nv_embed_v2"][name] == float(row["score"])  # the table the package ships is the card's
        assert spec.dataset_revision["card"] == row["dataset_revision"]
        assert row["metric"] in metric_aliases(spec.metric)


def test_unknown_task_suggests_close_matches():
    with pytest.raises(TaskNotFoundError) as info:
        resolve_task_names(["SciFat"], ["ArguAna"])
    message = str(info.value)
    assert message.startswith("unknown task 'SciFat' (tasks=[SciFat]); did you mean: SciFact")
    assert message.endswith("Run with tasks=[...] using mteb task names.") and "\n" not in message
    with pytest.raises(TaskNotFoundError, match=r"\(benchmark.tasks=\[ArguAna,Nope\]\)"):
        resolve_task_names(None, ["ArguAna", "Nope"])


def test_ad_hoc_mteb_task_gets_a_spec_without_instruction_or_published_score():
    assert resolve_task_names(["STS22.v2", "SciFact", "SciFact"], []) == ["STS22.v2", "SciFact"]
    spec = load_task_spec("STS22.v2")
    assert (spec.type, spec.split, spec.subset, spec.metric) == ("STS", "test", "en", "cosine_spearman")
    assert not spec.has_instruction and spec.instruction_source == "none"


def test_task_spec_is_frozen():
    spec = load_task_spec("SciFact")
    with pytest.raises(AttributeError):
        spec.metric = "map"  # type: ignore[misc]
    assert isinstance(spec, TaskSpec) and set(spec.to_dict()) == set(TaskSpec.__dataclass_fields__)


def _tmp_conf(tmp_path: Path, monkeypatch, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = tmp_path / "conf" / "task" / f"{name}.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    monkeypatch.setenv("NVEMBED_EVAL_CONF", str(tmp_path / "conf"))
    return tmp_path / "conf"


SMOKE_YAML = "name: NVEvalSmokeGhost\ntype: STS\nsplit: test\nsubset: default\nmetric: cosine_spearman\n"


def test_smoke_tasks_are_registered_lazily_and_accepted(tmp_path, monkeypatch):
    _tmp_conf(tmp_path, monkeypatch, {"NVEvalSmokeGhost": SMOKE_YAML})
    calls = []
    monkeypatch.setattr("nvembed_eval.tasks.smoke.classes.register", lambda: calls.append(1))
    monkeypatch.setattr(
        "nvembed_eval.tasks.specs._mteb_task", lambda name: object() if name == "NVEvalSmokeGhost" else None
    )
    assert resolve_task_names(["NVEvalSmokeGhost"], []) == ["NVEvalSmokeGhost"]
    assert calls, "nvembed_eval.tasks.smoke.classes.register() was not called"
    spec = load_task_spec("NVEvalSmokeGhost")
    assert spec.metric == "cosine_spearman" and not spec.has_instruction and spec.subtasks == ()
    assert list(list_task_specs()) == ["NVEvalSmokeGhost"]


def test_yaml_task_unknown_to_mteb_is_rejected(tmp_path, monkeypatch):
    _tmp_conf(tmp_path, monkeypatch, {"NVEvalSmokeGhost": SMOKE_YAML})
    monkeypatch.setattr("nvembed_eval.tasks.smoke.classes.register", lambda: None)  # NVEvalSmokeGhost: no class
    with pytest.raises(TaskNotFoundError, match=r"NVEvalSmokeGhost\.yaml but is not registered in mteb"):
        resolve_task_names(["NVEvalSmokeGhost"], [])


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name: SciFact\ntype: Retrieval\nsplit: test\nsubset: default\nmetric: x\nmetrc: y\n", "unknown key 'metrc'"),
        ("name: SciFact\ntype: Retrieval\nsplit: test\nsubset: default\n", "lacks required key 'metric'"),
        ("name: Other\ntype: Retrieval\nsplit: test\nsubset: default\nmetric: x\n", "differs from its file SciFact"),
        ("name: SciFact\ntype: Retreival\nsplit: test\nsubset: default\nmetric: x\n", "did you mean Retrieval"),
        ("name: SciFact\ntype: [unclosed\n", "malformed YAML"),
        ("name: SciFact\ntype: STS\nsplit: t\nsubset: d\nmetric: x\ninstructions: {passage: hi}\n", "side 'passage'"),
    ],
)
def test_bad_task_yaml_is_reported_not_skipped(tmp_path, monkeypatch, text, message):
    _tmp_conf(tmp_path, monkeypatch, {"SciFact": text})
    with pytest.raises(ConfigError, match=message):
        load_task_spec("SciFact")
    with pytest.raises(ConfigError, match=message):
        list_task_specs()


def test_unknown_benchmark_lists_choices():
    with pytest.raises(ConfigError, match=r"benchmark=mteb_eng.*mteb_eng_v1.*retrieval"):
        list(Benchmark.named("mteb_eng").tasks)


def test_instructions_table_marks_every_standin_unverified_with_provenance():
    table7 = load_table7()
    assert len(table7["entries"]) == 31
    for name, entry in table7["entries"].items():
        assert entry["verified"] is False and entry["source"] in table7["sources"], name
        assert "UNVERIFIED" in entry["reference_source"], name
    nv = json.loads((instructions_dir() / "nv_embed_v2_instructions.json").read_text())
    assert set(table7["entries"]).isdisjoint(nv)


def test_every_task_yaml_in_the_repo_loads_and_resolves():
    # Covers the smoke tasks' YAMLs (same schema) once they are in conf/task.
    specs = list_task_specs()
    assert set(BENCHMARK) <= set(specs)
    assert resolve_task_names(sorted(specs), []) == sorted(specs)
