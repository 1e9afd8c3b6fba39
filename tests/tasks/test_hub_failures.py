"""Without hub access a hub task fails fast and once: one line naming the task and the fix, exit 2, no retries on
another dataset commit (that fallback is for a commit current libraries cannot read, not for a network error)."""

from __future__ import annotations

from clirun import invoke


def test_offline_without_the_dataset_in_the_cache_is_refused_before_anything_runs(tmp_path):
    out = tmp_path / "run"
    env = {"HF_HOME": str(tmp_path / "empty-hf-home"), "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    result = invoke(["model=minilm", "tasks=[SciFact]", f"output_dir={out}"], tmp_path, env=env)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.error_line.startswith("error: offline (HF_HUB_OFFLINE set, or the hub unreachable) and the datasets ")
    assert "mteb/scifact@0228b52c for SciFact" in result.error_line and "data_dir=" in result.error_line
    assert result.stderr.count("mteb/scifact@0228b52c") == 1  # said once
    assert not out.exists()  # refused before the run folder was used
