"""A run folder: one mteb TaskResult JSON per task under `results/`, plus `run.json`, written atomically and locked.

Layout::

    <run_dir>/run.json               resolved config, overrides, versions, model identity, per-task records
    <run_dir>/model_meta.json        mteb ModelMeta of the model (as mteb's own result cache writes it)
    <run_dir>/results/<Task>.json    mteb TaskResult (mteb.TaskResult.from_disk reads it) + its provenance record
    <run_dir>/.hydra/                Hydra's record of the config and overrides, written once the run is accepted
    <run_dir>/nvembed-eval.log       the run's full log
"""

from __future__ import annotations

import contextlib
import json
import math
import platform
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nvembed_eval.atomic import atomic_write
from nvembed_eval.errors import OutputLockedError, ResultsError
from nvembed_eval.tracking.provenance import PROVENANCE_KEY, versions

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
    return {"python": platform.python_version(), **versions(TRACKED_PACKAGES)}


def git_revision(cwd: Path) -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=5, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None


@dataclass(frozen=True)
class StoredResult:
    """A finished task's result file as found in a run folder: its provenance, or None when it has none."""

    path: Path
    provenance: dict[str, Any] | None


class RunFolder:
    """Owns one run directory: lock, run.json bookkeeping, atomic TaskResult writes with their provenance, and the
    checks that decide whether a stored result may be reused. Nothing is written before `start()`, so a run refused
    by any check leaves the folder as it found it.
    """

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self.results_dir = run_dir / RESULTS_SUBDIR
        self.run_file = run_dir / RUN_FILE
        self.record: dict[str, Any] = {}
        self.started = False

    @contextmanager
    def locked(self) -> Iterator[RunFolder]:
        """Exclusive lock on the folder; a second writer is refused (never interleaved files).

        The lock is an OS-level file lock, so a killed run releases it and a rerun can resume. If the run is refused
        before `start()`, the lock file this run created is removed again, and so is the folder when nothing else is
        in it (Hydra creates the run folder before the run can check anything).
        """
        from filelock import FileLock, Timeout

        lock_path = self.run_dir / LOCK_FILE
        lock_existed = lock_path.exists()
        lock = FileLock(str(lock_path), timeout=0)
        with writing(self.run_dir):
            self.run_dir.mkdir(parents=True, exist_ok=True)
        try:
            lock.acquire()  # filelock's Timeout is an OSError: it must not pass through `writing`
        except Timeout:
            raise OutputLockedError(
                f"another nvembed-eval run is writing {self.run_dir}; wait for it to finish or choose another "
                "output_dir=..."
            ) from None
        try:
            yield self
        finally:
            lock.release()
            if not self.started and not lock_existed:
                with contextlib.suppress(OSError):
                    lock_path.unlink()
                with contextlib.suppress(OSError):
                    self.run_dir.rmdir()  # only succeeds when empty

    def load_record(self) -> dict[str, Any]:
        """Read run.json (empty when absent). Reads only.

        Raises:
            ResultsError: run.json is not valid JSON.
        """
        if self.run_file.exists():
            try:
                self.record = json.loads(self.run_file.read_text(encoding="utf-8"))
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                raise ResultsError(
                    f"malformed {self.run_file} ({exc}); move it away or choose another output_dir"
                ) from None
        return self.record

    def result_files(self) -> list[Path]:
        """The finished tasks' result files (`results/<Task>.json`), sorted."""
        return sorted(self.results_dir.glob("*.json")) if self.results_dir.is_dir() else []

    def stored_result(self, task_name: str) -> StoredResult | None:
        """The result file of `task_name` and its provenance; None when there is no result file.

        Raises:
            ResultsError: the file is not a readable TaskResult of that task (corrupt, truncated, another task); the
                message names the file and how to recompute that task alone.
        """
        path = self.result_path(task_name)
        if not path.exists():
            return None
        fix = f"rerun with overwrite=[{task_name}] to recompute that task, or delete the file"
        try:
            data = json.loads(path.read_text(encoding="utf-8"), parse_constant=_refuse_constant)
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise ResultsError(f"unreadable result file {path} ({_first_line(exc)}); {fix}") from None
        if not isinstance(data, dict) or data.get("task_name") != task_name or not isinstance(data.get("scores"), dict):
            raise ResultsError(f"{path} is not an mteb TaskResult of {task_name}; {fix}")
        provenance = data.get(PROVENANCE_KEY)
        if provenance is not None and not isinstance(provenance, dict):
            raise ResultsError(f"{path} has a malformed '{PROVENANCE_KEY}' provenance record; {fix}")
        return StoredResult(path, provenance)

    def other_model(self, identity: ModelIdentity) -> str | None:
        """A description of another model whose results this folder holds, or None. Reads only.

        Each result file's provenance names its model; folders written before results carried provenance are judged
        by run.json's model record.
        """
        for path in self.result_files():
            try:
                data = json.loads(path.read_text(encoding="utf-8"), parse_constant=_refuse_constant)
            except (OSError, UnicodeDecodeError, ValueError):
                continue  # reported by stored_result when the task is planned
            model = ((data.get(PROVENANCE_KEY) or {}) if isinstance(data, dict) else {}).get("model") or {}
            if model.get("identity_key") not in (None, identity.key()):
                return f"{_model_change(model, identity)} (in {path.name})"
        previous = self.record.get("model") or {}
        done = [n for n, e in (self.record.get("tasks") or {}).items() if e.get("status") == "done"]
        if previous.get("identity_key") not in (None, identity.key()) and any(
            self.result_path(n).exists() for n in done
        ):
            return _model_change(previous, identity)
        return None

    def reusable(
        self, expected: dict[str, dict[str, Any]], *, overwrite: bool | frozenset[str], trust_existing: bool
    ) -> dict[str, bool]:
        """The stored results a run keeps: those whose provenance matches what the run would record. Reads only.

        Args:
            expected: task name -> the provenance a result of this run would carry (`provenance.make_provenance`).
            overwrite: True to recompute every task, or the names of the tasks to recompute.
            trust_existing: keep result files that carry no provenance (plain mteb, older versions) as they are.

        Returns:
            Task name -> True when kept only by `trust_existing`, False when its provenance matched.

        Raises:
            ResultsError: a stored result was made with other settings, has no provenance (without
                `trust_existing`), or cannot be read; one line naming the tasks, what differs (stored -> now) and the
                fix. Nothing is kept in a result while the run records settings it was not made with.
        """
        from nvembed_eval.tracking.provenance import differences, summarize

        kept: dict[str, bool] = {}
        refused: list[str] = []
        unproven: list[str] = []
        for name, wanted in expected.items():
            if overwrite is True or (isinstance(overwrite, frozenset) and name in overwrite):
                continue
            stored = self.stored_result(name)
            if stored is None:
                continue
            if stored.provenance is None:
                if trust_existing:
                    kept[name] = True
                else:
                    unproven.append(name)
                continue
            diffs = differences(stored.provenance, wanted)
            if not diffs:
                kept[name] = False
                continue
            shown = summarize(diffs)
            more = f" (+{len(shown) - 3} more)" if len(shown) > 3 else ""
            refused.append(f"{name}: {'; '.join(shown[:3])}{more}")
        if refused:
            names = [r.split(":", 1)[0] for r in refused]
            if isinstance(overwrite, frozenset):  # the tasks the user already recomputes stay in the suggested list
                names = sorted(set(names) | overwrite)
            shown = " | ".join(refused[:3]) + (f" | +{len(refused) - 3} more tasks" if len(refused) > 3 else "")
            raise ResultsError(
                f"{self.run_dir} holds results made with other settings ({shown}); recompute them with "
                f"overwrite=[{','.join(names)}] (or overwrite=true), or use a new output_dir"
            )
        if unproven:
            raise ResultsError(
                f"{self.run_dir} holds results without a provenance record ({', '.join(unproven[:5])}"
                f"{', ...' if len(unproven) > 5 else ''}: written by plain mteb or an older nvembed-eval), so what made"
                f" them is unknown; recompute them with overwrite=[{','.join(unproven)}], or keep them as they are "
                "with trust_existing=true"
            )
        return kept

    def start(self, *, config: dict[str, Any], overrides: list[str], identity: ModelIdentity, **extra: Any) -> None:
        """Create or re-open run.json: the first write of a run, made only once every check has passed.

        Args:
            config: the resolved config. overrides: the command-line overrides. identity: the model's identity.
            extra: more top-level run.json entries (e.g. the benchmark and its resolved task list).
        """
        self.record.update(
            {
                "config": config,
                "overrides": overrides,
                "versions": package_versions(),
                "git_revision": git_revision(Path(__file__).resolve().parent),
                "model": identity.record(),
                **extra,
            }
        )
        self.record.setdefault("tasks", {})
        self._save()
        self.started = True

    def result_path(self, task_name: str) -> Path:
        return self.results_dir / f"{task_name}.json"

    def write_result(self, result: TaskResult, entry: dict[str, Any], provenance: dict[str, Any]) -> Path:
        """Write the TaskResult atomically (mteb's own serialisation plus its provenance record), then record it in
        run.json.

        Raises:
            ResultsError: a score is not a finite number (NaN, inf); nothing is written, the task counts as failed.
        """
        path = self.result_path(result.task_name)
        with writing(self.run_dir), tempfile.TemporaryDirectory(dir=self.run_dir) as scratch:
            scratch_file = Path(scratch) / path.name
            result.to_disk(scratch_file)
            data = json.loads(scratch_file.read_text(encoding="utf-8"))
        bad = _non_finite_main_score(data.get("scores"))
        if bad:
            raise ResultsError(
                f"{result.task_name}: mteb's evaluator gave a non-finite main score ({bad}); the task is not recorded "
                "as finished. Check the task data (e.g. constant gold scores, a single class) and the model's vectors"
            )
        # Auxiliary metrics can be undefined on small data (mteb's nAUC of a perfect ranking is NaN): stored as null.
        data["scores"] = _nulls_for_non_finite(data.get("scores"))
        data[PROVENANCE_KEY] = provenance
        # allow_nan=False: the file is strict JSON, never a bare NaN that other readers reject.
        with writing(path):
            atomic_write(path, (json.dumps(data, indent=2, allow_nan=False) + "\n").encode("utf-8"))
        self.record.setdefault("tasks", {})[result.task_name] = {"status": "done", **entry}
        self._save()
        return path

    def record_trusted(self, task_name: str) -> None:
        """run.json's entry for a result kept by `trust_existing=true`: what made it is unknown, so no settings are
        claimed for it (an earlier entry for the task, made by other settings, is replaced)."""
        self.record.setdefault("tasks", {})[task_name] = {
            "status": "kept",
            "provenance": None,
            "note": "kept by trust_existing=true: the result file has no provenance record; what made it is unknown",
        }
        self._save()

    def write_model_meta(self, meta: dict[str, Any]) -> None:
        with writing(self.run_dir / "model_meta.json"):
            atomic_write_json(self.run_dir / "model_meta.json", meta)

    def _save(self) -> None:
        with writing(self.run_file):
            atomic_write_json(self.run_file, self.record)


