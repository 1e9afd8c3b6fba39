"""Benchmarks: which tasks make up a leaderboard (`conf/benchmark/<name>.yaml`, mteb's registry by name or alias, an
ad-hoc `tasks=[...]` list, or what a run folder recorded), and the one place that picks the tasks a run evaluates."""

from __future__ import annotations

import dataclasses
import difflib
import functools
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from nvembed_eval.errors import ConfigError
from nvembed_eval.io import conf_dir
from nvembed_eval.tasks.specs import TaskSpec, check_name, load_task_spec, read_yaml, resolve_task_names, task_yaml_path

log = logging.getLogger(__name__)

AD_HOC = "tasks"  # the name of a benchmark that is a `tasks=[...]` list


@dataclass(frozen=True)
class Benchmark:
    """The tasks whose scores make up the averages (the denominators), and where that list came from."""

    # a conf/benchmark name ("smoke", "mteb_eng_v1"), mteb's name ("MTEB(eng, v2)"), "tasks" for an ad-hoc
    # `tasks=[...]` list, or a description such as "tasks present in any input"
    name: str
    tasks: tuple[str, ...]  # task names in benchmark order, no duplicates
    source: str = "config"  # where the list was read, e.g. "--benchmark", "run.json benchmark", "run.json config.tasks"
    description: str = ""  # mteb's description of its benchmark (markdown), else ""
    # for mteb's benchmarks, task name -> (splits, subsets) the benchmark evaluates it on
    scopes: Mapping[str, tuple[tuple[str, ...], tuple[str, ...]]] = field(default_factory=dict)

    @classmethod
    def named(cls, name: str, source: str = "--benchmark") -> Benchmark:
        """`conf/benchmark/<name>.yaml`'s task list, else mteb's benchmark of that name or alias. Raises `ConfigError`
        when neither knows the name (lists this harness's benchmarks), or the YAML has no task list."""
        check_name(name, "benchmark")
        path = conf_dir() / "benchmark" / f"{name}.yaml"
        if path.is_file():
            data = read_yaml(path)
            tasks = data.get("tasks") if isinstance(data, dict) else None
            if not isinstance(tasks, list) or not tasks:
                raise ConfigError(f"{path} has no 'tasks:' list; add the mteb task names")
            return cls(name, tuple(dict.fromkeys(str(t) for t in tasks)), source)
        if name in _mteb_names():
            return dataclasses.replace(mteb_benchmark(name), source=source)
        available = ", ".join(harness_benchmarks()) or "none"
        raise ConfigError(
            f"unknown benchmark <benchmark={name}>; choose one of: {available}, or an mteb benchmark with "
            """benchmark=mteb 'benchmark.name="MTEB(eng, v2)"' (nvembed-eval-list benchmarks)"""
        )

    @classmethod
    def union(cls, name: str, task_lists: Iterable[Iterable[str]], source: str) -> Benchmark:
        """Every task of `task_lists`, in order of first appearance."""
        return cls(name, tuple(dict.fromkeys(t for tasks in task_lists for t in tasks)), source)

    @property
    def title(self) -> str:
        """The name, or for an ad-hoc list the list itself: "tasks=[SciFact,NFCorpus]"."""
        more = ",..." if len(self.tasks) > 4 else ""
        return self.name if self.name != AD_HOC else f"tasks=[{','.join(self.tasks[:4])}{more}]"

    def describe(self) -> str:
        """E.g. "smoke (7 tasks, from run.json config.benchmark)"."""
        return f"{self.title} ({len(self.tasks)} task{'s' if len(self.tasks) != 1 else ''}, from {self.source})"

    def record(self) -> dict[str, object]:
        """run.json's `benchmark` entry: the name and every task, the leaderboard's denominators (a run that serves 3
        of them from local data still records all of them: its coverage is 3 of N)."""
        return {"name": self.name, "tasks": list(self.tasks)}

    def align(self, spec: TaskSpec) -> TaskSpec:
        """`spec` on the split and subset this (mteb) benchmark scores: a spec built from mteb's metadata takes the
        benchmark's when it names one of each; else a difference is logged (one split and subset per task here)."""
        splits, subsets = self.scopes.get(spec.name, ((spec.split,), (spec.subset,)))
        if (spec.split, spec.subset) == (splits[0], subsets[0]) and len(splits) == len(subsets) == 1:
            return spec
        if not task_yaml_path(spec.name).is_file() and len(splits) == len(subsets) == 1:
            return dataclasses.replace(spec, split=splits[0], subset=subsets[0])
        message = "%s: %s evaluates split(s) %s, subset(s) %s; this harness scores split %s, subset %s only"
        log.warning(message, spec.name, self.name, ",".join(splits), ",".join(subsets), spec.split, spec.subset)
        return spec


