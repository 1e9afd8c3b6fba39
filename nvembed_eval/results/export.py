"""`nvembed-eval-export`: a run's results handed to mteb, written by mteb's own `ResultCache.save_to_cache` into its
layout (`<cache>/results/<org__model>/<revision>/<Task>.json` + model_meta.json), which `mteb submit-results` sends to
the MTEB results repository as it is."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import NoReturn

from nvembed_eval.errors import NVEmbedEvalError, ResultsError
from nvembed_eval.io import Parser, emit, parse_json, read_text
from nvembed_eval.models.base import ModelIdentity
from nvembed_eval.results.reading import RUN_FILE, load_scores, read_run_info, read_task_result
from nvembed_eval.tasks.specs import content_source

COMMIT = re.compile(r"[0-9a-f]{40}")
# Data not from the hub, by its content label's source (tasks.specs.content_revision): what it is, and the fix.
OFF_HUB = {
    "local": ("local task files (data_dir=)", "rerun without data_dir"),
    "package": ("this package's own smoke tasks, which are no MTEB tasks", "export a run of MTEB tasks"),
}


def export_run(run_dir: Path, to: Path, revision: str | None = None, allow_local_data: bool = False) -> list[Path]:
    """Write the results of the run folder `run_dir` (run.json, results/, model_meta.json) into the mteb cache `to`
    (`MTEB_CACHE`, e.g. ~/.cache/mteb), or refuse with nothing written; returns the files written (task results, then
    model_meta.json). `revision`: the 40-hex hub commit of the model's weights, as the user states it, for a run that
    loaded a local folder (a `sha256:` content digest, which the results repository cannot take). `allow_local_data`:
    export results computed on local task files (`data_dir=`) too; the results repository merges results on the hub's
    data only. Raises ResultsError: not a run folder or no results; a model named `local/...`; no hub commit for the
    model (a local folder without `revision`, or a `revision` that is no 40-hex commit or disagrees with the loaded
    one); results on local data without `allow_local_data`; a task already exported with other scores; a
    `to` that is no folder or cannot be written."""
    from mteb.cache import ResultCache
    from mteb.models.model_meta import ModelMeta

    if (to.is_symlink() and not to.exists()) or (to.exists() and not to.is_dir()):
        raise ResultsError(f"--to {to} is not a folder; pass the mteb cache folder to write into, e.g. ~/.cache/mteb")
    if not (run_dir / RUN_FILE).is_file():
        raise ResultsError(f"{run_dir} has no {RUN_FILE}: it is no run folder of nvembed-eval; pass one")
    info = read_run_info(run_dir)
    scores = load_scores(run_dir)  # every result checked whole before anything is written
    model = info.get("model") or {}
    identity = ModelIdentity(str(model.get("name")), str(model.get("revision")), model.get("knobs") or {})
    if identity.name.startswith("local/") or "/" not in identity.name:
        raise ResultsError(
            f"the run's model is named {identity.name}; the results repository files results by hub id: rerun with "
            "model.name=<org/model> naming the model these weights are"
        )
    commit = _commit(identity.revision, revision)
    off_hub: dict[str, list[str]] = {}  # "local" (data_dir=) or "package" (the smoke tasks) -> tasks
    for task, score in sorted(scores.scores.items()):
        if found := content_source(score.dataset_revision or ""):
            off_hub.setdefault(found[0], []).append(task)
    if off_hub and not allow_local_data:
        kind, tasks = sorted(off_hub.items())[0]
        where, fix = OFF_HUB.get(kind, (f"{kind} data", "rerun on the hub's data"))
        raise ResultsError(
            f"{', '.join(tasks)} were computed on {where}; the MTEB results repository merges results on the hub's "
            f"data only: {fix}, or pass --allow-local-data to export anyway"
        )
    try:  # mteb's own metadata of the run's model, as the run wrote it (its loader is never stored)
        meta = ModelMeta.model_validate({**parse_json(read_text(run_dir / "model_meta.json")), "loader": None})
    except (OSError, ValueError) as exc:
        raise ResultsError(
            f"{run_dir / 'model_meta.json'} is no mteb ModelMeta ({type(exc).__name__}); rerun"
        ) from None
    kwargs = identity.experiment_kwargs([str(o) for o in info.get("overrides") or []])
    meta = meta.model_copy(update={"revision": commit, "experiment_kwargs": kwargs})
    cache = ResultCache(to)
    results = [read_task_result(p) for p in sorted((run_dir / "results").glob("*.json"))]
    for result in results:  # refuse overwriting another export's different scores, before writing anything
        target = cache.get_task_result_path(result.task_name, meta)
        if target.is_file() and read_task_result(target).scores != result.scores:
            raise ResultsError(f"{target} holds other scores for {result.task_name}; export into another --to")
    try:
        for result in results:
            cache.save_to_cache(result, meta)
    except OSError as exc:
        raise ResultsError(f"cannot write to {to} ({exc.strerror or exc}); pass a writable --to folder") from None
    written = [cache.get_task_result_path(result.task_name, meta) for result in results]
    return [*written, written[0].parent / "model_meta.json"]


def _commit(loaded: str, stated: str | None) -> str:
    """The model's hub commit: the one the run loaded, else the one the user states for a local folder."""
    if stated is not None and not COMMIT.fullmatch(stated):
        raise ResultsError(f"<--revision {stated}> is no hub commit; give the 40-hex commit of the model's weights")
    if COMMIT.fullmatch(loaded):
        if stated not in (None, loaded):
            raise ResultsError(f"the run loaded commit {loaded} of the model, not {stated}; drop --revision")
        return loaded
    if stated is None:
        raise ResultsError(
            f"the run loaded the model from a local folder (revision {loaded}), which the results repository cannot "
            "file; pass --revision <the 40-hex hub commit these weights are>"
        )
    return stated


def main(argv: list[str] | None = None) -> NoReturn:
    """Console script `nvembed-eval-export`."""
    parser = Parser(prog="nvembed-eval-export", description="Write a run's results into mteb's results layout.")
    parser.add_argument("run", type=Path, help="the run folder (run.json, results/)")
    parser.add_argument("--to", type=Path, required=True, help="the mteb cache folder, e.g. ~/.cache/mteb")
    parser.add_argument("--revision", default=None, help="the model's 40-hex hub commit (a local-folder model)")
    parser.add_argument("--allow-local-data", action="store_true", help="also export results made on local data")
    args = parser.parse_args(argv)
    try:
        written = export_run(args.run, args.to.expanduser(), args.revision, args.allow_local_data)
    except NVEmbedEvalError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
    emit(f"wrote {len(written) - 1} results and model_meta.json to {written[0].parent}")
    emit(f"submit them (where there is network): mteb submit-results --output-folder {args.to.expanduser()}")
    sys.exit(0)
