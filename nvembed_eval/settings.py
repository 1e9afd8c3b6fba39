"""The run's own settings (the root keys of conf/eval.yaml), checked strictly before anything heavy is imported:
booleans are `true`/`false`, counts are positive integers, choices come from a list. Each failure is one line naming
the key, the value and what is valid.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nvembed_eval.errors import ConfigError

REVISION_CHOICES = ("card", "mteb")
DEVICE_PATTERN = re.compile(r"^(auto|cpu|cuda|cuda:\d+|mps)$")
DEVICE_CHOICES = "auto, cpu, cuda, cuda:N or mps"


def boolean(key: str, value: Any) -> bool:
    """`value` if it is a real boolean, else `ConfigError` (Hydra reads `true`/`false` as booleans, `no` as text)."""
    if isinstance(value, bool):
        return value
    raise ConfigError(f"<{key}={_show(value)}> must be true or false")


def positive_int(key: str, value: Any, *, nullable: bool = False) -> int | None:
    """`value` if it is a positive integer (or None when `nullable`), else `ConfigError`."""
    if value is None and nullable:
        return None
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    null = " or null" if nullable else ""
    raise ConfigError(f"<{key}={_show(value)}> must be a positive integer{null}, e.g. 32")


def choice(key: str, value: Any, choices: tuple[str, ...]) -> str:
    """`value` if it is one of `choices`, else `ConfigError` listing them."""
    if isinstance(value, str) and value in choices:
        return value
    raise ConfigError(f"<{key}={_show(value)}> is not one of: {', '.join(choices)}")


def device(key: str, value: Any) -> str:
    """A device name: auto, cpu, cuda, cuda:N or mps."""
    if isinstance(value, str) and DEVICE_PATTERN.match(value):
        return value
    raise ConfigError(f"<{key}={_show(value)}> is not a device; use {DEVICE_CHOICES}")


def task_selection(key: str, value: Any) -> bool | frozenset[str]:
    """`overwrite`: true/false, or a list of task names to recompute (`overwrite=[SciFact,NFCorpus]`)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, list | tuple) and value and all(isinstance(v, str) and v for v in value):
        return frozenset(value)
    raise ConfigError(f"<{key}={_show(value)}> must be true, false or a list of task names, e.g. {key}=[SciFact]")


def task_list(key: str, value: Any) -> tuple[str, ...] | None:
    """`tasks`: null, one task name (`tasks=SciFact`) or a list of names (`tasks=[SciFact,NFCorpus]`)."""
    value = _plain(value)
    if value is None or value == []:
        return None
    if isinstance(value, str) and value.strip():
        return (value.strip(),)
    if isinstance(value, list | tuple) and all(isinstance(v, str) and v.strip() for v in value):
        return tuple(v.strip() for v in value)
    raise ConfigError(f"<{key}={_show(value)}> must be a task name or a list of them, e.g. {key}=[SciFact,NFCorpus]")


# The model knobs the bundled model configs share (conf/model/*.yaml), by kind. A knob not listed here (a user's own
# model family) is left to its adapter.
MODEL_BOOLEANS = (
    "normalize",
    "use_instructions",
    "show_progress",
    "allow_pickle",
    "mask_instruction",
    "bidirectional",
    "compile",
    "create_tiny_if_missing",
)
MODEL_COUNTS = ("max_seq_length", "max_length", "token_budget")  # positive integers, or null for the model's own
MODEL_TEXTS = ("name", "path", "revision")  # non-empty text, or null
MODEL_CHOICES = {
    "dtype": ("auto", "float32", "bfloat16", "float16"),
    "pooling": ("latent", "mean", "last_token"),
    "attn_implementation": ("sdpa", "eager", "varlen", "flash_attention_2"),
}


def check_model_knobs(model: Mapping[str, Any]) -> None:
    """Check the shared model knobs' values (types and choices) before the model is built, so `max_seq_length=0`
    or `normalize=maybe` is one line and not a record of a setting that never took effect.

    Raises:
        ConfigError: the first invalid knob (`<model.knob=value>` and what is valid).
    """
    for knob in MODEL_BOOLEANS:
        if model.get(knob) is not None:
            boolean(f"model.{knob}", model.get(knob))
    for knob in MODEL_COUNTS:
        positive_int(f"model.{knob}", model.get(knob), nullable=True)
    for knob in MODEL_TEXTS:
        value = model.get(knob)
        if value is not None and (not isinstance(value, str) or not value.strip()):
            raise ConfigError(f"<model.{knob}={_show(value)}> must be text (a name, path or revision) or null")
    for knob, choices in MODEL_CHOICES.items():
        if knob in model:
            choice(f"model.{knob}", model.get(knob), choices)
    if model.get("progress") is not None:
        boolean("model.progress", model.get("progress"))


