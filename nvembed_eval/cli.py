"""`nvembed-eval` and `nvembed-eval-probe`: glue only. A single run is composed here, once, with Hydra's compose API;
`-m` sweeps, launchers, help and shell completion go through `@hydra.main`, whose jobs run the same path. E.g.
`nvembed-eval -m model=nv_embed_tiny model.pooling=latent,mean benchmark=smoke`."""

from __future__ import annotations

import logging.config
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from nvembed_eval.config import (
    CONFIG_NAME,
    check_output_dir,
    check_sweep,
    check_sweep_output_dirs,
    check_torch,
    compose,
    job_config,
    parse_command_line,
    validate,
)
from nvembed_eval.errors import NVEmbedEvalError, ResultsError
from nvembed_eval.io import Parser, conf_dir, emit, finite_non_negative_float, non_negative_int
from nvembed_eval.models import probe
from nvembed_eval.run.record import RunRecord, render_plan, resolve_run
from nvembed_eval.run.session import build_encoder, discard_created, execute, process_rank
from nvembed_eval.run.summary import print_leaderboard, print_run_table

if TYPE_CHECKING:
    from omegaconf import DictConfig


def fail(message: str, code: int = 2) -> NoReturn:
    """The command line's single-line error contract."""
    print(f"error: {message}", file=sys.stderr)
    sys.exit(code)


def main(argv: list[str] | None = None) -> None:
    """Console script `nvembed-eval`. Every mistake costs one line and no folder: the config is composed and checked,
    its tasks, data and reference resolved, before anything is written."""
    args = sys.argv[1:] if argv is None else list(argv)
    try:
        line = parse_command_line(args)
        if line.plain:
            return _single_run(line)
        keep = Path.cwd()
        if line.multirun:
            check_sweep(line)  # every swept value, before the first job runs
            check_torch()
            keep = check_sweep_output_dirs(line)
        elif not line.help_only:
            compose(line)  # --cfg, --info: refuse a bad override in one line before Hydra prints its own
    except NVEmbedEvalError as exc:
        fail(str(exc), exc.exit_code)
    _hydra_main(args, keep)


def _single_run(line) -> None:
    cfg, hydra_cfg, run_dir = job_config(compose(line))
    settings = validate(cfg, line)
    if settings.plan.enabled:  # a dry run however it was set: no model, no data, nothing written
        emit(render_plan(settings), end="")
        return
    check_torch()
    key = "hydra.run.dir" if line.given("hydra.run.dir") is not None else "output_dir"
    given = line.given(key)
    check_output_dir(str(given.value()) if given is not None else str(run_dir), key)
    if not settings.progress:  # mteb's evaluators draw bars of their own; tqdm reads this when first imported
        os.environ.setdefault("TQDM_DISABLE", "1")
    from omegaconf import OmegaConf

    job_logging = OmegaConf.to_container(hydra_cfg.job_logging, resolve=True)
    logging.config.dictConfig(job_logging)  # type: ignore[arg-type]  # the console Hydra would configure for a job
    _run(resolve_run(cfg, hydra_cfg, settings))


def _run(record: RunRecord, keep: Path | None = None) -> None:
    summary = execute(record, keep)
    if process_rank() != 0:
        return
    model = str(record.settings.model.get("name") or "")
    print_run_table(summary, record.reference, model)
    if record.settings.leaderboard:
        print_leaderboard(summary, record.reference)


def _hydra_main(args: list[str], keep: Path) -> None:
    """Hand the command line to `@hydra.main` (sweeps, launchers, help, completion); each job runs `_run`."""
    import hydra
    from hydra.core.hydra_config import HydraConfig

    def job(cfg: DictConfig) -> None:
        hydra_cfg = HydraConfig.get()
        try:
            settings = validate(cfg, cwd=hydra_cfg.runtime.cwd)  # the launch folder, even after hydra.job.chdir
            if not settings.progress:
                os.environ.setdefault("TQDM_DISABLE", "1")
            _run(resolve_run(cfg, hydra_cfg, settings), keep)
        except NVEmbedEvalError as exc:
            discard_created(Path(hydra_cfg.runtime.output_dir), keep)  # the folder Hydra made for this job
            fail(str(exc), exc.exit_code)

    sys.argv = [sys.argv[0], *args]
    hydra.main(version_base="1.3", config_path=str(conf_dir()), config_name=CONFIG_NAME)(job)()


