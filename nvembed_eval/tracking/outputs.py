"""Where compare and report write: next to the run (or `--out`), all files or none; printing that survives `| head`."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

from nvembed_eval.errors import ConfigError, ResultsError


def default_out(inputs: Sequence[Path], folder_name: str) -> Path:
    """`<first input folder>/<folder_name>`: outputs sit with the run they describe, never in the current directory.

    Raises:
        ConfigError: every input is a file (a CSV or one TaskResult); the user must choose with --out.
    """
    for path in inputs:
        if path.is_dir():
            return path / folder_name
    raise ConfigError(
        f"pass --out DIR: the inputs ({', '.join(str(p) for p in inputs)}) are files, and outputs go next to a run "
        "folder, never into the current directory"
    )


def publish(out_dir: Path, writers: dict[str, Callable[[Path], None]]) -> list[Path]:
    """Write every output into a scratch folder first and move them in only when all succeeded.

    Raises:
        ResultsError: the folder cannot be written (read-only, full disk); nothing is left behind.
    """
    out_dir = out_dir.resolve()
    try:
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    except OSError as exc:
        raise ResultsError(f"cannot write outputs to {out_dir} ({exc.strerror}); pass --out DIR") from None
    try:
        for name, write in writers.items():
            write(scratch / name)
        out_dir.mkdir(exist_ok=True)
        written = []
        for name in writers:
            os.replace(scratch / name, out_dir / name)
            written.append(out_dir / name)
        return written
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def emit(text: str, stream=None) -> None:
    """Print to stdout (or `stream`); a closed pipe (`| head`) must not turn the exit code into a traceback's 1."""
    stream = stream or sys.stdout
    try:
        stream.write(text)
        stream.flush()
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), stream.fileno())
