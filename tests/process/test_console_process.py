"""A console script as a process: a usage error is exactly one line on stderr, nothing on stdout, exit 2."""

from __future__ import annotations

from clirun import run_cli

COMPARE = "nvembed_eval.judge.render"


def test_console_script_process_prints_one_line(tmp_path):
    res = run_cli(["r", "--reference", "x", "--seed", "-1"], tmp_path, module=COMPARE)
    assert res.returncode == 2 and res.stdout == ""
    assert res.stderr == (
        "error: argument --seed: expected a whole number >= 0, got '-1'; see nvembed-eval-compare --help\n"
    )


def test_a_reader_that_stops_early_ends_no_command_in_a_traceback(tmp_path):
    """`nvembed-eval-list tasks --all | head -1`: the closed pipe used to end in a BrokenPipeError traceback, exit 1."""
    import subprocess
    import sys

    from clirun import REPO, isolated_env

    proc = subprocess.Popen(
        [sys.executable, "-m", "nvembed_eval.listing", "tasks", "--all"],
        cwd=REPO,
        env=isolated_env(tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout.readline().startswith(b"task")  # what `head -1` reads, then it closes the pipe
    proc.stdout.close()
    assert proc.wait(timeout=120) == 0
    assert proc.stderr.read() == b""


def test_a_pipe_given_as_results_is_refused_not_waited_on(tmp_path):
    """A FIFO (or a device) as a results or reference file: `nvembed-eval-compare` waited forever on it."""
    import os

    fifo = tmp_path / "results.json"
    os.mkfifo(fifo)
    res = run_cli([str(fifo), "--reference", str(fifo)], tmp_path, module=COMPARE, timeout=120)
    assert res.returncode == 2 and res.stderr.count("\n") == 1
    assert res.stderr.startswith(f"error: {fifo} is not a regular file, not results; pass a run folder")
