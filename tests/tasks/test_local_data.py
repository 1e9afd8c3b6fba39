"""`load_local_task_data` on the real ../shared/data and on small folders for every task type and bad input."""

from __future__ import annotations

import gzip
import json
import time
from pathlib import Path

import mteb
import pytest
from datasets import ClassLabel, Dataset, DatasetDict

from nvembed_eval.errors import ConfigError, DataError
from nvembed_eval.tasks.local_data import load_local_task_data

pytestmark = pytest.mark.filterwarnings("ignore:.*superseded")


def write_jsonl(path: Path, rows: list, *, gz: bool = False) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows)
    if gz:
        path = path.with_name(path.name + ".gz")
        path.write_bytes(gzip.compress(text.encode("utf-8"), mtime=0))
    else:
        path.write_text(text, encoding="utf-8")
    return path


def write_tsv(path: Path, lines: list[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def beir(folder: Path, *, qrels: list[str] | None = None, top_ranked: list | None = None) -> Path:
    write_jsonl(
        folder / "corpus.jsonl",
        [
            {"_id": "d1", "title": "Kettles", "text": "Descale a kettle with vinegar."},
            {"_id": "d2", "title": "", "text": " Bees make honey from nectar. "},
            {"_id": 3, "text": "An integer id and no title."},
        ],
    )
    write_jsonl(
        folder / "queries.jsonl",
        [
            {"_id": "q2", "text": "how is honey made"},
            {"_id": "q1", "text": "limescale in a kettle"},
            {"_id": "q9", "text": "a query without judgements"},
        ],
    )
    write_tsv(folder / "qrels" / "test.tsv", qrels or ["query-id\tcorpus-id\tscore", "q1\td1\t1", "q2\td2\t2"])
    if top_ranked is not None:
        write_jsonl(folder / "top_ranked" / "test.jsonl", top_ranked)
    return folder


def sts_rows(n: int = 4) -> list[dict]:
    return [{"sentence1": f"a{i}", "sentence2": f"b{i}", "score": i % 5} for i in range(n)]


def cls_rows(n: int) -> list[dict]:
    return [{"text": f"text {i}", "label": i % 2, "label_text": ["neg", "pos"][i % 2]} for i in range(n)]


def load(name: str, data_dir: Path, **kwargs):
    task = mteb.get_task(name)
    load_local_task_data(task, data_dir, **kwargs)
    return task


# ---------------------------------------------------------------- the real shared data


def test_stsbenchmark_real_data(shared_dir):
    task = load("STSBenchmark", shared_dir / "data")
    assert task.data_loaded and isinstance(task.dataset, DatasetDict) and list(task.dataset) == ["test"]
    test = task.dataset["test"]
    assert test.num_rows == 1379 and set(test.column_names) == {"sentence1", "sentence2", "score"}
    assert min(test["score"]) >= 0.0 and max(test["score"]) <= 5.0


def test_scifact_real_data_loads_fast(shared_dir):
    task = mteb.get_task("SciFact")
    start = time.perf_counter()
    load_local_task_data(task, shared_dir / "data")
    assert time.perf_counter() - start < 5.0
    split = task.dataset["default"]["test"]
    assert set(split) == {"corpus", "queries", "relevant_docs", "top_ranked"} and split["top_ranked"] is None
    assert split["corpus"].num_rows == 5183 and split["corpus"].column_names == ["id", "title", "text"]
    assert split["queries"].num_rows == 300 and split["queries"].column_names == ["id", "text"]
    assert sum(len(docs) for docs in split["relevant_docs"].values()) == 339
    assert set(split["relevant_docs"]) == set(split["queries"]["id"])


def test_banking77_real_data(shared_dir):
    task = load("Banking77Classification", shared_dir / "data")
    assert {s: task.dataset[s].num_rows for s in task.dataset} == {"train": 10003, "test": 3080}
    labels = json.loads((shared_dir / "data" / "Banking77Classification" / "labels.json").read_text())
    assert len(labels) == 77 and len(set(task.dataset["train"]["label"])) == 77
    assert task.dataset["test"].column_names == ["text", "label", "label_text"]


# ---------------------------------------------------------------- every task type, small folders


def test_retrieval_structure_matches_mtebs_loader(tmp_path):
    task = load("SciFact", beir(tmp_path / "SciFact").parent)
    split = task.dataset["default"]["test"]
    assert split["corpus"]["id"] == ["d1", "d2", "3"] and split["corpus"]["title"] == ["Kettles", "", ""]
    assert split["corpus"]["text"][1] == " Bees make honey from nectar. "  # text is kept as written
    assert split["queries"]["id"] == ["q2", "q1"]  # only queries with qrels, in file order
    assert split["relevant_docs"] == {"q1": {"d1": 1}, "q2": {"d2": 2}} and split["top_ranked"] is None


def test_retrieval_equals_mtebs_own_load_data_from_the_hub_format(tmp_path, monkeypatch):
    """mteb's real RetrievalDatasetLoader, fed the same rows as hub datasets, builds the same split data."""
    from mteb.abstasks import retrieval_dataset_loaders as loaders

    local = load("SciFact", beir(tmp_path / "SciFact").parent).dataset["default"]["test"]
    hub = {  # what the hub copy of these files would hold (mteb's loader casts _id to str itself)
        "corpus": Dataset.from_list(
            [
                {"_id": "d1", "title": "Kettles", "text": "Descale a kettle with vinegar."},
                {"_id": "d2", "title": "", "text": " Bees make honey from nectar. "},
                {"_id": "3", "title": "", "text": "An integer id and no title."},
            ]
        ),
        "queries": Dataset.from_list(
            [
                {"_id": "q2", "text": "how is honey made"},
                {"_id": "q1", "text": "limescale in a kettle"},
                {"_id": "q9", "text": "a query without judgements"},
            ]
        ),
        "default": Dataset.from_list(
            [{"query-id": "q1", "corpus-id": "d1", "score": 1}, {"query-id": "q2", "corpus-id": "d2", "score": 2}]
        ),
    }
    monkeypatch.setattr(loaders, "get_dataset_config_names", lambda *a, **k: list(hub))
    monkeypatch.setattr(loaders, "get_dataset_split_names", lambda *a, **k: ["test"])
    monkeypatch.setattr(loaders, "load_dataset", lambda repo, config, **k: hub[config])
    task = mteb.get_task("SciFact")
    task.load_data()
    theirs = task.dataset["default"]["test"]
    for key in ("corpus", "queries"):
        assert theirs[key].to_list() == local[key].to_list(), key
    assert theirs["relevant_docs"] == local["relevant_docs"] and theirs["top_ranked"] == local["top_ranked"]


def test_reranking_reads_top_ranked(tmp_path):
    top = [{"query-id": "q1", "corpus-ids": ["d1", "d2"]}, {"query-id": "q2", "corpus-ids": ["d2", 3]}]
    task = load("AskUbuntuDupQuestions", beir(tmp_path / "AskUbuntuDupQuestions", top_ranked=top).parent)
    assert task.dataset["default"]["test"]["top_ranked"] == {"q1": ["d1", "d2"], "q2": ["d2", "3"]}


def test_sts_gzip_and_plain(tmp_path):
    write_jsonl(tmp_path / "STSBenchmark" / "test.jsonl", sts_rows(), gz=True)
    task = load("STSBenchmark", tmp_path)
    assert task.dataset["test"]["score"] == [0.0, 1.0, 2.0, 3.0]


def test_multilingual_subset_folder(tmp_path):
    write_jsonl(tmp_path / "STS17" / "en-en" / "test.jsonl", sts_rows())
    task = load("STS17", tmp_path, subset="en-en")
    assert list(task.dataset) == ["en-en"] and task.hf_subsets == ["en-en"]
    assert task.dataset["en-en"]["test"].num_rows == 4


def test_classification_runs_mtebs_transform(tmp_path):
    folder = tmp_path / "ToxicConversationsClassification"
    write_jsonl(folder / "train.jsonl", cls_rows(12))
    write_jsonl(folder / "test.jsonl", cls_rows(8))
    (folder / "labels.json").write_text(json.dumps({"0": "neg", "1": "pos"}))
    task = load("ToxicConversationsClassification", tmp_path)
    assert set(task.dataset) == {"train", "test"} and task.dataset["train"].num_rows == 12
    # its dataset_transform (stratified_subsampling of test) ran: it casts the label column to ClassLabel
    assert isinstance(task.dataset["test"].features["label"], ClassLabel)


def test_pair_classification_transform_renames_are_already_done(tmp_path):
    rows = [{"sentence1": "a", "sentence2": "b", "label": 1}, {"sentence1": "c", "sentence2": "d", "label": 0}]
    write_jsonl(tmp_path / "SprintDuplicateQuestions" / "test.jsonl", rows)
    task = load("SprintDuplicateQuestions", tmp_path)  # its transform renames sent1/sent2 -> sentence1/sentence2
    assert task.dataset["test"].to_list() == [
        {"sentence1": "a", "sentence2": "b", "labels": 1},
        {"sentence1": "c", "sentence2": "d", "labels": 0},
    ]


def test_clustering_sets_legacy_and_fast(tmp_path):
    rows = [{"sentences": ["a", "b", "c", "d"], "labels": ["x", "y", "x", "y"]}, {"sentences": ["e"], "labels": ["x"]}]
    write_jsonl(tmp_path / "ArxivClusteringS2S" / "test.jsonl", rows)
    legacy = load("ArxivClusteringS2S", tmp_path)
    assert legacy.dataset["test"]["sentences"] == [["a", "b", "c", "d"], ["e"]]
    write_jsonl(tmp_path / "StackExchangeClustering.v2" / "test.jsonl", rows)
    fast = load("StackExchangeClustering.v2", tmp_path)  # its own transform concatenates the sets
    assert sorted(fast.dataset["test"]["sentences"]) == ["a", "b", "c", "d", "e"]


def test_summarization(tmp_path):
    row = {"text": "t", "human_summaries": ["h"], "machine_summaries": ["m1", "m2"], "relevance": [1, 4.5]}
    write_jsonl(tmp_path / "SummEval" / "test.jsonl", [row])
    task = load("SummEval", tmp_path)
    assert task.dataset["test"][0] == {**row, "relevance": [1.0, 4.5]}


def test_aggregate_task_loads_each_subtask(tmp_path):
    task = mteb.get_task("CQADupstackRetrieval")
    for sub in task.metadata.tasks:
        beir(tmp_path / sub.metadata.name)
    try:
        load_local_task_data(task, tmp_path)
        assert all(sub.data_loaded for sub in task.metadata.tasks)
    finally:  # mteb shares the subtask objects across instances of the aggregate
        for sub in task.metadata.tasks:
            if sub.data_loaded:
                sub.unload_data()


# ---------------------------------------------------------------- bad input: one line naming the file and the fix


def raises(match: str | None, name: str, data_dir: Path, **kwargs) -> str:
    task = mteb.get_task(name)
    with pytest.raises(DataError, match=match) as info:
        load_local_task_data(task, data_dir, **kwargs)
    message = str(info.value)
    assert "\n" not in message
    assert not task.data_loaded and task.dataset is None  # nothing half-written
    return message


def test_missing_task_folder_names_the_expected_layout(tmp_path):
    msg = raises("no folder for task SciFact", "SciFact", tmp_path)
    assert f"{tmp_path}/SciFact/{{corpus.jsonl.gz,queries.jsonl.gz,qrels/test.tsv}} (BEIR layout" in msg
    assert "docs/local_data.md" in msg
    msg = raises("STSBenchmark", "STSBenchmark", tmp_path)
    assert f"{tmp_path}/STSBenchmark/{{test.jsonl.gz}}" in msg and "sentence1, sentence2, score" in msg


def test_missing_split_files(tmp_path):
    write_jsonl(tmp_path / "STSBenchmark" / "train.jsonl", sts_rows())
    raises(f"missing split file {tmp_path}/STSBenchmark/test.jsonl.gz", "STSBenchmark", tmp_path)
    write_jsonl(tmp_path / "Banking77Classification" / "test.jsonl", cls_rows(4))
    raises("Banking77Classification/train.jsonl.gz", "Banking77Classification", tmp_path)
    beir(tmp_path / "SciFact").joinpath("qrels", "test.tsv").unlink()
    raises(f"missing split file {tmp_path}/SciFact/qrels/test.tsv", "SciFact", tmp_path)
    beir(tmp_path / "AskUbuntuDupQuestions")
    raises("AskUbuntuDupQuestions/top_ranked/test.jsonl.gz", "AskUbuntuDupQuestions", tmp_path)
    write_jsonl(tmp_path / "STS17" / "en-en" / "test.jsonl", sts_rows())
    raises(f"{tmp_path}/STS17/en-de/", "STS17", tmp_path, subset="en-de")


@pytest.mark.parametrize(
    ("bad_row", "expected"),
    [
        ("{not json", ":3: not valid JSON"),
        ("[1, 2]", ":3: expected a JSON object"),
        ('{"sentence1": "a", "score": 1}', ":3: missing key 'sentence2'"),
        (
            '{"sentence1": "a", "sentence2": "b", "score": "4.5"}',
            ":3: key 'score' must be a finite number, got \"4.5\"",
        ),
        ('{"sentence1": "a", "sentence2": 7, "score": 1}', ":3: key 'sentence2' must be a string, got 7"),
        ("", ":3: empty line"),
    ],
)
def test_malformed_row_names_file_and_line(tmp_path, bad_row, expected):
    path = write_jsonl(tmp_path / "STSBenchmark" / "test.jsonl", [*sts_rows(2), bad_row, *sts_rows(1)], gz=True)
    msg = raises(None, "STSBenchmark", tmp_path)
    assert msg.startswith(f"{path}{expected}"), msg


def test_malformed_rows_of_other_types(tmp_path):
    write_jsonl(
        tmp_path / "SprintDuplicateQuestions" / "test.jsonl", [{"sentence1": "a", "sentence2": "b", "label": 2}]
    )
    raises("test.jsonl:1: key 'label' must be the integer 0 or 1", "SprintDuplicateQuestions", tmp_path)
    write_jsonl(tmp_path / "ArxivClusteringS2S" / "test.jsonl", [{"sentences": ["a", "b"], "labels": ["x"]}])
    raises("test.jsonl:1: 2 sentences but 1 labels", "ArxivClusteringS2S", tmp_path)
    row = {"text": "t", "human_summaries": ["h"], "machine_summaries": ["m1", "m2"], "relevance": [1]}
    write_jsonl(tmp_path / "SummEval" / "test.jsonl", [row])
    raises("test.jsonl:1: 2 machine_summaries but 1 relevance scores", "SummEval", tmp_path)
    folder = tmp_path / "Banking77Classification"
    write_jsonl(folder / "train.jsonl", cls_rows(3))
    write_jsonl(folder / "test.jsonl", [*cls_rows(1), {"text": "x", "label": 1, "label_text": "neg"}])
    (folder / "labels.json").write_text(json.dumps({"0": "neg", "1": "pos"}))
    raises("test.jsonl:2: label_text 'neg' != labels.json\\[1\\] 'pos'", "Banking77Classification", tmp_path)
    write_jsonl(folder / "test.jsonl", [{"text": "x", "label": 5}])
    raises("test.jsonl:1: label 5 is not a key of labels.json", "Banking77Classification", tmp_path)


def test_corrupt_gzip_and_ambiguous_files(tmp_path):
    folder = tmp_path / "STSBenchmark"
    folder.mkdir()
    (folder / "test.jsonl.gz").write_bytes(b"this is not gzip")
    raises("test.jsonl.gz: cannot be read as UTF-8 JSON Lines \\(gzip\\)", "STSBenchmark", tmp_path)
    write_jsonl(folder / "test.jsonl", sts_rows())
    raises("both .*test.jsonl.gz and .*test.jsonl exist", "STSBenchmark", tmp_path)


def test_label_kinds_differ_between_rows_or_splits(tmp_path):
    """The classifier is trained on one split's labels and scored on another's: integer labels in train and text
    labels in test would end in scikit-learn's traceback mid-run, so the loader refuses them, naming both splits."""
    folder = tmp_path / "Banking77Classification"
    write_jsonl(folder / "train.jsonl", cls_rows(4))
    write_jsonl(folder / "test.jsonl", [{"text": "x", "label": "pos"}, {"text": "y", "label": "neg"}])
    msg = raises(None, "Banking77Classification", tmp_path)
    assert msg.startswith(f"{folder}/train.jsonl: its labels are int values but test's are str values; give every")
    write_jsonl(folder / "test.jsonl", [{"text": "x", "label": 0}, {"text": "y", "label": "pos"}])
    raises("test.jsonl:2: label 'pos' is not an int like the first row's", "Banking77Classification", tmp_path)


def test_a_folder_where_a_split_file_belongs(tmp_path):
    (tmp_path / "STSBenchmark" / "test.jsonl.gz").mkdir(parents=True)
    msg = raises(None, "STSBenchmark", tmp_path)
    assert (
        msg == f"{tmp_path}/STSBenchmark/test.jsonl.gz is not a regular file; put the split's rows in that file "
        "(see docs/local_data.md)"
    )


def test_unreadable_bytes_say_what_to_do(tmp_path):
    folder = tmp_path / "STSBenchmark"
    folder.mkdir()
    (folder / "test.jsonl").write_bytes('{"sentence1": "caf\u00e9"}\n'.encode("latin-1"))
    msg = raises("test.jsonl: cannot be read as UTF-8 JSON Lines \\(", "STSBenchmark", tmp_path)
    assert msg.endswith("; re-create the file (see docs/local_data.md)")


def test_qrels_naming_missing_document_or_query(tmp_path):
    folder = beir(tmp_path / "SciFact", qrels=["query-id\tcorpus-id\tscore", "q1\td1\t1", "q1\td404\t1"])
    msg = raises("corpus-id 'd404' is not in", "SciFact", tmp_path)
    assert msg.startswith(f"{folder}/qrels/test.tsv:3:") and str(folder / "corpus.jsonl") in msg
    beir(tmp_path / "SciFact", qrels=["q1\td1\t1", "q404\td1\t1"])  # no header line
    msg = raises("query-id 'q404' is not in", "SciFact", tmp_path)
    assert msg.startswith(f"{folder}/qrels/test.tsv:2:")
    beir(tmp_path / "SciFact", qrels=["q1\td1\tone"])
    raises("test.tsv:1: score 'one' is not an integer", "SciFact", tmp_path)
    top = [{"query-id": "q1", "corpus-ids": ["d1", "d404"]}]
    beir(tmp_path / "AskUbuntuDupQuestions", top_ranked=top)
    raises("top_ranked/test.jsonl:1: corpus-id 'd404' is not in", "AskUbuntuDupQuestions", tmp_path)


def test_duplicate_corpus_id(tmp_path):
    folder = beir(tmp_path / "SciFact")
    write_jsonl(folder / "corpus.jsonl", [{"_id": "d1", "text": "a"}, {"_id": "d1", "text": "b"}])
    raises("corpus.jsonl:2: duplicate _id 'd1' \\(first on line 1\\)", "SciFact", tmp_path)


def test_empty_split(tmp_path):
    path = tmp_path / "STSBenchmark" / "test.jsonl"
    write_jsonl(path, [])
    raises(f"{path}: the file is empty", "STSBenchmark", tmp_path)
    beir(tmp_path / "SciFact", qrels=["query-id\tcorpus-id\tscore"])
    raises(f"{tmp_path}/SciFact/qrels/test.tsv: the split is empty", "SciFact", tmp_path)


def test_unsupported_type_and_bad_arguments(tmp_path):
    raises("BUCC .*has no local data layout; supported: text Retrieval", "BUCC", tmp_path)
    write_jsonl(tmp_path / "STSBenchmark" / "test.jsonl", sts_rows())
    with pytest.raises(ConfigError, match="split='dev' is not an eval split of STSBenchmark"):
        load_local_task_data(mteb.get_task("STSBenchmark"), tmp_path, split="dev")
    with pytest.raises(ConfigError, match="subset='en' given for monolingual task"):
        load_local_task_data(mteb.get_task("STSBenchmark"), tmp_path, subset="en")
    with pytest.raises(ConfigError, match="subset='xx' is not an HF subset of STS17"):
        load_local_task_data(mteb.get_task("STS17"), tmp_path, subset="xx")


def test_a_data_dir_folder_for_a_smoke_task_is_refused(tmp_path, caplog):
    """The smoke tasks run on this package's data: a folder the user put there for one would be silently unread."""
    from nvembed_eval.tasks.data_source import plan_task_data
    from nvembed_eval.tasks.specs import load_task_spec, register_smoke_tasks

    register_smoke_tasks()
    specs = [load_task_spec("NVEvalSmokeSTS")]
    (tmp_path / "NVEvalSmokeSTS").mkdir()
    with pytest.raises(DataError, match=r"^data_dir has a folder for NVEvalSmokeSTS, but the smoke tasks are this"):
        plan_task_data(specs, data_dir=tmp_path, dataset_revision="card", explicit=True)
    (tmp_path / "NVEvalSmokeSTS").rmdir()
    assert list(plan_task_data(specs, data_dir=tmp_path, dataset_revision="card", explicit=True)) == ["NVEvalSmokeSTS"]
    assert "is not read by the 1 smoke tasks" in caplog.text
    (tmp_path / "file").write_text("x")
    with pytest.raises(DataError, match=r"^data_dir .*/file is not a folder; point data_dir= at a folder"):
        plan_task_data(specs, data_dir=tmp_path / "file", dataset_revision="card", explicit=True)
