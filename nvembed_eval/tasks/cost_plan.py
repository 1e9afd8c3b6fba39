"""Cost plan (`plan=true`): per task, the texts mteb would hand the model, the distinct ones the cache encodes and their
estimated tokens, with groups two tasks share (FEVER and ClimateFEVER's corpus) counted once; from mteb's descriptive
statistics (`TaskMetadata.descriptive_stats`, shipped in the mteb wheel), loading no model or data (docs/plan.md); and
the report: the plan as a per-task table, totals and projected GPU-hours."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from nvembed_eval.tasks.instructions import instruction_for, render_prefix

if TYPE_CHECKING:
    from nvembed_eval.tasks.specs import TaskSpec

# NV-Embed-v2's tokenizer on the local STSBenchmark, SciFact and Banking77 texts as mteb feeds them: 3.8 to 4.1
# characters per token (scripts/bench_plan.py --calibrate; docs/plan.md).
CHARS_PER_TOKEN = 4.0
SPECIAL_TOKENS = 2  # <s> ... </s> (NV-Embed), [CLS] ... [SEP] (BERT-style models)
# Two text groups are taken to be the same texts when their shortest and longest lengths are equal and their distinct
# count and total length agree within this fraction (FEVER vs ClimateFEVER corpora: 4.6e-6 and 1.9e-5 apart).
SHARED_REL_TOLERANCE = 1e-3


@dataclass(frozen=True)
class TextGroup:
    """Texts of one role in one task that mteb encodes in one call, with one prefix."""

    role: str  # what the texts are ("documents", "queries", "sentence1", "train (sampled)", ...)
    side: str | None  # the prompt type mteb passes ("query", "document"), None for symmetric tasks
    texts: int  # how many texts mteb hands the model, duplicates included
    unique: int  # how many of them are distinct: what the embedding cache encodes
    chars: int  # characters of all `texts`
    unique_chars: int  # estimated characters of the distinct texts (their count x the mean length)
    min_chars: int  # shortest text, in characters
    max_chars: int  # longest text
    shareable: bool = True  # False for samples (classification training texts), which two tasks draw differently

    def matches(self, other: TextGroup) -> bool:
        """Whether the statistics say the two groups hold the same texts (see SHARED_REL_TOLERANCE)."""
        return (
            self.shareable
            and other.shareable
            and (self.min_chars, self.max_chars) == (other.min_chars, other.max_chars)
            and math.isclose(self.unique, other.unique, rel_tol=SHARED_REL_TOLERANCE)
            and math.isclose(self.unique_chars, other.unique_chars, rel_tol=SHARED_REL_TOLERANCE)
        )


@dataclass
class GroupCost:
    """A text group of one task with its prefix and estimated tokens."""

    task: str
    group: TextGroup
    prefix: str
    tokens: int  # all texts, as fed
    unique_tokens: int  # distinct texts only
    prefix_tokens: int  # of `unique_tokens`, the instruction prefix's share
    truncated: bool  # the longest text exceeds max_length: token counts are upper bounds
    shared_with: str | None = None  # "Task/role" counted instead of this group (cross-task sharing)


@dataclass
class TaskCost:
    """One task's planned encoding work; `note` says why a task has no figures."""

    name: str
    type: str
    groups: list[GroupCost] = field(default_factory=list)
    note: str | None = None

    def total(self, attr: str) -> int:
        return sum(getattr(g, attr) for g in self.groups)

    @property
    def texts(self) -> int:
        return sum(g.group.texts for g in self.groups)

    @property
    def unique(self) -> int:
        return sum(g.group.unique for g in self.groups)

    @property
    def shared_tokens(self) -> int:
        """Tokens of this task's groups that another task's identical group already encodes."""
        return sum(g.unique_tokens for g in self.groups if g.shared_with)


@dataclass
class CostPlan:
    tasks: list[TaskCost]
    chars_per_token: float
    template: str | None
    max_length: int | None

    @property
    def covered(self) -> list[TaskCost]:
        return [t for t in self.tasks if t.groups]


def _count(stats: dict[str, Any]) -> int:
    return round(stats["total_text_length"] / stats["average_text_length"]) if stats["average_text_length"] else 0


def _group(role: str, side: str | None, stats: dict[str, Any], texts: int | None = None) -> TextGroup:
    n = _count(stats) if texts is None else texts
    unique, mean = min(int(stats["unique_texts"]), n), stats["average_text_length"]
    lengths = int(stats["min_text_length"]), int(stats["max_text_length"])
    return TextGroup(role, side, n, unique, int(stats["total_text_length"]), round(unique * mean), *lengths)


def _sampled(role: str, stats: dict[str, Any], n: int) -> TextGroup:
    """A random sample of n texts from a group: the mean length times n, never shared with another task."""
    n, mean = min(n, _count(stats)), stats["average_text_length"]
    lengths = stats["min_text_length"], stats["max_text_length"]
    return TextGroup(role, None, n, n, round(n * mean), round(n * mean), *lengths, shareable=False)


def _classification_train(task: Any, stats: dict[str, Any]) -> TextGroup:
    """mteb encodes the union of `n_experiments` draws of `samples_per_label` texts per label (undersampling). Each
    label with c texts contributes c * (1 - (1 - k/c)^E) texts in expectation, k = min(samples_per_label, c)."""
    experiments, per_label = int(task.n_experiments), int(task.samples_per_label)
    labels = (stats.get("label_statistics") or {}).get("labels") or {}
    if labels:
        counts = [int(entry["count"]) for entry in labels.values()]
        n = round(sum(c * (1 - (1 - min(per_label, c) / c) ** experiments) for c in counts if c))
    else:  # no per-label counts: the upper bound
        n = experiments * per_label * int((stats.get("label_statistics") or {}).get("unique_labels") or 1)
    return _sampled("train (sampled)", stats["text_statistics"], n)


