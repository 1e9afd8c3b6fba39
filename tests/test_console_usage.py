"""Every `nvembed-eval-*` console script answers a usage error with one line, `error: <what>; see <prog> --help`,
exit 2 (nvembed_eval.io.Parser; docs/bad_input.md), and never a usage block or a traceback."""

from __future__ import annotations

import importlib

import pytest

COMPARE = "nvembed_eval.judge.render:main"
REPORT = "nvembed_eval.judge.report:main"
LIST = "nvembed_eval.listing:main"
PROBE = "nvembed_eval.cli:probe_main"
CACHE = "nvembed_eval.cache.cli:main"

CASES = [
    (COMPARE, ["r", "--reference", "x", "--gate", "Significant"], "argument --gate: invalid choice: 'Significant'"),
    (COMPARE, ["r", "--reference", "x", "--resamples", "2.5"], "argument --resamples: invalid int value: '2.5'"),
    (COMPARE, ["r", "--reference", "x", "--seed", "abc"], "argument --seed: expected a whole number >= 0, got 'abc'"),
    (COMPARE, ["r", "--reference", "x", "--seed", "-1"], "argument --seed: expected a whole number >= 0, got '-1'"),
    (COMPARE, ["--reference", "x"], "the following arguments are required: results"),
    (COMPARE, ["r"], "the following arguments are required: --reference"),
    (REPORT, [], "the following arguments are required: runs"),
    (REPORT, ["r", "--bogus"], "unrecognized arguments: --bogus"),
    (LIST, [], "the following arguments are required: what"),
    (LIST, ["modles"], "argument what: invalid choice: 'modles'"),
    (PROBE, ["check"], "the following arguments are required: baseline"),
    (PROBE, ["check", "b.safetensors", "--tolerance", "inf"], "argument --tolerance: expected a finite number >= 0"),
    (PROBE, ["check", "b.safetensors", "--tolerance", "nan"], "argument --tolerance: expected a finite number >= 0"),
    (PROBE, ["check", "b.safetensors", "--tolerance", "-0.1"], "argument --tolerance: expected a finite number >= 0"),
    (PROBE, ["check", "b.safetensors", "--worst", "x"], "argument --worst: expected a whole number >= 0, got 'x'"),
    (CACHE, [], "the following arguments are required: command"),
    (CACHE, ["prune"], "the following arguments are required: --max-size"),
]
PROGS = {
    COMPARE: "nvembed-eval-compare",
    REPORT: "nvembed-eval-report",
    LIST: "nvembed-eval-list",
    PROBE: "nvembed-eval-probe",
    CACHE: "nvembed-eval-cache",
}


@pytest.mark.parametrize(("module", "args", "message"), CASES)
def test_usage_error_is_one_line_naming_the_help(module, args, message, capsys):
    name, _, function = module.partition(":")
    main = getattr(importlib.import_module(name), function)
    with pytest.raises(SystemExit) as info:
        main(args)
    captured = capsys.readouterr()
    prog = PROGS[module] + (" prune" if args == ["prune"] else "")
    assert info.value.code == 2 and captured.out == ""
    assert captured.err == f"error: {captured.err[7:].rstrip()}\n" and captured.err.count("\n") == 1, captured.err
    assert message in captured.err and captured.err.endswith(f"; see {prog} --help\n"), captured.err
