"""Checks that run before Hydra composes the config: the installed torch, then the command-line overrides.

Hydra's own errors for a wrong group choice, knob or override syntax are multi-line; users sweeping from the command
line get one line naming the value and the valid choices instead. Overrides are read with Hydra's own parser, and
group options come from the bundled config tree plus the user's own (`--config-dir`, `hydra.searchpath`).
"""

from __future__ import annotations

import difflib
import importlib.metadata
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from nvembed_eval.errors import ConfigError

# transformers 5 turns its PyTorch support off below this release (a strict comparison, so "2.6.0a0+git..."
# counts as older), after which every model import fails with an unrelated-looking NameError deep inside it.
MIN_TORCH = "2.6.0"

_REQUIRED_GROUPS = ("model", "benchmark", "instructions", "cache", "paths")  # a run cannot do without them
# Hydra's flags (hydra/_internal/utils.py get_args_parser): those that take a value, those after which nothing runs
# (help, config printing, shell completion: no key check), and the modes `--info` may take.
_FLAGS_WITH_VALUE = {
    "--config-name",
    "-cn",
    "--config-path",
    "-cp",
    "--config-dir",
    "-cd",
    "--cfg",
    "-c",
    "--package",
    "-p",
}
NO_RUN_FLAGS = {"--help", "-h", "--hydra-help", "--version", "--info", "-i", "--shell-completion", "-sc", "--cfg", "-c"}
_HELP_FLAGS = {"--help", "-h", "--hydra-help", "--version", "--shell-completion", "-sc"}
_INFO_MODES = {"all", "config", "defaults", "defaults-tree", "plugins", "searchpath"}
_MULTIRUN_FLAGS = {"--multirun", "-m"}
_PLAIN_FLAGS = {"--config-dir", "-cd", "--run", "-r"}  # a single run the pre-run check can compose as Hydra would
# Folders of the config tree that are data, not groups to choose from (conf/task/<Name>.yaml are task specs).
_NOT_GROUPS = {"task"}


@dataclass
class CommandLine:
    """A command line split into Hydra's flags and the parsed overrides."""

    overrides: list[Any] = field(default_factory=list)  # hydra.core.override_parser.types.Override
    config_dirs: list[Path] = field(default_factory=list)  # --config-dir and hydra.searchpath folders
    multirun: bool = False
    no_run: bool = False  # help, --cfg, --info, shell completion: nothing is evaluated or written
    help_only: bool = False  # help, version, shell completion: the overrides are not even composed
    flags: list[str] = field(default_factory=list)  # flags other than -m and --config-dir
    raw_flags: set[str] = field(default_factory=set)  # every flag given, long names for -m/-cd

    @property
    def plain(self) -> bool:
        """A single run made of overrides only (what the pre-run config check can compose itself)."""
        return not (self.multirun or self.no_run or self.flags)


def parse_command_line(args: list[str]) -> CommandLine:
    """Split `args` into flags and overrides, parsing each override with Hydra's own grammar.

    Raises:
        ConfigError: an override Hydra cannot read (one line, with how to quote it).
    """
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    if _HELP_FLAGS.intersection(args):
        # `-sc install=bash` and completion queries carry half-typed overrides; help prints and exits
        return CommandLine(no_run=True, help_only=True, flags=sorted(_HELP_FLAGS.intersection(args)))
    parser = OverridesParser.create()
    line = CommandLine()
    queue = list(args)
    while queue:
        arg = queue.pop(0)
        flag, has_inline, inline = arg.partition("=") if arg.startswith("--") else (arg, "", "")
        if arg.startswith("-"):
            line.raw_flags.add({"-cd": "--config-dir", "-m": "--multirun"}.get(flag, flag))
            line.no_run = line.no_run or flag in NO_RUN_FLAGS
            line.multirun = line.multirun or flag in _MULTIRUN_FLAGS
            if flag not in _PLAIN_FLAGS | _MULTIRUN_FLAGS:
                line.flags.append(flag)
            value = inline if has_inline else None
            takes_value = flag in _FLAGS_WITH_VALUE or (
                flag in ("--info", "-i") and queue[:1] and queue[0] in _INFO_MODES
            )
            if value is None and takes_value:
                value = queue.pop(0) if queue else ""
            if flag in ("--config-dir", "-cd") and value:
                line.config_dirs.append(Path(value).expanduser())
            continue
        try:
            override = parser.parse_override(arg)
        except HydraException as exc:
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ConfigError(
                f"cannot read the override <{arg}> ({reason}); quote values with spaces, commas or parentheses, "
                """e.g. 'benchmark.name="MTEB(eng, v2)"'"""
            ) from None
        if override.key_or_group == "hydra.searchpath" and isinstance(override.value(), list):
            line.config_dirs += [_search_dir(str(v)) for v in override.value() if _search_dir(str(v))]
        line.overrides.append(override)
    return line