def _split_stats(all_stats: dict[str, Any], split: str, subset: str) -> dict[str, Any] | None:
    entry = all_stats.get(split)
    if not isinstance(entry, dict):
        return None
    per_subset = entry.get("hf_subset_descriptive_stats")
    return per_subset.get(subset) if per_subset else entry


def text_groups(task: Any, split: str, subset: str) -> list[TextGroup] | str:
    """The text groups mteb 2.26 encodes for one (non-aggregate) task on the evaluated split and hf_subset, or why they
    cannot be told. The task's class decides what is encoded: all sets for legacy clustering, a fraction for fast
    clustering, a label-balanced sample of the training split for classification."""
    md, stats = task.metadata, task.metadata.descriptive_stats
    if not stats:
        return f"no descriptive statistics in mteb for {md.name}"
    s = _split_stats(stats, split, subset)
    if s is None:
        return f"mteb's statistics for {md.name} have no {split}/{subset} entry"
    kind = str(md.type)
    if kind in ("Retrieval", "Reranking"):
        return [
            _group("queries", "query", s["queries_text_statistics"], s.get("num_queries")),
            _group("documents", "document", s["documents_text_statistics"], s.get("num_documents")),
        ]
    if kind in ("STS", "PairClassification"):
        return [
            _group("sentence1", None, s["text1_statistics"], s["num_samples"]),
            _group("sentence2", None, s["text2_statistics"], s["num_samples"]),
        ]
    if kind == "Summarization":
        return [
            _group("human summaries", None, s["human_summaries_statistics"]),
            _group("machine summaries", None, s["machine_summaries_statistics"]),
        ]
    if kind == "Classification":
        train = _split_stats(stats, getattr(task, "train_split", "train"), subset)
        groups = [_group(split, None, s["text_statistics"], s["num_samples"])]
        if train is not None:
            groups.append(_classification_train(task, train))
        return groups
    if kind == "Clustering":
        fraction = getattr(task, "max_fraction_of_documents_to_embed", None)
        limit = getattr(task, "max_document_to_embed", None)
        n = int(s["num_samples"])
        if fraction is None and limit is None:  # legacy clustering: every set, whole
            return [_group("sentences", None, s["text_statistics"], n)]
        return [_sampled("sentences (sampled)", s["text_statistics"], int(fraction * n) if fraction else int(limit))]
    return f"{md.name} is a {kind} task; the cost plan knows the seven MTEB(eng, v1) types"


def _cost(task_name: str, group: TextGroup, prefix: str, cpt: float, max_length: int | None) -> GroupCost:
    prefix_tokens = math.ceil(len(prefix) / cpt) if prefix else 0
    per_text = SPECIAL_TOKENS + prefix_tokens
    tokens = group.texts * per_text + round(group.chars / cpt)
    unique_tokens = group.unique * per_text + round(group.unique_chars / cpt)
    truncated = max_length is not None and group.max_chars / cpt + per_text > max_length
    if max_length is not None:  # no text can cost more than max_length tokens
        tokens, unique_tokens = min(tokens, group.texts * max_length), min(unique_tokens, group.unique * max_length)
    return GroupCost(task_name, group, prefix, tokens, unique_tokens, group.unique * prefix_tokens, truncated)


def plan_tasks(
    specs: list[TaskSpec],
    *,
    variant: str,
    template: str | None,
    max_length: int | None,
    chars_per_token: float = CHARS_PER_TOKEN,
) -> CostPlan:
    """Estimate what evaluating `specs` would encode (aggregates such as CQADupstackRetrieval summed over subtasks).
    `variant` (`instructions.variant`) decides each side's instruction, templated with `template` (None: no prefix
    tokens); `max_length` (None: unknown) caps per-text tokens and flags truncation. Groups the statistics show to be
    identical texts with an identical prefix are marked `shared_with` the first such group: a deduplicated total counts
    them once, as the cache does."""
    import mteb

    plan = CostPlan([], float(chars_per_token), template, max_length)
    seen: list[GroupCost] = []
    for spec in specs:
        task = mteb.get_task(spec.name)
        leaves = list(getattr(task.metadata, "tasks", None) or []) or [task]
        cost = TaskCost(spec.name, spec.type)
        for leaf in leaves:
            found = text_groups(leaf, spec.split, spec.subset)
            if isinstance(found, str):
                cost.groups, cost.note = [], found
                break
            for group in found:
                instruction = instruction_for(spec, group.side, variant)
                prefix = render_prefix(instruction, template) if template is not None else ""
                role = group.role if len(leaves) == 1 else f"{leaf.metadata.name}/{group.role}"
                gc = _cost(spec.name, replace(group, role=role), prefix, plan.chars_per_token, max_length)
                twin = next((s for s in seen if s.prefix == prefix and s.group.matches(group)), None)
                if twin is not None:
                    gc.shared_with = f"{twin.task}/{twin.group.role}"
                else:
                    seen.append(gc)
                cost.groups.append(gc)
        plan.tasks.append(cost)
    return plan


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


def render_cost_plan(plan: CostPlan, header: str, tokens_per_second: float, gpus: int, *, cache_enabled: bool) -> str:
    """The `plan=true` report: `header`, the per-task table, three totals and the projected encoding hours.
    `tokens_per_second` and `gpus` are the run's checked values (`config.PlanSettings`)."""
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
