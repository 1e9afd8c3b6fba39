"""Run the real entry points: in this process (`invoke`, for behaviour) or as a subprocess (`run_cli`, for what only
a process shows: SIGKILL, locks, sweeps, torchrun, the console script itself), isolated from the user's caches."""

from __future__ import annotations

import contextlib
import gzip
import io
import json
import logging
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("NVEMBED_SHARED", REPO.parent / "shared"))
DATA = SHARED / "data"


def read_jsonl_gz(path: Path) -> list[dict]:
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]


def write_jsonl_gz(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wt", encoding="utf-8") as handle:
        handle.writelines(json.dumps(r) + "\n" for r in rows)


def scifact_subset(dest: Path, n_docs: int) -> Path:
    """`dest/SciFact/`: the first `n_docs` SciFact documents and the test queries judged on them (real rows)."""
    corpus = read_jsonl_gz(DATA / "SciFact" / "corpus.jsonl.gz")[:n_docs]
    kept = {d["_id"] for d in corpus}
    lines = (DATA / "SciFact" / "qrels" / "test.tsv").read_text().splitlines()
    qrels = [line for line in lines[1:] if line.split("\t")[1] in kept]
    qids = {line.split("\t")[0] for line in qrels}
    queries = read_jsonl_gz(DATA / "SciFact" / "queries.jsonl.gz")
    write_jsonl_gz(dest / "SciFact" / "corpus.jsonl.gz", corpus)
    write_jsonl_gz(dest / "SciFact" / "queries.jsonl.gz", [q for q in queries if q["_id"] in qids])
    (dest / "SciFact" / "qrels").mkdir(parents=True)
    (dest / "SciFact" / "qrels" / "test.tsv").write_text("\n".join([lines[0], *qrels]) + "\n")
    return dest


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
    """`python -m <module> <args>` in a subprocess, from the checkout, with an isolated environment."""
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


def invoke(
    args: list[str],
    tmp: Path,
    *,
    main: Callable[[list[str]], object] | None = None,
    env: dict[str, str | None] | None = None,
    hub: Path | None = None,
    cwd: Path = REPO,
    offline: bool = True,
) -> CliResult:
    """An entry point's `main(args)` in this process, as the console script would run it: from the checkout, with
    the isolated environment, stdout and stderr captured, its exit code; logging and the environment restored after.
    `main` defaults to `nvembed-eval`'s. `hub`: a Hugging Face home (hubcache.py) that huggingface_hub and datasets
    read instead of the real one (they read HF_HOME when imported, so their settings are pointed at it). `cwd`: the
    folder it runs in (default: the checkout). `offline=False`: the libraries are not told they are offline."""
    if main is None:
        from nvembed_eval.cli import main
    out, err = io.StringIO(), io.StringIO()
    with _restored(), _hub(hub, offline), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        os.environ.update({k: v for k, v in {**isolated_env(tmp), **(env or {})}.items() if v is not None})
        for key in [k for k, v in (env or {}).items() if v is None]:  # `env={"HOME": None}`: unset
            os.environ.pop(key, None)
        os.chdir(cwd)
        try:
            main(list(args))
            code = 0
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
    return CliResult(code, out.getvalue(), err.getvalue())


@contextlib.contextmanager
def _hub(home: Path | None, offline: bool = True) -> Iterator[None]:
    if home is None:
        yield
        return
    import datasets.config
    import huggingface_hub.constants

    patches = [
        (huggingface_hub.constants, "HF_HOME", str(home)),
        (huggingface_hub.constants, "HF_HUB_CACHE", str(home / "hub")),
        (datasets.config, "HF_CACHE_HOME", str(home)),
        (datasets.config, "HF_DATASETS_CACHE", str(home / "datasets")),
        (datasets.config, "HF_HUB_OFFLINE", offline),
        (huggingface_hub.constants, "HF_HUB_OFFLINE", offline),
    ]
    saved = [(obj, name, getattr(obj, name)) for obj, name, _ in patches]
    try:
        for obj, name, value in patches:
            setattr(obj, name, value)
        os.environ.update(HF_HOME=str(home), HF_HUB_CACHE=str(home / "hub"))
        yield
    finally:
        for obj, name, value in saved:
            setattr(obj, name, value)


@contextlib.contextmanager
def _restored() -> Iterator[None]:
    """Environment, working folder and the root logger as they were (a run configures its console logging)."""
    environ, cwd = dict(os.environ), Path.cwd()
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        yield
    finally:
        for handler in root.handlers:
            if handler not in handlers:
                handler.close()
        root.handlers[:] = handlers
        root.setLevel(level)
        logging.captureWarnings(False)
        os.environ.clear()
        os.environ.update(environ)
        os.chdir(cwd)


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
