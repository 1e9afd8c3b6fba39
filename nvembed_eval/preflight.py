"""Checks that run before Hydra composes the config: the installed torch, then the command-line overrides.

Hydra's own errors for a wrong group choice or knob are multi-line; users sweeping from the command line get one line
naming the value and the valid choices instead. Anything this module does not recognise is left to Hydra.
"""

from __future__ import annotations

import difflib
import importlib.metadata
import os
import re
import tempfile
from pathlib import Path

import yaml

from nvembed_eval.errors import ConfigError

# transformers 5 turns its PyTorch support off below this release (a strict comparison, so "2.6.0a0+git..."
# counts as older), after which every model import fails with an unrelated-looking NameError deep inside it.
MIN_TORCH = "2.6.0"

_SWEEP_SYNTAX = re.compile(r"^\s*(choice|range|interval|glob|tag|sort|shuffle)\(")
_REQUIRED_GROUPS = ("model", "benchmark", "instructions", "cache", "paths")  # a run cannot do without them
_NO_RUN_FLAGS = {"--help", "-h", "--hydra-help", "--version", "-c", "-i", "--shell-completion", "-sc"}
_HYDRA_FLAGS_WITH_VALUE = {"--config-name", "-cn", "--config-path", "-cp", "--config-dir", "-cd", "--info", "-i"}


def _groups(conf_dir: Path) -> dict[str, list[str]]:
    """Config group -> available option names (yaml stems), e.g. {"model": ["minilm", ...], "hydra/launcher": [...]}."""
    groups: dict[str, list[str]] = {}
    for folder in sorted(p for p in conf_dir.rglob("*") if p.is_dir()):
        options = sorted(p.stem for p in folder.glob("*.yaml"))
        if options:
            groups[folder.relative_to(conf_dir).as_posix()] = options
    return groups


def _values(raw: str) -> list[str]:
    """Sweep values of one override (`a,b` -> [a, b]); sweep functions are left to Hydra."""
    if _SWEEP_SYNTAX.match(raw) or raw.startswith("["):
        return []
    return [v.strip() for v in raw.split(",") if v.strip()]


def _read_yaml(path: Path) -> dict:
    with path.open(encoding="utf-8") as handle:
        return yaml.safe_load(handle) or {}


def _default_choice(conf_dir: Path, group: str) -> str | None:
    for item in _read_yaml(conf_dir / "eval.yaml").get("defaults", []):
        if isinstance(item, dict) and group in item:
            return item[group]
    return None


def _experiment_model(conf_dir: Path, experiment: str) -> str | None:
    for item in _read_yaml(conf_dir / "experiment" / f"{experiment}.yaml").get("defaults", []):
        if isinstance(item, dict):
            for key, value in item.items():
                if key.replace("override ", "").strip().lstrip("/") == "model":
                    return value
    return None


def check_torch(installed: str | None = None) -> None:
    """Raise `ConfigError` when the installed torch is older than transformers 5 accepts."""
    from packaging.version import InvalidVersion, Version

    if installed is None:
        try:
            installed = importlib.metadata.version("torch")
        except importlib.metadata.PackageNotFoundError:
            raise ConfigError(
                "torch is not installed; run: pip install torch (CPU: pip install torch==2.13.0)"
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


def check_overrides(args: list[str], conf_dir: Path) -> None:
    """Raise `ConfigError` for an unknown group option or an unknown `model.<knob>`."""
    groups = _groups(conf_dir)
    root_keys = set(_read_yaml(conf_dir / "eval.yaml")) - {"defaults"}
    overrides: list[tuple[str, str]] = []
    skip_next = False
    for arg in args:
        if skip_next:
            skip_next = False
            continue
        if arg in _HYDRA_FLAGS_WITH_VALUE:
            skip_next = True
            continue
        if arg.startswith("-") or "=" not in arg:
            continue
        key, raw = arg.split("=", 1)
        overrides.append((key.lstrip("+~").removeprefix("override ").strip(), raw))

    chosen_models: list[str] = []
    experiment_models: list[str] = []
    for key, raw in overrides:
        if key in groups:
            for value in _values(raw):
                if value == "null" and key in _REQUIRED_GROUPS:
                    raise ConfigError(f"<{key}=null> needs a {key} config; choose one of: {', '.join(groups[key])}")
                if value not in groups[key] and value != "null":
                    close = difflib.get_close_matches(value, groups[key], n=3)
                    hint = f"did you mean {', '.join(close)}? " if close else ""
                    raise ConfigError(
                        f"unknown {key} config <{key}={value}>; {hint}choose one of: {', '.join(groups[key])}"
                    )
            if key == "model":
                chosen_models = _values(raw)
            if key == "experiment":
                experiment_models = [m for v in _values(raw) if v != "null" and (m := _experiment_model(conf_dir, v))]
        elif "." not in key and not key.startswith("hydra") and key not in root_keys and not arg_is_append(args, key):
            close = difflib.get_close_matches(key, sorted(root_keys | set(groups)), n=3)
            hint = f"did you mean {', '.join(close)}? " if close else ""
            raise ConfigError(f"unknown config key <{key}>; {hint}known keys: {', '.join(sorted(root_keys))}")

    models = chosen_models or experiment_models or [_default_choice(conf_dir, "model") or ""]
    for key, _raw in overrides:
        if not key.startswith("model."):
            continue
        knob = key.split(".", 1)[1].split(".")[0]
        for model in models:
            knobs = sorted(k for k in _read_yaml(conf_dir / "model" / f"{model}.yaml") if not k.startswith("_"))
            if knob not in knobs:
                raise ConfigError(f"model {model} has no knob <model.{knob}>; its knobs are: {', '.join(knobs)}")


def check_output_dir(args: list[str]) -> None:
    """Refuse an `output_dir` that cannot be created before Hydra creates it (Hydra's own failure is a traceback).

    Checks the folder given with `output_dir=...` (without interpolations), else the default root
    (`$NVEMBED_EVAL_ROOT/outputs`, or `./outputs`): its nearest existing ancestor must be a writable folder.

    Raises:
        ConfigError: the path lies under a regular file, or the folder it would be created in is not writable.
    """
    if any(a in _NO_RUN_FLAGS or a.startswith(("--cfg", "--info")) for a in args):
        return  # help, config printing and shell completion write nothing
    given = [a.split("=", 1)[1] for a in args if a.split("=", 1)[0].lstrip("+") == "output_dir" and "=" in a]
    values = [v for raw in given for v in _values(raw)] if given else []
    if not values:
        values = [str(Path(os.environ.get("NVEMBED_EVAL_ROOT", ".")) / "outputs")]
        key = "output_dir (default)"
    else:
        key = "output_dir"
    for value in values:
        if "${" in value:
            continue
        path = Path(value).expanduser().absolute()
        existing = next(p for p in (path, *path.parents) if p.exists())
        if not existing.is_dir():
            raise ConfigError(f"<{key}={value}> lies under the regular file {existing}; choose a folder path")
        try:  # a real probe: permissions alone miss read-only filesystems and root's rights
            os.rmdir(tempfile.mkdtemp(prefix=".nvembed-eval-probe-", dir=existing))
        except OSError as exc:
            raise ConfigError(
                f"<{key}={value}>: cannot create folders in {existing} ({exc.strerror}); choose another output_dir"
            ) from None


def arg_is_append(args: list[str], key: str) -> bool:
    """`+key=value` deliberately adds a key; Hydra handles it."""
    return any(a.startswith(f"+{key}=") or a.startswith(f"++{key}=") for a in args)
