"""A run folder, the only code that knows its layout (`RunPaths`): one mteb TaskResult JSON per task with its
provenance, the run's records, locked against a second writer, written atomically, and taken back whole when the run is
refused."""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import platform
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nvembed_eval.errors import OutputLockedError, ResultsError
from nvembed_eval.io import atomic_write, installed_versions, non_finite_to_null, parse_json, read_text, write_json
from nvembed_eval.results.provenance import differences, summarize
from nvembed_eval.results.scores import PROVENANCE_KEY

if TYPE_CHECKING:
    from mteb import TaskResult

    from nvembed_eval.models.base import ModelIdentity

# The packages whose versions run.json records: those that can change a score, and this harness.
TRACKED_PACKAGES = ("nvembed-eval", "mteb", "torch", "transformers", "sentence-transformers", "tokenizers")
TRACKED_PACKAGES += ("scikit-learn", "scipy", "pytrec-eval-terrier", "numpy", "datasets", "hydra-core")


def _child(name: str) -> property:
    """A `RunPaths` property: `run_dir / name`."""
    return property(lambda paths: paths.run_dir / name)


@dataclass(frozen=True)
class RunPaths:
    """Where each record of a run lives."""

    run_dir: Path
    run_file = _child("run.json")  # resolved config, overrides, versions, model identity, per-task records
    model_meta = _child("model_meta.json")  # mteb ModelMeta of the model (as mteb's own result cache writes it)
    results = _child("results")  # <Task>.json: mteb TaskResult (TaskResult.from_disk reads it) + its provenance
    items = _child("items")  # <Task>.json: per-item values for the noise-aware gate, bound to the result by sha256
    predictions = _child("predictions")  # mteb's predictions (save_predictions=true)
    hydra = _child(".hydra")  # Hydra's record of the config and overrides, written once the run is accepted
    log = _child("nvembed-eval.log")  # the run's full log
    lock = _child(".run.lock")
    scratch = _child(".scratch")  # mteb's predictions of the task being scored when not kept (removed after each)

    def result(self, task: str) -> Path:
        return self.results / f"{task}.json"

    def written(self) -> tuple[Path, ...]:
        """Every path a run writes to: none may be a symbolic link (a write would land outside the folder)."""
        names = ("run_file", "model_meta", "results", "items", "predictions", "hydra", "log", "scratch")
        return tuple(getattr(self, name) for name in names)


def git_revision(cwd: Path) -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None


@dataclass(frozen=True)
class StoredResult:
    """A finished task's result file as found in a run folder: its provenance, or None when it has none."""

    provenance: dict[str, Any] | None


