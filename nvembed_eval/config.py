"""A run's settings: the command line read with Hydra's own grammar, the config composed once with Hydra's compose
API, validated once against one schema (pydantic), and every mistake turned into one line that names the value and
what is valid.

Why pydantic rather than Hydra structured configs: the schema's messages are this harness's contract
(docs/bad_input.md) and OmegaConf's are multi-line and coerce ("1" becomes 1, "yes" a bool); pydantic validates
without coercing, reports every error with its key path and input, and checks a model family's knobs against its
adapter's own constructor signature (config keys = constructor parameters), so no adapter re-checks its arguments.
"""

from __future__ import annotations

import copy
import difflib
import importlib
import importlib.metadata
import inspect
import math
import os
import re
import tempfile
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, PlainValidator, ValidationError, create_model
from pydantic_core import PydanticCustomError

from nvembed_eval.errors import ConfigError
from nvembed_eval.io import SIZE_EXAMPLES, conf_dir, nearest_existing, parse_size

if TYPE_CHECKING:
    from omegaconf import DictConfig

CONFIG_NAME = "eval"
# transformers 5 turns its PyTorch support off below this release (a strict comparison, so "2.6.0a0+git..."
# counts as older), after which every model import fails with an unrelated-looking NameError deep inside it.
MIN_TORCH = "2.6.0"
_PLAIN_VALUE = re.compile(r"^[\w\-+./:@~%*$]+$")  # needs no quoting in Hydra's override grammar

# ------------------------------------------------------------------------------------------------ command line

# Hydra's flags (hydra/_internal/utils.py get_args_parser): those that take a value, those after which nothing runs
# (help, config printing, shell completion), and the modes `--info` may take.
_FLAGS_WITH_VALUE = {"--config-name", "-cn", "--config-path", "-cp", "--config-dir", "-cd", "--cfg", "-c"}
_FLAGS_WITH_VALUE |= {"--package", "-p"}
NO_RUN_FLAGS = {"--help", "-h", "--hydra-help", "--version", "--info", "-i", "--shell-completion", "-sc", "--cfg", "-c"}
_HELP_FLAGS = {"--help", "-h", "--hydra-help", "--version", "--shell-completion", "-sc"}
_INFO_MODES = {"all", "config", "defaults", "defaults-tree", "plugins", "searchpath"}
_MULTIRUN_FLAGS = {"--multirun", "-m"}
_PLAIN_FLAGS = {"--config-dir", "-cd", "--run", "-r"}  # a single run this module can compose as Hydra would


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
        """A single run made of overrides only: composed here, not by `@hydra.main`."""
        return not (self.multirun or self.no_run or self.flags)

    @property
    def texts(self) -> list[str]:
        """The overrides as typed, plus `--config-dir` folders as a `hydra.searchpath` override."""
        texts = [o.input_line for o in self.overrides]
        if self.config_dirs and not any(o.key_or_group == "hydra.searchpath" for o in self.overrides):
            texts.append(search_path_override(self.config_dirs))
        return texts

    def given(self, key: str) -> Any | None:
        """The last override of `key` (None when the key is not overridden)."""
        return next((o for o in reversed(self.overrides) if o.key_or_group == key), None)


# Variables that name folders this harness reads or writes: set but empty, each would mean the current folder (or,
# joined with a path, the filesystem's root), so an empty one is refused rather than read as a place.
PATH_VARIABLES = ("NVEMBED_EVAL_CACHE", "NVEMBED_EVAL_ROOT", "NVEMBED_EVAL_CONF", "NVEMBED_EVAL_DIGESTS")
PATH_VARIABLES += ("NVEMBED_TINY_CHECKPOINT", "NVEMBED_SHARED", "HF_HOME", "MTEB_CACHE")