@contextmanager
def writing(path: Path) -> Iterator[None]:
    """Turn a failed write under the run folder (full disk, read-only folder, a file where a folder should be) into
    one line; `atomic_write` has already removed its temp file, so no partial or empty file is left."""
    try:
        yield
    except OSError as exc:
        raise ResultsError(
            f"cannot write {path} ({exc.strerror or exc}); free disk space, fix the folder's permissions, or choose "
            "another output_dir"
        ) from None


def _model_change(stored: dict[str, Any], identity: ModelIdentity) -> str:
    """What differs between a stored model record and this run's model, e.g. `model.max_seq_length 8 -> 128`."""
    from nvembed_eval.tracking.provenance import differences, summarize

    now = {
        "name": identity.name,
        "revision": identity.revision,
        "knobs": identity.knobs,
        "identity_key": identity.key(),
    }
    changes = summarize(differences({"model": stored}, {"model": now}))
    return "; ".join(changes) or f"{stored.get('name')}@{stored.get('revision')}"


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"non-standard JSON constant {name}")


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]


def _non_finite_main_score(scores: Any) -> str | None:
    """`<split>/<subset>=<value>` of the first split/subset whose `main_score` is missing or not a finite number."""
    for split, entries in (scores or {}).items():
        for entry in entries if isinstance(entries, list) else []:
            value = entry.get("main_score") if isinstance(entry, dict) else None
            if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
                subset = entry.get("hf_subset") if isinstance(entry, dict) else "?"
                return f"{split}/{subset} main_score={value}"
    return None


def _nulls_for_non_finite(value: Any) -> Any:
    """A copy of a nested score structure with every NaN and infinity replaced by None (JSON null)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _nulls_for_non_finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_nulls_for_non_finite(v) for v in value]
    return value
