"""A run's settings: the command line read with Hydra's own grammar, the config composed once with Hydra's compose
API, validated once against one schema, and every mistake turned into one line naming the value and what is valid.

Why pydantic rather than Hydra structured configs: these one-line messages are the harness's contract
(docs/bad_input.md), and OmegaConf's are multi-line and coerce ("1" becomes 1); pydantic validates without coercing,
reports each error with its key path and input, and checks a model family's knobs against its adapter's own
constructor signature (config keys = constructor parameters), so no adapter re-checks its arguments.
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

from nvembed_eval.errors import ConfigError, first_line
from nvembed_eval.io import SIZE_EXAMPLES, conf_dir, names_a_path, nearest_existing, parse_size

if TYPE_CHECKING:
    from omegaconf import DictConfig

CONFIG_NAME = "eval"
# transformers 5 turns its PyTorch support off below this release (a strict comparison, so "2.6.0a0+git..."
# counts as older), after which every model import fails with an unrelated-looking NameError deep inside it.
MIN_TORCH = "2.6.0"
# Variables naming folders this harness reads or writes: set but empty, each would mean the current folder (or,
# joined with a path, the filesystem's root), so an empty one is refused rather than read as a place.
PATH_VARIABLES = ("NVEMBED_EVAL_CACHE", "NVEMBED_EVAL_ROOT", "NVEMBED_EVAL_CONF", "NVEMBED_EVAL_DIGESTS")
PATH_VARIABLES += ("NVEMBED_TINY_CHECKPOINT", "NVEMBED_SHARED", "HF_HOME", "MTEB_CACHE")
COMPOSED = {"count": 0}  # configs this process composed (a test checks that a run composes once)

# ------------------------------------------------------------------------------------------------ command line

# Hydra's flags (hydra/_internal/utils.py get_args_parser): those taking a value, those after which nothing runs
# (help, config printing, shell completion), and the modes `--info` may take.
_FLAGS_WITH_VALUE = {"--config-name", "-cn", "--config-path", "-cp", "--config-dir", "-cd", "--cfg", "-c", "-p"}
NO_RUN_FLAGS = {"--help", "-h", "--hydra-help", "--version", "--info", "-i", "--shell-completion", "-sc", "--cfg", "-c"}
_HELP_FLAGS = {"--help", "-h", "--hydra-help", "--version", "--shell-completion", "-sc"}
_INFO_MODES = {"all", "config", "defaults", "defaults-tree", "plugins", "searchpath"}
_PLAIN_VALUE = re.compile(r"^[\w\-+./:@~%*$]+$")  # needs no quoting in Hydra's override grammar


@dataclass
class CommandLine:
    """A command line split into Hydra's flags and the parsed overrides (hydra's `Override` objects)."""

    overrides: list[Any] = field(default_factory=list)
    dir_flags: list[Path] = field(default_factory=list)  # --config-dir folders
    config_dirs: list[Path] = field(default_factory=list)  # those and the hydra.searchpath folders
    multirun: bool = False
    no_run: bool = False  # help, --cfg, --info, shell completion: nothing is evaluated or written
    help_only: bool = False  # help, version, shell completion: the overrides are not even composed
    flags: list[str] = field(default_factory=list)  # flags other than -m and --config-dir

    @property
    def plain(self) -> bool:
        """A single run made of overrides only: composed here, not by `@hydra.main`."""
        searchpath = self.given("hydra.searchpath") is not None
        return not (self.multirun or self.no_run or self.flags or (searchpath and self.dir_flags))

    @property
    def texts(self) -> list[str]:
        """The overrides as typed, with `--config-dir` folders as a `hydra.searchpath` override."""
        return [o.input_line for o in self.overrides] + (
            [search_path_override(self.dir_flags)] if self.dir_flags else []
        )

    def given(self, key: str) -> Any | None:
        """The last override of `key`, or None."""
        return next((o for o in reversed(self.overrides) if o.key_or_group == key), None)


def parse_command_line(args: Sequence[str]) -> CommandLine:
    """Split `args` into Hydra's flags and overrides, each parsed with Hydra's own grammar; `plan=true` is read as
    `plan.enabled=true` (Hydra would replace the whole `plan:` block with a bool).

    Raises:
        ConfigError: an empty path variable; a config folder that is not one; an override Hydra cannot read (one
            line, with how to quote it); a `plan` value that is not true/false; a plan of a sweep.
    """
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    empty = next((name for name in PATH_VARIABLES if name in os.environ and not os.environ[name].strip()), None)
    if empty:
        raise ConfigError(f"<{empty}=> is empty; set it to a folder, or unset it for the default")
    if _HELP_FLAGS.intersection(args):  # `-sc install=bash` and completion queries carry half-typed overrides
        return CommandLine(no_run=True, help_only=True, flags=sorted(_HELP_FLAGS.intersection(args)))
    parser, line, queue = OverridesParser.create(), CommandLine(), list(args)
    while queue:
        arg = queue.pop(0)
        if arg.startswith("-"):
            flag, has_inline, value = arg.partition("=") if arg.startswith("--") else (arg, "", "")
            line.no_run |= flag in NO_RUN_FLAGS
            line.multirun |= flag in ("--multirun", "-m")
            if flag not in ("--config-dir", "-cd", "--run", "-r", "--multirun", "-m"):
                line.flags.append(flag)
            info_mode = flag in ("--info", "-i") and queue[:1] and queue[0] in _INFO_MODES
            if not has_inline and (flag in _FLAGS_WITH_VALUE | {"--package"} or info_mode):
                value = queue.pop(0) if queue else ""
            if flag in ("--config-dir", "-cd"):
                if not value.strip():  # Hydra would skip it without a word
                    raise ConfigError(f"<{flag} {value}> is empty; give the folder of your own configs")
                line.dir_flags.append(Path(value).expanduser())
            continue
        key, sep, value = arg.partition("=")
        if sep and key in ("plan", "plan.enabled"):
            if value.lower() not in ("true", "false"):
                raise ConfigError(f"<{key}={value}> must be true or false")
            arg = f"plan.enabled={value.lower()}"
        try:
            override = parser.parse_override(arg)
        except HydraException as exc:
            raise ConfigError(
                f"cannot read the override <{arg}> ({first_line(exc)}); quote values with spaces, commas or "
                """parentheses, e.g. 'benchmark.name="MTEB(eng, v2)"'"""
            ) from None
        if override.key_or_group == "hydra.searchpath" and isinstance(override.value(), list):
            entries = [str(v) for v in override.value() if not str(v).startswith("pkg://")]
            line.config_dirs += [Path(e.removeprefix("file://")).expanduser() for e in entries]
        line.overrides.append(override)
    line.config_dirs = [*line.dir_flags, *line.config_dirs]
    if missing := next((d for d in line.config_dirs if not d.is_dir()), None):  # Hydra would skip it without a word
        raise ConfigError(f"the config folder {missing} (--config-dir, hydra.searchpath) is not a folder; fix the path")
    if line.multirun and any(o.key_or_group == "plan.enabled" and o.value() is True for o in line.overrides):
        raise ConfigError("plan=true plans one run; drop -m and plan each job's overrides on their own")
    return line


def hydra_value(value: Any) -> str:
    """One value in Hydra's override grammar (strings Hydra would misread are quoted)."""
    if value is None or isinstance(value, bool):
        return {None: "null", True: "true", False: "false"}[value]
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list | tuple):
        return "[" + ",".join(hydra_value(v) for v in value) + "]"
    text = str(value)
    return text if _PLAIN_VALUE.match(text) else "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def to_overrides(overrides: Sequence[str] | Mapping[str, Any] | None) -> list[str]:
    """Hydra override strings from a list (used as given) or a mapping (`{"tasks": ["SciFact"], "batch_size": 64}`;
    nested mappings become dotted keys).

    Raises:
        ConfigError: `overrides` is a single string or another type.
    """

    def flatten(mapping: Mapping[str, Any], prefix: str = "") -> list[str]:
        out = []
        for key, value in mapping.items():
            nested = isinstance(value, Mapping)
            out += flatten(value, f"{prefix}{key}.") if nested else [f"{prefix}{key}={hydra_value(value)}"]
        return out

    if overrides is None or isinstance(overrides, Mapping):
        return flatten(overrides or {})
    listed = isinstance(overrides, Sequence) and not isinstance(overrides, str)
    if not listed or not all(isinstance(o, str) for o in overrides):
        raise ConfigError(f"overrides={overrides!r} must be a list of 'key=value' strings or a dict")
    return list(overrides)


