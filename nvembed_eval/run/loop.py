"""The task loop: for each task of the record, keep the stored result made with the same settings, or load the task's
data, evaluate it through `mteb.evaluate`, make its per-item data, and write the result with its provenance.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nvembed_eval.errors import NVEmbedEvalError
from nvembed_eval.judge.gate import describe_divergences, divergence_kinds
from nvembed_eval.judge.item_values import make_items
from nvembed_eval.results.provenance import make_provenance
from nvembed_eval.results.run_folder import RunFolder
from nvembed_eval.results.scores import FIDELITY_KEY
from nvembed_eval.run.record import RunRecord
from nvembed_eval.run.summary import RunSummary, TaskOutcome
from nvembed_eval.tasks.data_source import TaskData
from nvembed_eval.tasks.fidelity import fidelity_record
from nvembed_eval.tasks.instructions import instruction_for, render_prefix
from nvembed_eval.tasks.revisions import hub_leaves
from nvembed_eval.tasks.specs import TaskSpec

if TYPE_CHECKING:
    from mteb import TaskResult

    from nvembed_eval.models.base import TextEncoder
    from nvembed_eval.models.mteb_adapter import MtebEncoder

log = logging.getLogger(__name__)


def make_prefix_resolver(specs: list[TaskSpec], encoder: TextEncoder, variant: str):
    """(task name, side) -> literal prefix. Subtasks of an aggregate use their parent's instruction.

    A model that applies its own prompts (no template, a `prompt_key` method: mteb registry models) gets its prompt
    key instead: it keys the cache and is recorded as the prefix, and the `instructions=` tables do not apply.
    """
    by_name = {sub: spec for spec in reversed(specs) for sub in spec.subtasks or ()}  # a subtask's first parent
    by_name.update({spec.name: spec for spec in specs})
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


def expected_provenance(spec: TaskSpec, data: TaskData, encoder: TextEncoder, resolve_prefix: Any) -> dict[str, Any]:
    """What a result of `spec` made by this run records (results.provenance), known before it runs: a stored result
    is reused only when its own record equals this one."""
    return make_provenance(
        task={"name": spec.name, "version": spec.version, "split": spec.split, "subset": spec.subset},
        model=encoder.identity.record(),
        prefixes={side or "none": resolve_prefix(spec.name, side) for side in ("query", "document", None)},
        data=data.record(),
    )


def run_tasks(
    record: RunRecord,
    bridge: MtebEncoder,
    folder: RunFolder,
    expected: dict[str, dict[str, Any]],
    reuse: dict[str, bool],
    *,
    primary: bool,
) -> RunSummary:
    """Evaluate every task of `record` into the locked, started `folder` through `bridge` (the model as mteb's
    encoder); only the `primary` (rank-0) process writes, the others encode. `expected`: task -> the provenance its
    result records; `reuse`: the stored results to keep (`RunFolder.reusable`: True when kept only by
    `trust_existing`). Returns the outcome of every task, kept or computed.

    Raises:
        NVEmbedEvalError: a task's data or evaluation fails (one line); earlier results stay written.
    """
    import mteb

    settings, encoder = record.settings, bridge.encoder
    summary = RunSummary(record.paths.run_dir, benchmark=record.benchmark.name, not_run=record.not_run)
    for number, data in enumerate(record.tasks, 1):
        spec = data.spec
        log.info("[%d/%d] %s (%s)", number, len(record.tasks), spec.name, spec.type)
        if spec.name in reuse:
            _keep(spec, reuse[spec.name], folder, settings.save_predictions, primary)
            summary.outcomes.append(TaskOutcome(spec, _read_result(record.paths.result(spec.name)), True))
            continue
        start = time.perf_counter()
        cache_before = _cache_counters(encoder)
        data.load()
        leaves = [leaf.prediction_file_name for leaf in hub_leaves(data.task)]
        if primary:  # the old predictions belong to the result this task replaces (mteb would merge into them)
            folder.remove_predictions(leaves)
        fidelity = fidelity_record(data.task)  # mteb 1 vs 2 definitions, counted before mteb filters the data
        if fidelity is not None and sum(divergence_kinds(fidelity["reranking"]).values()):
            why = "%s: %s; its score is not comparable with an mteb 1.x one there (docs/fidelity.md)"
            log.warning(why, spec.name, describe_divergences(fidelity["reranking"]))
        with _prediction_folder(folder, keep=settings.save_predictions, enabled=primary) as predictions:
            result: TaskResult = mteb.evaluate(
                bridge,
                data.task,
                cache=None,
                encode_kwargs={"batch_size": settings.batch_size, "show_progress_bar": settings.progress},
                overwrite_strategy="always",
                co2_tracker=False,
                show_progress_bar=settings.progress,
                prediction_folder=predictions,
            ).task_results[0]
            items, kept = None, []
            if predictions is not None:
                items = make_items(data, spec, predictions, result, folder.write_items)
                kept = [name for name in leaves if (predictions / name).is_file()]
                if settings.save_predictions:
                    folder.adopt([predictions / name for name in kept])
        stats = [bridge.task_stats[s] for s in (spec.name, *spec.subtasks) if s in bridge.task_stats]
        provenance = {**expected[spec.name], "data": data.record(loaded_revision=result.dataset_revision)}
        result.dataset_revision = data.dataset_revision(result.dataset_revision)
        if fidelity is not None:
            provenance[FIDELITY_KEY] = fidelity
        if items is not None:
            provenance["items"] = items  # run.json and the result file: the items file's path and sha256
        entry: dict[str, Any] = {
            "identity_key": encoder.identity.key(),
            "wall_seconds": round(time.perf_counter() - start, 3),
            "texts_encoded": sum(s.texts for s in stats),
            "tokens_encoded": sum(s.tokens for s in stats),
            "prefixes": stats[0].prefixes if spec.name in bridge.task_stats else {},
            "cache": {k: v - cache_before.get(k, 0) for k, v in _cache_counters(encoder).items()},
            "dataset_source": data.source_label,
            "dataset_revision": result.dataset_revision,
            "dataset_revision_source": data.revision_label,
            "task_version": spec.version,
            **({"fidelity": fidelity} if fidelity is not None else {}),
            "provenance": provenance,
            **({"predictions": [f"predictions/{name}" for name in kept]} if settings.save_predictions else {}),
        }
        if primary:
            path = folder.write_result(result, entry, provenance)
            log.info("%s: wrote %s", spec.name, path)
            result = _read_result(path)  # the stored numbers, so a fresh run shows what a resumed one will
        summary.outcomes.append(TaskOutcome(spec, result, False))
        data.release()
    return summary


def _keep(spec: TaskSpec, trusted: bool, folder: RunFolder, save_predictions: bool, primary: bool) -> None:
    why = "a result made with the same settings is kept"
    if trusted:
        why = "a result without a provenance record is kept (trust_existing=true): what made it is unknown"
    if save_predictions:
        why += f"; no predictions for kept tasks (overwrite=[{spec.name}] recomputes it)"
    log.info("%s: %s (%s)", spec.name, why, folder.run_dir)
    if trusted and primary:
        folder.record_trusted(spec.name)


@contextmanager
def _prediction_folder(folder: RunFolder, *, keep: bool, enabled: bool) -> Iterator[Path | None]:
    """Where mteb writes its predictions for one task: `<run>/predictions/` when they are kept, else the run folder's
    scratch folder, emptied afterwards; None when disabled (ranks other than 0 write nothing)."""
    if not enabled:
        yield None
    elif keep:
        yield folder.prediction_dir()
    else:
        with folder.scratch() as scratch:
            yield scratch


def _cache_counters(encoder: TextEncoder) -> dict[str, int]:
    """Numeric embedding-cache counters (hits, misses, shards written/reused), to record per task."""
    counters = getattr(encoder, "counters", {}) or {}
    return {k: v for k, v in counters.items() if isinstance(v, int) and not isinstance(v, bool)}


def _read_result(path: Path) -> TaskResult:
    from mteb import TaskResult

    return TaskResult.from_disk(path)
