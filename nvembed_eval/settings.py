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
