"""The parser of every `nvembed-eval-*` console script (`nvembed-eval` itself is Hydra's): argparse whose usage errors
are one line, `error: <what>; see <prog> --help`, exit 2, like every other refusal (docs/bad_input.md), and the
argument types those scripts share.
"""

from __future__ import annotations

import argparse
import math
from typing import NoReturn


class Parser(argparse.ArgumentParser):
    """`argparse.ArgumentParser` whose errors are one line (its subcommand parsers are of this class too).

    Examples:
        >>> Parser(prog="nvembed-eval-compare").parse_args(["--x"])  # stderr: error: unrecognized arguments: --x; ...
    """

    def error(self, message: str) -> NoReturn:
        """Print `error: <message>; see <prog> --help` to stderr and exit 2 (argparse prints usage and two lines)."""
        self.exit(2, f"error: {message}; see {self.prog} --help\n")


def non_negative_int(text: str) -> int:
    """An argument that is a whole number >= 0 (a seed, a count).

    Raises:
        argparse.ArgumentTypeError: anything else; the parser turns it into its one error line.
    """
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, got {text!r}")
    return value


def finite_non_negative_float(text: str) -> float:
    """An argument that is a finite number >= 0 (a tolerance): NaN would make every comparison false, i.e. pass.

    Raises:
        argparse.ArgumentTypeError: not a number, NaN, infinite or negative.
    """
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a finite number >= 0, got {text!r}") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"expected a finite number >= 0, got {text!r}")
    return value
