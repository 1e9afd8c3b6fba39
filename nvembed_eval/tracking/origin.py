"""What a set of scores is of: the model (run.json, model_meta.json, mteb's `<model>/<revision>/` results path) and the
benchmark (run.json), read from a results folder's own records; and Hydra's per-job overrides of a sweep.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from nvembed_eval.errors import ResultsError
from nvembed_eval.tracking.leaderboard import Benchmark

RUN_FILE = "run.json"
MODEL_META_FILE = "model_meta.json"
HYDRA_CONFIG = Path(".hydra") / "config.yaml"
HYDRA_OVERRIDES = Path(".hydra") / "overrides.yaml"
# Overrides that never change a score: where outputs go, and Hydra's own settings.
IGNORED_OVERRIDE_KEYS = ("output_dir", "hydra.", "hydra/")


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ResultsError(f"malformed {path} ({exc.msg} at line {exc.lineno}); fix or remove it") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ResultsError(f"cannot read {path} ({exc}); fix or remove it") from None
    return data if isinstance(data, dict) else {}


def _read_yaml(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError:
        raise ResultsError(f"malformed {path}; fix or delete the job folder") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ResultsError(f"cannot read {path} ({exc}); fix or delete the job folder") from None


def read_run_info(root: Path) -> dict[str, Any]:
    """The harness's record of the run that wrote `root` (the run folder or its `results/`).

    Returns:
        run.json as a dict; for a folder without run.json but with Hydra's `.hydra/config.yaml` (a sweep job that has
        not started writing), `{"config": <that config>}`; else {}.

    Raises:
        ResultsError: run.json or config.yaml is malformed.
    """
    for folder in (root, root.parent):
        if (folder / RUN_FILE).is_file():
            return _read_json(folder / RUN_FILE)
    if (root / HYDRA_CONFIG).is_file():
        config = _read_yaml(root / HYDRA_CONFIG)
        return {"config": config} if isinstance(config, dict) else {}
    return {}


def benchmark_of(run_info: dict[str, Any], where: Path) -> Benchmark | None:
    """The benchmark a run evaluated, from its run.json; None when it records none (mteb folders, tables).

    Read in this order: the top-level `"benchmark": {"name", "tasks"}` the runner records; `config.tasks` (an ad-hoc
    list, which then is the benchmark); `config.benchmark.tasks` (and `.name`).

    Raises:
        ResultsError: the record exists but is not a list of task names.
    """
    config = run_info.get("config") if isinstance(run_info.get("config"), dict) else {}
    bench = config.get("benchmark") if isinstance(config.get("benchmark"), dict) else {}
    candidates = (
        (run_info.get("benchmark"), "run.json benchmark"),
        ({"name": "tasks", "tasks": config.get("tasks")}, "run.json config.tasks"),
        (bench, "run.json config.benchmark"),
    )
    for record, source in candidates:
        if not isinstance(record, dict) or not record.get("tasks"):
            continue
        tasks = record["tasks"]
        if not isinstance(tasks, list) or not all(isinstance(t, str) and t for t in tasks):
            raise ResultsError(f"{where}: {source}.tasks is not a list of task names; fix or remove the file")
        return Benchmark(str(record.get("name") or "tasks"), tuple(dict.fromkeys(tasks)), source)
    return None


def canonical_model(name: str) -> str:
    """A model name for comparing: case-insensitive as hub repo ids are; mteb's folder form `org__name` = `org/name`."""
    return name.strip().replace("__", "/").lower()


def model_of(root: Path, files: list[Path], run_info: dict[str, Any]) -> tuple[str | None, str]:
    """The model whose results are under `root`, and where that was read.

    Args:
        root: the folder given by the user.
        files: the TaskResult JSONs found under it.
        run_info: what `read_run_info(root)` returned.

    Returns:
        (name, source): from run.json `model.name` (or `config.model.name`), else model_meta.json `name`, else mteb's
        results layout `<org>__<name>/<revision>/<Task>.json`; (None, "unknown") when nothing says.

    Raises:
        ResultsError: the files sit under several mteb model folders.
    """
    model = run_info.get("model") if isinstance(run_info.get("model"), dict) else {}
    config = run_info.get("config") if isinstance(run_info.get("config"), dict) else {}
    config_model = config.get("model") if isinstance(config.get("model"), dict) else {}
    for value, source in ((model.get("name"), "run.json"), (config_model.get("name"), "run.json config")):
        if isinstance(value, str) and value.strip():
            return value.strip(), source
    for folder in (root, root.parent):
        if (folder / MODEL_META_FILE).is_file():
            name = _read_json(folder / MODEL_META_FILE).get("name")
            if isinstance(name, str) and name.strip():
                return name.strip(), str(folder / MODEL_META_FILE)
    # mteb's cache writes results/<org>__<name>/<revision>/<Task>.json (its model_meta.json may be bare).
    folders = {f.parent.parent for f in files if "__" in f.parent.parent.name}
    if len(folders) > 1:
        names = ", ".join(sorted(f.name for f in folders))
        raise ResultsError(f"{root} holds results of several models ({names}); point at one model's folder")
    if folders:
        folder = folders.pop()
        return folder.name.replace("__", "/", 1), f"mteb results path {folder.name}/<revision>/"
    return None, "unknown"


def job_overrides(job: Path) -> list[str]:
    """A sweep job's Hydra overrides (`<job>/.hydra/overrides.yaml`), e.g. `["model.pooling=mean"]`.

    Raises:
        ResultsError: the file is malformed or not a list.
    """
    path = job / HYDRA_OVERRIDES
    overrides = _read_yaml(path) or []
    if not isinstance(overrides, list):
        raise ResultsError(f"{path} is not a list of overrides; fix or delete the job folder")
    return [str(o) for o in overrides]


def meaningful(overrides: list[str]) -> list[str]:
    """Overrides minus those that cannot change a score (output_dir, hydra settings)."""
    return [o for o in overrides if not o.lstrip("+~").startswith(IGNORED_OVERRIDE_KEYS)]
