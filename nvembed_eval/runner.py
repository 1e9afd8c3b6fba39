"""The task loop: resolve tasks, attach data, build the model once, evaluate each task through `mteb.evaluate`, write
results as they finish, skip tasks already done (resume).
"""

from __future__ import annotations

import logging
import os
import time
from contextlib import nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nvembed_eval.errors import ConfigError, DataError, NVEmbedEvalError
from nvembed_eval.tasks import REVISION_KINDS, build_mteb_task, load_hub_data
from nvembed_eval.tracking import RunFolder, RunSummary, TaskOutcome, check_reference

if TYPE_CHECKING:
    from mteb import AbsTask, TaskResult
    from omegaconf import DictConfig

    from nvembed_eval.models import TextEncoder
    from nvembed_eval.tasks import TaskSpec

log = logging.getLogger(__name__)


def resolve_specs(cfg: DictConfig) -> list[TaskSpec]:
    """Task specs from `tasks=[...]` (wins) or the benchmark's list, validated against mteb's registry."""
    from nvembed_eval.tasks import load_task_spec, resolve_task_names

    explicit = list(cfg.tasks) if cfg.get("tasks") else None
    benchmark_tasks = list(cfg.benchmark.tasks) if cfg.get("benchmark") else []
    names = resolve_task_names(explicit, benchmark_tasks)
    if not names:
        raise ConfigError("no tasks selected; pass tasks=[TaskName,...] or benchmark=<name>")
    return [load_task_spec(name) for name in names]


def _leaf_tasks(task: AbsTask) -> list[AbsTask]:
    """Aggregate tasks (CQADupstackRetrieval) evaluate their subtasks; data is attached to those."""
    from mteb.abstasks.aggregated_task import AbsTaskAggregate

    return list(task.metadata.tasks) if isinstance(task, AbsTaskAggregate) else [task]


def missing_local_folders(tasks: list[AbsTask], data_dir: Path) -> dict[str, str]:
    """Task name -> the error for each task whose folder (or a subtask's folder) is missing under data_dir."""
    if not data_dir.is_dir():
        raise DataError(f"data_dir {data_dir} does not exist; point data_dir= at a folder of <TaskName>/ folders")
    missing = {}
    for task in tasks:
        for leaf in _leaf_tasks(task):
            folder = data_dir / leaf.metadata.name
            if not folder.is_dir():
                missing[task.metadata.name] = (
                    f"data_dir has no folder for {leaf.metadata.name}: expected {folder}/ in the "
                    f"{leaf.metadata.type} layout (see docs/local_data.md), or drop data_dir to load from the hub"
                )
                break
    return missing


def select_local_tasks(specs: list[TaskSpec], tasks: dict[str, AbsTask], data_dir: Path, explicit: bool) -> list[str]:
    """Names of the tasks that read data_dir. Checked before the model loads.

    Tasks named with `tasks=[...]` must all have a folder. A benchmark run over a data_dir that holds only some of
    its tasks runs those and reports coverage (e.g. 3/56) rather than failing, so that the full experiment can be
    checked on CPU against local data.
    """
    from nvembed_eval.tasks import SMOKE_TASK_NAMES

    # Smoke tasks ship their own data inside the package; data_dir applies to the others.
    candidates = [spec.name for spec in specs if spec.name not in SMOKE_TASK_NAMES]
    missing = missing_local_folders([tasks[name] for name in candidates], data_dir)
    if missing and (explicit or len(missing) == len(candidates)):
        raise DataError(next(iter(missing.values())))
    if missing:
        log.warning(
            "data_dir %s holds %d of the benchmark's %d tasks; skipping %s",
            data_dir,
            len(candidates) - len(missing),
            len(candidates),
            ", ".join(sorted(missing)),
        )
    return [name for name in candidates if name not in missing]


def attach_local_data(task: AbsTask, data_dir: Path) -> None:
    from nvembed_eval.tasks import load_local_task_data

    for leaf in _leaf_tasks(task):
        load_local_task_data(leaf, data_dir, split=leaf.eval_splits[0], subset=leaf.hf_subsets[0])


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
        raise
    cache_cfg = cfg.cache
    return CachedEncoder(
        encoder,
        Path(str(cache_cfg.dir)).expanduser(),
        enabled=bool(cache_cfg.enabled),
        shard_size=int(cache_cfg.shard_size),
    )


def make_prefix_resolver(specs: list[TaskSpec], encoder: TextEncoder, variant: str):
    """(task name, side) -> literal prefix. Subtasks of an aggregate use their parent's instruction."""
    from nvembed_eval.tasks import instruction_for, render_prefix

    by_name: dict[str, TaskSpec] = {}
    for spec in specs:
        by_name[spec.name] = spec
        for sub in spec.subtasks or ():
            by_name.setdefault(sub, spec)
    template = encoder.instruction_template()

    def resolve(task_name: str, side: str | None) -> str:
        if template is None:
            return ""
        spec = by_name.get(task_name)
        if spec is None:
            raise NVEmbedEvalError(f"mteb asked to encode for unplanned task {task_name}; this is a harness bug")
        return render_prefix(instruction_for(spec, side, variant), template)

    return resolve