def search_path_override(config_dirs: Sequence[Path]) -> str:
    """`hydra.searchpath=[...]` adding the user's config folders (what `--config-dir` does on the command line)."""
    entries = ",".join(hydra_value(f"file://{Path(d).expanduser().absolute()}") for d in config_dirs)
    return f"hydra.searchpath=[{entries}]"


# --------------------------------------------------------------------------------------------------- composing


def compose(line: CommandLine) -> DictConfig:
    """The config `nvembed-eval` runs with these overrides, Hydra's `hydra` node included; nothing is written.

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
    """A composed config split into the job's config, the `hydra` node (`runtime.output_dir` set, as Hydra sets it
    for a job) and the absolute run folder."""
    from omegaconf import open_dict, read_write

    run_dir = Path(str(full.hydra.run.dir)).expanduser().absolute()  # ${output_dir} unless hydra.run.dir= is given
    hydra_cfg, cfg = copy.deepcopy(full).hydra, copy.deepcopy(full)
    with read_write(hydra_cfg), open_dict(hydra_cfg), read_write(cfg), open_dict(cfg):
        hydra_cfg.runtime.output_dir = str(run_dir)
        del cfg["hydra"]
    return cfg, hydra_cfg, run_dir


def check_sweep(line: CommandLine, limit: int = 64) -> None:
    """`-m`: compose and validate every swept value before the first job runs (Hydra would run the good jobs, then
    fail the bad one): each value once, the other swept keys at their first value. Range and glob sweeps, which Hydra
    expands itself, are left to each job's own check.

    Raises:
        ConfigError: the first value a single run would refuse.
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
    if not all(options):
        return
    first = [v[0] for v in options]
    combos = [[*first[:at], value, *first[at + 1 :]] for at, choices in enumerate(options) for value in choices[1:]]
    for combo in [first, *combos][:limit]:
        single = parse_command_line([f"{k}={v}" for k, v in zip(keys, combo, strict=True)])
        single.dir_flags = single.config_dirs = line.dir_flags
        validate(job_config(compose(single))[0], single)