def _search_dir(entry: str) -> Path | None:
    """The folder of a `hydra.searchpath` entry (`file://...` or a plain path); None for `pkg://` entries."""
    if entry.startswith("pkg://"):
        return None
    return Path(entry.removeprefix("file://")).expanduser()


def _groups(conf_dirs: list[Path]) -> dict[str, list[str]]:
    """Config group -> available option names (yaml stems) over every config folder, e.g. {"model": ["minilm", ...]}."""
    groups: dict[str, set[str]] = {}
    for conf_dir in conf_dirs:
        if not conf_dir.is_dir():
            continue
        for folder in (p for p in conf_dir.rglob("*") if p.is_dir()):
            group = folder.relative_to(conf_dir).as_posix()
            options = {p.stem for p in folder.glob("*.yaml")}
            if options and group not in _NOT_GROUPS:
                groups.setdefault(group, set()).update(options)
    return {group: sorted(options) for group, options in sorted(groups.items())}


def _read_yaml(path: Path) -> dict:
    with path.open(encoding="utf-8") as handle:
        return yaml.safe_load(handle) or {}


def _find(conf_dirs: list[Path], relative: str) -> Path | None:
    """The first config folder's copy of `relative` (user folders come first, as on Hydra's search path)."""
    return next((d / relative for d in conf_dirs if (d / relative).is_file()), None)


def _default_choice(conf_dir: Path, group: str) -> str | None:
    for item in _read_yaml(conf_dir / "eval.yaml").get("defaults", []):
        if isinstance(item, dict) and group in item:
            return item[group]
    return None


def _experiment_model(conf_dirs: list[Path], experiment: str) -> str | None:
    path = _find(conf_dirs, f"experiment/{experiment}.yaml")
    for item in _read_yaml(path).get("defaults", []) if path else []:
        if isinstance(item, dict):
            for key, value in item.items():
                if key.replace("override ", "").strip().lstrip("/") == "model":
                    return value
    return None


def _model_knobs(conf_dirs: list[Path], model: str) -> set[str] | None:
    """Knobs of a model config, following its defaults list (a user's model may extend a bundled one)."""
    path = _find(conf_dirs, f"model/{model}.yaml")
    if path is None:
        return None
    data = _read_yaml(path)
    knobs = {k for k in data if not k.startswith("_") and k != "defaults"}
    for item in data.get("defaults", []):
        if isinstance(item, str) and item != "_self_":
            knobs |= _model_knobs(conf_dirs, item) or set()
    return knobs


def check_torch(installed: str | None = None) -> None:
    """Raise `ConfigError` when the installed torch is older than transformers 5 accepts."""
    from packaging.version import InvalidVersion, Version

    if installed is None:
        try:
            installed = importlib.metadata.version("torch")
        except importlib.metadata.PackageNotFoundError:
            raise ConfigError(
                "torch is not installed; run: pip install torch (CPU only: pip install torch "
                "--index-url https://download.pytorch.org/whl/cpu)"
            ) from None
    try:
        too_old = Version(installed) < Version(MIN_TORCH)
    except InvalidVersion:
        too_old = True
    if too_old:
        raise ConfigError(
            f"torch {installed} is too old: transformers 5 needs torch >= {MIN_TORCH} (a pre-release of "
            f"{MIN_TORCH} does not count); upgrade it, e.g. pip install 'torch>={MIN_TORCH}'"
        )


def _choices(override: Any) -> list[str]:
    """The values of a group choice or sweep as strings; [] for sweeps Hydra expands itself (range, glob)."""
    if not override.is_sweep_override():
        value = override.value()
        return [str(value)] if isinstance(value, str | int | float) else []
    try:
        return [str(v) for v in override.sweep_string_iterator()]
    except Exception:  # range/interval/glob sweeps: Hydra checks those
        return []


