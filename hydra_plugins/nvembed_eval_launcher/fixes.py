"""What `hydra/launcher=slurm` adds to Hydra's submitit launcher, found on a real SLURM cluster: job states without
accounting, one line per failed job naming its log, and torch.distributed variables for several tasks per job. Hydra
loads launchers from the `hydra_plugins` namespace only: `slurm_launcher.py` beside this file defines the class.
"""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from hydra.core.utils import JobReturn, JobStatus

log = logging.getLogger(__name__)

GONE = "NOT_IN_QUEUE"  # a submitted job that squeue no longer lists: it ended more than MinJobAge ago
# squeue's states of a job that has ended. submitit counts every state outside its short list of unfinished ones as
# ended; squeue also shows passing ones (CONFIGURING, SIGNALING, SUSPENDED, REQUEUE_HOLD, ...), read as RUNNING here.
ENDED = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "BOOT_FAIL", "DEADLINE"}
WAITING = {"PENDING", "RUNNING", "COMPLETING", "REQUEUED", "PREEMPTED"}
REQUEUE_EXIT = -1  # submitit's own sys.exit after it requeued a preempted or timed-out job (a pause, not a failure)


class JobFailed(RuntimeError):
    """A job's evaluation stopped with the CLI's one-line error (carried back to the launcher in its JobReturn)."""


class _ExitAsError:
    """The task function, with the CLI's `error: ...` + exit turned into an exception inside the job.

    The CLI ends a refused run with `sys.exit`; inside a submitit job that exit writes no result, so the launcher
    learns of it only from the job's state and prints a traceback. As an exception, Hydra records it in the job's
    JobReturn (FAILED) like any other error of the task, and the launcher prints the line.
    """

    def __init__(self, task_function: Callable[[Any], Any]) -> None:
        self.task_function = task_function

    def __call__(self, cfg: Any) -> Any:
        try:
            return self.task_function(cfg)
        except SystemExit as exc:
            if exc.code in (None, 0, REQUEUE_EXIT):
                raise
            raise JobFailed(_last_error_line() or f"the run exited with status {exc.code}") from None
        except Exception:
            traceback.print_exc()  # Hydra keeps only the exception; the job's log keeps where it came from
            raise


def _last_error_line() -> str | None:
    """The CLI's `error: ...` line, read back from this task's stderr log."""
    import submitit

    try:
        text = Path(submitit.JobEnvironment().paths.stderr).read_text(encoding="utf-8", errors="replace")
    except (OSError, RuntimeError):
        return None
    lines = [line[len("error: ") :] for line in text.splitlines() if line.startswith("error: ")]
    return lines[-1] if lines else None


def _array_index(job_id: str) -> int:
    """`12_3` -> 3; a job outside an array (a one-job sweep) is index 0."""
    _, _, index = job_id.partition("_")
    return int(index) if index.isdigit() else 0


def _job_id_from(message: str) -> str:
    """The job id in submitit's errors: `Job 12_3 (task: 0) with path ...`, or the log path `.../12_3_0_log.err`."""
    found = re.search(r"Job (\S+) \(task: \d+\)", message)
    found = found or re.search(r"/(\d+(?:_\d+)?)_\d+_log\.(?:err|out)", message)
    return found.group(1) if found else "?"


def _reason_from(exc: Exception) -> str:
    """One line from submitit's multi-line error: the state of a job that left no result, or the last line of the
    traceback of one that failed outside the evaluation."""
    message = str(exc)
    state = re.search(r"has not produced any output \(state: ([^)]*)\)", message)
    if state:
        return f"ended without a result (SLURM state {state.group(1).strip() or 'unknown'})"
    trace = message.split("----------------------")
    lines = [line for line in (trace[1] if len(trace) > 2 else message).splitlines() if line.strip()]
    return lines[-1].strip() if lines else type(exc).__name__


def accounting_enabled(run: Callable[..., str] = subprocess.check_output) -> bool:
    """Whether this cluster keeps job accounting (`sacct` answers); assumed yes when `scontrol` cannot tell."""
    try:
        config = run(["scontrol", "show", "config"], text=True, stderr=subprocess.DEVNULL, timeout=60)
    except (OSError, subprocess.SubprocessError):
        return True
    found = re.search(r"^AccountingStorageType\s*=\s*(\S+)", config, re.M)
    return not (found and found.group(1) == "accounting_storage/none")


