"""The wheel carries everything a run reads — every module, the Hydra configs (56 MTEB(eng, v1) + 7 smoke task YAMLs),
the instruction tables, the published tables and the smoke data — and an installed copy finds them through the package
from any folder. (.ci/run also installs the wheel into a fresh venv and runs the README quick start.)"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from clirun import REPO, isolated_env

# What a wheel is built from: everything else in the checkout (tests, docs, scripts, baselines) stays out.
SOURCES = (
    "pyproject.toml",
    "setup.py",
    "README.md",
    "nvembed_eval",
    "hydra_plugins",  # the SLURM launcher's Hydra entry (Hydra instantiates launchers from this namespace only)
    "conf",
    "instructions",
    "results/published",
)


def _files(root: Path, pattern: str = "*") -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob(pattern) if p.is_file() and "__pycache__" not in p.parts}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """`pip wheel --no-deps` of a copy of the sources (the build writes build/ and egg-info next to them)."""
    src = tmp_path_factory.mktemp("src")
    for name in SOURCES:
        source, target = REPO / name, src / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(source, target)
    out = tmp_path_factory.mktemp("wheel")
    isolation = ["--no-build-isolation"] if importlib.util.find_spec("setuptools") else []  # fast, offline
    cmd = [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", *isolation, "-w", str(out), str(src)]
    subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=600)
    (built,) = out.glob("nvembed_eval-*.whl")
    return built


@pytest.fixture(scope="module")
def names(wheel) -> set[str]:
    with zipfile.ZipFile(wheel) as archive:
        return set(archive.namelist())


def test_wheel_holds_every_module(names):
    modules = {f"nvembed_eval/{p}" for p in _files(REPO / "nvembed_eval", "*.py")}
    assert modules - names == set()
    plugin = {f"hydra_plugins/{p}" for p in _files(REPO / "hydra_plugins", "*.py")}
    assert "hydra_plugins/nvembed_eval_launcher/slurm_launcher.py" in plugin and plugin - names == set()
    assert "hydra_plugins/__init__.py" not in names  # a namespace shared with Hydra's own plugins


def test_wheel_holds_the_config_tree_with_every_task_yaml(names):
    assert "nvembed_eval/conf/eval.yaml" in names
    tasks = {n for n in names if n.startswith("nvembed_eval/conf/task/") and n.endswith(".yaml")}
    assert len(tasks) == 63  # the 56 MTEB(eng, v1) tasks + 7 smoke tasks
    assert len([t for t in tasks if "NVEvalSmoke" in t]) == 7
    assert {f"nvembed_eval/conf/{p}" for p in _files(REPO / "conf", "*.yaml")} - names == set()


def test_wheel_holds_instructions_published_tables_and_smoke_data(names):
    expected = {f"nvembed_eval/instructions/{p}" for p in _files(REPO / "instructions")}
    expected |= {f"nvembed_eval/published/{p}" for p in _files(REPO / "results" / "published", "*.csv")}
    expected |= {
        f"nvembed_eval/tasks/smoke/data/{p}" for p in _files(REPO / "nvembed_eval" / "tasks" / "smoke" / "data")
    }
    assert {
        "nvembed_eval/published/nv_embed_v2.csv",
        "nvembed_eval/instructions/nv_embed_v2_instructions.json",
    } <= expected
    assert expected - names == set()
    assert not [n for n in names if n.startswith(("tests/", "docs/", "scripts/", "conf/", "results/"))]


def test_installed_wheel_reads_its_own_files_from_any_folder(wheel, tmp_path):
    """Installed without a checkout next to it (pip --target), run from an empty folder: configs, instructions,
    published tables and smoke data all come from the installed package, and a smoke task scores MiniLM's 81.90."""
    site = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(site), str(wheel)],
        check=True,
        capture_output=True,
        text=True,
        timeout=300,
    )
    empty = tmp_path / "empty"
    empty.mkdir()
    env = {**isolated_env(tmp_path), "PYTHONPATH": str(site)}
    env.pop("NVEMBED_EVAL_ROOT")
    where = (
        "import nvembed_eval, nvembed_eval.io as r, nvembed_eval.tasks.instructions as i; "
        "print(nvembed_eval.__file__, r.conf_dir(), r.bundled_dir('published'), i.instructions_dir())"
    )
    paths = subprocess.run(
        [sys.executable, "-c", where], cwd=empty, env=env, capture_output=True, text=True, check=True
    ).stdout.split()
    assert all(p.startswith(str(site / "nvembed_eval")) for p in paths), paths
    run = subprocess.run(
        [sys.executable, "-m", "nvembed_eval", "model=minilm", "tasks=NVEvalSmokeSTS"],
        cwd=empty,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert "| NVEvalSmokeSTS | STS  | cosine_spearman | 81.90 |" in run.stdout
    # reference=auto found MiniLM's published table inside the installed package, not in the working folder
    assert f"Published column: {site / 'nvembed_eval' / 'published' / 'all_minilm_l6_v2.csv'}" in run.stdout
    (run_dir,) = (empty / "outputs").iterdir()  # outputs under the working folder
    assert str(site) in (run_dir / "run.json").read_text()  # the smoke data was read from the installed package
