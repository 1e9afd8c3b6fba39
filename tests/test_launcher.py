"""The SLURM launcher's own logic without a cluster (tests/test_slurm.py runs it on one): how it learns job states
without accounting, and how it turns a job's failure into one line."""

from __future__ import annotations

import os
import subprocess

import pytest
from submitit.core.utils import FailedJobError, UncompletedJobError

from hydra_plugins.nvembed_eval_launcher import fixes
from hydra_plugins.nvembed_eval_launcher.fixes import (
    GONE,
    _ExitAsError,
    _job_id_from,
    _queue_watcher_class,
    _reason_from,
    accounting_enabled,
)


def _config(storage: str):
    def run(*args, **kwargs) -> str:
        return f"AccountingStorageHost   = (null)\nAccountingStorageType   = {storage}\nAuthType = auth/munge\n"

    return run


def _no_scontrol(*args, **kwargs) -> str:
    raise FileNotFoundError("scontrol")


def _scontrol_fails(*args, **kwargs) -> str:
    raise subprocess.CalledProcessError(1, "scontrol")


def test_accounting_is_read_from_the_controllers_config():
    assert accounting_enabled(_config("accounting_storage/none")) is False
    assert accounting_enabled(_config("accounting_storage/slurmdbd")) is True
    assert accounting_enabled(_no_scontrol) is True  # cannot tell: submitit's own sacct, as before
    assert accounting_enabled(_scontrol_fails) is True


def _watcher(*job_ids: str):
    watcher = _queue_watcher_class()(delay_s=600)
    watcher.accounting = False  # a cluster without accounting: squeue
    for job_id in job_ids:
        watcher.register_job(job_id)
    return watcher


def test_without_accounting_job_states_come_from_squeue():
    watcher = _watcher("5_0", "5_1", "5_2", "7")
    command = ["squeue", f"--user={os.getuid()}", "--noheader", "--states=all", "--format=%i|%T|%N"]
    assert watcher._make_command() == command
    info = watcher.read_info("5_0|RUNNING|vm\n5_[1-2%1]|PENDING|\n")
    assert {job: info[job]["State"] for job in ("5_0", "5_1", "5_2")} == {
        "5_0": "RUNNING",
        "5_1": "PENDING",  # an array's pending tasks are one line: 5_[1-2%1]
        "5_2": "PENDING",
    }
    assert info["7"]["State"] == GONE  # submitted, no longer listed: ended more than MinJobAge ago
    watcher._info_dict.update(info)
    assert not watcher.is_done("5_1", mode="cache") and watcher.is_done("7", mode="cache")


def test_passing_squeue_states_are_not_taken_for_an_end():
    """submitit counts any state outside its short list as ended; squeue shows states it does not know."""
    watcher = _watcher("8", "9", "10")
    info = watcher.read_info("8|CONFIGURING|vm\n9|SIGNALING|vm\n10|CANCELLED|vm\n")
    watcher._info_dict.update(info)
    assert [watcher.is_done(job, mode="cache") for job in ("8", "9", "10")] == [False, False, True]
    assert info["8"]["SqueueState"] == "CONFIGURING"


def test_with_accounting_submitit_asks_sacct_as_before():
    watcher = _queue_watcher_class()(delay_s=600)
    watcher.accounting = True
    watcher.register_job("5_0")
    assert watcher._make_command()[:1] == ["sacct"]


def test_a_job_that_left_no_result_is_named_with_its_state():
    message = (
        "Job 12_3 (task: 0) with path /runs/sweep/.submitit/12_3/12_3_0_result.pkl\n"
        "has not produced any output (state: CANCELLED by 0)\n"
        "Error stream produced:\n----\nsrun: forcing job termination"
    )
    assert _job_id_from(message) == "12_3"
    assert _reason_from(UncompletedJobError(message)) == "ended without a result (SLURM state CANCELLED by 0)"


def test_a_job_that_raised_outside_the_evaluation_is_named_with_its_last_traceback_line():
    message = (
        "Job (task=0) failed during processing with trace:\n----------------------\n"
        "Traceback (most recent call last):\n"
        '  File "x.py", line 1, in <module>\nsubmitit.core.utils.UncompletedJobError: Job not requeued because: '
        "timed-out too many times.\n----------------------\nYou can check full logs with 'job.stderr(0)' and "
        "'job.stdout(0)'or at paths:\n  - /runs/sweep/.submitit/12_1/12_1_0_log.err\n"
        "  - /runs/sweep/.submitit/12_1/12_1_0_log.out"
    )
    assert _job_id_from(message) == "12_1"
    assert _reason_from(FailedJobError(message)) == (
        "submitit.core.utils.UncompletedJobError: Job not requeued because: timed-out too many times."
    )


def test_the_clis_exit_becomes_an_error_submitits_own_exit_does_not():
    def refuse(cfg):
        raise SystemExit(2)

    def requeued(cfg):
        raise SystemExit(-1)  # submitit exits so after requeuing a timed-out or preempted job

    def done(cfg):
        return "ok"

    # Hydra's plugin scan executes the plugin modules again (load_module), so the class is looked up where it is now.
    with pytest.raises(fixes.JobFailed, match="exited with status 2"):  # outside a job there is no log to read from
        _ExitAsError(refuse)(None)
    with pytest.raises(SystemExit):
        _ExitAsError(requeued)(None)
    assert _ExitAsError(done)(None) == "ok"
