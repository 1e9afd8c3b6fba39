"""Scores from any source (a harness run folder, an mteb results folder of any depth, one TaskResult JSON, a published
score table), what a folder's records say it is of (model, run, a sweep job's overrides), a result's per-item file."""

from __future__ import annotations

import csv
import dataclasses
import difflib
import hashlib
import io
import json
import logging
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from nvembed_eval.errors import ItemsUnavailable, NVEmbedEvalError, ResultsError
from nvembed_eval.io import READ_MAX_BYTES, check_regular_file, parse_json, read_bounded, read_text
from nvembed_eval.results.scores import (
    DEFAULT_BENCHMARK,
    PROVENANCE_KEY,
    ScoreSet,
    TaskScore,
    benchmark_of,
    metric_aliases,
    score_task_result,
)
from nvembed_eval.tasks.benchmarks import Benchmark
from nvembed_eval.tasks.specs import list_task_specs, load_task_spec

if TYPE_CHECKING:
    from mteb import TaskResult

# Folders of a harness run folder (next to its run.json) that hold no TaskResults: per-item data, mteb's predictions.
RUN_SIDE_FOLDERS = frozenset({"items", "predictions"})
MAX_DEPTH = 3  # <dir>/X.json, <run>/results/X.json, <cache>/results/<model>/<revision>/X.json
# What every reader of scores accepts, for the refusals of anything else.
ACCEPTED = "pass a run folder, an mteb results folder, a TaskResult JSON (.json) or a score table (.csv)"
# The run folder's files this reader looks at (results.run_folder.RunPaths writes them).
RUN_FILE, MODEL_META_FILE = "run.json", "model_meta.json"
HYDRA_CONFIG, HYDRA_OVERRIDES = Path(".hydra") / "config.yaml", Path(".hydra") / "overrides.yaml"
ITEMS_MAX_BYTES = 512 * 1024 * 1024  # an items file of a task with millions of queries is ~100 MB

log = logging.getLogger(__name__)


def load_scores(path: str | Path, label: str | None = None, benchmark: Benchmark | None = None) -> ScoreSet:
    """Read scores from a harness run folder, an mteb results folder, one TaskResult JSON or a published CSV. A folder
    is read whole, whatever its size and mteb versions (a revision folder of the MTEB results repository holds 700-800
    files): files of tasks outside `benchmark` are counted (`reading_note`, logged) and not read; a file of a benchmark
    task that cannot be scored is refused. `benchmark` defaults to the run.json's, else (mteb results folders) MTEB(eng,
    v1), assumed and said so; a run.json without one (older runs) reads every file. `label`: row label (default: the
    folder or file name). CQADupstackRetrieval is the mean of its 12 subforums when only those are present. Raises
    ResultsError: missing path, malformed file, duplicate results for one task, unknown task or metric, scores not on
    their scale (a table: docs/bad_input.md; a TaskResult: a fraction outside [-1, 1]), several models in one folder."""
    p = Path(path)
    if not p.exists():
        raise ResultsError(f"results path {p} does not exist; pass a run folder, an mteb results folder or a CSV")
    check_input_kind(p, str(p))
    if p.is_file() and p.suffix.lower() == ".csv":
        return read_score_table(p, label)
    if p.is_file():
        return _score_files(p.parent, [p], label or p.stem)
    if hydra_job_dirs(p):
        raise ResultsError(
            f"{p} is a Hydra multirun folder; pass one job folder (e.g. {p / '0'}) or use nvembed-eval-report"
        )
    files = find_result_files(p)
    if not files:
        raise ResultsError(f"no mteb TaskResult JSON under {p} (searched {MAX_DEPTH} levels); pass a results folder")
    return _score_files(p, files, label, benchmark, whole_folder=True)


