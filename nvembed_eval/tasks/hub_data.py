"""Hub datasets without a network: which cached commit `datasets` loads, whether the loaded files came from it, and a
network failure told from unreadable data. Why: offline, `datasets` 5.x ignores the requested revision and serves the
most recently modified `<repo>/<config>/<version>/<commit>/` (`datasets.packaged_modules.cache._find_hash_in_cache`):
two cached commits of one repository would silently give the wrong data."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nvembed_eval.errors import DataError, first_line

if TYPE_CHECKING:
    from mteb import AbsTask

log = logging.getLogger(__name__)


def hub_offline() -> bool:
    """`datasets`' own `config.HF_HUB_OFFLINE` (read from `HF_DATASETS_OFFLINE`, else `HF_HUB_OFFLINE`, on import)."""
    from datasets import config

    return bool(config.HF_HUB_OFFLINE)


def offline_unless_reachable(timeout: float = 5.0) -> None:
    """When offline mode is not set and the hub's endpoint does not answer a HEAD request (huggingface_hub's session,
    proxies included) within `timeout` seconds, switch huggingface_hub, transformers and datasets to offline mode for
    this process and say so once: their caches then answer at once, or the run stops in one line, instead of after
    minutes of retries with back-off (165 s measured for one dataset)."""
    import datasets.config
    import huggingface_hub.constants as hub
    from huggingface_hub.utils import get_session

    if hub_offline() or hub.HF_HUB_OFFLINE:
        return
    try:
        get_session().head(hub.ENDPOINT, timeout=timeout)
        return
    except Exception as exc:  # any transport failure: connection refused, DNS, timeout, proxy
        reason = f"{type(exc).__name__}: {(str(exc).splitlines() or [''])[0][:120]}"
    hub.HF_HUB_OFFLINE = datasets.config.HF_HUB_OFFLINE = True
    os.environ["HF_HUB_OFFLINE"] = "1"  # transformers and any child process read the variable
    message = "the Hugging Face hub (%s) cannot be reached (%s); running offline: hub data and models come from the"
    log.warning(message + " local caches (set HF_HUB_OFFLINE=1 to skip this check)", hub.ENDPOINT, reason)


def repo_cache_dir(repo: str) -> Path:
    """`<HF_DATASETS_CACHE>/<namespace>___<snake_case name>`: where `datasets` keeps a hub repository's data."""
    from datasets import config
    from datasets.naming import camelcase_to_snakecase

    parts = repo.split("/")
    parts[-1] = camelcase_to_snakecase(parts[-1])
    return Path(config.HF_DATASETS_CACHE).expanduser() / "___".join(parts)


def cached_commits(repo: str) -> dict[str, list[Path]]:
    """Commit -> its prepared folders (one per config) in the `datasets` cache; {} when the repository is not cached.
    For a hub repository `datasets` names the folder after the commit it prepared (`DatasetModule.hash`)."""
    root = repo_cache_dir(repo)
    found: dict[str, list[Path]] = {}
    for folder in sorted(root.glob("*/*/*")) if root.is_dir() else []:
        if folder.is_dir() and (folder / "dataset_info.json").is_file():
            found.setdefault(folder.name, []).append(folder)
    return found


def select_cached_commit(repo: str, revision: str) -> bool:
    """Make `revision` the commit `datasets` loads from its cache offline by marking its folders the most recently
    modified (the rule `datasets` uses offline); nothing else changes. False when the commit is not cached."""
    folders = cached_commits(repo).get(revision)
    if not folders:
        return False
    now = time.time()
    for folder in folders:
        os.utime(folder, (now, now))
    return True


def verify_loaded_commit(task: AbsTask, repo: str, revision: str) -> bool:
    """Check that the loaded task's cached files all come from `revision`: True when verified, False when no loaded
    dataset is backed by cached files (nothing to check). Raises `DataError` when some data came from another commit
    (the cache served what the hub would not have)."""
    root = repo_cache_dir(repo).resolve()
    commits: set[str] = set()
    seen: set[int] = set()

    def walk(value: Any) -> None:
        if id(value) in seen:
            return
        seen.add(id(value))
        files = getattr(value, "cache_files", None)
        if isinstance(files, list):  # a datasets.Dataset
            for entry in files:
                path = Path(entry.get("filename", "")).resolve()
                if root in path.parents:
                    commits.add(path.relative_to(root).parts[2])  # <config>/<version>/<commit>/file
            return
        for item in value.values() if isinstance(value, dict) else value if isinstance(value, list | tuple) else ():
            walk(item)

    walk(getattr(task, "dataset", None))  # the commits whose cached files back the datasets the task holds
    if not commits:
        return False
    if commits != {revision}:
        others = ", ".join(sorted(c[:8] for c in commits - {revision}))
        raise DataError(
            f"{task.metadata.name}: datasets loaded {repo} from its cache at commit {others}, not the requested "
            f"{revision[:8]} (offline it serves the most recently cached commit); run once with network access, "
            f"remove the other commit from {repo_cache_dir(repo)}, or give the data with data_dir="
        )
    return True


def is_network_error(exc: BaseException) -> bool:
    """Whether a loading failure means "the hub could not be reached" (not unreadable data): a connection or timeout
    error of the standard library, httpx or huggingface_hub (offline mode, "not in the local cache") in its causes."""
    from huggingface_hub import errors as hub_errors
    from huggingface_hub.utils import httpx  # the HTTP client huggingface_hub and datasets use, whatever its package

    optional = (getattr(hub_errors, n, None) for n in ("OfflineModeIsEnabled", "LocalEntryNotFoundError"))
    network = (ConnectionError, TimeoutError, httpx.NetworkError, httpx.TimeoutException, *filter(None, optional))
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, network):
            return True
        current = current.__cause__ or current.__context__
    return False


def network_error(task_name: str, repo: str, revision: str, exc: BaseException) -> DataError:
    reason = first_line(exc, 160)
    offline = "offline (HF_HUB_OFFLINE set, or the hub unreachable) and not in the datasets cache"
    where = offline if hub_offline() else f"the Hugging Face hub could not be reached ({type(exc).__name__}: {reason})"
    return DataError(
        f"{task_name}: cannot load {repo}@{revision[:8]}: {where}; give the data with data_dir=<folder> "
        "(docs/local_data.md), or fill the datasets cache once with network access and set HF_HUB_OFFLINE=1"
    )