def check_path_variables() -> None:
    """Raise `ConfigError` for a path variable that is set but empty (`NVEMBED_EVAL_CACHE=`)."""
    empty = next((name for name in PATH_VARIABLES if name in os.environ and not os.environ[name].strip()), None)
    if empty:
        raise ConfigError(f"<{empty}=> is empty; set it to a folder, or unset it for the default")


def parse_command_line(args: Sequence[str]) -> CommandLine:
    """Split `args` into Hydra's flags and overrides, each override parsed with Hydra's own grammar. `plan=true` is
    read as `plan.enabled=true` (Hydra would replace the whole `plan:` block with a bool).

    Raises:
        ConfigError: an override Hydra cannot read (one line, with how to quote it); a `plan` value that is not
            true/false.
    """
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    check_path_variables()
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
        key, sep, value = arg.partition("=")
        if sep and key in ("plan", "plan.enabled"):
            if value.lower() not in ("true", "false"):
                raise ConfigError(f"<{key}={value}> must be true or false")
            arg = f"plan.enabled={value.lower()}"
        try:
            override = parser.parse_override(arg)
        except HydraException as exc:
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ConfigError(
                f"cannot read the override <{arg}> ({reason}); quote values with spaces, commas or parentheses, "
                """e.g. 'benchmark.name="MTEB(eng, v2)"'"""
            ) from None
        if override.key_or_group == "hydra.searchpath" and isinstance(override.value(), list):
            line.config_dirs += [d for d in map(_search_dir, map(str, override.value())) if d]
        line.overrides.append(override)
    if line.multirun and any(o.key_or_group == "plan.enabled" and o.value() is True for o in line.overrides):
        raise ConfigError("plan=true plans one run; drop -m and plan each job's overrides on their own")
    return line


def _search_dir(entry: str) -> Path | None:
    """The folder of a `hydra.searchpath` entry (`file://...` or a plain path); None for `pkg://` entries."""
    return None if entry.startswith("pkg://") else Path(entry.removeprefix("file://")).expanduser()


def hydra_value(value: Any) -> str:
    """One value in Hydra's override grammar (strings Hydra would misread are quoted)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list | tuple):
        return "[" + ",".join(hydra_value(v) for v in value) + "]"
    text = str(value)
    if _PLAIN_VALUE.match(text):
        return text
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def to_overrides(overrides: Sequence[str] | Mapping[str, Any] | None) -> list[str]:
    """Hydra override strings from a list (used as given) or a mapping (`{"tasks": ["SciFact"], "batch_size": 64}`;
    nested mappings become dotted keys).

    Raises:
        ConfigError: `overrides` is a single string or another type.
    """
    if overrides is None:
        return []
    if isinstance(overrides, Mapping):

        def flatten(mapping: Mapping[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
            items: list[tuple[str, Any]] = []
            for key, value in mapping.items():
                items += (
                    flatten(value, f"{prefix}{key}.") if isinstance(value, Mapping) else [(f"{prefix}{key}", value)]
                )
            return items

        return [f"{key}={hydra_value(value)}" for key, value in flatten(overrides)]
    if isinstance(overrides, str) or not all(isinstance(o, str) for o in overrides):
        raise ConfigError(f"overrides={overrides!r} must be a list of 'key=value' strings or a dict")
    return list(overrides)


def search_path_override(config_dirs: Sequence[Path]) -> str:
    """`hydra.searchpath=[...]` adding the user's config folders (what `--config-dir` does on the command line)."""
    entries = ",".join(hydra_value(f"file://{Path(d).expanduser().absolute()}") for d in config_dirs)
    return f"hydra.searchpath=[{entries}]"


# --------------------------------------------------------------------------------------------------- composing

COMPOSED = {"count": 0}  # how many configs this process composed (a test checks that a run composes once)