def check_input_kind(path: Path, what: str) -> None:
    """Refuse (ResultsError, one line naming it as `what`, e.g. "reference=/dev/null") an existing path that is neither
    a folder, a score CSV nor a TaskResult JSON: a device, pipe or socket; neither .csv nor .json; a .json that parses
    but is no TaskResult (no task_name and scores). A .json that does not parse is left to the reader ("malformed")."""
    if path.is_dir():
        return
    if not path.is_file():
        kind = "a device" if path.is_char_device() or path.is_block_device() else "not a regular file"
        raise ResultsError(f"{what} is {kind}, not results; {ACCEPTED}")
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return
    if suffix != ".json":
        raise ResultsError(f"{what} is a {suffix or 'suffix-less'} file, not results; {ACCEPTED}")
    try:
        data = parse_json(read_text(path))
    except (OSError, ValueError):
        return  # a damaged result file: read_task_result says so and what to do
    if not isinstance(data, dict) or not ({"task_name", "mteb_dataset_name"} & set(data) or "scores" in data):
        raise ResultsError(f"{what} is a JSON file but not an mteb TaskResult (no task_name, no scores); {ACCEPTED}")


def hydra_job_dirs(path: Path) -> list[Path]:
    """Job folders of a Hydra multirun sweep (`<sweep>/<n>/.hydra/overrides.yaml`), numerically ordered."""
    if not path.is_dir():
        return []
    jobs = [d for d in path.iterdir() if d.is_dir() and (d / ".hydra" / "overrides.yaml").is_file()]
    return sorted(jobs, key=lambda d: (not d.name.isdigit(), int(d.name) if d.name.isdigit() else 0, d.name))


def find_result_files(root: Path) -> list[Path]:
    """TaskResult JSON candidates up to three levels below `root`; skips run.json, model_meta.json, dot-folders and a
    run folder's `items/` and `predictions/`."""
    found: list[Path] = []

    def walk(folder: Path, depth: int) -> None:
        for child in sorted(folder.iterdir()):
            if child.name.startswith(".") or child.name in (RUN_FILE, MODEL_META_FILE):
                continue
            if child.is_dir():
                if depth < MAX_DEPTH and not (child.name in RUN_SIDE_FOLDERS and (folder / RUN_FILE).is_file()):
                    walk(child, depth + 1)
            elif child.suffix == ".json" and not child.name.endswith("_predictions.json"):
                found.append(child)

    walk(root, 1)
    return found


def read_task_result(path: Path) -> TaskResult:
    """mteb's own reader (it also upgrades results written by mteb 1.x)."""
    from mteb import TaskResult

    try:
        check_regular_file(path, f"results file {path}", READ_MAX_BYTES)  # mteb reads it whole, whatever it is
        return TaskResult.from_disk(path)
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError) as exc:
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]
        raise ResultsError(f"malformed results file {path} ({reason}); delete or regenerate it") from None
    except OSError as exc:
        raise ResultsError(f"cannot read results file {path} ({exc.strerror}); check the path") from None


def _json_dict(path: Path) -> dict[str, Any]:
    """A result file's JSON object without mteb's reader; {} when it cannot be read (the reader then says why)."""
    try:
        data = parse_json(read_text(path))
    except (OSError, ValueError, ResultsError):
        return {}
    return data if isinstance(data, dict) else {}


