"""An environment with an old torch: the console script stops with one line before anything runs (a process: which
torch distribution is installed is what the interpreter finds on its path)."""

from __future__ import annotations

from clirun import run_cli


def test_old_torch_stops_the_cli_before_anything_runs(tmp_path):
    """A torch 2.4.1 distribution first on the path (as in an old environment) gets the one-line error, not
    transformers' NameError from deep inside a model import."""
    fake = tmp_path / "site" / "torch-2.4.1.dist-info"
    fake.mkdir(parents=True)
    (fake / "METADATA").write_text("Metadata-Version: 2.1\nName: torch\nVersion: 2.4.1\n")
    run_dir = tmp_path / "run"
    result = run_cli(
        ["model=minilm", "benchmark=smoke", f"output_dir={run_dir}"], tmp_path, env={"PYTHONPATH": str(fake.parent)}
    )
    assert result.returncode == 2
    assert result.error_line == (
        "error: torch 2.4.1 is too old: transformers 5 needs torch >= 2.6.0 (a pre-release of 2.6.0 does not count); "
        "upgrade it, e.g. pip install 'torch>=2.6.0'"
    )
    assert not run_dir.exists()