def compose(line: CommandLine) -> DictConfig:
    """The config `nvembed-eval` runs with these overrides, including Hydra's `hydra` node; nothing is written.

    Raises:
        ConfigError: Hydra cannot compose it (`config_error`'s one line).
    """
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    COMPOSED["count"] += 1
    try:
        with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3", job_name="nvembed_eval"):
            return hydra_compose(CONFIG_NAME, overrides=line.texts, return_hydra_config=True)
    except Exception as exc:  # Hydra's and OmegaConf's errors, and the ValueError of a null group choice
        raise config_error(exc, line) from None


def job_config(full: DictConfig) -> tuple[DictConfig, DictConfig, Path]:
    """Split a composed config into the job's config, the `hydra` node (with `runtime.output_dir` set, as Hydra sets
    it when it runs a job) and the absolute run folder."""
    from omegaconf import open_dict, read_write

    run_dir = Path(str(full.output_dir)).expanduser().absolute()
    hydra_cfg = copy.deepcopy(full).hydra  # as HydraConfig.set_config keeps it
    with read_write(hydra_cfg), open_dict(hydra_cfg):
        hydra_cfg.runtime.output_dir = str(run_dir)
    cfg = copy.deepcopy(full)
    with read_write(cfg), open_dict(cfg):
        del cfg["hydra"]
    return cfg, hydra_cfg, run_dir


def compose_job(overrides: Sequence[str]) -> DictConfig:
    """The job's config (no `hydra` node) for these overrides, for side tools (`nvembed-eval-probe`): nothing is
    created on disk.

    Raises:
        ConfigError: an override or value that a run would refuse.
    """
    line = parse_command_line(list(overrides))
    cfg = job_config(compose(line))[0]
    validate(cfg, line)
    return cfg


def check_sweep(line: CommandLine, limit: int = 64) -> None:
    """`-m`: compose and validate every swept value before the first job runs (Hydra would run the good jobs, then
    fail the bad one). Each value is composed once, with the other swept keys at their first value; range and glob
    sweeps, which Hydra expands itself, are left to each job's own check.

    Raises:
        ConfigError: the first value that a single run would refuse (its one-line message).
    """

    def values(override: Any) -> list[str]:
        if not override.is_sweep_override():
            return [override.input_line.split("=", 1)[1]]
        try:
            return list(override.sweep_string_iterator())
        except Exception:  # range/interval/glob: no plain list of strings
            return []

    keys = [o.input_line.split("=", 1)[0] for o in line.overrides]
    options = [values(o) for o in line.overrides]
    if any(not v for v in options):
        return
    first = [v[0] for v in options]
    combos = [[*first[:at], value, *first[at + 1 :]] for at, choices in enumerate(options) for value in choices[1:]]
    for combo in [first, *combos][:limit]:
        single = parse_command_line([f"{k}={v}" for k, v in zip(keys, combo, strict=True)])
        single.config_dirs = line.config_dirs
        validate(job_config(compose(single))[0], single)


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


def check_output_dir(value: str, key: str = "output_dir") -> None:
    """Refuse a run folder that cannot be created, before anything creates it (Hydra's own failure is a traceback):
    its nearest existing ancestor must be a writable folder.

    Raises:
        ConfigError: the path lies under a regular file, or the folder it would be created in is not writable.
    """
    if "${" in value:
        return
    existing = nearest_existing(Path(value).expanduser().absolute())
    if not existing.is_dir():
        raise ConfigError(f"<{key}={value}> lies under the regular file {existing}; choose a folder path")
    try:  # a real probe: permissions alone miss read-only filesystems and root's rights
        os.rmdir(tempfile.mkdtemp(prefix=".nvembed-eval-probe-", dir=existing))
    except OSError as exc:
        raise ConfigError(
            f"<{key}={value}>: cannot create folders in {existing} ({exc.strerror}); choose another output_dir"
        ) from None


def check_sweep_output_dirs(line: CommandLine) -> None:
    """`-m`: every `output_dir` value (or the default root) must be creatable before Hydra makes the sweep folder."""
    given = line.given("output_dir")
    if given is None:
        root = Path(os.environ.get("NVEMBED_EVAL_ROOT", ".")) / "outputs"
        check_output_dir(str(root), "output_dir (default)")
        return
    choices = list(given.sweep_string_iterator()) if given.is_sweep_override() else [str(given.value())]
    for value in choices:
        check_output_dir(value)


