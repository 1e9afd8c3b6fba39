"""The Python API: `evaluate` runs what `nvembed-eval` runs (the same overrides composed by Hydra's compose API, the
same checks, refusals and run folder); `load_results` and `leaderboard` read any results folder as pandas tables.

Examples:
    >>> import nvembed_eval
    >>> run = nvembed_eval.evaluate({"model": "minilm", "benchmark": "smoke"})  # doctest: +SKIP
    >>> run.table[["task", "score"]]  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import logging
import re
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nvembed_eval.errors import ConfigError, DataError, NVEmbedEvalError
from nvembed_eval.logs import (
    FILE_ONLY,
    LOG_FILE,
    attach_run_log,
    console_logging,
    detach_run_log,
    route_library_logs,
)
from nvembed_eval.preflight import check_output_dir, check_overrides, check_torch, nearest_existing
from nvembed_eval.resources import conf_dir
from nvembed_eval.settings import RunSettings

if TYPE_CHECKING:
    import pandas as pd
    from omegaconf import DictConfig

    from nvembed_eval.tracking import RunSummary

log = logging.getLogger("nvembed_eval")

CONFIG_NAME = "eval"
RESULT_COLUMNS = ("task", "type", "split", "subset", "metric", "score", "published", "delta")
_PLAIN_VALUE = re.compile(r"^[\w\-+./:@~%*$]+$")  # needs no quoting in Hydra's override grammar


@dataclass(frozen=True)
class EvalResult:
    """What `evaluate` returns.

    Attributes:
        run_dir: the run folder (run.json, results/, .hydra/, nvembed-eval.log).
        table: one row per task: task, type, split, subset, metric, score and published (0-100; published is NaN
            when the reference table has no score), delta (score - published), resumed (kept from an earlier run).
    """

    run_dir: Path
    table: pd.DataFrame


def to_overrides(overrides: Sequence[str] | Mapping[str, Any] | None) -> list[str]:
    """Hydra override strings from a list (used as given) or a mapping (`{"tasks": ["SciFact"], "batch_size": 64}`;
    nested mappings become dotted keys, strings that Hydra would misread are quoted).

    Raises:
        ConfigError: `overrides` is a single string or another type.
    """
    if overrides is None:
        return []
    if isinstance(overrides, Mapping):
        return [f"{key}={_hydra_value(value)}" for key, value in _flatten(overrides)]
    if isinstance(overrides, str) or not all(isinstance(o, str) for o in overrides):
        raise ConfigError(f"overrides={overrides!r} must be a list of 'key=value' strings or a dict")
    return list(overrides)


def _flatten(mapping: Mapping[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    items: list[tuple[str, Any]] = []
    for key, value in mapping.items():
        if isinstance(value, Mapping):
            items += _flatten(value, f"{prefix}{key}.")
        else:
            items.append((f"{prefix}{key}", value))
    return items


def _hydra_value(value: Any) -> str:
    """One value in Hydra's override grammar."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list | tuple):
        return "[" + ",".join(_hydra_value(v) for v in value) + "]"
    text = str(value)
    if _PLAIN_VALUE.match(text):
        return text
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def compose_config(overrides: list[str]) -> DictConfig:
    """The run's config as `nvembed-eval` composes it (including the `hydra` node), without running anything.

    Raises:
        ConfigError: Hydra cannot compose the config (one line).
    """
    from hydra import compose, initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    try:
        with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3", job_name="nvembed_eval"):
            return compose(CONFIG_NAME, overrides=overrides, return_hydra_config=True)
    except (HydraException, OmegaConfBaseException) as exc:
        reason = " ".join(str(exc).split())
        raise ConfigError(f"cannot compose the config: {reason[:300]}") from None


def job_only_config(overrides: list[str]) -> DictConfig:
    """The job's config (no `hydra` node) `nvembed-eval` would run with these overrides, for dry runs and side
    tools (`plan=true`, `nvembed-eval-probe`): nothing is created on disk.

    Raises:
        ConfigError: Hydra cannot compose the config (one line).
    """
    return job_config(compose_config(list(overrides)))[0]