def _queue_watcher_class() -> type:
    from submitit.slurm.slurm import SlurmInfoWatcher

    class QueueWatcher(SlurmInfoWatcher):
        """submitit reads job states from `sacct` only, which needs SLURM accounting (slurmdbd). Without it, sacct
        fails at every poll: submitit warns each time and never learns that a job ended, so a job that died without a
        result (scancel, time limit, node failure) is waited for forever. On such a cluster this asks the controller
        itself (`squeue --states=all`, which lists a job until MinJobAge after its end) and counts a job that is no
        longer listed as ended."""

        is_queue_watcher = True

        def __init__(self, delay_s: int = 600) -> None:
            super().__init__(delay_s)
            self.accounting: bool | None = None

        def _use_sacct(self) -> bool:
            if self.accounting is None:
                self.accounting = accounting_enabled()
                if not self.accounting:
                    log.info(
                        "SLURM accounting is off on this cluster (AccountingStorageType=accounting_storage/none): "
                        "job states come from squeue, not sacct"
                    )
            return self.accounting

        def _make_command(self) -> list[str] | None:
            if self._use_sacct():
                return super()._make_command()
            if not self._registered - self._finished:
                return None
            return ["squeue", f"--user={os.getuid()}", "--noheader", "--states=all", "--format=%i|%T|%N"]

        def read_info(self, string: bytes | str) -> dict[str, dict[str, str]]:
            if self._use_sacct():
                return super().read_info(string)
            text = string.decode() if isinstance(string, bytes) else string
            info = super().read_info("JobID|State|NodeList\n" + text)
            for job_id, stats in info.items():
                if stats["State"] not in ENDED | WAITING:
                    info[job_id] = {**stats, "State": "RUNNING", "SqueueState": stats["State"]}
            for job_id in self._registered - self._finished - set(info):
                info[job_id] = {"JobID": job_id, "State": GONE, "NodeList": ""}
            return info

    return QueueWatcher


class SlurmLauncherFixes:
    """Mixed into Hydra's submitit `SlurmLauncher` (conf/hydra/launcher/slurm.yaml):

    - in the launcher: job states from squeue when the cluster has no accounting (`QueueWatcher`), and each failed
      job reported as one line naming the job, its overrides and its log file, after every job has ended;
    - in each job: the CLI's one-line refusal carried back as a failed JobReturn, and for several tasks per job the
      torch.distributed variables (RANK, WORLD_SIZE, MASTER_ADDR, ...) that the model and the runner read.
    """

    def __call__(self, *args: Any, **kwargs: Any) -> JobReturn:
        import submitit

        if submitit.JobEnvironment().num_tasks > 1:
            # Several tasks per job (tasks_per_node): submitit sets SLURM_PROCID & co., torch reads RANK, WORLD_SIZE,
            # MASTER_ADDR/PORT. Every rank keeps all the job's GPUs visible and picks cuda:LOCAL_RANK itself.
            submitit.helpers.TorchDistributedEnvironment().export(set_cuda_visible_devices=False, overwrite=True)
        if not isinstance(self.task_function, _ExitAsError):
            self.task_function = _ExitAsError(self.task_function)
        return super().__call__(*args, **kwargs)  # type: ignore[misc]

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        from submitit.core.utils import FailedJobError, UncompletedJobError
        from submitit.slurm.slurm import SlurmJob

        if not getattr(SlurmJob.watcher, "is_queue_watcher", False):
            SlurmJob.watcher = _queue_watcher_class()(delay_s=600)  # shared by every SlurmJob, as submitit's own
        before = set(SlurmJob.watcher._registered)
        failures: list[str] = []
        try:
            returns = list(super().launch(job_overrides, initial_job_idx))  # type: ignore[misc]
        except (FailedJobError, UncompletedJobError) as exc:
            # submitit waits for the jobs in order and raises at the first that left no result (cancelled, killed,
            # out of time for good): take that one from the error, then wait for the others one by one.
            failed_id = _job_id_from(str(exc))
            failures.append(self._failure_line(failed_id, job_overrides, initial_job_idx, _reason_from(exc)))
            returns = []
            for job_id in sorted(set(SlurmJob.watcher._registered) - before - {failed_id}, key=_array_index):
                job = self._job(job_id)
                if not job.paths.submitted_pickle.exists():
                    continue  # an array's own id (`12` next to `12_0`, `12_1`): no job of its own
                try:
                    returns.append(job.results()[0])
                except (FailedJobError, UncompletedJobError) as other:
                    failures.append(self._failure_line(job_id, job_overrides, initial_job_idx, _reason_from(other)))
        for ret in returns:
            if ret.status != JobStatus.FAILED:
                continue
            error = ret._return_value  # not `return_value`, which prints a line of its own before it raises
            reason = str(error) if isinstance(error, JobFailed) else f"{type(error).__name__}: {error}"
            job_id = str(ret.hydra_cfg.hydra.job.id) if ret.hydra_cfg is not None else "?"
            failures.append(self._failure_line(job_id, job_overrides, initial_job_idx, reason))
        if failures:
            for line in failures:
                print(f"error: {line}", file=sys.stderr)
            sys.exit(1)
        return returns

    def _job(self, job_id: str) -> Any:
        from submitit.slurm.slurm import SlurmJob

        tasks = int(self.params.get("tasks_per_node") or 1) * int(self.params.get("nodes") or 1)
        return SlurmJob(self.params["submitit_folder"], job_id, tasks=tuple(range(tasks)))

    def _failure_line(self, job_id: str, overrides: Sequence[Sequence[str]], first: int, reason: str) -> str:
        from submitit.core.utils import JobPaths

        index = _array_index(job_id)
        label = f" (#{first + index}: {' '.join(overrides[index])})" if 0 <= index < len(overrides) else ""
        folder = self.params["submitit_folder"]
        where = JobPaths(folder, job_id=job_id, task_id=0).stderr if job_id != "?" else folder
        return f"SLURM job {job_id}{label} failed: {' '.join(reason.split())[:400]}; log: {where}"
