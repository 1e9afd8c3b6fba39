"""`nvembed-eval-list`: what a run can name — tasks, benchmarks, models and instructions — from this harness's
configs and mteb's registries, each with a short description.

Examples:
    nvembed-eval-list tasks --type Retrieval
    nvembed-eval-list tasks --benchmark "MTEB(eng, v2)"
    nvembed-eval-list tasks --all --type STS         # every mteb task of a type, not only this harness's YAMLs
    nvembed-eval-list benchmarks
    nvembed-eval-list models --all                   # plus mteb's model registry (model=mteb model.name=...)
    nvembed-eval-list instructions --type Retrieval
"""

from __future__ import annotations

import argparse
import difflib
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import get_args

from nvembed_eval.errors import ConfigError, NVEmbedEvalError
from nvembed_eval.io import Parser, conf_dir, emit, text_table
from nvembed_eval.tasks.benchmarks import Benchmark, harness_benchmarks
from nvembed_eval.tasks.specs import list_task_specs, load_task_spec, register_smoke_tasks

WIDTH = 90  # characters of description per row
# The options each listing reads; any other is refused rather than silently ignored. `benchmarks` always lists both
# registries, so --all (which an mteb error message suggests) is accepted there.
FILTERS = {
    "tasks": ("--type", "--all", "--benchmark"),
    "benchmarks": ("--all",),
    "models": ("--all",),
    "instructions": ("--type",),
}


def short(text: str | None, width: int = WIDTH) -> str:
    """The first sentence of `text` on one line (markdown links reduced to their text), cut to `width`."""
    text = re.sub(r"\[([^\]]+)\]\([^)]*\)", r"\1", " ".join((text or "").split()))
    sentence = re.split(r"(?<=[.!?])\s", text, maxsplit=1)[0]
    return sentence if len(sentence) <= width else sentence[: width - 3].rstrip() + "..."


def yaml_header(path: Path) -> str:
    """The description a config YAML opens with: its leading comment lines, up to the first example command."""
    lines = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.startswith("#") or line.startswith("#   "):
            break
        lines.append(line.lstrip("#").strip())
    return " ".join(lines)


def _check_type(task_type: str | None) -> None:
    if task_type is None:
        return
    from mteb.abstasks.task_metadata import TaskType

    valid = get_args(TaskType)
    if task_type not in valid:
        close = difflib.get_close_matches(task_type, valid, n=3)
        hint = f"did you mean {', '.join(close)}? " if close else ""
        raise ConfigError(f"unknown task type <--type {task_type}>; {hint}mteb's types: {', '.join(valid)}")


def list_tasks(task_type: str | None, everything: bool, benchmark: str | None) -> str:
    """This harness's task YAMLs (or a benchmark's tasks, or with `everything` mteb's whole registry)."""
    import mteb

    _check_type(task_type)
    specs = list_task_specs()
    register_smoke_tasks()
    if benchmark is not None:
        # conf/benchmark/mteb.yaml holds no tasks: it runs an mteb benchmark named by `benchmark.name=`
        if benchmark not in harness_benchmarks() and (conf_dir() / "benchmark" / f"{benchmark}.yaml").is_file():
            raise ConfigError(
                f"benchmark {benchmark!r} is the placeholder for mteb's named benchmarks, not a task list; pass the "
                """mteb name, e.g. --benchmark "MTEB(eng, v2)" (names: nvembed-eval-list benchmarks)"""
            )
        names = list(Benchmark.named(benchmark).tasks)
    elif everything:
        names = sorted({*specs, *(t.metadata.name for t in mteb.get_tasks())})
    else:
        names = list(specs)
    rows = []
    for name in names:
        spec = specs.get(name)
        task = mteb.get_task(name)
        kind = spec.type if spec else str(task.metadata.type)
        if task_type is not None and kind != task_type:
            continue
        source = "yaml" if spec else "mteb"
        metric = spec.metric if spec else (load_task_spec(name).metric if benchmark else str(task.metadata.main_score))
        rows.append([name, kind, metric, source, short(task.metadata.description, 70)])
    footer = f"{len(rows)} tasks. yaml: conf/task/<Name>.yaml (instructions, published scores); mteb: mteb's metadata."
    return text_table(rows, ["task", "type", "metric", "config", "description"], markdown=False) + "\n" + footer


