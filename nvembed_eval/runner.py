"""The task loop that joins the rooms: resolve tasks and their data, build the model once, refuse anything that does
not match before writing, evaluate each task through `mteb.evaluate`, write each result with its provenance, and keep
results made with the same settings (resume).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nvembed_eval.errors import ConfigError, NVEmbedEvalError, OutputLockedError
from nvembed_eval.settings import RunSettings, task_list
from nvembed_eval.tracking import (
    FIDELITY_KEY,
    PREDICTIONS_SUBDIR,
    RunFolder,
    RunSummary,
    TaskOutcome,
    check_reference,
    content_revision,
    prediction_folder,
    write_items,
)

if TYPE_CHECKING:
    from mteb import TaskResult
    from omegaconf import DictConfig

    from nvembed_eval.models import TextEncoder
    from nvembed_eval.tasks import TaskData, TaskSpec

log = logging.getLogger(__name__)


def resolve_specs(cfg: DictConfig) -> list[TaskSpec]:
    """Task specs from `tasks=[...]` (wins) or the benchmark's list (a harness YAML's `tasks:`, or for
    `benchmark=mteb` the task list of mteb's benchmark `benchmark.name`), validated against mteb's registry."""
    from nvembed_eval.tasks import has_task_yaml, load_task_spec, mteb_benchmark, resolve_task_names

    explicit = task_list("tasks", cfg.get("tasks"))
    benchmark = cfg.get("benchmark") or {}
    named = None
    if explicit or benchmark.get("tasks"):
        benchmark_tasks = list(benchmark.get("tasks") or [])
    else:
        named = mteb_benchmark(str(benchmark.name))
        benchmark_tasks = list(named.tasks)
    names = resolve_task_names(list(explicit) if explicit else None, benchmark_tasks)
    if not names:
        raise ConfigError("no tasks selected; pass tasks=[TaskName,...] or benchmark=<name>")
    if named is None:
        return [load_task_spec(name) for name in names]
    return [named.align(load_task_spec(name), has_task_yaml(name)) for name in names]


def build_encoder(cfg: DictConfig) -> TextEncoder:
    """Instantiate the model adapter from `cfg.model` and put the embedding cache in front of it."""
    import hydra.utils
    from hydra.errors import InstantiationException

    from nvembed_eval.cache import CachedEncoder

    try:
        encoder = hydra.utils.instantiate(cfg.model, _convert_="all")
    except InstantiationException as exc:
        # Hydra wraps the adapter's own one-line error (bad knob value, missing checkpoint file); surface it.
        if isinstance(exc.__cause__, NVEmbedEvalError):
            raise exc.__cause__ from None
        reason = " ".join(str(exc.__cause__ or exc).split())[:300]
        raise ConfigError(f"cannot build model={cfg.model.get('name')}: {reason}; check the model.* values") from None
    cache_cfg = cfg.cache
    return CachedEncoder(
        encoder,
        Path(str(cache_cfg.dir)).expanduser(),
        enabled=bool(cache_cfg.enabled),
        shard_size=int(cache_cfg.shard_size),
    )


def make_prefix_resolver(specs: list[TaskSpec], encoder: TextEncoder, variant: str):
    """(task name, side) -> literal prefix. Subtasks of an aggregate use their parent's instruction.

    A model that applies its own prompts (no template, a `prompt_key` method: mteb registry models) gets its prompt
    key instead: it keys the cache and is recorded as the prefix, and the `instructions=` tables do not apply.
    """
    from nvembed_eval.tasks import instruction_for, render_prefix

    by_name: dict[str, TaskSpec] = {}
    for spec in specs:
        by_name[spec.name] = spec
        for sub in spec.subtasks or ():
            by_name.setdefault(sub, spec)
    template = encoder.instruction_template()
    prompt_key = getattr(encoder, "prompt_key", None)
    if template is None and prompt_key is not None:
        return prompt_key

    def resolve(task_name: str, side: str | None) -> str:
        if template is None:
            return ""
        spec = by_name.get(task_name)
        if spec is None:
            raise NVEmbedEvalError(f"mteb asked to encode for unplanned task {task_name}; this is a harness bug")
        return render_prefix(instruction_for(spec, side, variant), template)

    return resolve


def run_evaluation(
    cfg: DictConfig, run_dir: Path, overrides: list[str], on_accept: Callable[[Path], None] | None = None
) -> RunSummary:
    """Evaluate every selected task into `run_dir`; finished tasks made with the same settings are kept.

    Every check that can refuse the run (settings, tasks and their data, the folder's lock, the model, the
    provenance of stored results) happens before anything is written into `run_dir`.

    Args:
        cfg: the composed config (conf/eval.yaml). run_dir: the run folder. overrides: the command-line overrides.
        on_accept: called with `run_dir` once the run is accepted, right after run.json is written (the CLI writes
            Hydra's record and the run's log file there).

    Returns:
        The outcome of every task, resumed or computed.

    Raises:
        NVEmbedEvalError: any refusal (one-line message with the fix).
    """
    import mteb
    from omegaconf import OmegaConf

    from nvembed_eval.models import MtebEncoder
    from nvembed_eval.tasks import fidelity_record, plan_task_data

    settings = RunSettings.from_config(cfg)
    check_reference(cfg)  # an unusable reference= (missing file, bad table) stops the run before any task
    specs = resolve_specs(cfg)
    benchmark = benchmark_record(cfg, [spec.name for spec in specs])  # every task, also those without data here
    planned = plan_task_data(
        specs, data_dir=settings.data_dir, dataset_revision=settings.dataset_revision, explicit=bool(settings.tasks)
    )
    specs = [spec for spec in specs if spec.name in planned]
    if isinstance(settings.overwrite, frozenset) and settings.overwrite - set(planned):
        unknown = ",".join(sorted(settings.overwrite - set(planned)))
        raise ConfigError(
            f"<overwrite=[{unknown}]> names tasks this run does not evaluate; name tasks of this run, or overwrite=true"
        )

    folder = RunFolder(run_dir)
    summary = RunSummary(
        run_dir=run_dir,
        benchmark=benchmark["name"],
        not_run=[name for name in benchmark["tasks"] if name not in planned],  # no data here (local or cache)
    )
    # Under torchrun every rank runs this loop (encoding is split across ranks inside the model); rank 0 alone
    # locks and writes the folder. All ranks read the same files, so they take the same decisions.
    primary = process_rank() == 0
    with folder.locked() if primary else nullcontext(folder):
        encoder = build_encoder(cfg)
        folder.load_record()
        other = folder.other_model(encoder.identity)
        if other is not None:
            raise OutputLockedError(
                f"{run_dir} holds results of another model or model settings, {other}; use a new output_dir "
                "(results of two models are never mixed)"
            )
        resolve_prefix = make_prefix_resolver(specs, encoder, cfg.instructions.variant)
        expected = {spec.name: expected_provenance(spec, planned[spec.name], encoder, resolve_prefix) for spec in specs}
        reuse = folder.reusable(expected, overwrite=settings.overwrite, trust_existing=settings.trust_existing)
        bridge = MtebEncoder(encoder, resolve_prefix, settings.batch_size)
        if primary:
            folder.start(
                config=OmegaConf.to_container(cfg, resolve=True),  # type: ignore[arg-type]
                overrides=overrides,
                identity=encoder.identity,
                benchmark=benchmark,
            )
            folder.write_model_meta(bridge.mteb_model_meta.model_dump(mode="json", exclude={"loader"}))
            if on_accept is not None:
                on_accept(run_dir)

        for number, spec in enumerate(specs, 1):
            log.info("[%d/%d] %s (%s)", number, len(specs), spec.name, spec.type)
            if spec.name in reuse:
                why = (
                    "a result without a provenance record is kept (trust_existing=true): what made it is unknown"
                    if reuse[spec.name]
                    else "a result made with the same settings is kept"
                )
                if settings.save_predictions:
                    why += f"; no predictions for kept tasks (overwrite=[{spec.name}] recomputes it)"
                log.info("%s: %s (%s)", spec.name, why, run_dir)
                if reuse[spec.name] and primary:
                    folder.record_trusted(spec.name)
                summary.outcomes.append(TaskOutcome(spec, _read_result(folder.result_path(spec.name)), True))
                continue
            data = planned[spec.name]
            start = time.perf_counter()
            cache_before = _cache_counters(encoder)
            data.load()
            if primary:  # the old predictions belong to the result this task replaces (mteb would merge into them)
                clear_predictions(run_dir / PREDICTIONS_SUBDIR, data.task)
            fidelity = fidelity_record(data.task)  # mteb 1 vs 2 definitions, counted before mteb filters the data
            # mteb's predictions feed the per-item data (a scratch folder, or <run>/predictions with save_predictions)
            with prediction_folder(run_dir, keep=settings.save_predictions, enabled=primary) as predictions:
                model_result = mteb.evaluate(
                    bridge,
                    data.task,
                    cache=None,
                    encode_kwargs={"batch_size": settings.batch_size, "show_progress_bar": settings.progress},
                    overwrite_strategy="always",
                    co2_tracker=False,
                    show_progress_bar=settings.progress,
                    prediction_folder=predictions,
                )
                result = model_result.task_results[0]
                items = write_items(data, spec, predictions, run_dir, result)  # per-item data for the gate
                kept = (
                    prediction_files(run_dir, predictions, data.task)
                    if predictions is not None and settings.save_predictions
                    else None
                )
            stats = bridge.task_stats.get(spec.name)
            sub_stats = [bridge.task_stats[s] for s in spec.subtasks or () if s in bridge.task_stats]
            provenance = expected[spec.name]
            if data.source == "hub":
                provenance["data"] = {
                    **provenance["data"],
                    "revision_source": data.revision_source,
                    "loaded_revision": result.dataset_revision,
                    "verified": data.verified,
                }
            else:
                # mteb's TaskResult names its task's hub commit, which local data did not come from: record the
                # content fingerprint instead, so every reader (compare, leaderboards) sees local data as such.
                provenance["data"] = {**provenance["data"], "revision_source": data.source}
                result.dataset_revision = content_revision(data.source, provenance["data"]["sha256"])
            if fidelity is not None:
                provenance[FIDELITY_KEY] = fidelity
            entry: dict[str, Any] = {
                "identity_key": encoder.identity.key(),
                "wall_seconds": round(time.perf_counter() - start, 3),
                "texts_encoded": sum(s.texts for s in [stats, *sub_stats] if s),
                "tokens_encoded": sum(s.tokens for s in [stats, *sub_stats] if s),
                "prefixes": stats.prefixes if stats else {},
                "cache": {k: v - cache_before.get(k, 0) for k, v in _cache_counters(encoder).items()},
                "dataset_source": f"local:{data.folders[0]}" if data.source == "local" else data.source,
                "dataset_revision": result.dataset_revision,
                "dataset_revision_source": data.revision_source if data.source == "hub" else data.source,
                "task_version": spec.version,
                **({"fidelity": fidelity} if fidelity is not None else {}),
                "provenance": provenance,
            }
            if items is not None:
                provenance["items"] = items  # run.json and the result file: the items file's path and sha256
            if kept is not None:
                entry["predictions"] = kept
            if primary:
                path = folder.write_result(result, entry, provenance)
                log.info("%s: wrote %s", spec.name, path)
                result = _read_result(path)  # the stored numbers, so a fresh run shows what a resumed one will
            summary.outcomes.append(TaskOutcome(spec, result, False))
            data.release()
    if primary and settings.cache_max_bytes is not None and cfg.cache.enabled:
        prune_cache(Path(str(cfg.cache.dir)).expanduser(), settings.cache_max_bytes, cfg.cache.max_size)
    return summary


def expected_provenance(spec: TaskSpec, data: TaskData, encoder: TextEncoder, resolve_prefix) -> dict[str, Any]:
    """What a result of `spec` made by this run would record (tracking.provenance), known before it runs."""
    from nvembed_eval.tracking import make_provenance

    return make_provenance(
        task={"name": spec.name, "version": spec.version, "split": spec.split, "subset": spec.subset},
        model=encoder.identity.record(),
        prefixes={side or "none": resolve_prefix(spec.name, side) for side in ("query", "document", None)},
        data=data.record(),
    )


def benchmark_record(cfg: DictConfig, tasks: list[str]) -> dict[str, Any]:
    """run.json's `benchmark`: the name the run's tasks came from ("tasks" for an ad-hoc list; mteb's own name for
    `benchmark=mteb`, an alias resolved) and its whole resolved task list, the leaderboard's denominators (a run
    that serves 3 of them from local data still records all of them: its coverage is 3 of N)."""
    from nvembed_eval.tasks import mteb_benchmark

    benchmark = cfg.get("benchmark") or {}
    if task_list("tasks", cfg.get("tasks")):
        name = "tasks"
    elif benchmark.get("tasks"):
        name = str(benchmark.get("name", "tasks"))
    else:
        name = mteb_benchmark(str(benchmark.name)).name
    return {"name": name, "tasks": list(tasks)}


def prediction_files(run_dir: Path, folder: Path, task: Any) -> list[str]:
    """The files mteb wrote for `task` (`<name>_predictions.json`, one per subtask of an aggregate), relative to
    the run folder."""
    from nvembed_eval.tasks import hub_leaves

    paths = [folder / leaf.prediction_file_name for leaf in hub_leaves(task)]
    return [str(p.relative_to(run_dir)) for p in paths if p.is_file()]


def clear_predictions(folder: Path, task: Any) -> None:
    """Remove the predictions of `task` left by an earlier or killed run (mteb would merge into them)."""
    from nvembed_eval.tasks import hub_leaves

    for leaf in hub_leaves(task):
        (folder / leaf.prediction_file_name).unlink(missing_ok=True)


def cache_max_bytes(cfg: DictConfig) -> int | None:
    """`cache.max_size` in bytes, None for no cap. Raises `ConfigError` naming the value."""
    from nvembed_eval.cache import parse_size

    value = cfg.cache.get("max_size")
    return None if value is None else parse_size(value, "cache.max_size", hint=", or null for no cap")


def prune_cache(root: Path, max_bytes: int, setting: object) -> None:
    """Evict least recently used shards until `root` fits `max_bytes`. The results are already written, so a cache
    that cannot be pruned (read-only, shared) costs a warning, not the run."""
    from nvembed_eval.cache import human_size, prune_root

    try:
        pruned = prune_root(root, max_bytes)
    except OSError as e:
        log.warning("embedding cache: could not prune %s to cache.max_size=%s: %s", root, setting, e)
        return
    log.info(
        "embedding cache: pruned %s to cache.max_size=%s: removed %d files (%s), %s left",
        root,
        setting,
        pruned.files_removed,
        human_size(pruned.bytes_removed),
        human_size(pruned.bytes_left),
    )


def process_rank() -> int:
    """This process's rank under torchrun (0 when not distributed)."""
    return int(os.environ.get("RANK", "0"))


def _cache_counters(encoder: TextEncoder) -> dict[str, int]:
    """Numeric embedding-cache counters (hits, misses, shards written/reused), to record per task."""
    counters = getattr(encoder, "counters", {}) or {}
    return {k: v for k, v in counters.items() if isinstance(v, int) and not isinstance(v, bool)}


def _read_result(path: Path) -> TaskResult:
    from mteb import TaskResult

    return TaskResult.from_disk(path)
