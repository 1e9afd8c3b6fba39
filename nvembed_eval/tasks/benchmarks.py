"""Benchmarks: this harness's `conf/benchmark/<name>.yaml` task lists, and any benchmark of mteb's registry by its
mteb name (`MTEB(eng, v2)`, `MTEB(eng, v1)` and their aliases), whose task list is mteb's own.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import logging
from dataclasses import dataclass, field

from nvembed_eval.errors import ConfigError
from nvembed_eval.tasks.specs import TaskSpec, check_name, conf_dir, read_yaml

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MtebBenchmark:
    """One benchmark of mteb's registry.

    Attributes:
        name: mteb's name (an alias given by the user is resolved to it).
        tasks: mteb task names, in mteb's order.
        description: mteb's description (markdown).
        scopes: task name -> (splits, subsets) the benchmark evaluates it on.
    """

    name: str
    tasks: tuple[str, ...]
    description: str
    scopes: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = field(default_factory=dict)

    def align(self, spec: TaskSpec, has_yaml: bool) -> TaskSpec:
        """`spec` on the split and subset this benchmark scores: a spec built from mteb's metadata takes the
        benchmark's when it names exactly one of each; otherwise a difference is logged (this harness scores one
        split and one subset per task)."""
        splits, subsets = self.scopes.get(spec.name, ((spec.split,), (spec.subset,)))
        if (spec.split, spec.subset) == (splits[0], subsets[0]) and len(splits) == len(subsets) == 1:
            return spec
        if not has_yaml and len(splits) == len(subsets) == 1:
            return dataclasses.replace(spec, split=splits[0], subset=subsets[0])
        log.warning(
            "%s: %s evaluates split(s) %s, subset(s) %s; this harness scores split %s, subset %s only",
            spec.name,
            self.name,
            ",".join(splits),
            ",".join(subsets),
            spec.split,
            spec.subset,
        )
        return spec


def harness_benchmarks() -> dict[str, list[str]]:
    """`conf/benchmark/<name>.yaml` name -> its task list, for the YAMLs that carry one (`mteb.yaml` names an mteb
    benchmark instead)."""
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


def mteb_benchmark(name: str, key: str = "benchmark.name") -> MtebBenchmark:
    """A benchmark of mteb's registry (`mteb.get_benchmark`), with its task names.

    Args:
        name: an mteb benchmark name or alias, e.g. "MTEB(eng, v2)", "MTEB(eng, classic)".
        key: the config key the name came from, for the error message.

    Raises:
        ConfigError: mteb has no such benchmark (one line with close matches).
    """
    import mteb

    known = _mteb_names()
    if name not in known:
        close = difflib.get_close_matches(name, list(known), n=3, cutoff=0.5)
        hint = f"did you mean {', '.join(close)}? " if close else ""
        raise ConfigError(
            f"mteb has no benchmark <{key}={name}>; {hint}list them with: nvembed-eval-list benchmarks --all"
        )
    benchmark = mteb.get_benchmark(known[name])
    tasks = tuple(dict.fromkeys(task.metadata.name for task in benchmark.tasks))
    scopes = {task.metadata.name: (tuple(task.eval_splits), tuple(task.hf_subsets)) for task in benchmark.tasks}
    return MtebBenchmark(benchmark.name, tasks, str(benchmark.description or ""), scopes)


def benchmark_tasks(name: str) -> list[str]:
    """The task list of a benchmark: `conf/benchmark/<name>.yaml`'s `tasks:`, else mteb's benchmark of that name.

    Raises:
        ConfigError: neither knows the name (lists this harness's benchmarks), or the YAML has no task list.

    Examples:
        >>> len(benchmark_tasks("mteb_eng_v1")), len(benchmark_tasks("MTEB(eng, v1)"))
        (56, 56)
    """
    check_name(name, "benchmark")
    path = conf_dir() / "benchmark" / f"{name}.yaml"
    if path.is_file():
        data = read_yaml(path)
        tasks = data.get("tasks") if isinstance(data, dict) else None
        if not isinstance(tasks, list) or not tasks:
            raise ConfigError(f"{path} has no 'tasks:' list; add the mteb task names")
        return [str(t) for t in tasks]
    if name in _mteb_names():
        return list(mteb_benchmark(name).tasks)
    available = ", ".join(harness_benchmarks()) or "none"
    raise ConfigError(
        f"unknown benchmark <benchmark={name}>; choose one of: {available}, or an mteb benchmark with "
        """benchmark=mteb 'benchmark.name="MTEB(eng, v2)"' (nvembed-eval-list benchmarks)"""
    )