def check_torch(installed: str | None = None) -> None:
    """Raise `ConfigError` when the installed torch is missing or older than transformers 5 accepts."""
    from packaging.version import InvalidVersion, Version

    try:
        installed = installed or importlib.metadata.version("torch")
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
    """Refuse a run folder that cannot be created, before anything creates it (`check_creatable`).

    Raises:
        ConfigError: a link that leads nowhere (or in a loop), a path under a regular file, or a folder it would be
            created in that is not writable.
    """
    if not value.strip():  # Path("") is the current folder: the run would write its records among the user's files
        raise ConfigError(f"<{key}={value}> is empty; give a folder, or leave {key} out for the default")
    if "${" not in value:
        check_creatable(Path(value).expanduser().absolute(), f"<{key}={value}>", f"choose another {key}")


def check_creatable(path: Path, what: str, fix: str) -> None:
    """Refuse the absolute folder `path` when it cannot be created or written: its nearest existing ancestor must be a
    writable folder (probed for real: permissions alone miss read-only filesystems and root's rights). `what`: how the
    message names it; `fix`: what to do instead, e.g. "set HF_HOME".

    Raises:
        ConfigError: as `check_output_dir`.
    """
    if path.is_symlink() and not path.exists():
        raise ConfigError(f"{what} is a symbolic link that leads nowhere (or in a loop); {fix}")
    existing = nearest_existing(path)
    if not existing.is_dir():
        kind = "regular file" if existing.is_file() else "device"  # e.g. NVEMBED_EVAL_CACHE=/dev/null
        raise ConfigError(f"{what} lies under the {kind} {existing}; {fix}")
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".nvembed-eval-probe-", dir=existing))
    except OSError as exc:
        raise ConfigError(f"{what}: cannot create folders in {existing} ({exc.strerror}); {fix}") from None


