"""Console and run-log handling: a quiet console (this harness's progress and every warning, each message once) and
the run's full log in `<run_dir>/nvembed-eval.log`, opened only once the run is accepted.
"""

from __future__ import annotations

import logging
from pathlib import Path

LOG_FILE = "nvembed-eval.log"
FILE_ONLY = "nvembed_file_only"  # `extra={FILE_ONLY: True}`: goes to the run log, never to the console
_FORMAT = "[%(asctime)s][%(name)s][%(levelname)s] - %(message)s"


class ConsoleFilter(logging.Filter):
    """Lets through this harness's INFO lines and WARNING+ from everyone, each distinct message once.

    mteb, datasets and transformers log the same notice for every task (e.g. that a task is superseded); the run
    log keeps them all, the console shows the first.
    """

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
            key = (record.name, record.levelno, record.getMessage())
            if key in self._seen:
                return False
            self._seen.add(key)
        return True


def attach_run_log(run_dir: Path) -> Path:
    """Send every log record (INFO and above, all libraries) to `<run_dir>/nvembed-eval.log`, appending across
    resumed runs. Returns the log file's path."""
    path = run_dir / LOG_FILE
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter(_FORMAT))
    handler.setLevel(logging.INFO)
    root = logging.getLogger()
    root.addHandler(handler)
    logging.captureWarnings(True)  # Python warnings too (py.warnings logger), deduplicated on the console
    return path