def list_benchmarks() -> str:
    """This harness's benchmark YAMLs, then every benchmark of mteb's registry."""
    import mteb

    folder = conf_dir() / "benchmark"
    harness = harness_benchmarks().items()
    rows = [
        [f"benchmark={name}", str(len(tasks)), short(yaml_header(folder / f"{name}.yaml"))] for name, tasks in harness
    ]
    registry = sorted(mteb.get_benchmarks(), key=lambda b: b.name)
    rows += [[f'"{b.name}"', str(len(b.tasks)), short(b.description)] for b in registry]
    hint = """mteb's (quoted names): nvembed-eval benchmark=mteb 'benchmark.name="MTEB(eng, v2)"'"""
    return text_table(rows, ["benchmark", "tasks", "description"], markdown=False) + "\n" + hint


def list_models(everything: bool) -> str:
    """This harness's model configs; with `everything`, mteb's model registry too (for `model=mteb`)."""
    folder = conf_dir() / "model"
    rows = [[f"model={p.stem}", short(yaml_header(p))] for p in sorted(folder.glob("*.yaml"))]
    text = text_table(rows, ["model", "description"], markdown=False)
    if not everything:
        return text + "\nmteb's model registry: nvembed-eval-list models --all"
    import mteb

    metas = sorted(mteb.get_model_metas(), key=lambda m: m.name or "")
    registry = [
        [m.name or "", f"{m.n_parameters / 1e6:,.0f}M" if m.n_parameters else "", getattr(m.loader, "__name__", "")]
        for m in metas
    ]
    table = text_table(registry, ["model=mteb model.name=", "parameters", "mteb loader"], markdown=False)
    return f"{text}\n\n{table}\nmodel=mteb runs the sentence-transformers-loaded ones (docs/models.md)."


def list_instructions(task_type: str | None) -> str:
    """The instruction variants, then each task's instructions under `instructions=nv_embed_v2` with provenance."""
    _check_type(task_type)
    folder = conf_dir() / "instructions"
    variants = [[f"instructions={p.stem}", short(yaml_header(p))] for p in sorted(folder.glob("*.yaml"))]
    rows = []
    for spec in list_task_specs().values():
        if task_type is not None and spec.type != task_type:
            continue
        verified = "yes" if spec.instruction_verified else "no"
        query, document = spec.instructions.get("query"), spec.instructions.get("document")
        rows.append([spec.name, spec.type, short(query, 60) or "-", short(document, 30) or "-", verified])
    head = text_table(variants, ["variant", "description"], markdown=False)
    table = text_table(rows, ["task", "type", "query", "document", "verified"], markdown=False)
    return f"{head}\n\nnv_embed_v2 instructions per task (conf/task/<Name>.yaml):\n{table}"


def main(argv: Sequence[str] | None = None) -> int:
    """Console script `nvembed-eval-list`. Exit 0, or 2 with one `error:` line."""
    parser = Parser(
        prog="nvembed-eval-list",
        description="List what nvembed-eval can run: tasks, benchmarks, models, instructions.",
        epilog=__doc__.split("Examples:", 1)[1] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("what", choices=["tasks", "benchmarks", "models", "instructions"])
    parser.add_argument("--type", dest="task_type", help="only tasks of this mteb task type, e.g. Retrieval")
    parser.add_argument("--all", dest="everything", action="store_true", help="include mteb's whole registry")
    parser.add_argument("--benchmark", help="tasks: the tasks of this benchmark (harness or mteb name)")
    args = parser.parse_args(argv)
    given = zip(FILTERS["tasks"], (args.task_type, args.everything or None, args.benchmark), strict=True)
    if unsupported := [flag for flag, value in given if value is not None and flag not in FILTERS[args.what]]:
        parser.error(f"{args.what} takes no {' or '.join(unsupported)} (it takes: {', '.join(FILTERS[args.what])})")
    if args.everything and args.benchmark is not None:
        parser.error("--all and --benchmark each choose the tasks to list; pass one of them")
    try:
        listings = {
            "tasks": lambda: list_tasks(args.task_type, args.everything, args.benchmark),
            "benchmarks": list_benchmarks,
            "models": lambda: list_models(args.everything),
            "instructions": lambda: list_instructions(args.task_type),
        }
        text = listings[args.what]()
    except NVEmbedEvalError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    emit(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