def check_outside_folders(settings: RunSettings) -> None:
    """The folders a run writes outside its run folder, checked before the first import that creates them: mteb's
    cache (created when mteb is imported) and the embedding cache. A HOME that is a file or read-only fails here in
    one line naming the variable to set, not in a traceback from deep inside mteb.

    Raises:
        ConfigError: one of them cannot be created.
    """
    mteb = Path(os.environ.get("MTEB_CACHE") or "~/.cache/mteb").expanduser().absolute()  # mteb's ResultCache default
    check_creatable(mteb, f"mteb's cache folder {mteb}", "set MTEB_CACHE (or HOME) to a writable folder")
    if settings.cache.enabled:
        cache = Path(settings.cache.dir)
        fix = "set NVEMBED_EVAL_CACHE (or HOME) to a writable folder, give cache.dir=<folder>, or use cache=off"
        check_creatable(cache, f"the embedding cache {cache}", fix)


def check_sweep_output_dirs(line: CommandLine) -> Path:
    """`-m`: every `hydra.sweep.dir` or `output_dir` value (or the default root) must be creatable before Hydra makes
    the sweep folder. Returns the nearest existing folder of the sweep's root (of the default root for a swept one):
    the folders Hydra makes below it for a job that is refused are removed again."""
    key = "hydra.sweep.dir" if line.given("hydra.sweep.dir") is not None else "output_dir"
    given, default = line.given(key), Path(os.environ.get("NVEMBED_EVAL_ROOT", ".")) / "outputs"
    if given is None:
        check_output_dir(str(default), "output_dir (default)")
        return nearest_existing(default.expanduser().absolute())
    swept = given.is_sweep_override()
    for value in given.sweep_string_iterator() if swept else [str(given.value())]:
        check_output_dir(value, key)
    return nearest_existing((default if swept else Path(str(given.value()))).expanduser().absolute())


# ------------------------------------------------------------------------------------------------------ schema


def _rule(check: Callable[[Any], bool], message: str) -> PlainValidator:
    """A validator accepting `v` when `check(v)`, else failing with `message` (shown by `config_error`)."""

    def validate(value: Any) -> Any:
        if check(value):
            return value
        raise PydanticCustomError("setting", message)

    return PlainValidator(validate)


def _choice(*values: str) -> Any:
    return Annotated[str, _rule(lambda v: v in values, f"is not one of: {', '.join(values)}")]


def _within(low: float, high: float) -> Any:
    def ok(v: Any) -> bool:
        return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) and low <= v <= high

    return Annotated[float, _rule(ok, f"must be a positive number, from {low:g} to {high:g}")]


Bool = Annotated[bool, _rule(lambda v: isinstance(v, bool), "must be true or false")]
MAX_COUNT = 2**31 - 1  # torch and mteb take sizes and counts as C integers; past this they fail mid-run


def _count(value: Any) -> int:
    if type(value) is not int or value <= 0:
        raise PydanticCustomError("setting", "must be a positive integer, e.g. 32")
    if value > MAX_COUNT:
        raise PydanticCustomError("setting", f"is more than {MAX_COUNT}; use a smaller number")
    return value


Count = Annotated[int, PlainValidator(_count)]
Text = Annotated[
    str, _rule(lambda v: isinstance(v, str) and bool(v.strip()), "must be text (a name, path or revision)")
]
Folder = Annotated[str, _rule(lambda v: isinstance(v, str) and bool(v.strip()), "must be a folder path or null")]
_DEVICE, _NOT_DEVICE = re.compile(r"auto|cpu|cuda|cuda:\d+|mps"), "is not a device; use auto, cpu, cuda, cuda:N or mps"
Device = Annotated[str, _rule(lambda v: bool(_DEVICE.fullmatch(str(v))), _NOT_DEVICE)]


def _task_names(value: Any) -> tuple[str, ...] | None:
    """`tasks`: null, one name (`tasks=SciFact`) or a list of names (`tasks=[SciFact,NFCorpus]`)."""
    if value is None:
        return None
    if value == []:  # not "every task": a list made empty by mistake must not run the whole benchmark
        raise PydanticCustomError("setting", "names no task; name some, e.g. tasks=[SciFact], or leave tasks out")
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
    """`plan:`: the dry run's switch and the figures of its cost estimate (docs/plan.md)."""

    enabled: Bool = False
    tokens_per_second: _within(1e-3, 1e9) = 32898.0
    gpus: Count = 1
    chars_per_token: _within(0.1, 100.0) = 4.0


