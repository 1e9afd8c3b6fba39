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
    given = [o for o in line.overrides if o.key_or_group == "output_dir" and not o.is_sweep_override()]
    root = Path(str(given[-1].value())) if given else Path(os.environ.get("NVEMBED_EVAL_ROOT", ".")) / "outputs"
    progress = any(o.key_or_group == "progress" and o.value() is True for o in line.overrides)
    return nearest_existing(root.expanduser().absolute()), progress


def _print_plan(overrides: list[str]) -> None:
    """`plan=true`: what the run would encode and cost, from mteb's statistics; no model, no data, nothing written."""
    from nvembed_eval.api import job_only_config
    from nvembed_eval.models import planned_instruction_template
    from nvembed_eval.tasks import render_cost_plan

    cfg = job_only_config(overrides)
    print(render_cost_plan(cfg, planned_instruction_template(cfg.model)), end="")


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
