"""Which dataset commit a hub run loads under dataset_revision=card|mteb, with the hub calls intercepted (offline)."""

from __future__ import annotations

import mteb
import pytest
from datasets import Dataset
from mteb.abstasks import retrieval_dataset_loaders as loaders

from nvembed_eval.tasks.revisions import build_mteb_task, load_hub_data
from nvembed_eval.tasks.specs import load_task_spec

# mteb 2.x re-uploaded these datasets under new repository names; the card's commits live in the old ones.
RENAMED = {
    "AmazonReviewsClassification": "mteb/amazon_reviews_multi",
    "MTOPDomainClassification": "mteb/mtop_domain",
    "MTOPIntentClassification": "mteb/mtop_intent",
    "AskUbuntuDupQuestions": "mteb/askubuntudupquestions-reranking",
    "MindSmallReranking": "mteb/mind_small",
    "SciDocsRR": "mteb/scidocs-reranking",
    "StackOverflowDupQuestions": "mteb/stackoverflowdupquestions-reranking",
}
SCIFACT_CARD, SCIFACT_MTEB = "0228b52cf27578f30900b9e5271d331663a030d7", "d56462d0e63a25450459c4f213e49ffdb866f7f9"


@pytest.fixture
def fake_hub(monkeypatch):
    """mteb's retrieval loader talking to a stand-in hub: records (repo, revision) of every call; a revision listed
    in `broken` raises the error `datasets` gives for a repository that still needs a loading script. The stand-in is
    an online hub, so the offline switches CI sets are turned off here."""
    import datasets.config

    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", False)  # what `datasets` read from the environment
    calls: list[tuple[str, str]] = []
    broken: set[str] = set()
    tables = {
        "corpus": Dataset.from_list([{"_id": "d1", "title": "", "text": "Kettles scale."}]),
        "queries": Dataset.from_list([{"_id": "q1", "text": "limescale"}]),
        "default": Dataset.from_list([{"query-id": "q1", "corpus-id": "d1", "score": 1}]),
    }

    def config_names(repo, revision=None, **kwargs):
        calls.append((repo, revision))
        if revision in broken:
            raise RuntimeError("Dataset scripts are no longer supported, but found scifact.py")
        return list(tables)

    def load(repo, config, *, revision=None, **kwargs):
        calls.append((repo, revision))
        return tables[config]

    monkeypatch.setattr(loaders, "get_dataset_config_names", config_names)
    monkeypatch.setattr(loaders, "get_dataset_split_names", lambda *a, **k: ["test"])
    monkeypatch.setattr(loaders, "load_dataset", load)
    return calls, broken


@pytest.mark.parametrize("name", sorted(RENAMED))
def test_card_commit_in_a_renamed_repository_is_not_requested(name, caplog):
    spec = load_task_spec(name)
    assert spec.dataset_path["card"] == RENAMED[name] != spec.dataset_path["mteb"]
    task, source = build_mteb_task(spec, "card")
    assert task.metadata.revision == spec.dataset_revision["mteb"] != spec.dataset_revision["card"]
    assert source.startswith(f"mteb (the card's commit {spec.dataset_revision['card'][:8]} is in {RENAMED[name]}")
    assert "no longer reads" in caplog.text and name in caplog.text


def test_card_commit_of_the_same_repository_is_loaded(fake_hub):
    calls, _ = fake_hub
    spec = load_task_spec("SciFact")
    task, source = build_mteb_task(spec, "card")
    assert source == "card" and task.metadata.revision == SCIFACT_CARD
    task, source, verified = load_hub_data(spec, task, source)
    assert source == "card" and task.data_loaded
    assert not verified  # the stand-in hub's tables are in memory: no cached files to check the commit against
    assert calls and set(calls) == {("mteb/scifact", SCIFACT_CARD)}
    assert mteb.get_task("SciFact").metadata.revision == SCIFACT_MTEB  # mteb's shared metadata is untouched


def test_card_commit_that_cannot_be_read_falls_back_to_mtebs(fake_hub, caplog):
    calls, broken = fake_hub
    broken.add(SCIFACT_CARD)
    spec = load_task_spec("SciFact")
    task, source, _ = load_hub_data(spec, *build_mteb_task(spec, "card"))
    assert task.metadata.revision == SCIFACT_MTEB and task.data_loaded
    assert source == (
        "mteb (the card's commit 0228b52c failed to load: RuntimeError: Dataset scripts are no longer supported, "
        "but found scifact.py)"
    )
    assert "loading mteb's commit d56462d0 instead" in caplog.text
    assert calls[0] == ("mteb/scifact", SCIFACT_CARD) and set(calls[1:]) == {("mteb/scifact", SCIFACT_MTEB)}


def test_mteb_choice_and_identical_commits(fake_hub):
    calls, _ = fake_hub
    spec = load_task_spec("SciFact")
    task, source, _ = load_hub_data(spec, *build_mteb_task(spec, "mteb"))
    assert (source, task.metadata.revision, task.data_loaded) == ("mteb", SCIFACT_MTEB, True)
    assert set(calls) == {("mteb/scifact", SCIFACT_MTEB)}
    sts = load_task_spec("STSBenchmark")  # the card and mteb use the same commit
    assert build_mteb_task(sts, "card")[1] == "card"
    assert build_mteb_task(load_task_spec("CQADupstackRetrieval"), "card")[1] == "mteb"  # subforums: mteb's


def test_a_network_failure_on_the_card_commit_fails_at_once_on_no_other_commit(fake_hub, monkeypatch):
    """The card -> mteb fallback is for data current libraries cannot read, never for an unreachable hub."""
    from huggingface_hub.utils import httpx

    from nvembed_eval.errors import DataError

    calls, _ = fake_hub

    def unreachable(repo, revision=None, **kwargs):
        calls.append((repo, revision))
        raise ConnectionError("Couldn't reach 'mteb/scifact' on the Hub") from httpx.ConnectError("no route")

    monkeypatch.setattr(loaders, "get_dataset_config_names", unreachable)
    spec = load_task_spec("SciFact")
    with pytest.raises(DataError, match=r"SciFact: cannot load mteb/scifact@0228b52c: the Hugging Face hub could not"):
        load_hub_data(spec, *build_mteb_task(spec, "card"))
    assert calls == [("mteb/scifact", SCIFACT_CARD)]  # tried once, on the requested commit only


def test_classification_scoring_gets_its_labels_as_one_array(shared_dir, monkeypatch):
    """mteb's seven classification metrics receive the test labels as one array, not as the `datasets.Column` that
    scikit-learn reads row by row (a second per Banking77 experiment), and give the same scores to the last bit."""
    import numpy as np
    from mteb.abstasks.classification import AbsTaskClassification

    from nvembed_eval.tasks.local_data import load_local_task_data

    original, received = AbsTaskClassification._calculate_scores, []

    def spy(self, y_test, y_pred):
        received.append(type(y_test))
        return original(self, y_test, y_pred)

    monkeypatch.setattr(AbsTaskClassification, "_calculate_scores", spy)
    task, _ = build_mteb_task(load_task_spec("Banking77Classification"), "mteb")
    load_local_task_data(task, shared_dir / "data", split="test", subset="default")
    labels = task.dataset["test"]["label"]
    predicted = np.random.default_rng(0).integers(0, 77, len(labels))
    scores = task._calculate_scores(labels, predicted)
    assert received == [np.ndarray]
    assert scores == original(task, labels, predicted)  # the Column as mteb hands it
    assert scores["accuracy"] == float(np.mean(np.asarray(labels) == predicted)) > 0
