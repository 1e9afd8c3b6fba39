"""Where each task's data comes from (a local folder `data_dir`, the package for smoke tasks, or a hub dataset commit),
which tasks a run can serve at all (coverage), the data part of a result's provenance, and loading it."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nvembed_eval.errors import DataError
from nvembed_eval.io import folder_sha256
from nvembed_eval.tasks.data_checks import check_evaluable
from nvembed_eval.tasks.hub_data import cached_commits, hub_offline
from nvembed_eval.tasks.local_data import load_local_task_data
from nvembed_eval.tasks.revisions import MTEB, build_mteb_task, hub_datasets, hub_leaves, load_hub_data
from nvembed_eval.tasks.smoke import DATA_DIR as SMOKE_DATA
from nvembed_eval.tasks.smoke import SMOKE_TASK_NAMES
from nvembed_eval.tasks.specs import content_revision

if TYPE_CHECKING:
    from mteb import AbsTask

    from nvembed_eval.tasks.specs import TaskSpec

log = logging.getLogger(__name__)

LOCAL, PACKAGE, HUB = "local", "package", "hub"


@dataclass
class TaskData:
    """One task's mteb object (narrowed to the spec's split and subset) and the source of its data."""

    spec: TaskSpec
    task: AbsTask
    source: str  # "local", "package" or "hub"
    folders: list[Path] = field(default_factory=list)  # what a local or packaged task reads (one per subtask)
    revision_source: str = MTEB  # hub data: where the commit comes from: "card", "mteb" or "mteb (<why>)"
    verified: bool = False  # hub data: whether the loaded files were checked to come from the requested commit
    _digest: str | None = None
    _requested: list[tuple[str, str]] = field(default_factory=list)  # hub (repository, commit) asked for, in order

    def __post_init__(self) -> None:
        if self.source == HUB:  # before loading: a fallback to mteb's commit replaces `task`, not what was asked for
            self._requested = hub_datasets(self.task)

    def record(self, loaded_revision: str | None = None) -> dict[str, Any]:
        """The data part of the result's provenance (docs/provenance.md): what identifies the data's content, and
        where it came from. Before loading it is what a result of this data must match; after loading, pass mteb's
        `dataset_revision` for hub data to add the commit that was loaded and whether it was verified."""
        if self.source == HUB:
            datasets = [{"repository": r, "revision": c} for r, c in self._requested]
            if len(datasets) == 1:
                out: dict[str, Any] = {"source": HUB, **datasets[0]}
            else:
                names = [leaf.metadata.name for leaf in hub_leaves(self.task)]
                out = {"source": HUB, "subtasks": dict(zip(names, datasets, strict=True))}
            out["revision_source"] = self.revision_source
            if loaded_revision is not None:
                out |= {"loaded_revision": loaded_revision, "verified": self.verified}
            return out
        if self._digest is None:
            self._digest = _digest(self.folders)
        paths = [str(f) for f in self.folders]
        out = {"source": self.source, "path": paths[0] if len(paths) == 1 else paths, "sha256": self._digest}
        return out | ({"revision_source": self.source} if loaded_revision is not None else {})

    def dataset_revision(self, loaded: str) -> str:
        """The `dataset_revision` a result of this data records: the hub commit mteb `loaded`, or for local and
        packaged data its content label (`local:sha256:<16 hex>`), never a hub commit it did not come from."""
        return loaded if self.source == HUB else content_revision(self.source, self.record()["sha256"])

    @property
    def revision_label(self) -> str:
        """run.json's `dataset_revision_source`: card, mteb, mteb (<why>) for hub data, else local or package."""
        return self.revision_source if self.source == HUB else self.source

    @property
    def source_label(self) -> str:
        """run.json's `dataset_source`: hub, package, or local:<folder>."""
        return f"local:{self.folders[0]}" if self.source == LOCAL else self.source

    def load(self) -> None:
        """Read the data into `task` (local and packaged folders), or load and check the hub commit; then check that
        the evaluator can score it (`data_checks.check_evaluable`), before anything is encoded. Raises `DataError` when
        the data cannot be read, came from another commit, or is degenerate for the task's metric."""
        if self.source == HUB:
            self.task, self.revision_source, self.verified = load_hub_data(self.spec, self.task, self.revision_source)
        elif self.source == LOCAL:
            for leaf, folder in zip(hub_leaves(self.task), self.folders, strict=True):
                load_local_task_data(leaf, folder.parent, split=leaf.eval_splits[0], subset=leaf.hf_subsets[0])
        else:
            self.task.load_data()  # smoke tasks read their packaged folder themselves
        for leaf in hub_leaves(self.task):
            check_evaluable(leaf)

    def release(self) -> None:
        """Drop the data: the full benchmark would otherwise hold every corpus in memory."""
        for leaf in hub_leaves(self.task):
            if leaf.data_loaded:  # mteb unloads some tasks itself after evaluating them
                leaf.unload_data()


