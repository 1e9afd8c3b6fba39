"""`nvembed-eval`: the Hydra entry point. Glue only: validate, run, print the table.

Examples:
    nvembed-eval model=minilm benchmark=smoke
    nvembed-eval model=minilm tasks=[STSBenchmark,SciFact] data_dir=../shared/data
    nvembed-eval -m model=nv_embed_tiny model.pooling=latent,mean benchmark=smoke
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from pathlib import Path

from nvembed_eval.errors import ConfigError, NVEmbedEvalError
from nvembed_eval.logs import FILE_ONLY, attach_run_log

log = logging.getLogger("nvembed_eval")

CONF_DIR = Path(os.environ.get("NVEMBED_EVAL_CONF", Path(__file__).resolve().parents[1] / "conf"))
CONFIG_NAME = "eval"


def fail(message: str, code: int = 2) -> None:
    """The CLI's single-line error contract."""
    print(f"error: {message}", file=sys.stderr)
    sys.exit(code)


def compose_config(overrides: list[str]):
    """The config `nvembed-eval` would run with these overrides, composed with Hydra's compose API: no Hydra job, so
    no output folder and no log file (for dry runs and side tools such as `nvembed-eval-probe`).

    Raises:
        ConfigError: Hydra cannot compose it (bad syntax, unknown key or option); the message is Hydra's first line.
    """
    from hydra import compose, initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    try:
        with initialize_config_dir(config_dir=str(CONF_DIR.resolve()), version_base="1.3"):
            return compose(config_name=CONFIG_NAME, overrides=list(overrides))
    except (HydraException, OmegaConfBaseException) as exc:
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ConfigError(f"cannot compose the config from {' '.join(overrides)}: {reason}") from None


def _run(cfg) -> None:
    from hydra.core.hydra_config import HydraConfig

    from nvembed_eval.settings import RunSettings

    hydra_cfg = HydraConfig.get()
    run_dir = Path(hydra_cfg.runtime.output_dir)
    accepted = False

    def accept(folder: Path) -> None:
        nonlocal accepted
        accepted = True
        with writing(folder):
            write_hydra_record(folder, cfg, hydra_cfg)
            log.info("run log: %s", attach_run_log(folder))

    try:
        RunSettings.from_config(cfg)  # strict values, before mteb, torch or the model are imported
        from nvembed_eval.models import init_from_env
        from nvembed_eval.runner import process_rank, run_evaluation
        from nvembed_eval.tracking import print_leaderboard, print_run_table, writing

        init_from_env()  # several ranks under torchrun: encoding is split across them
        summary = run_evaluation(cfg, run_dir, list(hydra_cfg.overrides.task), on_accept=accept)
        if process_rank() != 0:
            return
        print_run_table(summary, cfg)
        if cfg.get("leaderboard"):
            print_leaderboard(summary, cfg)
    except NVEmbedEvalError as exc:
        log.error("%s", exc, extra={FILE_ONLY: True})
        if not accepted:
            _discard_if_empty(run_dir)
        fail(str(exc), exc.exit_code)


def write_hydra_record(run_dir: Path, cfg, hydra_cfg) -> None:
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


def _discard_if_empty(run_dir: Path) -> None:
    """Hydra creates the run folder before any check runs; a refused run leaves no empty folder behind."""
    with contextlib.suppress(OSError):
        run_dir.rmdir()


def _print_plan(overrides: list[str]) -> None:
    """`plan=true`: what the run would encode and cost, from mteb's statistics; no model, no data, nothing written."""
    from nvembed_eval.models import planned_instruction_template
    from nvembed_eval.tasks import render_cost_plan

    cfg = compose_config(overrides)
    print(render_cost_plan(cfg, planned_instruction_template(cfg.model)), end="")


def main(argv: list[str] | None = None) -> None:
    """Console script. Validates group choices and knobs first, so mistakes cost one line, not a traceback."""
    import hydra

    from nvembed_eval.preflight import check_output_dir, check_overrides, check_torch
    from nvembed_eval.tasks import plan_overrides

    args = sys.argv[1:] if argv is None else argv
    try:
        check_torch()
        check_overrides(args, CONF_DIR)
        if (overrides := plan_overrides(args)) is not None:  # plan=true: answered before Hydra makes output_dir
            return _print_plan(overrides)
        check_output_dir(args)
    except NVEmbedEvalError as exc:
        fail(str(exc), exc.exit_code)
    if argv is not None:
        sys.argv = [sys.argv[0], *argv]
    entry = hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name=CONFIG_NAME)(_run)
    entry()


if __name__ == "__main__":
    main()