def probe_main(argv: list[str] | None = None) -> NoReturn:
    """Console script `nvembed-eval-probe`: write or check an embedding-probe baseline for a model chosen with
    `nvembed-eval`'s overrides (docs/probes.md). Exit 0 written / within tolerance, 1 some text beyond tolerance,
    2 unusable input."""
    description = "Encode the packaged probe texts (no embedding cache) and write or check a baseline."
    parser = Parser(prog="nvembed-eval-probe", description=description)
    parser.add_argument("action", choices=("write", "check"), help="write a baseline, or check against one")
    parser.add_argument("baseline", type=Path, help="baseline file (.safetensors)")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides as for nvembed-eval, e.g. model=nv_embed_tiny")
    tolerance_help = "max abs difference of L2-normalised embeddings per text; default by dtype (docs/probes.md)"
    parser.add_argument("--tolerance", type=finite_non_negative_float, default=None, help=tolerance_help)
    other_model_help = "check: compare although the model identity differs from the baseline's"
    parser.add_argument("--allow-other-model", action="store_true", help=other_model_help)
    parser.add_argument("--worst", type=non_negative_int, default=10, help="check: how many of the worst texts to list")
    parser.add_argument("--force", action="store_true", help="write: replace an existing baseline")
    args = parser.parse_args(argv)
    try:
        code = _probe(args)
    except NVEmbedEvalError as exc:
        fail(str(exc), exc.exit_code)
    except Exception as exc:  # exit 1 means "moved beyond tolerance" to CI; nothing unexpected may look like that
        fail(f"unexpected {type(exc).__name__}: {exc}; nothing was judged")
    sys.exit(code)


def _probe(args) -> int:
    """Carry out one probe command; returns the exit code. Raises `NVEmbedEvalError` for unusable input."""
    if args.action == "write":
        probe.check_baseline_path(args.baseline, must_exist=False)  # a folder: refused before the model loads
        if args.baseline.exists() and not args.force:
            raise ResultsError(f"{args.baseline} exists; pass --force to replace it, or check against it")
    else:  # everything that can be refused without the model is refused before it loads
        baseline = probe.read_baseline(args.baseline)
        probe.check_usable(baseline, probe.load_probe_set(baseline.probe_set_version))
    check_torch()
    line = parse_command_line(args.overrides)
    settings = validate(job_config(compose(line))[0], line)
    encoder = build_encoder(settings, cached=False)  # a cached vector would hide the very change probes catch
    model = getattr(encoder, "model", None)
    device = str(getattr(encoder, "device", None) or getattr(model, "device", settings.device))
    if args.action == "write":
        probe_set = probe.load_probe_set()
        vectors = probe.encode_probes(encoder, probe_set, settings.batch_size)
        template = encoder.instruction_template()
        recorded = {"instruction_template": template, "device": device, "batch_size": settings.batch_size}
        probe.write_baseline(args.baseline, vectors, probe_set, encoder.identity, **recorded)
        emit(f"wrote {args.baseline}: probe set v{probe_set.version}, {vectors.shape[0]} texts x {vectors.shape[1]}")
        return 0
    probe_set = probe.load_probe_set(baseline.probe_set_version)
    difference = probe.identity_difference(baseline, encoder.identity)
    if difference and not args.allow_other_model:
        raise ResultsError(
            f"{args.baseline} was written by another model ({difference}); pass --allow-other-model to compare anyway"
        )
    if baseline.embeddings.shape[1] != encoder.embed_dim:
        raise ResultsError(
            f"{args.baseline} holds {baseline.embeddings.shape[1]}-d embeddings, the model gives {encoder.embed_dim}-d"
        )
    vectors = probe.encode_probes(encoder, probe_set, settings.batch_size)
    tolerance = args.tolerance if args.tolerance is not None else probe.default_tolerance(baseline.identity)
    cmp = probe.compare_embeddings(probe_set, baseline.embeddings, vectors, tolerance)
    if difference:
        emit(f"note: comparing across models ({difference})")
    emit(probe.render_comparison(cmp, baseline, probe.probe_versions(), args.worst), end="")
    return cmp.exit_code


if __name__ == "__main__":
    main()