def _digest(folders: list[Path]) -> str:
    try:
        digests = [folder_sha256(f) for f in folders]
    except OSError as exc:
        raise DataError(f"cannot read the task data under {folders[0]} ({exc}); check the files' permissions") from None
    # an aggregate: the digest of its subtasks' folders' digests
    return digests[0] if len(digests) == 1 else hashlib.sha256("".join(digests).encode("ascii")).hexdigest()


def plan_task_data(
    specs: list[TaskSpec], *, data_dir: Path | None, dataset_revision: str, explicit: bool
) -> dict[str, TaskData]:
    """Task name -> `TaskData` of every task a run can serve, in run order, decided before any model loads. Tasks named
    with `tasks=[...]` (`explicit`) must all be servable; a benchmark run serves those whose data is there and reports
    its coverage (e.g. 3/56), so the full experiment can be checked on CPU against local data or a partial offline
    cache. `data_dir` None: the hub, on the `dataset_revision` commit ("card" or "mteb"). Raises `DataError` when a
    named task's data is missing, or none of a benchmark's tasks can be served."""
    planned: dict[str, TaskData] = {}
    missing: dict[str, str] = {}
    if data_dir is not None and not data_dir.is_dir():
        what = "is not a folder" if data_dir.exists() else "does not exist"
        raise DataError(f"data_dir {data_dir} {what}; point data_dir= at a folder of <TaskName>/ folders")
    for spec in specs:
        task, revision_source = build_mteb_task(spec, dataset_revision if data_dir is None else MTEB)
        if spec.name in SMOKE_TASK_NAMES:
            if data_dir is not None and (data_dir / spec.name).exists():  # the user's data would be silently unread
                raise DataError(
                    f"data_dir has a folder for {spec.name}, but the smoke tasks are this package's own data and never "
                    f"read data_dir; run your data as a task of its own type (docs/local_data.md), or drop data_dir"
                )
            planned[spec.name] = TaskData(spec, task, PACKAGE, [SMOKE_DATA / spec.name])
        elif data_dir is not None:
            folders = [data_dir / leaf.metadata.name for leaf in hub_leaves(task)]
            absent = next((f for f in folders if not f.is_dir()), None)
            if absent is None:
                planned[spec.name] = TaskData(spec, task, LOCAL, folders)
            else:
                missing[spec.name] = (
                    f"data_dir has no folder for {absent.name}: expected {absent}/ in the {task.metadata.type} layout "
                    "(see docs/local_data.md), or drop data_dir to load from the hub"
                )
        else:
            uncached = [(r, c) for r, c in hub_datasets(task) if c not in cached_commits(r)] if hub_offline() else []
            if uncached:
                repo, commit = uncached[0]
                missing[spec.name] = (
                    f"offline (HF_HUB_OFFLINE set, or the hub unreachable) and the datasets cache has no {repo}@"
                    f"{commit[:8]} for {spec.name}; fill the cache once with network access, or give the data with "
                    "data_dir=<folder> (docs/local_data.md)"
                )
            else:
                planned[spec.name] = TaskData(spec, task, HUB, revision_source=revision_source)
    smoke = [name for name in planned if name in SMOKE_TASK_NAMES]
    if data_dir is not None and smoke:
        log.warning("data_dir %s is not read by the %d smoke tasks: they run on packaged data", data_dir, len(smoke))
    if missing and (explicit or not planned):
        raise DataError(next(iter(missing.values())))
    if missing:
        where = f"data_dir {data_dir}" if data_dir is not None else "the offline datasets cache"
        total, skipped = len(planned) + len(missing), ", ".join(sorted(missing))
        log.warning("%s holds %d of the benchmark's %d tasks; skipping %s", where, len(planned), total, skipped)
    return planned
