"""Tasks: which tasks a run evaluates (task YAMLs, benchmarks of this harness or mteb's, the embedded smoke
tasks), with which instruction on each side, where each task's data comes from (a hub dataset commit, or a local
folder read into mteb's task), and what a run would cost to encode (`plan=true`, from mteb's descriptive
statistics).
"""

from nvembed_eval.tasks.benchmarks import MtebBenchmark, benchmark_tasks, harness_benchmarks, mteb_benchmark
from nvembed_eval.tasks.cost_plan import CostPlan, plan_tasks
from nvembed_eval.tasks.cost_plan_report import plan_overrides, render_cost_plan
from nvembed_eval.tasks.data_source import TaskData, plan_task_data
from nvembed_eval.tasks.fidelity import (
    DIVERGENCES,
    describe_divergences,
    divergent_total,
    fidelity_record,
    reranking_divergences,
)
from nvembed_eval.tasks.instructions import InstructionVariant, instruction_for, render_prefix
from nvembed_eval.tasks.local_data import load_local_task_data
from nvembed_eval.tasks.revisions import build_mteb_task, hub_leaves, load_hub_data
from nvembed_eval.tasks.smoke import SMOKE_TASK_NAMES
from nvembed_eval.tasks.specs import (
    REVISION_KINDS,
    SIDES,
    TaskSpec,
    TaskType,
    check_name,
    conf_dir,
    has_task_yaml,
    list_task_specs,
    load_task_spec,
    resolve_task_names,
)

__all__ = [
    "DIVERGENCES",
    "REVISION_KINDS",
    "SIDES",
    "SMOKE_TASK_NAMES",
    "CostPlan",
    "InstructionVariant",
    "MtebBenchmark",
    "TaskData",
    "TaskSpec",
    "TaskType",
    "benchmark_tasks",
    "build_mteb_task",
    "check_name",
    "conf_dir",
    "describe_divergences",
    "divergent_total",
    "fidelity_record",
    "harness_benchmarks",
    "has_task_yaml",
    "hub_leaves",
    "instruction_for",
    "list_task_specs",
    "load_hub_data",
    "load_local_task_data",
    "load_task_spec",
    "mteb_benchmark",
    "plan_overrides",
    "plan_task_data",
    "plan_tasks",
    "render_cost_plan",
    "render_prefix",
    "reranking_divergences",
    "resolve_task_names",
]
