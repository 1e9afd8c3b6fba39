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