def check_plan(plan: Any) -> None:
    """Check `plan:` (conf/eval.yaml): `enabled` true/false, `gpus` a positive integer, `tokens_per_second` and
    `chars_per_token` finite positive numbers within sane bounds.

    Raises:
        ConfigError: the first invalid value.
    """
    import math

    if not isinstance(plan, Mapping):
        raise ConfigError(f"<plan={_show(plan)}> must be true or false (plan=true prints the cost plan)")
    boolean("plan.enabled", plan.get("enabled", False))
    positive_int("plan.gpus", plan.get("gpus", 1))
    bounds = {"tokens_per_second": (1e-3, 1e9), "chars_per_token": (0.1, 100.0)}
    for key, (low, high) in bounds.items():
        value = plan.get(key)
        number = value if isinstance(value, int | float) and not isinstance(value, bool) else None
        if number is None or not math.isfinite(number) or not low <= number <= high:
            raise ConfigError(f"<plan.{key}={_show(value)}> must be a positive number, from {low:g} to {high:g}")


@dataclass(frozen=True)
class RunSettings:
    """The checked root settings of one run."""

    data_dir: Path | None
    dataset_revision: str
    batch_size: int
    device: str
    overwrite: bool | frozenset[str]
    trust_existing: bool
    leaderboard: bool
    cache_enabled: bool
    cache_max_bytes: int | None
    tasks: tuple[str, ...] | None = None
    save_predictions: bool = False
    progress: bool = False

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any]) -> RunSettings:
        """Check the composed config's root keys and cache group.

        Raises:
            ConfigError: the first invalid value (one line: key, value, valid values).
        """
        from nvembed_eval.cache import parse_size

        for group in ("model", "benchmark", "instructions", "cache"):
            if not isinstance(cfg.get(group), Mapping):
                raise ConfigError(
                    f"<{group}={_show(cfg.get(group))}> needs a {group} config; pick one of conf/{group}/"
                )
        check_model_knobs(cfg["model"])
        if "plan" in cfg:
            check_plan(cfg.get("plan"))
        tasks = task_list("tasks", cfg.get("tasks"))
        benchmark = cfg["benchmark"]
        if not tasks and not benchmark.get("tasks") and _missing(benchmark, "name"):
            raise ConfigError(
                """benchmark=mteb needs the mteb benchmark's name, e.g. 'benchmark.name="MTEB(eng, v2)"' """
                "(nvembed-eval-list benchmarks --all lists them)"
            )
        data_dir = cfg.get("data_dir")
        if data_dir is not None and (not isinstance(data_dir, str) or not data_dir.strip()):
            raise ConfigError(f"<data_dir={_show(data_dir)}> must be a folder path or null")
        cache = cfg["cache"]
        max_size = cache.get("max_size")
        positive_int("cache.shard_size", cache.get("shard_size"))
        return cls(
            data_dir=Path(data_dir).expanduser() if data_dir else None,
            dataset_revision=choice("dataset_revision", cfg.get("dataset_revision"), REVISION_CHOICES),
            batch_size=positive_int("batch_size", cfg.get("batch_size")),  # type: ignore[arg-type]
            device=device("device", cfg.get("device")),
            overwrite=task_selection("overwrite", _plain(cfg.get("overwrite"))),
            trust_existing=boolean("trust_existing", cfg.get("trust_existing", False)),
            leaderboard=boolean("leaderboard", cfg.get("leaderboard", False)),
            cache_enabled=boolean("cache.enabled", cache.get("enabled")),
            cache_max_bytes=None
            if max_size is None
            else parse_size(max_size, "cache.max_size", hint=", or null for no cap"),
            tasks=tasks,
            save_predictions=boolean("save_predictions", cfg.get("save_predictions", False)),
            progress=boolean("progress", cfg.get("progress", False)),
        )


def _missing(node: Any, key: str) -> bool:
    """True when `node.key` is absent or Hydra's mandatory `???`."""
    from omegaconf import DictConfig, OmegaConf

    if isinstance(node, DictConfig):
        return key not in node or OmegaConf.is_missing(node, key) or node[key] is None
    return node.get(key) in (None, "???")


def _plain(value: Any) -> Any:
    """An OmegaConf list as a plain list (anything else unchanged)."""
    if hasattr(value, "_content") and hasattr(value, "__iter__") and not isinstance(value, Mapping | str):
        return list(value)
    return value


def _show(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    text = str(list(value) if _plain(value) is not value else value)
    return text if len(text) <= 60 else text[:57] + "..."
