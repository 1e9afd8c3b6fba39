"""An offline Hugging Face home for tests: mteb's dataset repositories, built from ../shared/data, prepared into the
`datasets` cache exactly where an online `load_dataset(repo, config, revision=commit)` leaves them
(`<HF_HOME>/datasets/<ns>___<name>/<config>/0.0.0/<commit>/`), so that with `HF_HUB_OFFLINE=1` mteb's own loaders
read them through `datasets`' own offline mechanism.

Why the `datasets` cache and not the hub cache (`<HF_HOME>/hub/datasets--...`): datasets 5.x raises in offline mode
before it looks at hub snapshots (`datasets.load.dataset_module_factory`), and serves only its prepared cache.
"""

from __future__ import annotations

import csv
import gzip
import json
import shutil
import tempfile
from pathlib import Path

# The commits mteb 2.26 and the NV-Embed-v2 card ask for (conf/task/<Task>.yaml).
STS = ("mteb/stsbenchmark-sts", "b0fddb56ed78048fa8b90373c8a3cfc37b684831")
BANKING77 = ("mteb/banking77", "0fd18e25b25c072e09e0d92ab615fda904d66300")
SCIFACT_MTEB = ("mteb/scifact", "d56462d0e63a25450459c4f213e49ffdb866f7f9")
SCIFACT_CARD = ("mteb/scifact", "0228b52cf27578f30900b9e5271d331663a030d7")
# The tiny random-weight NV-Embed as a hub model repository, at a made-up commit.
TINY_MODEL = ("nvembed-eval/NV-Embed-tiny", "7e57c0de" * 5)


def _readme(configs: dict[str, dict[str, str]]) -> str:
    """A dataset card whose `configs:` YAML maps each config's splits to files, as mteb's hub repositories do."""
    lines = ["---", "configs:"]
    for name, splits in configs.items():
        lines += [f"- config_name: {name}", "  data_files:"]
        lines += [f"  - split: {split}\n    path: {path}" for split, path in splits.items()]
    return "\n".join([*lines, "---", "", "Offline test copy built from ../shared/data.", ""])


def _jsonl_gz(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wt", encoding="utf-8") as handle:
        handle.writelines(json.dumps(r) + "\n" for r in rows)


def repo_files(task: str, data: Path, repo_dir: Path, *, unreadable: bool = False) -> dict[str, dict[str, str]]:
    """Write a task's hub repository (data files only) into `repo_dir` from ../shared/data; returns its configs.

    `unreadable=True` writes SciFact as an old commit mteb 2.x cannot read (qrels columns `query_id`, `doc_id`).
    All files of one repository are JSON Lines: `datasets` infers one builder for the whole repository.
    """
    src = data / task
    if task == "STSBenchmark":
        shutil.copy(src / "test.jsonl.gz", repo_dir / "test.jsonl.gz")
        return {"default": {"test": "test.jsonl.gz"}}
    if task == "Banking77Classification":
        for split in ("train", "test"):
            shutil.copy(src / f"{split}.jsonl.gz", repo_dir / f"{split}.jsonl.gz")
        return {"default": {"train": "train.jsonl.gz", "test": "test.jsonl.gz"}}
    if task == "SciFact":
        shutil.copy(src / "corpus.jsonl.gz", repo_dir / "corpus.jsonl.gz")
        shutil.copy(src / "queries.jsonl.gz", repo_dir / "queries.jsonl.gz")
        with (src / "qrels" / "test.tsv").open(newline="", encoding="utf-8") as handle:
            qrels = [{**r, "score": int(r["score"])} for r in csv.DictReader(handle, delimiter="\t")]
        if unreadable:  # an older column naming, which mteb 2.x's retrieval loader rejects when it loads the qrels
            qrels = [{"query_id": r["query-id"], "doc_id": r["corpus-id"], "score": r["score"]} for r in qrels]
        _jsonl_gz(repo_dir / "qrels" / "test.jsonl.gz", qrels)
        return {
            "default": {"test": "qrels/test.jsonl.gz"},
            "corpus": {"corpus": "corpus.jsonl.gz"},
            "queries": {"queries": "queries.jsonl.gz"},
        }
    raise KeyError(task)


def add_dataset(hf_home: Path, repo: str, commit: str, task: str, data: Path, *, unreadable: bool = False) -> None:
    """Prepare `repo` at `commit` into `<hf_home>/datasets` with `datasets`' own builder, as an online load would."""
    from datasets.load import DatasetModule, LocalDatasetModuleFactory, get_dataset_builder_class
    from datasets.naming import camelcase_to_snakecase

    cache = hf_home / "datasets"
    with tempfile.TemporaryDirectory() as scratch:
        repo_dir = Path(scratch) / repo.split("/")[-1]
        repo_dir.mkdir()
        configs = repo_files(task, data, repo_dir, unreadable=unreadable)
        (repo_dir / "README.md").write_text(_readme(configs), encoding="utf-8")
        local = LocalDatasetModuleFactory(str(repo_dir)).get_module()  # parses the card's `configs:` YAML
        name = camelcase_to_snakecase(repo.split("/")[-1])
        # What the hub module factory returns for `repo@commit`, with the files read locally: the hash is the commit.
        module = DatasetModule(
            local.module_path,
            commit,
            {"base_path": str(repo_dir), "dataset_name": name},
            dataset_infos=local.dataset_infos,
            builder_configs_parameters=local.builder_configs_parameters,
        )
        builder_cls = get_dataset_builder_class(module, dataset_name=name)
        for config in configs:
            builder = builder_cls(cache_dir=str(cache), config_name=config, hash=commit, **module.builder_kwargs)
            out = cache / f"{repo.split('/')[0]}___{name}" / builder.config_id / str(builder.config.version) / commit
            builder.download_and_prepare(output_dir=str(out))


def add_model(hf_home: Path, repo: str, commit: str, folder: Path) -> None:
    """A model repository snapshot in the hub cache (blobs + relative symlinks + refs/main), from a local folder."""
    import hashlib

    root = hf_home / "hub" / f"models--{repo.replace('/', '--')}"
    snapshot = root / "snapshots" / commit
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        blob = root / "blobs" / hashlib.sha256(path.read_bytes()).hexdigest()
        blob.parent.mkdir(parents=True, exist_ok=True)
        if not blob.exists():
            shutil.copy(path, blob)
        link = snapshot / path.relative_to(folder)
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(Path(*[".."] * (len(link.relative_to(root).parts) - 1), "blobs", blob.name))
    (root / "refs").mkdir(parents=True, exist_ok=True)
    (root / "refs" / "main").write_text(commit)


def offline_env(hf_home: Path) -> dict[str, str]:
    """Environment for a CLI run against this Hugging Face home, with no network."""
    return {
        "HF_HOME": str(hf_home),
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
    }


def build_hf_home(hf_home: Path, data: Path) -> Path:
    """STSBenchmark, Banking77 and SciFact at the commits the card and mteb ask for. SciFact's card commit is cached
    too, in a form mteb 2.26 cannot read, so the run's card -> mteb fallback runs for real."""
    add_dataset(hf_home, *STS, "STSBenchmark", data)
    add_dataset(hf_home, *BANKING77, "Banking77Classification", data)
    add_dataset(hf_home, *SCIFACT_MTEB, "SciFact", data)
    add_dataset(hf_home, *SCIFACT_CARD, "SciFact", data, unreadable=True)
    return hf_home
