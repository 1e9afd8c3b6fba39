"""Result folders for the readers' and the gate's tests: real mteb TaskResults (mteb's own constructor) laid out as a
harness run folder or an mteb results folder, and the published card table."""

from __future__ import annotations

import json
from pathlib import Path

import mteb
from clirun import SHARED

from nvembed_eval.tasks.specs import load_task_spec

PUBLISHED = SHARED / "reference" / "nv_embed_v2_published.csv"


def make_result(
    task_name: str,
    values: dict[str, float],
    split: str | None = None,
    subset: str | None = None,
    revision: str | None = None,
) -> mteb.TaskResult:
    """A real mteb TaskResult (mteb's own constructor) for one split/subset; values on mteb's 0-1 scale."""
    spec = load_task_spec(task_name)
    main = next(iter(values.values()))
    scores = {split or spec.split: {subset or spec.subset: {**values, "main_score": main}}}
    result = mteb.TaskResult.from_task_results(mteb.get_task(task_name), scores, evaluation_time=1.0)
    if revision is not None:
        result.dataset_revision = revision
    return result


def write_result(folder: Path, task_name: str, values: dict[str, float], **kwargs) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{task_name}.json"
    make_result(task_name, values, **kwargs).to_disk(path)
    return path


def write_run(
    run_dir: Path,
    results: dict[str, dict[str, float]],
    variant: str | None = "nv_embed_v2",
    model: str = "x/y",
    config: dict | None = None,
    overrides: list[str] | None = None,
) -> Path:
    """A run folder as the harness writes it: run.json (resolved config, overrides, model), model_meta.json, .hydra/
    and results/<Task>.json. `config` adds keys to the recorded config (e.g. {"tasks": [...]})."""
    run_dir.mkdir(parents=True, exist_ok=True)
    recorded = {"instructions": {"variant": variant}} if variant else {}
    recorded.update(config or {})
    record = {"config": recorded, "overrides": overrides or [], "tasks": {}, "model": {"name": model}}
    (run_dir / "run.json").write_text(json.dumps(record))
    (run_dir / "model_meta.json").write_text(json.dumps({"name": model}))
    (run_dir / ".hydra").mkdir(exist_ok=True)
    (run_dir / ".hydra" / "config.json").write_text("not a result")
    for task, values in results.items():
        write_result(run_dir / "results", task, values)
    return run_dir
