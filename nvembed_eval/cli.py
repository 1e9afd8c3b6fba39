"""`nvembed-eval`: the Hydra entry point. Glue only: check the command line, run, print the table.

Examples:
    nvembed-eval model=minilm benchmark=smoke
    nvembed-eval model=minilm tasks=[STSBenchmark,SciFact] data_dir=../shared/data
    nvembed-eval -m model=nv_embed_tiny model.pooling=latent,mean benchmark=smoke
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from nvembed_eval.errors import NVEmbedEvalError

CONFIG_NAME = "eval"


def __getattr__(name: str) -> Path:
    if name == "CONF_DIR":  # the bundled config tree (nvembed_eval.resources.conf_dir), resolved on first use
        from nvembed_eval.resources import conf_dir

        return conf_dir()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def fail(message: str, code: int = 2) -> None:
    """The CLI's single-line error contract."""
    print(f"error: {message}", file=sys.stderr)
    sys.exit(code)


def _run(cfg, keep: Path) -> None:
    from hydra.core.hydra_config import HydraConfig

    from nvembed_eval.api import check_config, execute

    hydra_cfg = HydraConfig.get()
    run_dir = Path(hydra_cfg.runtime.output_dir)
    try:
        check_config(cfg)  # strict values, before mteb, torch or the model are imported
        from nvembed_eval.runner import process_rank
        from nvembed_eval.tracking import print_leaderboard, print_run_table

        summary = execute(cfg, hydra_cfg, run_dir, list(hydra_cfg.overrides.task), keep)
        if process_rank() != 0:
            return
        print_run_table(summary, cfg)
        if cfg.get("leaderboard"):
            print_leaderboard(summary, cfg)
    except NVEmbedEvalError as exc:
        from nvembed_eval.api import discard_created

        discard_created(run_dir, keep)  # only when empty: an accepted run's folder is never empty
        fail(str(exc), exc.exit_code)


def _precheck(line) -> tuple[Path, bool]:
    """For a single run: compose the config as Hydra will and check its values, before Hydra creates the run folder.

    Returns:
        The nearest folder that exists at or above the run folder (a refused run removes what it created below it),
        and whether progress bars were asked for (`progress=true`).
    """
    from nvembed_eval.api import check_config, compose_config, job_config, search_path_override
    from nvembed_eval.preflight import nearest_existing

    overrides = [o.input_line for o in line.overrides]
    searchpath = any(o.key_or_group == "hydra.searchpath" for o in line.overrides)
    cli_dirs = [] if searchpath else line.config_dirs  # --config-dir: the same folders as a search path override
    if line.plain and not (searchpath and "--config-dir" in line.raw_flags):
        extra = [search_path_override(cli_dirs)] if cli_dirs else []
        cfg, _hydra, run_dir = job_config(compose_config([*overrides, *extra]))
        return nearest_existing(run_dir), check_config(cfg).progress
    if line.multirun and not line.flags and not (searchpath and "--config-dir" in line.raw_flags):
        _check_sweep(line.overrides, [search_path_override(cli_dirs)] if cli_dirs else [])
    given = [o for o in line.overrides if o.key_or_group == "output_dir" and not o.is_sweep_override()]
    root = Path(str(given[-1].value())) if given else Path(os.environ.get("NVEMBED_EVAL_ROOT", ".")) / "outputs"
    progress = any(o.key_or_group == "progress" and o.value() is True for o in line.overrides)
    return nearest_existing(root.expanduser().absolute()), progress


MAX_SWEEP_CHECKS = 64  # composed configs checked before a sweep starts (each ~0.1 s)


def _check_sweep(overrides: list, extra: list[str]) -> None:
    """`-m`: check every swept value before the first job runs (Hydra would run the good jobs, then fail the bad
    one). Each value is composed once, with the other swept keys at their first value; range/glob sweeps, which
    Hydra expands itself, are left to each job's own check.

    Raises:
        NVEmbedEvalError: the first value that a single run would refuse (its one-line message).
    """
    from nvembed_eval.api import check_config, compose_config, job_config

    def values(override) -> list[str]:
        if not override.is_sweep_override():
            return [override.input_line.split("=", 1)[1]]
        try:
            return list(override.sweep_string_iterator())
        except Exception:  # range/interval/glob: no plain list of strings
            return []

    keys = [o.input_line.split("=", 1)[0] for o in overrides]
    options = [values(o) for o in overrides]
    if any(not v for v in options):
        return
    first = [v[0] for v in options]
    checked = 0
    for position, choices in enumerate(options):
        for value in choices[1:] if position else choices:
            combo = [*first[:position], value, *first[position + 1 :]]
            cfg, _hydra, _run_dir = job_config(
                compose_config([f"{k}={v}" for k, v in zip(keys, combo, strict=True)] + extra)
            )
            check_config(cfg)
            checked += 1
            if checked >= MAX_SWEEP_CHECKS:
                return


def _print_plan(overrides: list[str]) -> None:
    """`plan=true`: what the run would encode and cost, from mteb's statistics; no model, no data, nothing written."""
    from nvembed_eval.api import job_only_config
    from nvembed_eval.models import planned_instruction_template
    from nvembed_eval.runner import resolve_specs
    from nvembed_eval.settings import RunSettings
    from nvembed_eval.tasks import render_cost_plan

    cfg = job_only_config(overrides)
    RunSettings.from_config(cfg)  # the same value checks as a run (plan.gpus, model knobs, ...)
    specs = resolve_specs(cfg)  # tasks=, the benchmark's list, or a named mteb benchmark's
    print(render_cost_plan(cfg, planned_instruction_template(cfg.model), specs), end="")


def main(argv: list[str] | None = None) -> None:
    """Console script. Checks the command line first, so mistakes cost one line, not a traceback, and no folder."""
    import hydra

    from nvembed_eval.preflight import check_output_dir, check_overrides, check_torch
    from nvembed_eval.resources import conf_dir
    from nvembed_eval.tasks import plan_overrides

    args = sys.argv[1:] if argv is None else argv
    try:
        conf = conf_dir()
        line = check_overrides(args, conf)
        if not line.no_run and (overrides := plan_overrides(args)) is not None:
            return _print_plan(overrides)  # plan=true: answered before Hydra makes output_dir; needs no torch
        keep = Path.cwd()
        if not line.no_run:
            check_torch()
            check_output_dir(args)
            keep, progress = _precheck(line)
            if not progress:  # mteb's evaluators draw bars of their own; tqdm reads this when first imported
                os.environ.setdefault("TQDM_DISABLE", "1")
    except NVEmbedEvalError as exc:
        fail(str(exc), exc.exit_code)
    if argv is not None:
        sys.argv = [sys.argv[0], *argv]

    def task(cfg) -> None:
        _run(cfg, keep)

    entry = hydra.main(version_base="1.3", config_path=str(conf), config_name=CONFIG_NAME)(task)
    entry()


if __name__ == "__main__":
    main()