class CacheSettings(_Section):
    """`cache=`: the embedding cache (docs/cache.md); `max_size` in bytes, None for no cap."""

    enabled: Bool
    dir: Folder
    shard_size: Count
    max_size: Annotated[int | None, PlainValidator(_max_size)] = None


class BenchmarkSettings(_Section):
    """`benchmark=`: a task list of this harness (`tasks:`), or mteb's benchmark `name:` (`benchmark=mteb`)."""

    name: str | None = None
    tasks: tuple[str, ...] = ()


class InstructionSettings(_Section):
    variant: _choice("nv_embed_v2", "none", "mteb_default")


class PathSettings(_Section):
    root_dir: Folder
    output_root: Folder
    published_dir: Folder | None = None


class RunSettings(_Section):
    """The checked settings of one run: conf/eval.yaml's keys and groups (`validate`)."""

    tasks: Annotated[tuple[str, ...] | None, PlainValidator(_task_names)] = None
    data_dir: Folder | None = None
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


def validate(
    cfg: DictConfig | Mapping[str, Any], line: CommandLine | None = None, cwd: str | Path | None = None
) -> RunSettings:
    """Check a composed config (no `hydra` node) against the schema, model knobs included, in one pass, and make its
    paths absolute against `cwd`: the folder the user typed them in (Hydra's `runtime.cwd`, whatever
    `hydra.job.chdir` did since; default: the current folder). `line`: the command line, for messages that quote it.

    Raises:
        ConfigError: the first invalid value, in one line (`<key=value>` and what is valid).
    """
    from omegaconf import DictConfig, OmegaConf

    try:
        plain = OmegaConf.to_container(cfg, resolve=True) if isinstance(cfg, DictConfig) else dict(cfg)
    except Exception as exc:  # an interpolation that cannot be resolved, e.g. ${oc.env:HOME} without HOME
        raise config_error(exc, line) from None
    for group in ("model", "benchmark", "instructions", "cache"):
        if not isinstance(plain.get(group), Mapping):
            raise ConfigError(f"<{group}={_show(plain.get(group))}> needs a {group} config; pick one of conf/{group}/")
    if plain["benchmark"].get("name") == "???":  # Hydra's mandatory value, left unset (benchmark=mteb)
        plain["benchmark"]["name"] = None
    try:
        settings = RunSettings.model_validate(plain)
    except ValidationError as exc:
        raise config_error(exc, line) from None
    check_model(settings.model, line)
    settings = _absolute_paths(settings, Path(cwd or Path.cwd()))
    if not (settings.tasks or settings.benchmark.tasks or settings.benchmark.name):
        raise ConfigError(
            """benchmark=mteb needs the mteb benchmark's name, e.g. 'benchmark.name="MTEB(eng, v2)"' """
            "(nvembed-eval-list benchmarks --all lists them)"
        )
    return settings


def _absolute_paths(settings: RunSettings, cwd: Path) -> RunSettings:
    """Settings whose folders are absolute against `cwd`. `model.path` and `reference` may also name a hub model or
    a shipped table, so they change only when they exist as a path below `cwd`."""

    def folder(value: str | None) -> str | None:
        return None if value is None else str(cwd / Path(value).expanduser())  # an absolute value stays as it is

    def if_there(value: Any) -> Any:
        path = cwd / Path(value).expanduser() if isinstance(value, str) and value else None
        return str(path) if path is not None and path.exists() else value

    model = {**settings.model, "path": if_there(settings.model["path"])} if "path" in settings.model else None
    paths = settings.paths
    return settings.model_copy(
        update={
            "data_dir": folder(settings.data_dir),
            "output_dir": folder(settings.output_dir),
            "reference": if_there(settings.reference) if names_a_path(settings.reference or "") else settings.reference,
            "model": model or settings.model,
            "cache": settings.cache.model_copy(update={"dir": folder(settings.cache.dir)}),
            "paths": paths.model_copy(
                update={k: folder(getattr(paths, k)) for k in ("root_dir", "output_root", "published_dir")}
            ),
        }
    )