class RunFolder:
    """Owns one run directory: lock, run.json bookkeeping, atomic writes of results, items and records, and the checks
    that decide whether a stored result may be reused. Nothing is written before `start()`; every file and folder this
    invocation creates, and the old bytes of every record it replaces, are remembered, so `discard()` takes the run
    back without touching what was there before (a user's own files, an earlier run's results)."""

    def __init__(self, paths: RunPaths) -> None:
        self.paths = paths
        self.run_dir = paths.run_dir
        self.record: dict[str, Any] = {}
        self.results_written = 0
        self._created: list[Path] = []  # in creation order
        self._replaced: dict[Path, bytes] = {}  # records overwritten by this invocation -> their old bytes

    @contextmanager
    def locked(self) -> Iterator[RunFolder]:
        """Exclusive lock on the folder; a second writer is refused (never interleaved files). The lock is an OS-level
        file lock, so a killed run releases it and a rerun can resume. Raises OutputLockedError when another run holds
        it, ResultsError when a record the run would write is a symbolic link or the folder cannot be made."""
        from filelock import FileLock, Timeout

        self._mkdir(self.run_dir)
        for path in self.paths.written():
            if path.is_symlink():
                raise ResultsError(
                    f"{path} is a symbolic link; a run writes only inside its folder, so it refuses to follow it. "
                    "Replace the link with the real folder or file, or choose another output_dir"
                )
        if not self.paths.lock.exists():
            self._created.append(self.paths.lock)
        lock = FileLock(str(self.paths.lock), timeout=0)
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

    def load_record(self) -> dict[str, Any]:
        """Read run.json (empty when absent). Reads only. Raises ResultsError when it is not valid JSON."""
        if self.paths.run_file.exists():
            try:
                self.record = parse_json(read_text(self.paths.run_file))
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                raise ResultsError(
                    f"malformed {self.paths.run_file} ({exc}); move it away or choose another output_dir"
                ) from None
        return self.record

    def stored_result(self, task_name: str) -> StoredResult | None:
        """The result file of `task_name` and its provenance; None when there is no result file. Raises ResultsError,
        naming the file and how to recompute that task alone, when it is not a readable TaskResult of that task
        (corrupt, truncated, another task)."""
        path = self.paths.result(task_name)
        if not path.exists():
            return None
        fix = f"rerun with overwrite=[{task_name}] to recompute that task, or delete the file"
        try:
            data = parse_json(read_text(path), parse_constant=_refuse_constant)
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]
            raise ResultsError(f"unreadable result file {path} ({reason}); {fix}") from None
        if not isinstance(data, dict) or data.get("task_name") != task_name or not isinstance(data.get("scores"), dict):
            raise ResultsError(f"{path} is not an mteb TaskResult of {task_name}; {fix}")
        provenance = data.get(PROVENANCE_KEY)
        if provenance is not None and not isinstance(provenance, dict):
            raise ResultsError(f"{path} has a malformed '{PROVENANCE_KEY}' provenance record; {fix}")
        return StoredResult(provenance)

    def check_model(self, identity: ModelIdentity) -> None:
        """Refuse (OutputLockedError; reads only) a folder holding results of another model or model settings (results
        of two models are never mixed): each result file's provenance names its model; folders written before results
        carried provenance are judged by run.json's."""
        other = None
        results = sorted(self.paths.results.glob("*.json")) if self.paths.results.is_dir() else []
        for path in results:
            try:
                data = parse_json(read_text(path), parse_constant=_refuse_constant)
            except (OSError, UnicodeDecodeError, ValueError):
                continue  # reported by stored_result when the task is planned
            model = ((data.get(PROVENANCE_KEY) or {}) if isinstance(data, dict) else {}).get("model") or {}
            if model.get("identity_key") not in (None, identity.key()):
                other = f"{_model_change(model, identity)} (in {path.name})"
                break
        previous = self.record.get("model") or {}
        done = [n for n, e in (self.record.get("tasks") or {}).items() if e.get("status") == "done"]
        stale = previous.get("identity_key") not in (None, identity.key())
        if other is None and stale and any(self.paths.result(n).exists() for n in done):
            other = _model_change(previous, identity)
        if other is not None:
            raise OutputLockedError(
                f"{self.run_dir} holds results of another model or model settings, {other}; use a new output_dir "
                "(results of two models are never mixed)"
            )

    def reusable(
        self, expected: dict[str, dict[str, Any]], *, overwrite: bool | frozenset[str], trust_existing: bool
    ) -> dict[str, bool]:
        """The stored results a run keeps (reads only), as task name -> True when kept only by `trust_existing` (result
        files without provenance: plain mteb, older versions), False when its provenance matched `expected` (task name
        -> `provenance.make_provenance` of this run). `overwrite`: True, or the names of the tasks to recompute. Raises
        ResultsError (one line: the tasks, what differs (stored -> now), the fix) when a stored result was made with
        other settings, has no provenance (without `trust_existing`), or cannot be read: nothing is kept in a result
        while the run records settings it was not made with."""
        kept: dict[str, bool] = {}
        refused, unproven = [], []
        for name, wanted in expected.items():
            if overwrite is True or (isinstance(overwrite, frozenset) and name in overwrite):
                continue
            stored = self.stored_result(name)
            if stored is None:
                continue
            if stored.provenance is None and trust_existing:
                kept[name] = True
            elif stored.provenance is None:
                unproven.append(name)
            elif diffs := summarize(differences(stored.provenance, wanted)):
                more = f" (+{len(diffs) - 3} more)" if len(diffs) > 3 else ""
                refused.append(f"{name}: {'; '.join(diffs[:3])}{more}")
            else:
                kept[name] = False
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
        """Create or re-open run.json: the first write of a run, made only once every check has passed. `extra`: more
        top-level run.json entries (e.g. the benchmark and its resolved task list)."""
        versions = {"python": platform.python_version(), **installed_versions(TRACKED_PACKAGES)}
        git = git_revision(Path(__file__).resolve().parent)
        self.record.update(config=config, overrides=overrides, versions=versions, git_revision=git)
        self.record.update(model=identity.record(), **extra)
        self.record.setdefault("tasks", {})
        self._save()

    def write_hydra_record(self, records: dict[str, str]) -> None:
        """Hydra's record of the run (`.hydra/config.yaml`, `hydra.yaml`, `overrides.yaml`), as Hydra writes it, but
        only once the run is accepted (conf/hydra/default.yaml turns Hydra's own early write off)."""
        for name, text in records.items():
            self._write(self.paths.hydra / name, text.encode("utf-8"))

    def write_model_meta(self, meta: dict[str, Any]) -> None:
        self._write(self.paths.model_meta, (json.dumps(meta, indent=2, default=str) + "\n").encode("utf-8"))

    def claim_log(self) -> Path:
        """The run log's path, remembered as created when this invocation starts it (the logging module appends)."""
        if not self.paths.log.exists():
            self._created.append(self.paths.log)
        return self.paths.log

    def prediction_dir(self) -> Path:
        """`<run>/predictions/`, created (and remembered) if needed: mteb writes its files there."""
        self._mkdir(self.paths.predictions)
        return self.paths.predictions

    @contextmanager
    def scratch(self) -> Iterator[Path]:
        """An empty scratch folder inside the run folder, removed afterwards. What a killed run left there is removed
        first (the lock says no other run uses it), so nothing accumulates outside the folder or in it."""
        path = self.paths.scratch
        shutil.rmtree(path, ignore_errors=True)
        self._mkdir(path)
        try:
            yield path
        finally:
            shutil.rmtree(path, ignore_errors=True)

    def adopt(self, paths: list[Path]) -> None:
        """Files another library wrote into the folder for this run (mteb's predictions): taken back with the run."""
        for path in paths:
            if path not in self._created and path not in self._replaced:
                self._created.append(path)

    def remove_predictions(self, files: list[str]) -> None:
        """Remove earlier predictions of a task this run recomputes (mteb would merge into them)."""
        for name in files:
            path = self.paths.predictions / name
            if path.is_file() and not path.is_symlink():
                self._remember(path)
                path.unlink()

    def write_items(self, task_name: str, body: bytes) -> dict[str, str]:
        """Write `<run>/items/<Task>.json`; returns its record for the result's provenance: {"path", "sha256"}."""
        path = self.paths.items / f"{task_name}.json"
        self._write(path, body)
        return {"path": path.relative_to(self.run_dir).as_posix(), "sha256": hashlib.sha256(body).hexdigest()}

    def write_result(self, result: TaskResult, entry: dict[str, Any], provenance: dict[str, Any]) -> Path:
        """Write the TaskResult atomically (mteb's own serialisation plus its provenance), then record it in run.json.
        Raises ResultsError when a score is not a finite number (NaN, inf): nothing is written, the task failed."""
        path = self.paths.result(result.task_name)
        data = result.to_dict()
        # What `TaskResult.to_disk` adds to `to_dict()`: the date as a timestamp and scores rounded to 6 decimals.
        data["date"] = result.date.timestamp() if result.date else None
        result._round_scores(data["scores"], 6)
        bad = _non_finite_main_score(data.get("scores"))
        if bad:
            raise ResultsError(
                f"{result.task_name}: mteb's evaluator gave a non-finite main score ({bad}); the task is not recorded "
                "as finished. Check the task data (e.g. constant gold scores, a single class) and the model's vectors"
            )
        # Auxiliary metrics can be undefined on small data (mteb's nAUC of a perfect ranking is NaN): stored as null.
        data["scores"] = non_finite_to_null(data.get("scores"))
        data[PROVENANCE_KEY] = provenance
        # allow_nan=False: the file is strict JSON, never a bare NaN that other readers reject.
        self._write(path, (json.dumps(data, indent=2, allow_nan=False) + "\n").encode("utf-8"))
        self.record.setdefault("tasks", {})[result.task_name] = {"status": "done", **entry}
        self._save()
        self.results_written += 1
        return path

    def record_trusted(self, task_name: str) -> None:
        """run.json's entry for a result kept by `trust_existing=true`: what made it is unknown, so no settings are
        claimed for it (an earlier entry for the task, made by other settings, is replaced)."""
        note = "kept by trust_existing=true: the result file has no provenance record; what made it is unknown"
        self.record.setdefault("tasks", {})[task_name] = {"status": "kept", "provenance": None, "note": note}
        self._save()

    def _save(self) -> None:
        with writing(self.paths.run_file):
            self._remember(self.paths.run_file)
            write_json(self.paths.run_file, self.record)

    def _write(self, path: Path, body: bytes) -> None:
        with writing(path):
            self._mkdir(path.parent)
            self._remember(path)
            atomic_write(path, body)

    def _mkdir(self, folder: Path) -> None:
        with writing(folder):
            missing = [p for p in (folder, *folder.parents) if not p.exists()]
            folder.mkdir(parents=True, exist_ok=True)
            self._created += reversed(missing)

    def _remember(self, path: Path) -> None:
        """Before a write: a new file is remembered as created, an existing one (once) with its current bytes."""
        if path in self._replaced or path in self._created:
            return
        if path.is_file():
            self._replaced[path] = path.read_bytes()
        else:
            self._created.append(path)

    def discard(self) -> None:
        """Take back a run that recorded no result: remove every file and folder it created, newest first, and restore
        every record it replaced; nothing that existed before is removed (the run log keeps why the run stopped)."""
        for path in reversed(self._created):
            with contextlib.suppress(OSError):
                if path.is_symlink() or path.is_file():
                    path.unlink()
                elif path.is_dir():
                    shutil.rmtree(path)  # a folder this run created holds only what this run (and mteb) put there
        for path, body in self._replaced.items():
            if path != self.paths.log:
                with contextlib.suppress(OSError):
                    atomic_write(path, body)
        self._created.clear()
        self._replaced.clear()


