"""Without network a hub task fails fast and once (a process: huggingface_hub and datasets read their offline switches
when imported, so the switch must be off from the start)."""

from __future__ import annotations

import time

from clirun import run_cli


def test_unreachable_hub_fails_fast_on_the_requested_commit_only(tmp_path):
    # A closed port on this machine: every hub request is refused at once, as with no network.
    env = {"HF_HOME": str(tmp_path / "empty-hf-home"), "HF_ENDPOINT": "http://127.0.0.1:9"}
    for var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
        env[var] = "0"
    start = time.monotonic()
    result = run_cli(["model=minilm", "tasks=[SciFact]", f"output_dir={tmp_path / 'run'}"], tmp_path, env=env)
    elapsed = time.monotonic() - start
    assert result.returncode == 2 and "Traceback" not in result.stderr
    # The one probe of the endpoint (tasks.hub_data.offline_unless_reachable) switches the libraries offline, so the
    # task is refused while planning, on the requested commit, before any model loads or any retry round.
    offline = "error: offline (HF_HUB_OFFLINE set, or the hub unreachable) and the datasets cache has no"
    assert result.error_line.startswith(f"{offline} mteb/scifact@0228b52c for SciFact")
    assert "data_dir=" in result.error_line and "cannot be reached" in result.stderr
    assert "d56462d0" not in result.stderr  # mteb's commit was never tried: no fallback after a network error
    assert result.stderr.count("datasets cache has no") == 1
    print(f"unreachable hub: failed after {elapsed:.1f} s")  # start-up (imports) dominates; no retry rounds
