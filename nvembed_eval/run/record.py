"""One resolved run: the composed config turned, once, into a frozen record of everything a run decides before it
loads a model: its settings, the tasks and where each one's data comes from, the benchmark they count against, the
reference it is shown against, and where its records go. Every later step reads this record; none re-derives it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nvembed_eval.config import RunSettings, check_outside_folders
from nvembed_eval.errors import ConfigError
from nvembed_eval.models.base import planned_instruction_template
from nvembed_eval.results.references import load_reference
from nvembed_eval.results.run_folder import RunPaths
from nvembed_eval.results.scores import ScoreSet
from nvembed_eval.tasks.benchmarks import AD_HOC, Benchmark, select_tasks
from nvembed_eval.tasks.cost_plan import plan_tasks, render_cost_plan
from nvembed_eval.tasks.data_source import TaskData, plan_task_data
from nvembed_eval.tasks.hub_data import offline_unless_reachable
from nvembed_eval.tasks.specs import TaskSpec

if TYPE_CHECKING:
    from omegaconf import DictConfig

log = logging.getLogger("nvembed_eval")


@dataclass(frozen=True)
class RunRecord:
    """Everything one run decided before its model loads.

    Attributes:
        settings: the checked settings (`config.validate`).
        config: the resolved config, as run.json records it.
        hydra_record: Hydra's three record files (`.hydra/config.yaml`, `hydra.yaml`, `overrides.yaml`) as text.
        overrides: the command line's overrides.
        benchmark: the benchmark: every task it counts, also those without data here (coverage is N of these).
        tasks: the tasks this run can serve, in run order, each with its data source (`TaskData`).
        reference: the reference's scores (loaded once, validated whole), or None.
        paths: the run folder's layout.
    """

    settings: RunSettings
    config: dict[str, Any]
    hydra_record: dict[str, str]
    overrides: tuple[str, ...]
    benchmark: Benchmark
    tasks: tuple[TaskData, ...]
    reference: ScoreSet | None
    paths: RunPaths

    @property
    def not_run(self) -> list[str]:
        """The benchmark's tasks without data here (a partial `data_dir`, an offline cache): not run, counted."""
        served = {data.spec.name for data in self.tasks}
        return [name for name in self.benchmark.tasks if name not in served]

    @property
    def specs(self) -> list[TaskSpec]:
        return [data.spec for data in self.tasks]


def choose_tasks(settings: RunSettings) -> tuple[Benchmark, list[TaskSpec]]:
    """The benchmark and the tasks of these settings (`tasks=` wins over `benchmark=`), as a run and its plan see
    them.

    Raises:
        TaskNotFoundError, ConfigError: an unknown task or benchmark.
    """
    return select_tasks(settings.tasks, settings.benchmark.name, settings.benchmark.tasks)


def resolve_run(cfg: DictConfig, hydra_cfg: DictConfig, settings: RunSettings) -> RunRecord:
    """The run record of a composed and validated config. Reads task metadata, the data folders' existence and the
    reference; loads no model and writes nothing.

    Args:
        cfg: the job's config (no `hydra` node). hydra_cfg: Hydra's node, `runtime.output_dir` set.
        settings: `config.validate(cfg)`.

    Raises:
        NVEmbedEvalError: a cache folder that cannot be created (`check_outside_folders`), an unknown task, data
            that cannot be served, an unusable reference, `overwrite=[...]` naming a task the run does not evaluate.
    """
    from omegaconf import OmegaConf

    check_outside_folders(settings)
    offline_unless_reachable()  # seconds, not the libraries' minutes of retries, on a machine without network
    if settings.model.get("compile"):
        log.info("compiling the model with torch.compile (model.compile=true): its first batches wait for it")
    benchmark, specs = choose_tasks(settings)
    model_name = str(settings.model.get("name") or "")
    reference = load_reference(settings.reference, model_name, list(benchmark.tasks), settings.paths.published_dir)
    revision, explicit = settings.dataset_revision, bool(settings.tasks)
    planned = plan_task_data(specs, data_dir=settings.data_path, dataset_revision=revision, explicit=explicit)
    if isinstance(settings.overwrite, frozenset) and settings.overwrite - set(planned):
        unknown = ",".join(sorted(settings.overwrite - set(planned)))
        fix = "name tasks of this run, or overwrite=true"
        raise ConfigError(f"<overwrite=[{unknown}]> names tasks this run does not evaluate; {fix}")
    overrides = tuple(str(o) for o in hydra_cfg.overrides.task)
    hydra_record = {
        "config.yaml": OmegaConf.to_yaml(cfg),
        "hydra.yaml": OmegaConf.to_yaml(OmegaConf.create({"hydra": hydra_cfg})),
        "overrides.yaml": OmegaConf.to_yaml(OmegaConf.create(list(overrides))),
    }
    config: dict[str, Any] = OmegaConf.to_container(cfg, resolve=True)  # type: ignore[assignment]
    paths = RunPaths(Path(str(hydra_cfg.runtime.output_dir)))
    return RunRecord(settings, config, hydra_record, overrides, benchmark, tuple(planned.values()), reference, paths)


def render_plan(settings: RunSettings) -> str:
    """`plan=true`: what the run would encode and cost, from mteb's statistics; no model, no data, nothing written.
    The instruction template is told without loading the model (None: it adds no instructions); `data_dir` is not
    read (the header says so).

    Raises:
        NVEmbedEvalError: an unknown task or benchmark, a model class that cannot tell its template.
    """
    import mteb

    benchmark, specs = choose_tasks(settings)
    model, plan, variant = settings.model, settings.plan, settings.instructions.variant
    template = planned_instruction_template(model)
    max_length = model.get("max_length") or model.get("max_seq_length")
    max_length = int(max_length) if max_length else None
    chosen = f"benchmark={benchmark.name}"
    if benchmark.name == AD_HOC:
        chosen = f"tasks=[{','.join(spec.name for spec in specs)}]"
    costs = plan_tasks(
        specs, variant=variant, template=template, max_length=max_length, chars_per_token=plan.chars_per_token
    )
    header = (
        f"plan (no model loaded, nothing written): {len(specs)} tasks ({chosen}), model {model.get('name')}, "
        f"instructions={variant}, prefix template {template!r}, max_length {max_length or 'unknown'}; "
        f"texts from mteb {mteb.__version__}'s descriptive statistics of its current dataset revisions"
    )
    if settings.data_dir:
        header += f" (data_dir={settings.data_dir} is not read: local copies may differ)"
    return render_cost_plan(costs, header, plan.tokens_per_second, plan.gpus, cache_enabled=settings.cache.enabled)