@contextmanager
def writing(path: Path) -> Iterator[None]:
    """Turn a failed write under the run folder (full disk, read-only folder, a file where a folder should be) into one
    line; `atomic_write` has already removed its temp file, so no partial or empty file is left."""
    try:
        yield
    except OSError as exc:
        raise ResultsError(
            f"cannot write {path} ({exc.strerror or exc}); free disk space, fix the folder's permissions, or choose "
            "another output_dir"
        ) from None


def _model_change(stored: dict[str, Any], identity: ModelIdentity) -> str:
    """What differs between a stored model record and this run's model, e.g. `model.max_seq_length 8 -> 128`."""
    changes = summarize(differences({"model": stored}, {"model": identity.record()}))
    return "; ".join(changes) or f"{stored.get('name')}@{stored.get('revision')}"


def _refuse_constant(name: str) -> Any:
    """`parse_constant` for result files: a non-standard JSON constant (NaN, Infinity) is a ValueError."""
    raise ValueError(f"non-standard JSON constant {name}")


def _non_finite_main_score(scores: Any) -> str | None:
    """`<split>/<subset>=<value>` of the first split/subset whose `main_score` is missing or not a finite number."""
    for split, entries in (scores or {}).items():
        for entry in entries if isinstance(entries, list) else []:
            value = entry.get("main_score") if isinstance(entry, dict) else None
            if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
                subset = entry.get("hf_subset") if isinstance(entry, dict) else "?"
                return f"{split}/{subset} main_score={value}"
    return None
