"""The Python API: `evaluate` runs what `nvembed-eval` runs (the same overrides composed once by Hydra's compose API,
the same checks, refusals and run folder); `load_results` and `leaderboard` read any results folder as pandas tables."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nvembed_eval.config import (
    check_output_dir,
    check_torch,
    compose,
    hydra_value,
    job_config,
    parse_command_line,
    search_path_override,
    to_overrides,
    validate,
)
from nvembed_eval.errors import ConfigError, NVEmbedEvalError
from nvembed_eval.logs import console_logging
from nvembed_eval.results.reading import load_scores
from nvembed_eval.results.scores import benchmark_leaderboard
from nvembed_eval.run.record import resolve_run
from nvembed_eval.run.session import execute
from nvembed_eval.run.summary import summary_rows
from nvembed_eval.tasks.benchmarks import Benchmark
from nvembed_eval.tasks.specs import load_task_spec

if TYPE_CHECKING:
    import pandas as pd

RESULT_COLUMNS = ("task", "type", "split", "subset", "metric", "score", "published", "delta")
__all__ = ["EvalResult", "evaluate", "leaderboard", "load_results", "to_overrides"]


@dataclass(frozen=True)
class EvalResult:
    """What `evaluate` returns: `run_dir`, the run folder (run.json, results/, .hydra/, nvembed-eval.log), and `table`,
    one row per task: task, type, split, subset, metric, score and published (0-100; published is NaN when the
    reference table has no score), delta (score - published), resumed (kept from an earlier run)."""

    run_dir: Path
    table: pd.DataFrame


def evaluate(
    overrides: Sequence[str] | Mapping[str, Any] | None = None,
    *,
    output_dir: str | Path | None = None,
    config_dir: str | Path | None = None,
) -> EvalResult:
    """Run an evaluation as `nvembed-eval <overrides>` would, from Python; returns the run folder and its results table.
    `overrides`: the command line's overrides, as a list (`["model=minilm", "tasks=[SciFact]"]`) or a dict
    (`{"model": "minilm", "tasks": ["SciFact"]}`); sweeps (`a,b`) are the CLI's `-m`: run one per call. `output_dir`:
    the run folder (default: `outputs/<timestamp>` under the working folder or $NVEMBED_EVAL_ROOT); an existing run
    folder of the same model resumes. `config_dir`: a folder of your own configs (e.g. `model/my_model.yaml`),
    composed on top of the bundled ones, as `nvembed-eval --config-dir`. Raises NVEmbedEvalError for every refusal of
    the CLI (the CLI prints the same message as `error: ...`)."""
    import pandas as pd

    args = to_overrides(overrides)
    for name, value in (("output_dir", output_dir), ("config_dir", config_dir)):
        if value is not None and not isinstance(value, str | os.PathLike):
            raise ConfigError(f"{name}={value!r} must be a folder path (a str or pathlib.Path)")
        if isinstance(value, str) and not value.strip():  # Path("") is the current folder
            raise ConfigError(f"<{name}={value}> is empty; give a folder, or leave {name} out")
    if output_dir is not None:
        if any(a.split("=", 1)[0].lstrip("+") == "output_dir" for a in args):
            raise ConfigError("output_dir is given twice (in overrides and as output_dir=); give it once")
        args.append(f"output_dir={hydra_value(str(Path(output_dir).expanduser()))}")
    if config_dir is not None:
        if any(a.startswith("hydra.searchpath=") for a in args):
            raise ConfigError("config_dir and hydra.searchpath are both given; give the folders once")
        args.append(search_path_override([Path(config_dir)]))
    line = parse_command_line(args)
    if line.flags or line.multirun:
        raise ConfigError(f"command-line flags ({' '.join(line.flags) or '-m'}) are for nvembed-eval; pass overrides")
    check_torch()
    cfg, hydra_cfg, run_dir = job_config(compose(line))
    settings = validate(cfg, line)
    if settings.plan.enabled:
        raise ConfigError(
            "plan=true is the command line's dry run (nvembed-eval ... plan=true prints the cost plan); "
            "evaluate() runs the evaluation: drop plan"
        )
    given = line.given("output_dir")
    check_output_dir(str(given.value()) if given is not None else str(run_dir))
    record = resolve_run(cfg, hydra_cfg, settings)
    with console_logging():
        summary = execute(record)
    table = pd.DataFrame(summary_rows(summary, record.reference), columns=[*RESULT_COLUMNS, "resumed"])
    return EvalResult(run_dir=run_dir, table=table)


def load_results(path: str | Path) -> pd.DataFrame:
    """Scores of any results folder: a harness run folder, an mteb results folder, one TaskResult JSON or a published
    CSV (read by `nvembed-eval-compare`'s own reader). One row per task: task, type, metric, score (0-100),
    dataset_revision, source (the file it came from), note. Raises ResultsError when there are no usable results at
    `path` (one line)."""
    import pandas as pd

    scores = load_scores(path).scores.values()
    rows = [(s.task, _task_type(s.task), s.metric, s.value, s.dataset_revision, s.source, s.note) for s in scores]
    return pd.DataFrame(rows, columns=["task", "type", "metric", "score", "dataset_revision", "source", "note"])


def _task_type(name: str) -> str | None:
    with contextlib.suppress(NVEmbedEvalError):
        return load_task_spec(name).type
    return None


def leaderboard(path: str | Path, benchmark: str | None = None) -> pd.DataFrame:
    """The leaderboard averages of a run folder, mteb results folder or published CSV: the plain average over the
    benchmark's tasks and the per-type means, each with its coverage (results.leaderboard's rules). `benchmark`: a
    harness benchmark (`mteb_eng_v1`) or an mteb benchmark name (`MTEB(eng, v2)`); default: the run's own when its
    run.json records one, else `mteb_eng_v1`. One row per aggregate: name ("Average", then the task types), mean (NaN
    when no task is covered), covered, total, complete. Raises ResultsError when there are no usable results at `path`,
    ConfigError for an unknown benchmark."""
    import pandas as pd

    explicit = Benchmark.named(benchmark) if benchmark else None
    scores = load_scores(path, benchmark=explicit)
    bench = explicit or scores.benchmark or Benchmark.named("mteb_eng_v1")
    aggregates = benchmark_leaderboard(scores.values, bench).aggregates()
    rows = [(a.name, a.mean, a.covered, a.total, a.complete) for a in aggregates]
    return pd.DataFrame(rows, columns=["name", "mean", "covered", "total", "complete"])