def _score_files(
    root: Path, files: list[Path], label: str | None, benchmark: Benchmark | None = None, whole_folder: bool = False
) -> ScoreSet:
    parents = {sub: spec for spec in list_task_specs().values() for sub in spec.subtasks}
    info = read_run_info(root)
    in_run = root.name == "results" and (root.parent / RUN_FILE).is_file()
    label = label or (root.parent.name if in_run else root.name)
    out = ScoreSet(source=root, label=label, kind="results", run_info=info)
    out.model, out.model_source = model_of(root, files, info)
    recorded = benchmark_of(info, root)
    parsed: dict[Path, dict[str, Any]] = {}  # each file's JSON, read once when a folder is sorted by benchmark
    if whole_folder and recorded is None and (benchmark is not None or not info):
        assumed = "assumed: no benchmark given and no run.json"
        out.read_for = benchmark or dataclasses.replace(Benchmark.named(DEFAULT_BENCHMARK), source=assumed)
        wanted = set(out.read_for.tasks)
        parsed.update((path, _json_dict(path)) for path in files)  # {} when unreadable: then its file name decides

        def in_benchmark(path: Path) -> bool:  # a CQADupstack subforum counts as its parent task
            data = parsed[path]  # mteb names its files <Task>.json
            name = data.get("task_name") or data.get("mteb_dataset_name") or path.stem  # 0.0.x: mteb_dataset_name
            return isinstance(name, str) and (name in wanted or (name in parents and parents[name].name in wanted))

        kept = [p for p in files if in_benchmark(p)]
        out.ignored = len(files) - len(kept)
        files = kept
        if out.ignored:
            out.reading_note = f"ignored {out.ignored} files of tasks outside {out.read_for.title} in {root}"
            log.info("%s (%s)", out.reading_note, out.read_for.describe())
        if not files:
            raise ResultsError(
                f"no result of a task of {out.read_for.describe()} under {root}; pass --benchmark NAME (or "
                "benchmark=) for the tasks it holds"
            )
    seen: dict[str, Path] = {}
    for path in files:
        result = read_task_result(path)
        name = result.task_name
        if name in seen:
            raise ResultsError(
                f"duplicate results for task {name}: {seen[name]} and {path}; keep one (point at one model/revision)"
            )
        seen[name] = path
        record = (parsed[path] if path in parsed else _json_dict(path)).get(PROVENANCE_KEY)
        if isinstance(record, dict):
            out.provenance[name] = record
        try:
            spec = load_task_spec(name)
        except NVEmbedEvalError:
            raise ResultsError(
                f"results file {path} is for task '{name}', unknown to this harness and to mteb; remove it or "
                "register the task"
            ) from None
        (out.subtask_scores if name in parents else out.scores)[name] = score_task_result(result, spec, path)

    _check_one_model(root, out.provenance, info)
    for parent in {spec.name: spec for spec in parents.values()}.values():
        if parent.name in out.scores:
            continue
        present = [out.subtask_scores[s] for s in parent.subtasks if s in out.subtask_scores]
        n = len(present)
        if present and n == len(parent.subtasks):
            mean, source = sum(s.value for s in present) / n, f"mean of {n} subtask results under {root}"
            out.scores[parent.name] = TaskScore(parent.name, mean, parent.metric, source, None, f"mean of {n} subtasks")
        elif present:
            out.notes[parent.name] = f"only {n}/{len(parent.subtasks)} subtasks; not scored"
    return out


def _check_one_model(root: Path, provenance: dict[str, dict[str, Any]], run_info: dict[str, Any]) -> None:
    """Refuse (ResultsError) a folder whose result files' provenance records, or run.json, name more than one model
    identity (model and vector-changing knobs): a file copied in from another run would be judged as this model's."""
    seen: dict[str, tuple[str, dict[str, Any]]] = {}  # identity key -> (where it was first named, the model record)
    records = [(RUN_FILE, run_info.get("model"))] + [(f"{t}.json", r.get("model")) for t, r in provenance.items()]
    for where, model in records:
        if isinstance(model, dict) and isinstance(model.get("identity_key"), str):
            seen.setdefault(model["identity_key"], (where, model))
    if len(seen) > 1:
        (where_a, a), (where_b, b) = list(seen.values())[:2]
        names = f"{a.get('name')} in {where_a}, {b.get('name')} in {where_b}"
        if a.get("name") == b.get("name"):  # one model with other settings: the knobs say which
            names += f": knobs {a.get('knobs')} and {b.get('knobs')}"
        raise ResultsError(f"{root} holds results of several models or model settings ({names}); point at one run")


# Overrides that never change a score: where outputs go, and Hydra's own settings.
IGNORED_OVERRIDE_KEYS = ("output_dir", "hydra.", "hydra/")


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = parse_json(read_text(path))
    except json.JSONDecodeError as exc:
        raise ResultsError(f"malformed {path} ({exc.msg} at line {exc.lineno}); fix or remove it") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ResultsError(f"cannot read {path} ({exc}); fix or remove it") from None
    return data if isinstance(data, dict) else {}


def _read_yaml(path: Path) -> Any:
    try:
        return yaml.safe_load(read_text(path))
    except yaml.YAMLError:
        raise ResultsError(f"malformed {path}; fix or delete the job folder") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ResultsError(f"cannot read {path} ({exc}); fix or delete the job folder") from None