# ------------------------------------------------------------------------------------------------------ schema


def _rule(check: Callable[[Any], bool], message: str, convert: Callable[[Any], Any] = lambda v: v) -> PlainValidator:
    """A validator that accepts `v` when `check(v)` and otherwise fails with `message` (see `config_error`)."""

    def validate(value: Any) -> Any:
        if check(value):
            return convert(value)
        raise PydanticCustomError("setting", message)

    return PlainValidator(validate)


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


Bool = Annotated[bool, _rule(lambda v: isinstance(v, bool), "must be true or false")]
Count = Annotated[int, _rule(lambda v: _is_int(v) and v > 0, "must be a positive integer, e.g. 32")]
Device = Annotated[
    str,
    _rule(
        lambda v: isinstance(v, str) and bool(re.fullmatch(r"auto|cpu|cuda|cuda:\d+|mps", v)),
        "is not a device; use auto, cpu, cuda, cuda:N or mps",
    ),
]
Folder = Annotated[
    str | None, _rule(lambda v: v is None or (isinstance(v, str) and bool(v.strip())), "must be a folder path or null")
]


def _choice(*values: str) -> Any:
    return Annotated[str, _rule(lambda v: v in values, f"is not one of: {', '.join(values)}")]


def _within(low: float, high: float) -> Any:
    message = f"must be a positive number, from {low:g} to {high:g}"
    return Annotated[float, _rule(lambda v: _is_number(v) and low <= v <= high, message)]


def _task_names(value: Any) -> tuple[str, ...] | None:
    """`tasks`: null, one name (`tasks=SciFact`) or a list of names (`tasks=[SciFact,NFCorpus]`)."""
    if value is None or value == []:
        return None
    if isinstance(value, str) and value.strip():
        return (value.strip(),)
    if isinstance(value, list | tuple) and all(isinstance(v, str) and v.strip() for v in value):
        return tuple(v.strip() for v in value)
    raise PydanticCustomError("setting", "must be a task name or a list of them, e.g. tasks=[SciFact,NFCorpus]")


def _overwrite(value: Any) -> bool | frozenset[str]:
    if isinstance(value, bool):
        return value
    if isinstance(value, list | tuple) and value and all(isinstance(v, str) and v for v in value):
        return frozenset(value)
    raise PydanticCustomError("setting", "must be true, false or a list of task names, e.g. overwrite=[SciFact]")


def _max_size(value: Any) -> int | None:
    try:
        return None if value is None else parse_size(value, "cache.max_size")
    except ConfigError:
        raise PydanticCustomError("setting", f"is not a size; write e.g. {SIZE_EXAMPLES}, or null for no cap") from None


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PlanSettings(_Section):
    """`plan:`: the dry run's switch and the figures its cost estimate uses (docs/plan.md)."""

    enabled: Bool = False
    tokens_per_second: _within(1e-3, 1e9) = 32898.0
    gpus: Count = 1
    chars_per_token: _within(0.1, 100.0) = 4.0


class CacheSettings(_Section):
    """`cache=`: the embedding cache (nvembed_eval.cache)."""

    enabled: Bool
    dir: str
    shard_size: Count
    max_size: Annotated[int | None, PlainValidator(_max_size)] = None  # bytes; None: no cap


class BenchmarkSettings(_Section):
    """`benchmark=`: a task list of this harness (`tasks:`), or mteb's benchmark `name:` (`benchmark=mteb`)."""

    name: str | None = None
    tasks: tuple[str, ...] = ()


class InstructionSettings(_Section):
    variant: _choice("nv_embed_v2", "none", "mteb_default")


class PathSettings(_Section):
    root_dir: str
    output_root: str
    published_dir: Folder = None


