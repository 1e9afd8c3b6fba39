"""One run from its record to its summary: the distributed environment checked, the folder locked, the model built
behind the cache, stored results checked, the run accepted (its records and log written), the task loop, the
cache pruned; and a run refused on the way taken back whole.
"""

from __future__ import annotations

import logging
import os
from contextlib import nullcontext
from pathlib import Path

from nvembed_eval.cache.encoder import CachedEncoder
from nvembed_eval.cache.store import prune_root
from nvembed_eval.config import RunSettings, model_class
from nvembed_eval.errors import ConfigError, NVEmbedEvalError
from nvembed_eval.io import human_size, nearest_existing
from nvembed_eval.logs import FILE_ONLY, attach_run_log, detach_run_log, route_library_logs
from nvembed_eval.models.base import TextEncoder
from nvembed_eval.models.nvembed.distributed import init_from_env
from nvembed_eval.results.run_folder import RunFolder
from nvembed_eval.run.loop import expected_provenance, make_prefix_resolver, run_tasks
from nvembed_eval.run.record import RunRecord
from nvembed_eval.run.summary import RunSummary

log = logging.getLogger("nvembed_eval")


def process_rank() -> int:
    """This process's rank among torch.distributed processes (0 when there is one), from the variables torchrun and
    submitit set.

    Raises:
        ConfigError: RANK or WORLD_SIZE is not a whole number, RANK lies outside [0, WORLD_SIZE), or RANK is set
            without WORLD_SIZE > 1 (a process that would wait for ranks nobody started, or write nothing).
    """
    values: dict[str, int] = {}
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        if not (text := os.environ.get(name)):
            continue
        try:
            values[name] = int(text)
        except ValueError:
            raise ConfigError(f"<{name}={text}> must be a whole number; torchrun sets it, or unset it") from None
    world, rank, local = values.get("WORLD_SIZE", 1), values.get("RANK", 0), values.get("LOCAL_RANK", 0)
    # LOCAL_RANK picks the GPU (`cuda:LOCAL_RANK`): one past the group would run on a device no launcher assigned.
    outside = [(name, v) for name, v in (("RANK", rank), ("LOCAL_RANK", local)) if world < 1 or not 0 <= v < world]
    if outside:
        name, value = outside[0]
        raise ConfigError(
            f"<{name}={value}> with <WORLD_SIZE={world}> is not a process of that group; start the processes with "
            "torchrun (torchrun --nproc_per_node N -m nvembed_eval ...), or unset RANK, WORLD_SIZE and LOCAL_RANK"
        )
    return rank


def build_encoder(settings: RunSettings, *, cached: bool = True) -> TextEncoder:
    """The model adapter of `settings.model` (its knobs already checked), behind the embedding cache unless
    `cached` is false (the embedding probes must see the model itself).

    Raises:
        NVEmbedEvalError: the adapter's own refusal (a missing checkpoint, pickle weights, ...).
        ConfigError: any other failure to build it, in one line.
    """
    try:
        encoder = model_class(settings.model)(**settings.knobs)
    except NVEmbedEvalError:
        raise
    except Exception as exc:
        reason, name = " ".join(str(exc).split())[:300], settings.model.get("name")
        raise ConfigError(f"cannot build model={name}: {reason}; check the model.* values") from None
    if not cached:
        return encoder
    cache = settings.cache
    return CachedEncoder(encoder, Path(cache.dir).expanduser(), enabled=cache.enabled, shard_size=cache.shard_size)


def execute(record: RunRecord, keep: Path | None = None) -> RunSummary:
    """Run a resolved record into its folder; finished tasks made with the same settings are kept.

    Every check that can refuse the run (the folder's lock, the model, the provenance of stored results) happens
    before anything is written. A run that ends in a refusal without having recorded a result is taken back whole:
    the records it replaced are restored, what it created is removed (and the folders Hydra made for it, up to
    `keep`), and nothing that was there before is touched; a resumed folder's log says why it stopped.

    Raises:
        NVEmbedEvalError: any refusal (one line with the fix).
    """
    from nvembed_eval.models.mteb_adapter import MtebEncoder  # mteb's `AbsEncoder`: mteb loads here, on first use

    settings, primary = record.settings, process_rank() == 0
    folder, run_log = RunFolder(record.paths), None
    keep = keep or nearest_existing(record.paths.run_dir)
    try:
        route_library_logs(progress=settings.progress)
        init_from_env()  # several ranks under torchrun or submitit: encoding is split across them
        # Under torchrun every rank runs the loop (encoding is split inside the model); rank 0 alone locks and
        # writes the folder. All ranks read the same files, so they take the same decisions.
        with folder.locked() if primary else nullcontext(folder):
            folder.load_record()
            encoder = build_encoder(settings)
            folder.check_model(encoder.identity)
            resolve_prefix = make_prefix_resolver(record.specs, encoder, settings.instructions.variant)
            expected = {d.spec.name: expected_provenance(d.spec, d, encoder, resolve_prefix) for d in record.tasks}
            reuse = folder.reusable(expected, overwrite=settings.overwrite, trust_existing=settings.trust_existing)
            bridge = MtebEncoder(encoder, resolve_prefix, settings.batch_size, record.overrides)
            if primary:
                run_facts = {"config": record.config, "overrides": list(record.overrides), "identity": encoder.identity}
                folder.start(**run_facts, benchmark=record.benchmark.record())
                folder.write_model_meta(bridge.mteb_model_meta.model_dump(mode="json", exclude={"loader"}))
                folder.write_hydra_record(record.hydra_record)
                run_log = attach_run_log(folder.claim_log())
                log.info("run log: %s", run_log)
            summary = run_tasks(record, bridge, folder, expected, reuse, primary=primary)
    except NVEmbedEvalError as exc:
        if run_log is not None:
            log.error("%s", exc, extra={FILE_ONLY: True})  # the run log records why it stopped
        if primary and folder.results_written == 0:
            if run_log is not None:
                detach_run_log(run_log)
                run_log = None
            folder.discard()
            discard_created(record.paths.run_dir, keep)
        raise
    finally:
        if run_log is not None:
            detach_run_log(run_log)
    if primary and settings.cache.max_size is not None and settings.cache.enabled:
        typed = record.config["cache"]["max_size"]  # as the user wrote it, e.g. 500GiB
        prune_cache(Path(settings.cache.dir).expanduser(), settings.cache.max_size, typed)
    return summary


def discard_created(run_dir: Path, keep: Path) -> None:
    """Remove `run_dir` and its parents up to `keep` when they are empty: Hydra creates a sweep job's folder, with
    its parents, before the job can check anything."""
    folder, keep = run_dir.absolute(), keep.absolute()
    while folder != keep and keep in folder.parents:
        try:
            folder.rmdir()
        except FileNotFoundError:
            pass  # already gone: go on to its parent
        except OSError:
            return
        folder = folder.parent


def prune_cache(root: Path, max_bytes: int, setting: object) -> None:
    """Evict least recently used shards until `root` fits `max_bytes` (`cache.max_size=setting`). The results are
    already written, so a cache that cannot be pruned (read-only, shared) costs a warning, not the run."""
    try:
        pruned = prune_root(root, max_bytes)
    except OSError as e:
        log.warning("embedding cache: could not prune %s to cache.max_size=%s: %s", root, setting, e)
        return
    removed, left = human_size(pruned.bytes_removed), human_size(pruned.bytes_left)
    message = "embedding cache: pruned %s to cache.max_size=%s: removed %d files (%s), %s left"
    log.info(message, root, setting, pruned.files_removed, removed, left)
