"""Run the real `nvembed-eval` CLI in a subprocess, isolated from the user's caches."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("NVEMBED_SHARED", REPO.parent / "shared"))
DATA = SHARED / "data"


@dataclass
class CliResult:
    returncode: int
    stdout: str
    stderr: str

    @property
    def error_line(self) -> str:
        """The last non-empty stderr line (the CLI's one-line error contract)."""
        lines = [line for line in self.stderr.splitlines() if line.strip()]
        return lines[-1] if lines else ""


def isolated_env(tmp: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        HF_DATASETS_OFFLINE="1",
        MTEB_CACHE=str(tmp / "mteb-cache"),
        NVEMBED_EVAL_CACHE=str(tmp / "embedding-cache"),
        NVEMBED_EVAL_ROOT=str(REPO),
        TOKENIZERS_PARALLELISM="false",
    )
    return env


def run_cli(
    args: list[str], tmp: Path, *, module: str = "nvembed_eval", timeout: int = 900, env: dict[str, str] | None = None
) -> CliResult:
    proc = subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=REPO,
        env={**isolated_env(tmp), **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return CliResult(proc.returncode, proc.stdout, proc.stderr)


def start_cli(args: list[str], tmp: Path, *, stderr: int = subprocess.DEVNULL) -> subprocess.Popen:
    """Start the CLI without waiting (for kill and concurrency tests); stdout is discarded."""
    return subprocess.Popen(
        [sys.executable, "-m", "nvembed_eval", *args],
        cwd=REPO,
        env=isolated_env(tmp),
        stdout=subprocess.DEVNULL,
        stderr=stderr,
        text=True,
    )


def load_run(run_dir: Path) -> dict:
    return json.loads((run_dir / "run.json").read_text())


def main_scores(run_dir: Path) -> dict[str, float]:
    """task -> mteb main_score x 100, read back with mteb's own TaskResult loader."""
    from mteb import TaskResult

    scores = {}
    for path in sorted((run_dir / "results").glob("*.json")):
        result = TaskResult.from_disk(path)
        scores[result.task_name] = 100 * result.get_score()
    return scores
