"""A run folder: one mteb TaskResult JSON per task under `results/`, plus `run.json`, written atomically and locked.

Layout::

    <run_dir>/run.json               resolved config, overrides, versions, model identity, per-task records
    <run_dir>/model_meta.json        mteb ModelMeta of the model (as mteb's own result cache writes it)
    <run_dir>/results/<Task>.json    mteb TaskResult (read back with mteb.TaskResult.from_disk)
    <run_dir>/.hydra/                Hydra's own record of the config and overrides
"""

from __future__ import annotations

import json
import platform
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nvembed_eval.atomic import atomic_write
from nvembed_eval.errors import OutputLockedError, ResultsError

if TYPE_CHECKING:
    from mteb import TaskResult

    from nvembed_eval.models import ModelIdentity

RESULTS_SUBDIR = "results"
RUN_FILE = "run.json"
LOCK_FILE = ".run.lock"
TRACKED_PACKAGES = (
    "nvembed-eval",
    "mteb",
    "torch",
    "transformers",
    "sentence-transformers",
    "tokenizers",
    "scikit-learn",
    "scipy",
    "pytrec-eval-terrier",
    "numpy",
    "datasets",
    "hydra-core",
)


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write(path, (json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n").encode("utf-8"))


def package_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name in TRACKED_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def git_revision(cwd: Path) -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=5, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None


class RunFolder:
    """Owns one run directory: lock, run.json bookkeeping, atomic TaskResult writes, resume decisions."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self.results_dir = run_dir / RESULTS_SUBDIR
        self.run_file = run_dir / RUN_FILE
        self.record: dict[str, Any] = {}

    @contextmanager
    def locked(self) -> Iterator[RunFolder]:
        """Exclusive lock on the folder; a second writer is refused (never interleaved files).

        The lock is an OS-level file lock, so a killed run releases it and a rerun can resume.
        """
        from filelock import FileLock, Timeout

        self.run_dir.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(self.run_dir / LOCK_FILE), timeout=0)
        try:
            lock.acquire()
        except Timeout:
            raise OutputLockedError(
                f"another nvembed-eval run is writing {self.run_dir}; wait for it to finish or choose another "
                "output_dir=..."
            ) from None
        try:
            yield self
        finally:
            lock.release()

    def load_record(self) -> dict[str, Any]:
        if self.run_file.exists():
            try:
                self.record = json.loads(self.run_file.read_text(encoding="utf-8"))
            except json.JSONDecodeError as exc:
                raise ResultsError(
                    f"malformed {self.run_file} ({exc.msg} at line {exc.lineno}); move it away or choose another "
                    "output_dir"
                ) from exc
        return self.record

    def start(self, *, config: dict[str, Any], overrides: list[str], identity: ModelIdentity) -> None:
        """Create or re-open run.json. A folder that holds another model's results is refused."""
        previous = self.load_record().get("model")
        if previous and previous.get("identity_key") != identity.key() and self.finished_tasks():
            raise OutputLockedError(
                f"{self.run_dir} holds results of model {previous.get('name')}@{previous.get('revision')} with other "
                f"settings; use a new output_dir (results of two models are never mixed)"
            )
        self.record.update(
            {
                "config": config,
                "overrides": overrides,
                "versions": package_versions(),
                "git_revision": git_revision(Path(__file__).resolve().parent),
                "model": {
                    "name": identity.name,
                    "revision": identity.revision,
                    "knobs": identity.knobs,
                    "identity_key": identity.key(),
                },
            }
        )
        self.record.setdefault("tasks", {})
        self._save()

    def finished_tasks(self) -> set[str]:
        """Tasks whose TaskResult file exists and whose run.json record says it completed for this model."""
        tasks = self.record.get("tasks", {})
        return {
            name
            for name, entry in tasks.items()
            if entry.get("status") == "done" and (self.results_dir / f"{name}.json").exists()
        }

    def is_done(self, task_name: str, identity: ModelIdentity) -> bool:
        entry = self.record.get("tasks", {}).get(task_name, {})
        return task_name in self.finished_tasks() and entry.get("identity_key") == identity.key()

    def result_path(self, task_name: str) -> Path:
        return self.results_dir / f"{task_name}.json"

    def write_result(self, result: TaskResult, entry: dict[str, Any]) -> Path:
        """Write the TaskResult atomically (mteb's own serialisation), then record it in run.json."""
        path = self.result_path(result.task_name)
        with tempfile.TemporaryDirectory(dir=self.run_dir) as scratch:
            scratch_file = Path(scratch) / path.name
            result.to_disk(scratch_file)
            atomic_write(path, scratch_file.read_bytes())
        self.record.setdefault("tasks", {})[result.task_name] = {"status": "done", **entry}
        self._save()
        return path

    def write_model_meta(self, meta: dict[str, Any]) -> None:
        atomic_write_json(self.run_dir / "model_meta.json", meta)

    def _save(self) -> None:
        atomic_write_json(self.run_file, self.record)