class RunSettings(_Section):
    """The checked settings of one run: conf/eval.yaml's keys and groups, validated once (`validate`)."""

    tasks: Annotated[tuple[str, ...] | None, PlainValidator(_task_names)] = None
    data_dir: Folder = None
    output_dir: str
    batch_size: Count
    device: Device
    dataset_revision: _choice("card", "mteb")
    overwrite: Annotated[bool | frozenset[str], PlainValidator(_overwrite)] = False
    reference: str | None = "auto"
    leaderboard: Bool = False
    trust_existing: Bool = False
    save_predictions: Bool = False
    progress: Bool = False
    plan: PlanSettings = PlanSettings()
    model: dict[str, Any]  # `_target_` and knobs, checked against the adapter's signature (`check_model`)
    benchmark: BenchmarkSettings
    instructions: InstructionSettings
    cache: CacheSettings
    paths: PathSettings

    @property
    def data_path(self) -> Path | None:
        return Path(self.data_dir).expanduser() if self.data_dir else None

    @property
    def knobs(self) -> dict[str, Any]:
        """The model adapter's keyword arguments (the model config without `_target_`)."""
        return {k: v for k, v in self.model.items() if k != "_target_"}


def validate(cfg: DictConfig | Mapping[str, Any], line: CommandLine | None = None) -> RunSettings:
    """Check a composed config against the schema, model knobs included, in one pass.

    Args:
        cfg: the job's config (no `hydra` node). line: the command line it came from, for messages that quote it.

    Raises:
        ConfigError: the first invalid value, in one line (`<key=value>` and what is valid).
    """
    from omegaconf import DictConfig, OmegaConf

    plain = OmegaConf.to_container(cfg, resolve=True) if isinstance(cfg, DictConfig) else dict(cfg)
    if isinstance(plain.get("benchmark"), dict) and plain["benchmark"].get("name") == "???":
        plain["benchmark"]["name"] = None  # Hydra's mandatory value, left unset (benchmark=mteb)
    for group in ("model", "benchmark", "instructions", "cache"):
        if not isinstance(plain.get(group), Mapping):
            raise ConfigError(f"<{group}={_show(plain.get(group))}> needs a {group} config; pick one of conf/{group}/")
    try:
        settings = RunSettings.model_validate(plain)
    except ValidationError as exc:
        raise config_error(exc, line) from None
    check_model(settings.model, line)
    if not settings.tasks and not settings.benchmark.tasks and not settings.benchmark.name:
        raise ConfigError(
            """benchmark=mteb needs the mteb benchmark's name, e.g. 'benchmark.name="MTEB(eng, v2)"' """
            "(nvembed-eval-list benchmarks --all lists them)"
        )
    return settings


def check_model(model: Mapping[str, Any], line: CommandLine | None = None) -> None:
    """Check the model knobs against the signature of the adapter named by `_target_`: each knob is a parameter,
    and its value has the parameter's type (bool: true/false; int: a positive integer; str: text; a Literal or enum:
    one of its values; `| None`: or null). Nothing is imported but the adapter's module (no torch, no mteb).

    Raises:
        ConfigError: an unknown knob, a value of the wrong kind, or a `_target_` that cannot be imported.
    """
    target = str(model.get("_target_") or "")
    adapter = _adapter(target)
    fields: dict[str, Any] = {}
    for name, parameter in inspect.signature(adapter).parameters.items():
        if parameter.kind in (parameter.VAR_KEYWORD, parameter.VAR_POSITIONAL):
            continue
        hint = typing.get_type_hints(adapter.__init__).get(name, Any)
        default = ... if parameter.default is inspect.Parameter.empty else parameter.default
        fields[name] = (_knob_type(hint), default)
    schema = create_model(adapter.__name__ + "Knobs", __config__=ConfigDict(extra="forbid"), **fields)
    try:
        schema.model_validate({k: v for k, v in model.items() if k != "_target_"})
    except ValidationError as exc:
        raise config_error(exc, line, prefix="model.", model=model) from None