def read_run_info(root: Path) -> dict[str, Any]:
    """The harness's record of the run that wrote `root` (the run folder or its `results/`): run.json as a dict; for a
    folder without run.json but with Hydra's `.hydra/config.yaml` (a sweep job that has not started writing),
    `{"config": <that config>}`; else {}. Raises ResultsError when run.json or config.yaml is malformed."""
    for folder in (root, root.parent):
        if (folder / RUN_FILE).is_file():
            return _read_json(folder / RUN_FILE)
    if (root / HYDRA_CONFIG).is_file():
        config = _read_yaml(root / HYDRA_CONFIG)
        return {"config": config} if isinstance(config, dict) else {}
    return {}


def canonical_model(name: str) -> str:
    """A model name for comparing: case-insensitive as hub repo ids are; mteb's folder form `org__name` = `org/name`."""
    return name.strip().replace("__", "/").lower()


def model_of(root: Path, files: list[Path], run_info: dict[str, Any]) -> tuple[str | None, str]:
    """(name, source): the model whose results (`files`, TaskResult JSONs) are under `root`, from `run_info`
    (`read_run_info(root)`) `model.name` or `config.model.name`, else model_meta.json `name`, else mteb's layout
    `<org>__<name>/<revision>/<Task>.json`; (None, "unknown") when nothing says. Raises ResultsError when the files sit
    under several mteb model folders."""
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
    """A sweep job's Hydra overrides (`<job>/.hydra/overrides.yaml`), e.g. `["model.pooling=mean"]`. Raises ResultsError
    when the file is malformed or not a list."""
    path = job / HYDRA_OVERRIDES
    overrides = _read_yaml(path) or []
    if not isinstance(overrides, list):
        raise ResultsError(f"{path} is not a list of overrides; fix or delete the job folder")
    return [str(o) for o in overrides]


def meaningful(overrides: list[str]) -> list[str]:
    """Overrides minus those that cannot change a score (output_dir, hydra settings)."""
    return [o for o in overrides if not o.lstrip("+~").startswith(IGNORED_OVERRIDE_KEYS)]


def read_items_file(result_path: Path, max_bytes: int = ITEMS_MAX_BYTES) -> bytes:
    """The bytes of the per-item data file a result file records (`provenance.items`), checked to be the very file it
    recorded (sha256) and to lie inside the result's run folder. Raises ItemsUnavailable with the reason (no record,
    none was made, outside the folder, missing, not a regular file, larger than `max_bytes`, another file's sha256)."""
    provenance = _json_dict(result_path).get(PROVENANCE_KEY)
    record = provenance.get("items") if isinstance(provenance, dict) else None
    if not isinstance(record, dict):
        raise ItemsUnavailable("its result records no per-item data")
    if "unavailable" in record:
        raise ItemsUnavailable(f"none was made: {record['unavailable']}")
    run_dir = result_path.resolve().parent.parent
    path = (run_dir / str(record.get("path"))).resolve()
    if run_dir not in path.parents:
        raise ItemsUnavailable(f"its result points outside the run folder ({record.get('path')})")
    if not path.exists():
        raise ItemsUnavailable(f"{path} is missing")
    try:
        body = read_bounded(path, max_bytes)
    except (ResultsError, OSError) as exc:  # a pipe, a device, a file made huge
        raise ItemsUnavailable(str(exc)) from None
    if hashlib.sha256(body).hexdigest() != record.get("sha256"):
        raise ItemsUnavailable(f"{path} is not the file its result recorded (sha256 differs); rerun the task")
    return body


REQUIRED_COLUMNS = ("task", "metric", "score")
# No leaderboard metric (nDCG, MAP, AP, accuracy, V-measure, Spearman) leaves [-1, 1], i.e. [-100, 100] in points.
MAX_POINTS = 100.0
# A score of at most 1 in magnitude cannot be told apart from mteb's 0-1 scale.
FRACTION_BOUND = 1.0