def check_model(model: Mapping[str, Any], line: CommandLine | None = None) -> None:
    """Check model knobs against the signature of the adapter named by `_target_`: each knob is a parameter, and its
    value has the parameter's type (bool: true/false; int: a positive integer; str: text; a Literal or enum: one of
    its values; `| None`: or null). Only the adapter's module is imported (no torch, no mteb).

    Raises:
        ConfigError: an unknown knob, a value of the wrong kind, or a `_target_` that cannot be imported.
    """
    adapter = model_class(model)
    hints = typing.get_type_hints(adapter.__init__)
    fields = {
        name: (_knob_type(hints.get(name, Any)), ... if p.default is p.empty else p.default)
        for name, p in inspect.signature(adapter).parameters.items()
        if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)
    }
    schema = create_model(adapter.__name__ + "Knobs", __config__=ConfigDict(extra="forbid"), **fields)
    try:
        schema.model_validate({k: v for k, v in model.items() if k != "_target_"})
    except ValidationError as exc:
        raise config_error(exc, line, prefix="model.", model=model) from None


def model_class(model: Mapping[str, Any]) -> type:
    """The adapter class named by a model config's `_target_`.

    Raises:
        ConfigError: it cannot be imported.
    """
    target = str(model.get("_target_") or "")
    module, _, name = target.rpartition(".")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError, ValueError):
        raise ConfigError(f"cannot import the model class <model._target_={target}>; fix the model YAML") from None


def _knob_type(hint: Any) -> Any:
    """The validator of a constructor parameter's type hint (`check_model`); `Any` for hints it does not know."""
    args = typing.get_args(hint)
    if typing.get_origin(hint) in (typing.Union, types.UnionType) and type(None) in args:
        inner = [a for a in args if a is not type(None)]
        kind = _knob_type(inner[0]) if len(inner) == 1 else Any
        if kind is Any:
            return Any
        check = typing.get_args(kind)[1].func  # the inner kind's PlainValidator

        def nullable(value: Any) -> Any:
            try:
                return None if value is None else check(value)
            except PydanticCustomError as exc:
                message = exc.message()
                head = message.split(", e.g.")[0]
                raise PydanticCustomError("setting", head + " or null" + message[len(head) :]) from None

        return Annotated[Any, PlainValidator(nullable)]
    if hint is bool or hint is int or hint is str:
        return {bool: Bool, int: Count, str: Text}[hint]
    if typing.get_origin(hint) is Literal:
        return _choice(*map(str, args))
    if isinstance(hint, type) and issubclass(hint, Enum):
        return _choice(*(str(m.value) for m in hint))
    return Any


# ---------------------------------------------------------------------------------------------------- messages