def model_class(model: Mapping[str, Any]) -> type:
    """The adapter class named by a model config's `_target_` (importing it imports no torch and no mteb).

    Raises:
        ConfigError: it cannot be imported.
    """
    return _adapter(str(model.get("_target_") or ""))


def _adapter(target: str) -> type:
    module, _, name = target.rpartition(".")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError, ValueError):
        raise ConfigError(f"cannot import the model class <model._target_={target}>; fix the model YAML") from None


def _knob_type(hint: Any) -> Any:
    """The validator of a constructor parameter's type hint (`check_model`)."""
    args = typing.get_args(hint)
    if typing.get_origin(hint) in (typing.Union, types.UnionType) and type(None) in args:
        inner = [a for a in args if a is not type(None)]
        kind = _knob_type(inner[0]) if len(inner) == 1 else Any
        if kind is Any:
            return Any
        check = typing.get_args(kind)[1]  # the PlainValidator of the inner kind

        def nullable(value: Any) -> Any:
            if value is None:
                return None
            try:
                return check.func(value)
            except PydanticCustomError as exc:
                raise PydanticCustomError("setting", _or_null(exc.message())) from None

        return Annotated[Any, PlainValidator(nullable)]
    if hint is bool:
        return Bool
    if hint is int:
        return Count
    if hint is str:
        return Annotated[
            str, _rule(lambda v: isinstance(v, str) and bool(v.strip()), "must be text (a name, path or revision)")
        ]
    if typing.get_origin(hint) is Literal:
        return _choice(*map(str, args))
    if isinstance(hint, type) and issubclass(hint, Enum):
        return _choice(*(str(m.value) for m in hint))
    return Any


def _or_null(message: str) -> str:
    """A message for a value that may also be null: "must be a positive integer or null, e.g. 32"."""
    for head in ("must be a positive integer", "must be text (a name, path or revision)", "must be true or false"):
        if message.startswith(head):
            return head + " or null" + message[len(head) :]
    return message + " (or null)"


# ---------------------------------------------------------------------------------------------------- messages


def config_error(
    exc: BaseException, line: CommandLine | None = None, *, prefix: str = "", model: Mapping[str, Any] | None = None
) -> ConfigError:
    """Any config error as this harness's one-line `ConfigError`: what is wrong, the value, what is valid.

    Args:
        exc: Hydra's or OmegaConf's composition error, the ValueError of a null group choice, or pydantic's
            `ValidationError` of the schema.
        line: the command line, to quote the user's override and suggest close matches.
        prefix: the key path of the validated section ("model." for model knobs).
        model: the model config whose knobs were validated (to list them).
    """
    from hydra.errors import MissingConfigException

    if isinstance(exc, ValidationError):
        error = exc.errors(include_url=False)[0]
        key = prefix + ".".join(str(p) for p in error["loc"])
        if error["type"] == "extra_forbidden":
            return _unknown_key(key, line, model)
        if error["type"] == "missing":
            return ConfigError(f"<{key}> is missing; give it a value (conf/eval.yaml has every key)")
        if error["type"] == "setting":
            return ConfigError(f"<{key}={_show(error['input'])}> {error['msg']}")
        return ConfigError(f"<{key}={_show(error.get('input'))}>: {error['msg']}")
    text = " ".join(str(exc).split())
    overrides = line.overrides if line is not None else []
    if isinstance(exc, MissingConfigException) and exc.missing_cfg_file and "/" in exc.missing_cfg_file:
        group, _, value = exc.missing_cfg_file.rpartition("/")
        options = sorted(exc.options or [])
        close = difflib.get_close_matches(value, options, n=3)
        hint = f"did you mean {', '.join(close)}? " if close else ""
        return ConfigError(f"unknown {group} config <{group}={value}>; {hint}choose one of: {', '.join(options)}")
    if isinstance(exc, ValueError) and "Config group override" in text:  # `model=null`
        override = next((o for o in overrides if o.value() is None and "." not in o.key_or_group), None)
        group = override.key_or_group if override is not None else "?"
        if _default_choice(group) in (None, "null"):
            return ConfigError(f"<{group}=null> is the default already; leave {group}= out")
        options = ", ".join(_group_options(group, line))
        return ConfigError(f"<{group}=null> needs a {group} config; pick one of conf/{group}/: {options}")
    if match := re.match(r"Could not override '([^']+)'", text):
        return _unknown_key(match.group(1), line, None)
    if match := re.match(r"Ambiguous value for argument '([^']+)'", text):
        override = next((o for o in overrides if o.input_line == match.group(1)), None)
        key = match.group(1).split("=", 1)[0]
        values = ",".join(override.sweep_string_iterator()) if override is not None else "..."
        return ConfigError(
            f"<{match.group(1)}> gives several values: write {key}=[{values}] for a list, or add -m to sweep over them"
        )
    return ConfigError(f"cannot compose the config: {text[:300]}")


