"""The package layout follows the data flow: four rooms (tasks, models, cache, tracking) joined by the runner, and no
room imports a room it must not know about. Every import counts: module level, inside functions, under TYPE_CHECKING.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "nvembed_eval"
ROOMS = ("tasks", "models", "cache", "tracking")
# resources: where the bundled data lives; api: the CLI's run for Python (cli-level); listing: nvembed-eval-list;
# probe_cli: the `nvembed-eval-probe` console script, glue like cli (it builds the model as the runner does);
# arguments: the one-line-error argparse parser of every nvembed-eval-* console script.
TOP_LEVEL = {
    "__init__",
    "__main__",
    "cli",
    "runner",
    "errors",
    "preflight",
    "atomic",
    "hashing",
    "logs",
    "settings",
    "probe_cli",
    "resources",
    "api",
    "listing",
    "arguments",
}

# What each unit may import from this package. `runner` joins the rooms; `cli` is the Hydra glue on top.
ALLOWED: dict[str, set[str]] = {
    # helpers: import no room (settings reads cache sizes with the cache's own parser)
    "errors": set(),
    "atomic": set(),
    "arguments": set(),
    "hashing": set(),
    "logs": set(),
    "resources": {"errors"},  # the bundled conf/, instructions/, published/ folders, for every unit
    "__init__": {"api", "errors"},  # lazy attributes: nvembed_eval.evaluate, .load_results, .leaderboard
    "preflight": {"errors"},
    "settings": {"errors", "cache"},
    # rooms
    "tasks": {"errors", "atomic", "hashing", "resources"},
    "models": {"errors", "atomic", "hashing"},
    "cache": {"errors", "atomic", "arguments", "models"},
    "tracking": {"errors", "atomic", "arguments", "resources", "tasks", "models"},
    # the loop that joins the rooms, and the Hydra glue on top
    "runner": {"errors", "atomic", "settings", "tasks", "models", "cache", "tracking"},
    "cli": {
        "errors",
        "atomic",
        "logs",
        "settings",
        "preflight",
        "resources",
        "api",
        "runner",
        "tasks",
        "models",
        "cache",
    }
    | {"tracking"},
    # the Python API: the CLI's run without the command line; listing: the registries, read only
    "api": {"errors", "atomic", "logs", "settings", "preflight", "resources", "runner", "tasks", "models", "tracking"},
    "listing": {"errors", "arguments", "resources", "tasks", "models"},
    "__main__": {"cli"},
    "probe_cli": {
        "errors",
        "arguments",
        "api",
        "cli",
        "preflight",
        "resources",
        "runner",
        "tracking",
    },  # composes with cli, builds with the runner
}


def _unit(path: Path) -> str:
    rel = path.relative_to(PACKAGE)
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def _module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, absolute module) for every import of `nvembed_eval.*` in the file, relative imports resolved."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = _module_name(path) if path.name == "__init__.py" else _module_name(path).rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            found.append((node.lineno, module))
            # `from nvembed_eval import tasks` names a room through the top package
            if module == "nvembed_eval":
                found += [(node.lineno, f"nvembed_eval.{alias.name}") for alias in node.names]
    return [(line, m) for line, m in found if m == "nvembed_eval" or m.startswith("nvembed_eval.")]


def _edges() -> list[tuple[str, str, str, int, str]]:
    """(importing unit, imported unit, file, line, imported module) for every cross-unit import."""
    edges = []
    for path in sorted(PACKAGE.rglob("*.py")):
        unit = _unit(path)
        for line, module in _imports(path):
            parts = module.split(".")
            if len(parts) < 2:
                continue
            target = parts[1]
            if target != unit:
                edges.append((unit, target, str(path.relative_to(PACKAGE.parent)), line, module))
    return edges


def test_top_level_holds_only_the_rooms_and_the_glue():
    modules = {p.stem for p in PACKAGE.glob("*.py")}
    packages = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()}
    assert modules == TOP_LEVEL
    assert packages == set(ROOMS)


def test_the_import_graph_is_collected():
    # Guards the checker itself: edges the runner and tracking are known to have must be seen.
    pairs = {(a, b) for a, b, *_ in _edges()}
    assert {("runner", "tasks"), ("runner", "cache"), ("runner", "tracking"), ("tracking", "tasks")} <= pairs
    assert ("cache", "models") in pairs  # a TYPE_CHECKING import counts


def test_no_room_imports_upward():
    bad = [f"{file}:{line}: {a} imports {module}" for a, b, file, line, module in _edges() if b not in ALLOWED[a]]
    assert not bad, "forbidden imports:\n" + "\n".join(bad)


def test_cross_room_imports_go_through_the_package_names():
    """`from nvembed_eval.tasks import load_task_spec`, never `nvembed_eval.tasks.specs` from another room."""
    bad = [
        f"{file}:{line}: {a} imports {module}"
        for a, b, file, line, module in _edges()
        if b in ROOMS and module.count(".") > 1
    ]
    assert not bad, "imports past a room's public names:\n" + "\n".join(bad)


@pytest.mark.parametrize("room", ROOMS)
def test_each_room_states_what_it_owns_and_exports_names_that_exist(room):
    package = importlib.import_module(f"nvembed_eval.{room}")
    assert package.__doc__ and package.__doc__.strip().startswith(room.capitalize() + ":")
    assert package.__all__, f"nvembed_eval.{room} exports nothing"
    for name in package.__all__:
        assert getattr(package, name) is not None, f"nvembed_eval.{room}.{name}"


def test_old_flat_module_paths_are_gone():
    for old in ("cache_store", "cache_cli", "cache_index", "cache_claims", "local_data", "results", "scoring", "smoke"):
        assert not (PACKAGE / f"{old}.py").exists() and not (PACKAGE / old).is_dir(), old