def harness_benchmarks() -> dict[str, list[str]]:
    """`conf/benchmark/<name>.yaml` name -> its task list, for the YAMLs that carry one (`mteb.yaml` names mteb's)."""
    folder = conf_dir() / "benchmark"
    out: dict[str, list[str]] = {}
    for path in sorted(folder.glob("*.yaml")) if folder.is_dir() else []:
        data = read_yaml(path)
        tasks = data.get("tasks") if isinstance(data, dict) else None
        if tasks:
            out[path.stem] = [str(t) for t in tasks]
    return out


@functools.cache
def _mteb_names() -> dict[str, str]:
    """Every mteb benchmark name and alias -> mteb's name."""
    import mteb

    names: dict[str, str] = {}
    for benchmark in mteb.get_benchmarks():
        names[benchmark.name] = benchmark.name
        for alias in getattr(benchmark, "aliases", None) or ():
            names.setdefault(alias, benchmark.name)
    return names


def mteb_benchmark(name: str, key: str = "benchmark.name") -> Benchmark:
    """A benchmark of mteb's registry by name or alias ("MTEB(eng, v2)"), with its task names and scopes; `key` is the
    config key the name came from, for the `ConfigError` (one line, close matches) when mteb has no such benchmark."""
    import mteb

    known = _mteb_names()
    if name not in known:
        close = difflib.get_close_matches(name, list(known), n=3, cutoff=0.5)
        hint = f"did you mean {', '.join(close)}? " if close else ""
        listing = "list them with: nvembed-eval-list benchmarks --all"
        raise ConfigError(f"mteb has no benchmark <{key}={name}>; {hint}{listing}")
    benchmark = mteb.get_benchmark(known[name])
    tasks = tuple(dict.fromkeys(task.metadata.name for task in benchmark.tasks))
    scopes = {task.metadata.name: (tuple(task.eval_splits), tuple(task.hf_subsets)) for task in benchmark.tasks}
    return Benchmark(benchmark.name, tasks, "mteb", str(benchmark.description or ""), scopes)


def select_tasks(
    tasks: Sequence[str] | None, benchmark_name: str | None, benchmark_tasks: Sequence[str]
) -> tuple[Benchmark, list[TaskSpec]]:
    """Which tasks a run evaluates and which benchmark it is: the one place that decides both. `tasks` (`tasks=[...]`),
    when given, wins and is the benchmark ("tasks"); else `benchmark_tasks` of the harness benchmark `benchmark_name`,
    or, when those are empty (`benchmark=mteb`), mteb's benchmark of that name. Returns the benchmark (every task, also
    those without data here) and its tasks' specs (checked against mteb's registry, in order, no duplicates). Raises
    `TaskNotFoundError` for an unknown task (with close matches), `ConfigError` for no tasks or an unknown benchmark."""
    named = None
    if tasks:
        names, name = resolve_task_names(list(tasks), []), AD_HOC
    elif benchmark_tasks:
        names, name = resolve_task_names(None, list(benchmark_tasks)), str(benchmark_name or AD_HOC)
    else:
        named = mteb_benchmark(str(benchmark_name))
        names, name = resolve_task_names(None, list(named.tasks)), named.name
    if not names:
        raise ConfigError("no tasks selected; pass tasks=[TaskName,...] or benchmark=<name>")
    specs = [load_task_spec(n) for n in names]
    if named is not None:
        specs = [named.align(spec) for spec in specs]
    source = "config.tasks" if tasks else "config.benchmark"
    return Benchmark(name, tuple(names), source, *(() if named is None else (named.description, named.scopes))), specs