def _unknown_key(key: str, line: CommandLine | None, model: Mapping[str, Any] | None) -> ConfigError:
    override = next((o for o in (line.overrides if line else []) if o.key_or_group.lstrip("+~") == key), None)
    typed = override.input_line if override is not None else key
    if key == "task":
        value = override.value() if override is not None else None
        name = value if isinstance(value, str) else "SciFact"
        return ConfigError(f"there is no key <{typed}>; the task list is tasks, e.g. tasks=[{name}]")
    if key.startswith("model."):
        knob = key.split(".")[1]
        choice, knobs = _model_knobs(line, model)
        return ConfigError(f"model {choice} has no knob <model.{knob}>; its knobs are: {', '.join(sorted(knobs))}")
    root_keys = sorted(set(_read_eval_yaml()) - {"defaults"})
    if "." not in key:
        close = difflib.get_close_matches(key, root_keys + _groups(), n=3)
        hint = f"did you mean {', '.join(close)}? " if close else ""
        return ConfigError(f"unknown config key <{key}>; {hint}known keys: {', '.join(root_keys)}")
    return ConfigError(
        f"there is no key <{typed}> in the config; check its spelling (nvembed-eval --cfg job shows all)"
    )


def _model_knobs(line: CommandLine | None, model: Mapping[str, Any] | None) -> tuple[str, list[str]]:
    """The chosen model config's name (composed again without the offending overrides) and its adapter's knobs."""
    kept = [o for o in (line.overrides if line else []) if not o.key_or_group.lstrip("+~").startswith("model.")]
    full = compose(CommandLine(overrides=kept, config_dirs=line.config_dirs if line else []))
    target = (model if model is not None else full.model).get("_target_")
    return str(full.hydra.runtime.choices.get("model")), list(inspect.signature(_adapter(str(target))).parameters)


def _read_eval_yaml() -> dict[str, Any]:
    import yaml

    return yaml.safe_load((conf_dir() / f"{CONFIG_NAME}.yaml").read_text(encoding="utf-8")) or {}


def _default_choice(group: str) -> str | None:
    for item in _read_eval_yaml().get("defaults", []):
        if isinstance(item, dict) and group in item:
            return item[group]
    return None


def _groups() -> list[str]:
    return sorted(p.name for p in conf_dir().iterdir() if p.is_dir() and any(p.glob("*.yaml")) and p.name != "task")


def _group_options(group: str, line: CommandLine | None) -> list[str]:
    folders = [*(line.config_dirs if line else []), conf_dir()]
    return sorted({p.stem for folder in folders for p in (folder / group).glob("*.yaml")})


def _show(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, frozenset | set):
        value = sorted(value)
    text = str(list(value) if isinstance(value, tuple) else value)
    return text if len(text) <= 60 else text[:57] + "..."
