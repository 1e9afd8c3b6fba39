"""`nvembed-eval-probe`: write or check an embedding-probe baseline for a model chosen with `nvembed-eval`'s Hydra
overrides. Glue only: the probe set, baseline format and comparison live in `nvembed_eval.tracking.probe`.

Exit codes: 0 written / within tolerance, 1 some text beyond tolerance, 2 unusable input (one `error:` line).

Examples:
    nvembed-eval-probe write baselines/tiny.safetensors model=nv_embed_tiny
    nvembed-eval-probe check baselines/tiny.safetensors model=nv_embed_tiny
    nvembed-eval-probe check baselines/v2.safetensors model=nv_embed_v2 model.path=/weights/NV-Embed-v2 --tolerance 3e-2
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from nvembed_eval.arguments import Parser, finite_non_negative_float, non_negative_int
from nvembed_eval.errors import NVEmbedEvalError, ResultsError


def _parser() -> Parser:
    parser = Parser(
        prog="nvembed-eval-probe",
        description="Encode the packaged probe texts (no embedding cache) and write or check a baseline.",
    )
    parser.add_argument("action", choices=("write", "check"), help="write a baseline, or check against one")
    parser.add_argument("baseline", type=Path, help="baseline file (.safetensors)")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides as for nvembed-eval, e.g. model=nv_embed_tiny")
    parser.add_argument(
        "--tolerance",
        type=finite_non_negative_float,
        default=None,
        help="max abs difference of L2-normalised embeddings per text; default by dtype (docs/probes.md)",
    )
    parser.add_argument(
        "--allow-other-model",
        action="store_true",
        help="check: compare although the model identity differs from the baseline's",
    )
    parser.add_argument("--worst", type=non_negative_int, default=10, help="check: how many of the worst texts to list")
    parser.add_argument("--force", action="store_true", help="write: replace an existing baseline")
    return parser


def _build_bare_encoder(overrides: list[str]):
    """The model `nvembed-eval` would build for these overrides, without the embedding cache in front of it."""
    from nvembed_eval.api import job_only_config
    from nvembed_eval.preflight import check_overrides, check_torch
    from nvembed_eval.resources import conf_dir
    from nvembed_eval.runner import build_encoder

    check_torch()
    check_overrides(overrides, conf_dir())
    # Appended last so that no override can turn the cache back on: a cached vector would hide the change.
    cfg = job_only_config([*overrides, "cache.enabled=false"])
    encoder = build_encoder(cfg)
    return getattr(encoder, "encoder", encoder), cfg  # CachedEncoder.encoder: the wrapped model adapter


def _device(encoder, configured: str) -> str:
    """Where the model runs: NV-Embed keeps `.device`, sentence-transformers `.model.device`."""
    found = getattr(encoder, "device", None) or getattr(getattr(encoder, "model", None), "device", None)
    return str(found or configured)


def run(args: argparse.Namespace) -> int:
    """Carry out one command; returns the exit code. Raises `NVEmbedEvalError` for unusable input."""
    from nvembed_eval.tracking import (
        check_baseline_path,
        check_usable,
        compare_embeddings,
        default_tolerance,
        encode_probes,
        identity_difference,
        load_probe_set,
        probe_versions,
        read_baseline,
        render_comparison,
        write_baseline,
    )

    if args.action == "write":
        check_baseline_path(args.baseline, must_exist=False)  # a folder: refused before the model loads
        if args.baseline.exists() and not args.force:
            raise ResultsError(f"{args.baseline} exists; pass --force to replace it, or check against it")
        probe_set = load_probe_set()
        encoder, cfg = _build_bare_encoder(args.overrides)
        vectors = encode_probes(encoder, probe_set, int(cfg.batch_size))
        write_baseline(
            args.baseline,
            vectors,
            probe_set,
            encoder.identity,
            instruction_template=encoder.instruction_template(),
            device=_device(encoder, str(cfg.device)),
            batch_size=int(cfg.batch_size),
        )
        print(f"wrote {args.baseline}: probe set v{probe_set.version}, {vectors.shape[0]} texts x {vectors.shape[1]}")
        return 0

    # Everything that can be refused without the model is refused before it loads.
    baseline = read_baseline(args.baseline)
    probe_set = load_probe_set(baseline.probe_set_version)
    check_usable(baseline, probe_set)
    encoder, cfg = _build_bare_encoder(args.overrides)
    difference = identity_difference(baseline, encoder.identity)
    if difference and not args.allow_other_model:
        raise ResultsError(
            f"{args.baseline} was written by another model ({difference}); pass --allow-other-model to compare anyway"
        )
    if baseline.embeddings.shape[1] != encoder.embed_dim:
        raise ResultsError(
            f"{args.baseline} holds {baseline.embeddings.shape[1]}-d embeddings, the model gives {encoder.embed_dim}-d"
        )
    vectors = encode_probes(encoder, probe_set, int(cfg.batch_size))
    tolerance = args.tolerance if args.tolerance is not None else default_tolerance(baseline.identity)
    cmp = compare_embeddings(probe_set, baseline.embeddings, vectors, tolerance)
    if difference:
        print(f"note: comparing across models ({difference})")
    print(render_comparison(cmp, baseline, probe_versions(), args.worst), end="")
    return cmp.exit_code


def main(argv: list[str] | None = None) -> None:
    """Console script `nvembed-eval-probe`."""
    args = _parser().parse_args(argv)
    try:
        code = run(args)
    except NVEmbedEvalError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except Exception as exc:  # exit 1 means "moved beyond tolerance" to CI; nothing unexpected may look like that
        print(f"error: unexpected {type(exc).__name__}: {exc}; nothing was judged", file=sys.stderr)
        sys.exit(2)
    sys.exit(code)


if __name__ == "__main__":
    main()