def search_path_override(config_dirs: Sequence[Path]) -> str:
    """`hydra.searchpath=[...]` adding the user's config folders (what `--config-dir` does on the command line)."""
    entries = ",".join(_hydra_value(f"file://{Path(d).expanduser().absolute()}") for d in config_dirs)
    return f"hydra.searchpath=[{entries}]"


def job_config(full: DictConfig) -> tuple[DictConfig, DictConfig, Path]:
    """Split a composed config into the job's config, the `hydra` node (with `runtime.output_dir` set, as Hydra
    sets it when it runs a job) and the absolute run folder."""
    import copy

    from omegaconf import open_dict, read_write

    run_dir = Path(str(full.output_dir)).expanduser().absolute()
    hydra_cfg = copy.deepcopy(full).hydra  # as HydraConfig.set_config keeps it
    with read_write(hydra_cfg), open_dict(hydra_cfg):
        hydra_cfg.runtime.output_dir = str(run_dir)
    cfg = copy.deepcopy(full)
    with read_write(cfg), open_dict(cfg):
        del cfg["hydra"]
    return cfg, hydra_cfg, run_dir


def check_config(cfg: DictConfig) -> RunSettings:
    """The checks that need the composed config but no mteb, torch or model import, so a bad value costs one line
    and leaves nothing on disk: the root settings, task names, the data folder and the reference table.

    Raises:
        NVEmbedEvalError: the first problem found.
    """
    from nvembed_eval.tasks import check_name
    from nvembed_eval.tracking import check_reference

    settings = RunSettings.from_config(cfg)
    for name in settings.tasks or ():
        check_name(name, "tasks")
    if settings.data_dir is not None and not settings.data_dir.is_dir():
        raise DataError(
            f"data_dir {settings.data_dir} does not exist; point data_dir= at a folder of <TaskName>/ folders"
        )
    check_reference(cfg)  # a missing or unusable table is refused here, not after the run
    return settings


def execute(cfg: DictConfig, hydra_cfg: DictConfig, run_dir: Path, overrides: list[str], keep: Path) -> RunSummary:
    """Run one composed config into `run_dir` (the CLI's and the API's shared path).

    Once the run is accepted, Hydra's record (`.hydra/`) and the run log are written; a refused run removes the
    folders it created, up to `keep` (the nearest folder that existed before).

    Raises:
        NVEmbedEvalError: any refusal.
    """
    from nvembed_eval.tracking import writing

    settings = RunSettings.from_config(cfg)
    fresh = not (run_dir / "run.json").exists()  # a new run folder, not a resumed one
    accepted = False
    run_log: Path | None = None

    def accept(folder: Path) -> None:
        nonlocal accepted, run_log
        accepted = True
        with writing(folder):
            write_hydra_record(folder, cfg, hydra_cfg)
            run_log = attach_run_log(folder)
            log.info("run log: %s", run_log)

    try:
        route_library_logs(progress=settings.progress)
        from nvembed_eval.models import init_from_env
        from nvembed_eval.runner import run_evaluation

        if cfg.model.get("compile"):
            log.info("compiling the model with torch.compile (model.compile=true): its first batches wait for it")
        init_from_env()  # several ranks under torchrun: encoding is split across them
        return run_evaluation(cfg, run_dir, overrides, on_accept=accept)
    except NVEmbedEvalError as exc:
        if accepted:
            log.error("%s", exc, extra={FILE_ONLY: True})  # the run log records why it stopped
        if not accepted or (fresh and not any((run_dir / "results").glob("*.json"))):
            # A new run that recorded no result (e.g. its first task's data is malformed) leaves nothing behind.
            if run_log is not None:
                detach_run_log(run_log)
                run_log = None
            if accepted:
                _remove_run_records(run_dir)
            discard_created(run_dir, keep)
        raise
    finally:
        if run_log is not None:
            detach_run_log(run_log)


