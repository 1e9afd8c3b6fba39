"""Console and run-log handling: a quiet console (this harness's progress and every warning, each message once) and
the run's full log (`<run_dir>/nvembed-eval.log`), opened only once the run is accepted."""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

FILE_ONLY = "nvembed_file_only"  # `extra={FILE_ONLY: True}`: goes to the run log, never to the console
_FORMAT = "[%(asctime)s][%(name)s][%(levelname)s] - %(message)s"
# Libraries that print through a stderr handler of their own (unfiltered, not in the run log) and show progress bars.
_OWN_HANDLERS = ("transformers", "datasets", "huggingface_hub")
# A warning routed through logging (logging.captureWarnings): "<file>:<line>: <Category>: <message>\n  <source>".
_WARNING_TEXT = re.compile(r"^\S+:\d+: \w+: (.*?)(?:\n|$)", re.S)


class ConsoleFilter(logging.Filter):
    """Lets through this harness's INFO lines and WARNING+ from everyone, each distinct message once: mteb, datasets
    and transformers log the same notice for every task (e.g. that a task is superseded); the run log keeps them all."""

    def __init__(self) -> None:
        super().__init__()
        self._seen: set[tuple[str, int, str]] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, FILE_ONLY, False):
            return False
        ours = record.name == "nvembed_eval" or record.name.startswith("nvembed_eval.")
        if record.levelno < logging.WARNING and not ours:
            return False
        if record.levelno < logging.ERROR:
            # mteb both logs and `warnings.warn`s the same sentence: compare the warning's message alone.
            message = record.getMessage()
            if record.name == "py.warnings" and (match := _WARNING_TEXT.match(message)):
                message = match.group(1).strip()
            key = (record.levelno, message)
            if key in self._seen:
                return False
            self._seen.add(key)
        return True


class _RunLogHandler(logging.FileHandler):
    """The run log's handler. A write that fails (full disk) stops the log instead of printing logging's traceback for
    every later record; `detach_run_log` then says once that the log is incomplete."""

    failure: OSError | None = None

    def handleError(self, record: logging.LogRecord) -> None:
        error = sys.exc_info()[1]
        if not isinstance(error, OSError):
            super().handleError(record)
            return
        self.failure = self.failure or error
        self.setLevel(logging.CRITICAL + 1)  # stop trying: every later write would fail the same way


def attach_run_log(path: Path) -> Path:
    """Send every log record (INFO and above, all libraries) to the run log `path` (returned), appending on resume."""
    handler = _RunLogHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter(_FORMAT))
    handler.setLevel(logging.INFO)
    logging.getLogger().addHandler(handler)
    logging.captureWarnings(True)  # Python warnings too (py.warnings logger), deduplicated on the console
    return path


def detach_run_log(path: Path) -> None:
    """Close and remove the run log handler of `path` (the Python API runs several runs in one process). A log that
    could not be written completely (full disk) is reported in one warning; the run's results stand on their own
    writes, each checked where it is made."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if isinstance(handler, _RunLogHandler) and Path(handler.baseFilename) == Path(path).absolute():
            root.removeHandler(handler)
            try:
                handler.close()
            except OSError as exc:  # the final flush on a full disk
                handler.failure = handler.failure or exc
            if handler.failure is not None:
                reason = handler.failure.strerror or handler.failure
                logging.getLogger(__name__).warning("the run log %s is incomplete: %s", path, reason)


def route_library_logs(progress: bool = False) -> None:
    """Send transformers', datasets' and huggingface_hub's messages through the root logger (the quiet console and
    the run log) instead of their own stderr handlers, and hide their progress bars unless `progress` is true."""
    import datasets
    import huggingface_hub.utils
    import transformers.utils.logging

    for name in _OWN_HANDLERS:
        logger = logging.getLogger(name)
        for handler in list(logger.handlers):
            if type(handler) is logging.StreamHandler:  # the library's default handler, not one a user added
                logger.removeHandler(handler)
        logger.propagate = True
    switch = "enable" if progress else "disable"
    getattr(datasets, f"{switch}_progress_bars")()
    getattr(huggingface_hub.utils, f"{switch}_progress_bars")()
    getattr(transformers.utils.logging, f"{switch}_progress_bar")()


@contextmanager
def console_logging() -> Iterator[None]:
    """The CLI's quiet console for the Python API: when the process has not configured logging (a notebook, a
    script), this harness's INFO lines and every warning go to stderr, each once, for the duration of a run."""
    root = logging.getLogger()
    if root.handlers:  # the caller configured logging; leave it alone
        yield
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(_FORMAT, datefmt="%H:%M:%S"))
    handler.addFilter(ConsoleFilter())
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
