"""The `plan=true` report: the cost plan of `nvembed_eval.tasks.cost_plan` as a per-task table, totals and projected
GPU-hours, and the glue that reads the run's config for it (the CLI composes the config; no Hydra job runs).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from nvembed_eval.errors import ConfigError
from nvembed_eval.tasks.cost_plan import SPECIAL_TOKENS, CostPlan, plan_tasks

if TYPE_CHECKING:
    from omegaconf import DictConfig

    from nvembed_eval.tasks.specs import TaskSpec


def _human(n: float) -> str:
    for size, unit in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(n) >= size:
            return f"{n / size:.2f}{unit}"
    return f"{n:.0f}"


def plan_table(plan: CostPlan) -> Any:
    """One row per task (pandas DataFrame): texts as fed and distinct, estimated tokens, prefix tokens, sharing."""
    import pandas as pd

    rows = []
    for t in plan.tasks:
        if not t.groups:
            rows.append({"task": t.name, "type": t.type, "note": t.note})
            continue
        notes = [f"{g.group.role} = {g.shared_with}: counted once" for g in t.groups if g.shared_with]
        if any(g.truncated for g in t.groups):
            notes.append("texts beyond max_length: tokens are upper bounds")
        rows.append(
            {
                "task": t.name,
                "type": t.type,
                "texts": _human(t.texts),
                "distinct": _human(t.unique),
                "tokens": _human(t.total("tokens")),
                "distinct tokens": _human(t.total("unique_tokens")),
                "of which prefix": _human(t.total("prefix_tokens")),
                "note": "; ".join(notes),
            }
        )
    return pd.DataFrame(rows).fillna("")


def render_plan(plan: CostPlan, *, tokens_per_second: float, gpus: int, cache_enabled: bool, header: str) -> str:
    """The plan as text: the per-task table, three totals and the projected encoding hours. `tokens_per_second`
    and `gpus` are the run's checked values (`settings.check_plan`, run by the CLI before the plan is made)."""
    covered = plan.covered
    fed = sum(t.total("tokens") for t in covered)
    distinct = sum(t.total("unique_tokens") for t in covered)
    dedup = distinct - sum(t.shared_tokens for t in covered)
    shared_texts = sum(g.group.unique for t in covered for g in t.groups if g.shared_with)
    frame = plan_table(plan)
    left = {c: f"{{:<{frame[c].astype(str).str.len().max()}}}".format for c in ("task", "type", "note") if c in frame}
    table = frame.to_string(index=False, formatters=left, justify="left")
    applies = dedup if cache_enabled else fed

    def hours(tokens: int) -> str:
        gpu_hours = tokens / tokens_per_second / 3600
        if gpu_hours >= 1:
            return f"{gpu_hours:,.2f} GPU-hours, {gpu_hours / gpus:,.2f} h on {gpus} GPU{'s' if gpus > 1 else ''}"
        minutes = gpu_hours * 60
        return f"{minutes:,.1f} GPU-minutes, {minutes / gpus:,.1f} min on {gpus} GPU{'s' if gpus > 1 else ''}"

    def total(label: str, texts: int, tokens: int) -> str:
        return f"{label:<30} {_human(texts):>8} texts {_human(tokens):>8} tokens  {hours(tokens)}"

    lines = [
        header,
        "",
        table,
        "",
        f"tasks with statistics: {len(covered)}/{len(plan.tasks)}; tokens at {plan.chars_per_token:g} chars/token "
        f"+ {SPECIAL_TOKENS} special tokens + the instruction prefix per text",
        total("as fed (cache=off):", sum(t.texts for t in covered), fed),
        total("distinct per task (cache on):", sum(t.unique for t in covered), distinct),
        total("distinct across tasks:", sum(t.unique for t in covered) - shared_texts, dedup)
        + f"   (shared groups counted once: {_human(shared_texts)} texts)",
        f"this run (cache {'on' if cache_enabled else 'off'}): {hours(applies)} at {tokens_per_second:,.0f} tokens/s "
        "per GPU (plan.tokens_per_second, default: NV-Embed-v2 on an H200; plan.gpus), encoding only: no model "
        "loading, data download or evaluator time",
    ]
    return "\n".join(lines) + "\n"


def plan_overrides(args: list[str]) -> list[str] | None:
    """The overrides to compose when the command line asks for a plan, else None.

    `plan=true` is shorthand for `plan.enabled=true`: Hydra would otherwise replace the whole `plan:` block with a
    bool, and `plan.gpus=8` after it would fail.

    Raises:
        ConfigError: a plan value that is not true/false, or a plan of a multirun sweep.
    """
    wanted, out = False, []
    for arg in args:
        key, sep, value = arg.partition("=")
        if sep and key in ("plan", "plan.enabled"):
            if value.lower() not in ("true", "false"):
                raise ConfigError(f"<{key}={value}> must be true or false")
            wanted = value.lower() == "true"
            arg = f"plan.enabled={value.lower()}"
        out.append(arg)
    if wanted and any(a in ("-m", "--multirun") for a in args):
        raise ConfigError("plan=true plans one run; drop -m and plan each job's overrides on their own")
    return out if wanted else None


def render_cost_plan(cfg: DictConfig, template: str | None, specs: list[TaskSpec]) -> str:
    """The `plan=true` report for a composed run config.

    Args:
        cfg: the config `nvembed-eval` would run with (tasks or benchmark, instructions, model, cache, plan).
        template: the model's instruction template, told without loading it (None: it adds no instructions).
        specs: the run's tasks, resolved as the run would (the runner's `resolve_specs`: `tasks=`, the benchmark's
            list, or a named mteb benchmark's).
    """
    import mteb

    explicit = bool(cfg.get("tasks"))
    names = [spec.name for spec in specs]
    if not names:
        raise ConfigError("no tasks selected; pass tasks=[TaskName,...] or benchmark=<name>")
    model = cfg.model
    max_length = model.get("max_length") or model.get("max_seq_length")
    settings = cfg.plan
    plan = plan_tasks(
        specs,
        variant=str(cfg.instructions.variant),
        template=template,
        max_length=int(max_length) if max_length else None,
        chars_per_token=settings.chars_per_token,
    )
    chosen = f"tasks=[{','.join(names)}]" if explicit else f"benchmark={cfg.benchmark.name}"
    header = (
        f"plan (no model loaded, nothing written): {len(names)} tasks ({chosen}), model {model.name}, "
        f"instructions={cfg.instructions.variant}, prefix template {template!r}, max_length {max_length or 'unknown'}; "
        f"texts from mteb {mteb.__version__}'s descriptive statistics of its current dataset revisions"
    )
    if cfg.get("data_dir"):
        header += f" (data_dir={cfg.data_dir} is not read: local copies may differ)"
    return render_plan(
        plan,
        tokens_per_second=settings.tokens_per_second,
        gpus=settings.gpus,
        cache_enabled=bool(cfg.cache.enabled),
        header=header,
    )
