"""The `plan=true` report: the cost plan of `tasks.cost_plan` as a per-task table, totals and projected GPU-hours."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from nvembed_eval.tasks.cost_plan import SPECIAL_TOKENS, CostPlan, plan_tasks

if TYPE_CHECKING:
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
    and `gpus` are the run's checked values (`config.PlanSettings`)."""
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


def render_cost_plan(
    specs: list[TaskSpec],
    *,
    chosen: str,
    model: str,
    variant: str,
    template: str | None,
    max_length: int | None,
    tokens_per_second: float,
    gpus: int,
    chars_per_token: float,
    cache_enabled: bool,
    data_dir: str | None = None,
) -> str:
    """The `plan=true` report of a run: `specs` resolved as the run would (`tasks.select_tasks`), `chosen` how (for the
    header: `tasks=[...]`, `benchmark=smoke`), `template` told without loading the model (None: it adds no
    instructions), `plan.*` values already checked; `data_dir` is not read (the header says so)."""
    import mteb

    plan = plan_tasks(specs, variant=variant, template=template, max_length=max_length, chars_per_token=chars_per_token)
    header = (
        f"plan (no model loaded, nothing written): {len(specs)} tasks ({chosen}), model {model}, "
        f"instructions={variant}, prefix template {template!r}, max_length {max_length or 'unknown'}; "
        f"texts from mteb {mteb.__version__}'s descriptive statistics of its current dataset revisions"
    )
    if data_dir:
        header += f" (data_dir={data_dir} is not read: local copies may differ)"
    return render_plan(plan, tokens_per_second=tokens_per_second, gpus=gpus, cache_enabled=cache_enabled, header=header)