def read_score_table(path: Path, label: str | None = None) -> ScoreSet:
    """Read a published score table: a CSV with columns task, metric, score (0-100) and optionally model (the hub id of
    the scores, the same on every row; else the ScoreSet's `model` is None) and dataset_revision; `label` defaults to
    the file name without suffix. Raises ResultsError: unreadable file, missing column, no rows, empty or unknown task,
    duplicate task, wrong metric, a score not a finite number or outside [-100, 100], more than one model, or scores not
    on the 0-100 scale: all of them at most 1 in magnitude (the 0-1 scale) or some (a mix)."""
    out = ScoreSet(source=path, label=label or path.stem, kind="table", model_source=f"{path.name} column model")
    try:
        text = read_bounded(path).decode("utf-8-sig")  # -sig: spreadsheets write a byte-order mark
        reader = csv.DictReader(io.StringIO(text, newline=""))
        rows = list(reader)
        columns = set(reader.fieldnames or ())
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise ResultsError(
            f"cannot read score table {path} ({exc}); pass a CSV with columns task,metric,score"
        ) from None
    missing = [c for c in REQUIRED_COLUMNS if c not in columns]
    if missing:
        raise ResultsError(f"score table {path} lacks column '{missing[0]}'; it needs columns task, metric, score")
    if not rows:
        raise ResultsError(f"score table {path} has no rows; add one row per task (task,metric,score)")
    lines: dict[str, int] = {}
    models: dict[str, int] = {}  # model column value -> its first line
    for line, row in enumerate(rows, start=2):
        name = (row.get("task") or "").strip()
        where = f"{path} line {line}"
        if not name:
            raise ResultsError(f"{where}: empty task name; fill it in or delete the row")
        if name in lines:
            raise ResultsError(f"duplicate rows for task {name} in {path} (lines {lines[name]} and {line}); keep one")
        lines[name] = line
        try:
            spec = load_task_spec(name)
        except NVEmbedEvalError:
            close = difflib.get_close_matches(name, list(list_task_specs()), n=1)
            hint = f"did you mean {close[0]}? " if close else ""
            raise ResultsError(f"{where}: unknown task '{name}'; {hint}use mteb task names") from None
        metric = (row.get("metric") or "").strip()
        if metric not in metric_aliases(spec.metric):
            raise ResultsError(
                f"{where}: unknown metric '{metric}' for {name}; the leaderboard metric is "
                f"{' / '.join(metric_aliases(spec.metric))}"
            )
        for column, wanted in (("split", spec.split), ("subset", spec.subset)):  # a score of other data is no score
            given = (row.get(column) or "").strip()
            if given and given != wanted:
                other = f"{where}: {name} is scored on {column} '{given}', the leaderboard's is '{wanted}'"
                raise ResultsError(f"{other}; give the score of {column} {wanted}, or leave the {column} cell empty")
        value = _score(row.get("score"), name, where)
        if "model" in columns:
            models.setdefault((row.get("model") or "").strip(), line)
        revision = (row.get("dataset_revision") or "").strip() or None
        out.scores[name] = TaskScore(name, value, metric, where, revision)
    if len(models) > 1:
        shown = ", ".join(f"'{m}' (line {n})" if m else f"none (line {n})" for m, n in list(models.items())[:3])
        raise ResultsError(f"score table {path} mixes models: {shown}; keep one model per table")
    out.model = next(iter(models), "") or None  # None without a model column, or with it empty throughout
    # Scores are on 0-100: ones of magnitude <= 1 mean the 0-1 scale (all of them) or a mix (some).
    small = [s for s in out.scores.values() if abs(s.value) <= FRACTION_BOUND]
    example = f"{small[0].task}={small[0].value:g}" if small else ""
    if small and len(small) == len(out.scores):
        raise ResultsError(
            f"score table {path} looks like the 0-1 scale (every score is at most 1, e.g. {example}); "
            "write scores on the 0-100 scale (multiply by 100)"
        )
    if small:
        raise ResultsError(
            f"score table {path} mixes scales: {len(small)} of {len(out.scores)} scores are at most 1 (e.g. "
            f"{example}) while the others are on 0-100; write every score on the 0-100 scale"
        )
    return out


def _score(text: str | None, task: str, where: str) -> float:
    try:
        value = float((text or "").strip())
    except ValueError:
        raise ResultsError(f"{where}: score {text!r} of {task} is not a number; fix the row") from None
    if not math.isfinite(value):
        raise ResultsError(f"{where}: score of {task} is {value}; fix the row")
    if abs(value) > MAX_POINTS:
        raise ResultsError(f"{where}: score {value:g} of {task} is outside [-100, 100]; scores are on the 0-100 scale")
    return value