def run_evaluation(cfg: DictConfig, run_dir: Path, overrides: list[str]) -> RunSummary:
    """Evaluate every selected task into `run_dir`; already finished tasks are kept and not recomputed."""
    import mteb
    from omegaconf import OmegaConf

    from nvembed_eval.models import MtebEncoder

    if cfg.dataset_revision not in REVISION_KINDS:
        raise ConfigError(
            f"unknown dataset_revision <dataset_revision={cfg.dataset_revision}>; choose one of "
            f"{', '.join(REVISION_KINDS)}"
        )
    max_bytes = cache_max_bytes(cfg)  # a bad cap fails here, before any task runs
    check_reference(cfg)  # so does an unusable reference= (missing file, bad table)
    specs = resolve_specs(cfg)
    data_dir = Path(str(cfg.data_dir)).expanduser() if cfg.get("data_dir") else None
    # Local files are not either hub commit; results then carry mteb's revision and run.json says "local".
    revision_choice = cfg.dataset_revision if data_dir is None else "mteb"
    built = {spec.name: build_mteb_task(spec, revision_choice) for spec in specs}
    tasks = {name: task for name, (task, _) in built.items()}
    revision_sources = {name: source for name, (_, source) in built.items()}
    local: set[str] = set()
    if data_dir is not None:
        local = set(select_local_tasks(specs, tasks, data_dir, explicit=bool(cfg.get("tasks"))))
        specs = [spec for spec in specs if spec.name in local or _hub_or_package(spec.name) == "package"]

    folder = RunFolder(run_dir)
    summary = RunSummary(run_dir=run_dir)
    # Under torchrun every rank runs this loop (encoding is split across ranks inside the model); rank 0 alone
    # locks and writes the folder.
    primary = process_rank() == 0
    with folder.locked() if primary else nullcontext(folder):
        encoder = build_encoder(cfg)
        if primary:
            folder.start(
                config=OmegaConf.to_container(cfg, resolve=True),  # type: ignore[arg-type]
                overrides=overrides,
                identity=encoder.identity,
            )
        else:
            folder.load_record()
        bridge = MtebEncoder(encoder, make_prefix_resolver(specs, encoder, cfg.instructions.variant), cfg.batch_size)
        if primary:
            folder.write_model_meta(bridge.mteb_model_meta.model_dump(mode="json", exclude={"loader"}))
        # Decided once, before any work, so that all ranks run the same tasks.
        done = set() if cfg.overwrite else {s.name for s in specs if folder.is_done(s.name, encoder.identity)}

        for spec in specs:
            if spec.name in done:
                log.info("%s: result exists in %s, skipping (overwrite=true recomputes)", spec.name, run_dir)
                summary.outcomes.append(TaskOutcome(spec, _read_result(folder.result_path(spec.name)), True))
                continue
            task = tasks[spec.name]
            start = time.perf_counter()
            cache_before = _cache_counters(encoder)
            if data_dir is not None and spec.name in local:
                attach_local_data(task, data_dir)
            else:
                task, revision_sources[spec.name] = load_hub_data(spec, task, revision_sources[spec.name])
            model_result = mteb.evaluate(
                bridge,
                task,
                cache=None,
                encode_kwargs={"batch_size": int(cfg.batch_size)},
                overwrite_strategy="always",
                co2_tracker=False,
                show_progress_bar=False,
            )
            result = model_result.task_results[0]
            stats = bridge.task_stats.get(spec.name)
            sub_stats = [bridge.task_stats[s] for s in spec.subtasks or () if s in bridge.task_stats]
            entry: dict[str, Any] = {
                "identity_key": encoder.identity.key(),
                "wall_seconds": round(time.perf_counter() - start, 3),
                "texts_encoded": sum(s.texts for s in [stats, *sub_stats] if s),
                "tokens_encoded": sum(s.tokens for s in [stats, *sub_stats] if s),
                "prefixes": stats.prefixes if stats else {},
                "cache": {k: v - cache_before.get(k, 0) for k, v in _cache_counters(encoder).items()},
                "dataset_source": f"local:{data_dir / spec.name}" if spec.name in local else _hub_or_package(spec.name),
                "dataset_revision": result.dataset_revision,
                "dataset_revision_source": "local" if spec.name in local else revision_sources[spec.name],
                "task_version": getattr(spec, "version", None),
            }
            if primary:
                path = folder.write_result(result, entry)
                log.info("%s: wrote %s", spec.name, path)
            summary.outcomes.append(TaskOutcome(spec, result, False))
            _release_data(task)
    if primary and max_bytes is not None and cfg.cache.enabled:
        prune_cache(Path(str(cfg.cache.dir)).expanduser(), max_bytes, cfg.cache.max_size)
    return summary


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


def _hub_or_package(task_name: str) -> str:
    from nvembed_eval.tasks import SMOKE_TASK_NAMES

    return "package" if task_name in SMOKE_TASK_NAMES else "hub"


def _cache_counters(encoder: TextEncoder) -> dict[str, int]:
    """Numeric embedding-cache counters (hits, misses, shards written/reused), to record per task."""
    counters = getattr(encoder, "counters", {}) or {}
    return {k: v for k, v in counters.items() if isinstance(v, int) and not isinstance(v, bool)}


def _read_result(path: Path) -> TaskResult:
    from mteb import TaskResult

    return TaskResult.from_disk(path)


def _release_data(task: AbsTask) -> None:
    """Drop a finished task's data: the full benchmark would otherwise hold every corpus in memory."""
    for leaf in _leaf_tasks(task):
        if leaf.data_loaded:  # mteb unloads some tasks itself after evaluating them
            leaf.unload_data()
