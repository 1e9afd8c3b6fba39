"""Hugging Face hub ids -> the snapshot folder actually loaded and its 40-hex commit (never a branch: `main` moves)."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

from nvembed_eval.errors import CheckpointError

log = logging.getLogger(__name__)

HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
COMMIT = re.compile(r"^[0-9a-f]{40}$")


@dataclass(frozen=True)
class Snapshot:
    """A local model folder; for a hub download or a hub-cache snapshot folder, also its repo id and commit."""

    folder: Path
    repo_id: str | None = None
    commit: str | None = None


def is_hub_id(value: str) -> bool:
    """True for "org/name" strings that are not an existing path (a folder always wins over a hub id)."""
    return bool(HUB_ID.match(value)) and not Path(value).expanduser().exists()


def snapshot_of_folder(folder: Path) -> Snapshot:
    """A folder as is; one inside the hub cache layout (`models--org--name/snapshots/<commit>`) keeps its id and commit
    (its files are links into `../../blobs`, named by content hash, so the folder name pins its bytes)."""
    parts = folder.parts
    if len(parts) >= 3 and parts[-2] == "snapshots" and parts[-3].startswith("models--") and COMMIT.match(parts[-1]):
        org_name = parts[-3][len("models--") :].split("--", 1)
        if len(org_name) == 2:
            return Snapshot(folder, "/".join(org_name), parts[-1])
    return Snapshot(folder)


def download_snapshot(repo_id: str, revision: str | None, allow_patterns: list[str], key: str) -> Snapshot:
    """The snapshot folder of `repo_id` at `revision` (None = `main`), fetching only `allow_patterns`; offline or on
    failure, the cache only. CheckpointError (naming config key `key`): not downloadable nor cached, or no commit."""
    from huggingface_hub import snapshot_download

    try:  # offline (HF_HUB_OFFLINE), huggingface_hub itself answers from its cache
        local = snapshot_download(repo_id, revision=revision, allow_patterns=allow_patterns, local_files_only=False)
    except Exception as first:  # no network, gated repo, unknown revision...: try the local cache before giving up
        try:
            local = snapshot_download(repo_id, revision=revision, allow_patterns=allow_patterns, local_files_only=True)
            log.warning("hub download of %s failed (%s); using the cached snapshot %s", repo_id, first, local)
        except Exception:
            reason = str(first).splitlines()[0] if str(first) else ""
            raise CheckpointError(
                f"<{key}={repo_id!r}> (revision {revision or 'main'}) could not be downloaded "
                f"({type(first).__name__}: {reason}), is not in the Hugging Face cache and is no local folder; "
                f"download it where there is network (`hf download {repo_id}` with the same revision) or point {key} "
                "at a local folder."
            ) from None
    folder = Path(local)
    if not COMMIT.match(folder.name):
        fix = "repair the cache (`hf cache scan`) or download the model again."
        returned = f"the Hugging Face cache returned {folder} for <{key}={repo_id!r}>"
        raise CheckpointError(f"{returned}, which is not named by a commit; {fix}")
    return Snapshot(folder, repo_id, folder.name)