def check_overrides(args: list[str], conf_dir: Path) -> CommandLine:
    """Raise `ConfigError` for an override Hydra cannot read, an unknown group option or key, an unknown
    `model.<knob>`, `task=`/`+task=` (the key is `tasks`), or several values without `-m`.

    Args:
        args: the command line after the program name.
        conf_dir: the bundled config tree; `--config-dir` and `hydra.searchpath` folders are searched first.

    Returns:
        The parsed command line.
    """
    line = parse_command_line(args)
    if line.help_only:
        return line
    conf_dirs = [*line.config_dirs, conf_dir]
    groups = _groups(conf_dirs)
    root_keys = set(_read_yaml(conf_dir / "eval.yaml")) - {"defaults"}

    chosen_models: list[str] = []
    experiment_models: list[str] = []
    for override in line.overrides:
        key = override.key_or_group
        if key == "task":
            value = override.value()
            name = value if isinstance(value, str) else "SciFact"
            raise ConfigError(f"there is no key <{override.input_line}>; the task list is tasks, e.g. tasks=[{name}]")
        if override.is_sweep_override() and not line.multirun:
            values = ",".join(_choices(override)) or "..."
            raise ConfigError(
                f"<{override.input_line}> gives several values: write {key}=[{values}] for a list, "
                f"or add -m to sweep over them"
            )
        if key in groups and override.value() is None and not override.is_delete():
            # Hydra refuses a null group choice with a traceback (ValueError in its defaults list)
            if _default_choice(conf_dir, key) in (None, "null"):
                raise ConfigError(f"<{key}=null> is the default already; leave {key}= out")
            raise ConfigError(f"<{key}=null> needs a {key} config; pick one of conf/{key}/: {', '.join(groups[key])}")
        if key in groups:
            for value in _choices(override):
                if value == "null" and key in _REQUIRED_GROUPS:  # a sweep value: model=minilm,null
                    raise ConfigError(f"<{key}=null> needs a {key} config; choose one of: {', '.join(groups[key])}")
                if value not in groups[key] and value != "null":
                    close = difflib.get_close_matches(value, groups[key], n=3)
                    hint = f"did you mean {', '.join(close)}? " if close else ""
                    raise ConfigError(
                        f"unknown {key} config <{key}={value}>; {hint}choose one of: {', '.join(groups[key])}"
                    )
            if key == "model":
                chosen_models = _choices(override)
            if key == "experiment":
                experiment_models = [
                    m for v in _choices(override) if v != "null" and (m := _experiment_model(conf_dirs, v))
                ]
        elif "." not in key and not key.startswith("hydra") and key not in root_keys and not override.is_add():
            close = difflib.get_close_matches(key, sorted(root_keys | set(groups)), n=3)
            hint = f"did you mean {', '.join(close)}? " if close else ""
            raise ConfigError(f"unknown config key <{key}>; {hint}known keys: {', '.join(sorted(root_keys))}")

    models = chosen_models or experiment_models or [_default_choice(conf_dir, "model") or ""]
    for override in line.overrides:
        if not override.key_or_group.startswith("model.") or override.is_add():
            continue
        knob = override.key_or_group.split(".", 1)[1].split(".")[0]
        for model in models:
            knobs = _model_knobs(conf_dirs, model)
            if knobs is not None and knob not in knobs:
                raise ConfigError(
                    f"model {model} has no knob <model.{knob}>; its knobs are: {', '.join(sorted(knobs))}"
                )
    return line


def check_output_dir(args: list[str]) -> None:
    """Refuse an `output_dir` that cannot be created before Hydra creates it (Hydra's own failure is a traceback).

    Checks the folder given with `output_dir=...` (without interpolations), else the default root
    (`$NVEMBED_EVAL_ROOT/outputs`, or `./outputs`): its nearest existing ancestor must be a writable folder.

    Raises:
        ConfigError: the path lies under a regular file, or the folder it would be created in is not writable.
    """
    line = parse_command_line(args)
    if line.no_run:
        return  # help, config printing and shell completion write nothing
    values = [v for o in line.overrides if o.key_or_group == "output_dir" for v in _choices(o)]
    key = "output_dir" if values else "output_dir (default)"
    if not values:
        values = [str(Path(os.environ.get("NVEMBED_EVAL_ROOT", ".")) / "outputs")]
    for value in values:
        if "${" in value:
            continue
        path = Path(value).expanduser().absolute()
        existing = nearest_existing(path)
        if not existing.is_dir():
            raise ConfigError(f"<{key}={value}> lies under the regular file {existing}; choose a folder path")
        try:  # a real probe: permissions alone miss read-only filesystems and root's rights
            os.rmdir(tempfile.mkdtemp(prefix=".nvembed-eval-probe-", dir=existing))
        except OSError as exc:
            raise ConfigError(
                f"<{key}={value}>: cannot create folders in {existing} ({exc.strerror}); choose another output_dir"
            ) from None


def nearest_existing(path: Path) -> Path:
    """`path` or its nearest ancestor that exists."""
    return next(p for p in (path, *path.parents) if p.exists())