def config_error(
    exc: BaseException, line: CommandLine | None = None, *, prefix: str = "", model: Mapping[str, Any] | None = None
) -> ConfigError:
    """Any config error as the harness's one-line `ConfigError`: what is wrong, the value, what is valid. `exc`:
    Hydra's or OmegaConf's composition error, the ValueError of a null group choice, or pydantic's `ValidationError`;
    `line`: the command line, to quote the user's override and suggest close matches; `prefix`: the key path of the
    validated section ("model."); `model`: the model config whose knobs were checked."""
    from hydra.errors import MissingConfigException

    if isinstance(exc, ValidationError):
        error = exc.errors(include_url=False)[0]
        key = prefix + ".".join(str(p) for p in error["loc"])
        if error["type"] == "extra_forbidden":
            return _unknown_key(key, line, model) or ConfigError(
                f"<{key}> is no setting; remove it (--cfg job lists them)"
            )
        if error["type"] == "missing":
            return ConfigError(f"<{key}> is missing; give it a value (conf/eval.yaml has every key)")
        separator = " " if error["type"] == "setting" else ": "
        return ConfigError(f"<{key}={_show(error.get('input'))}>{separator}{error['msg']}")
    text = " ".join(str(exc).split()) or " ".join(str(exc.__cause__ or type(exc).__name__).split())
    overrides = line.overrides if line is not None else []
    if match := re.search(r"Environment variable '(\w+)' not found\W+full_key: (\S+)", text):
        variable, key = match.groups()
        return ConfigError(
            f"<{key}> is made from the environment variable {variable}, which is not set; set {variable}, or give "
            f"{key}=<value> (for the cache: NVEMBED_EVAL_CACHE=<folder>, or cache=off)"
        )
    if isinstance(exc, MissingConfigException) and "/" in (exc.missing_cfg_file or ""):
        group, _, value = exc.missing_cfg_file.rpartition("/")
        options = sorted(exc.options or [])
        close = difflib.get_close_matches(value, options, n=3)
        hint = f"did you mean {', '.join(close)}? " if close else ""
        return ConfigError(f"unknown {group} config <{group}={value}>; {hint}choose one of: {', '.join(options)}")
    if isinstance(exc, ValueError) and "Config group override" in text:  # `model=null`
        group = next((o.key_or_group for o in overrides if o.value() is None and "." not in o.key_or_group), "?")
        if _default_choice(group) in (None, "null"):
            return ConfigError(f"<{group}=null> is the default already; leave {group}= out")
        folders = [*(line.config_dirs if line else []), conf_dir()]
        options = ", ".join(sorted({p.stem for folder in folders for p in (folder / group).glob("*.yaml")}))
        return ConfigError(f"<{group}=null> needs a {group} config; pick one of conf/{group}/: {options}")
    if match := re.match(r"Could not override '([^']+)'", text):
        return _unknown_key(match.group(1), line, None) or ConfigError(f"cannot compose the config: {text[:300]}")
    if match := re.match(r"Ambiguous value for argument '([^']+)'", text):
        override = next((o for o in overrides if o.input_line == match.group(1)), None)
        key = match.group(1).split("=", 1)[0]
        values = ",".join(override.sweep_string_iterator()) if override is not None else "..."
        return ConfigError(
            f"<{match.group(1)}> gives several values: write {key}=[{values}] for a list, or add -m to sweep over them"
        )
    return ConfigError(f"cannot compose the config: {text[:300]}")


def _unknown_key(key: str, line: CommandLine | None, model: Mapping[str, Any] | None) -> ConfigError | None:
    """The message for a key the config does not have (`task=`, `model.<knob>`, a root key); None for another."""
    override = next((o for o in (line.overrides if line else []) if o.key_or_group.lstrip("+~") == key), None)
    if key == "task":
        value = override.value() if override is not None else None
        typed = override.input_line if override is not None else key
        name = value if isinstance(value, str) else "SciFact"
        return ConfigError(f"there is no key <{typed}>; the task list is tasks, e.g. tasks=[{name}]")
    if key.startswith("model."):  # the chosen model config, composed again without the offending overrides
        kept = [o for o in (line.overrides if line else []) if not o.key_or_group.lstrip("+~").startswith("model.")]
        full = compose(CommandLine(overrides=kept, dir_flags=line.dir_flags if line else []))
        knobs = sorted(inspect.signature(model_class(model or full.model)).parameters)
        choice = full.hydra.runtime.choices.get("model")
        return ConfigError(f"model {choice} has no knob <{key}>; its knobs are: {', '.join(knobs)}")
    if "." in key:
        return None
    root_keys = sorted(set(_eval_yaml()) - {"defaults"})
    groups = [p.name for p in conf_dir().iterdir() if p.is_dir() and p.name != "task"]
    close = difflib.get_close_matches(key, root_keys + groups, n=3)
    hint = f"did you mean {', '.join(close)}? " if close else ""
    return ConfigError(f"unknown config key <{key}>; {hint}known keys: {', '.join(root_keys)}")


def _eval_yaml() -> dict[str, Any]:
    import yaml

    return yaml.safe_load((conf_dir() / f"{CONFIG_NAME}.yaml").read_text(encoding="utf-8")) or {}


def _default_choice(group: str) -> str | None:
    return next(
        (item[group] for item in _eval_yaml().get("defaults", []) if isinstance(item, dict) and group in item), None
    )


def _show(value: Any) -> str:
    """A value as the messages show it: null, true/false, lists as lists, cut to 60 characters."""
    if value is None or isinstance(value, bool):
        return {None: "null", True: "true", False: "false"}[value]
    text = str(sorted(value) if isinstance(value, frozenset) else list(value) if isinstance(value, tuple) else value)
    return text if len(text) <= 60 else text[:57] + "..."