# What an accepted run writes into its folder before its first result (and the empty result folders).
_RUN_RECORDS = (".hydra", ".run.lock", "run.json", "model_meta.json", LOG_FILE, "results", "items", "predictions")


def _remove_run_records(run_dir: Path) -> None:
    """Remove the records a new run wrote before it failed without a result; anything else in the folder stays."""
    for name in _RUN_RECORDS:
        path = run_dir / name
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)


def write_hydra_record(run_dir: Path, cfg: DictConfig, hydra_cfg: DictConfig) -> None:
    """Hydra's record of the run (`.hydra/config.yaml`, `hydra.yaml`, `overrides.yaml`), as Hydra writes it, but only
    once the run is accepted (conf/hydra/default.yaml turns Hydra's own early write off)."""
    from omegaconf import OmegaConf

    from nvembed_eval.atomic import atomic_write

    folder = run_dir / ".hydra"
    records = {
        "config.yaml": cfg,
        "hydra.yaml": OmegaConf.create({"hydra": hydra_cfg}),
        "overrides.yaml": OmegaConf.create(list(hydra_cfg.overrides.task)),
    }
    for name, node in records.items():
        atomic_write(folder / name, OmegaConf.to_yaml(node).encode("utf-8"))


def discard_created(run_dir: Path, keep: Path) -> None:
    """Remove `run_dir` and its parents up to `keep` when they are empty: a refused run leaves no folder behind
    (Hydra creates the run folder, with its parents, before any check of the job runs)."""
    folder = run_dir.absolute()
    keep = keep.absolute()
    while folder != keep and keep in folder.parents:
        try:
            folder.rmdir()
        except FileNotFoundError:
            pass  # already gone (the run folder's lock removes an empty folder it made): go on to its parent
        except OSError:
            return
        folder = folder.parent


def evaluate(
    overrides: Sequence[str] | Mapping[str, Any] | None = None,
    *,
    output_dir: str | Path | None = None,
    config_dir: str | Path | None = None,
) -> EvalResult:
    """Run an evaluation as `nvembed-eval <overrides>` would, from Python.

    Args:
        overrides: the command line's overrides, as a list (`["model=minilm", "tasks=[SciFact]"]`) or a dict
            (`{"model": "minilm", "tasks": ["SciFact"]}`). Sweeps (`a,b`) are the CLI's `-m`; run one per call.
        output_dir: the run folder (default: `outputs/<timestamp>` under the working folder or $NVEMBED_EVAL_ROOT);
            an existing run folder of the same model resumes.
        config_dir: a folder of your own configs (e.g. `model/my_model.yaml`), composed on top of the bundled
            ones, as `nvembed-eval --config-dir`.

    Returns:
        The run folder and its results table (`EvalResult.table`, a pandas DataFrame).

    Raises:
        NVEmbedEvalError: every refusal of the CLI (the CLI prints the same message as `error: ...`).

    Examples:
        >>> run = evaluate({"model": "minilm", "tasks": "STSBenchmark", "data_dir": "../shared/data"})  # doctest: +SKIP
        >>> round(float(run.table.score[0]), 4)  # doctest: +SKIP
        82.0325
    """
    import pandas as pd

    from nvembed_eval.tasks import plan_overrides
    from nvembed_eval.tracking import check_reference, summary_rows

    args = to_overrides(overrides)
    if plan_overrides(args) is not None:  # also refuses plan=maybe, as the CLI does
        raise ConfigError(
            "plan=true is the command line's dry run (nvembed-eval ... plan=true prints the cost plan); "
            "evaluate() runs the evaluation: drop plan"
        )
    args = [f"plan.enabled={a.partition('=')[2]}" if a.partition("=")[0] == "plan" else a for a in args]
    if output_dir is not None:
        if any(a.split("=", 1)[0].lstrip("+") == "output_dir" for a in args):
            raise ConfigError("output_dir is given twice (in overrides and as output_dir=); give it once")
        args.append(f"output_dir={_hydra_value(str(Path(output_dir).expanduser()))}")
    if config_dir is not None:
        if any(a.startswith("hydra.searchpath=") for a in args):
            raise ConfigError("config_dir and hydra.searchpath are both given; give the folders once")
        args.append(search_path_override([Path(config_dir)]))
    check_torch()
    line = check_overrides(args, conf_dir())
    if line.flags or line.multirun:
        raise ConfigError(f"command-line flags ({' '.join(line.flags) or '-m'}) are for nvembed-eval; pass overrides")
    check_output_dir(args)
    cfg, hydra_cfg, run_dir = job_config(compose_config(args))
    check_config(cfg)
    keep = nearest_existing(run_dir)
    with console_logging():
        summary = execute(cfg, hydra_cfg, run_dir, list(hydra_cfg.overrides.task), keep)
    table = pd.DataFrame(summary_rows(summary, check_reference(cfg)), columns=[*RESULT_COLUMNS, "resumed"])
    return EvalResult(run_dir=run_dir, table=table)


