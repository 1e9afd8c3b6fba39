"""Which instruction goes on which text (the NV-Embed-v2 instructions recorded in each task spec, none, or what mteb's
own task prompts give), and the one place it is templated into a prefix."""

from __future__ import annotations

import logging
import warnings
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nvembed_eval.errors import ConfigError, TaskNotFoundError
from nvembed_eval.io import bundled_dir
from nvembed_eval.tasks.specs import SIDES, register_smoke_tasks

if TYPE_CHECKING:
    from nvembed_eval.tasks.specs import TaskSpec


class InstructionVariant(StrEnum):
    """`instructions=` config group choices."""

    nv_embed_v2 = "nv_embed_v2"
    none = "none"
    mteb_default = "mteb_default"


def instructions_dir() -> Path:
    """The bundled `instructions/` folder (in the wheel): NV-Embed-v2's instructions.json and the Table-7 stand-ins."""
    return bundled_dir("instructions")


def _side(prompt_type: Any) -> str | None:
    """mteb's `PromptType` (or a plain string) as "query" / "document" / None."""
    if prompt_type is None:
        return None
    value = getattr(prompt_type, "value", prompt_type)
    if value not in SIDES:  # ("query", "document")
        raise ConfigError(f"unknown prompt type '{value}'; mteb prompt types are: {', '.join(SIDES)} or None")
    return str(value)


def instruction_for(spec: TaskSpec, prompt_type: str | None, variant: str) -> str | None:
    """The raw instruction (not yet templated) for one side of one task under an `InstructionVariant`, or None for
    none on that side. `prompt_type` None (mteb encoding a single-sided task) takes the query side's: single-sided
    tasks carry the same text on both sides. An aggregate's spec serves each of its subtasks."""
    side = _side(prompt_type)
    try:
        chosen = InstructionVariant(str(variant))
    except ValueError:
        valid = ", ".join(InstructionVariant)
        raise ConfigError(
            f"unknown instruction variant <instructions.variant={variant}>; choose one of: {valid}"
        ) from None
    if chosen is InstructionVariant.none:
        return None
    if chosen is InstructionVariant.mteb_default:
        return mteb_default_instruction(spec.subtasks[0] if spec.subtasks else spec.name, side)
    text = spec.instructions.get(side or "query")
    if side is None and not text:
        text = spec.instructions.get("document")
    return text or None


def mteb_default_instruction(task_name: str, side: str | None) -> str | None:
    """What mteb 2.x's `AbsEncoder.get_instruction` yields for a model without its own prompt table (mteb itself is
    called rather than its rules restated): the task metadata's `prompt` (a dict read by prompt type; a whole dict
    handed back for prompt type None is no instruction here), else that of the task's abstract class."""
    import mteb
    from mteb.models.abs_encoder import AbsEncoder
    from mteb.types import PromptType

    class NoPromptTable(AbsEncoder):  # no prompt table of its own: `get_instruction` falls through to the task's
        def encode(self, *args: Any, **kwargs: Any) -> Any:  # never called: only the prompt lookup is used
            raise NotImplementedError

    register_smoke_tasks()
    try:
        task = mteb.get_task(task_name)
    except KeyError:
        raise TaskNotFoundError(
            f"mteb does not know task '{task_name}', so it has no mteb prompt <instructions=mteb_default>; "
            "use instructions=nv_embed_v2 or none"
        ) from None
    sub_tasks = getattr(task.metadata, "tasks", None)  # an aggregate's: mteb encodes them, so the model sees theirs
    metadata = sub_tasks[0].metadata if sub_tasks else task.metadata
    # mteb warns (warnings + its logger) when a dict prompt lacks this side; here that simply means no instruction.
    mteb_log = logging.getLogger("mteb.models.abs_encoder")
    previous = mteb_log.level
    mteb_log.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            text = NoPromptTable().get_instruction(metadata, PromptType(side) if side else None)
    finally:
        mteb_log.setLevel(previous)
    return text if isinstance(text, str) and text else None


def render_prefix(instruction: str | None, template: str) -> str:
    """The literal text prepended to each input: "" for no `instruction` (None or ""), else the model's `template`
    filled in (its `{instruction}` placeholder, e.g. "Instruct: {instruction}\\nQuery: "). Raises `ConfigError` when
    the template has no `{instruction}` placeholder or other unfilled fields."""
    if not instruction:
        return ""
    if "{instruction}" not in template:
        raise ConfigError(
            f"instruction template {template!r} has no {{instruction}} placeholder <model.instruction_template>; add it"
        )
    try:
        return template.format(instruction=instruction)
    except (KeyError, IndexError, ValueError) as exc:
        raise ConfigError(
            f"instruction template {template!r} has a field other than {{instruction}} ({exc}) "
            "<model.instruction_template>; double literal braces as {{ }}"
        ) from None