def load_results(path: str | Path) -> pd.DataFrame:
    """Scores of any results folder: a harness run folder, an mteb results folder, one TaskResult JSON or a published
    CSV (read by `nvembed-eval-compare`'s own reader).

    Returns:
        One row per task: task, type, metric, score (0-100), dataset_revision, source (the file it came from), note.

    Raises:
        ResultsError: no usable results at `path` (one line).
    """
    import pandas as pd

    from nvembed_eval.tasks import load_task_spec
    from nvembed_eval.tracking import load_scores

    scores = load_scores(path)
    rows = [
        {
            "task": s.task,
            "type": _task_type(load_task_spec, s.task),
            "metric": s.metric,
            "score": s.value,
            "dataset_revision": s.dataset_revision,
            "source": s.source,
            "note": s.note,
        }
        for s in scores.scores.values()
    ]
    columns = ["task", "type", "metric", "score", "dataset_revision", "source", "note"]
    return pd.DataFrame(rows, columns=columns)


def _task_type(load_task_spec: Any, name: str) -> str | None:
    with contextlib.suppress(NVEmbedEvalError):
        return load_task_spec(name).type
    return None


def leaderboard(path: str | Path, benchmark: str | None = None) -> pd.DataFrame:
    """The leaderboard averages of a results folder: the plain average over the benchmark's tasks and the per-type
    means, each with its coverage (tracking.leaderboard's rules).

    Args:
        path: a run folder, mteb results folder or published CSV.
        benchmark: a harness benchmark (`mteb_eng_v1`) or an mteb benchmark name (`MTEB(eng, v2)`); default: the
            run's own benchmark when its run.json records one, else `mteb_eng_v1`.

    Returns:
        One row per aggregate: name ("Average", then the task types), mean (NaN when no task is covered), covered,
        total, complete.

    Raises:
        ResultsError: no usable results at `path`. ConfigError: unknown benchmark.
    """
    import pandas as pd

    from nvembed_eval.tasks import benchmark_tasks, load_task_spec
    from nvembed_eval.tracking import leaderboard as board_of
    from nvembed_eval.tracking import load_scores

    scores = load_scores(path)
    recorded = scores.run_info.get("benchmark") or {}
    if benchmark is None and recorded.get("tasks"):  # the run's own: its whole task list ("tasks": an ad-hoc list)
        name, tasks = str(recorded.get("name") or "tasks"), [str(t) for t in recorded["tasks"]]
    else:
        name = benchmark or "mteb_eng_v1"
        tasks = benchmark_tasks(name)
    board = board_of(scores.values, tasks, {t: load_task_spec(t).type for t in tasks}, name)
    rows = [
        {"name": a.name, "mean": a.mean, "covered": a.covered, "total": a.total, "complete": a.complete}
        for a in board.aggregates()
    ]
    return pd.DataFrame(rows, columns=["name", "mean", "covered", "total", "complete"])
