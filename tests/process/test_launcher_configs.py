"""The shipped SLURM launcher config fixes the submitit plugin's traps (checked by composing it;
tests/process/test_slurm.py runs it on a real cluster)."""

from __future__ import annotations

from hydra import compose, initialize_config_dir

from nvembed_eval.config import CONFIG_NAME
from nvembed_eval.io import conf_dir


def _launcher(choice: str):
    with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3"):
        cfg = compose(CONFIG_NAME, overrides=[f"hydra/launcher={choice}"], return_hydra_config=True)
    return cfg.hydra.launcher


def test_slurm_launcher_fixes_plugin_traps():
    launcher = _launcher("slurm")
    # Hydra's submitit launcher with hydra_plugins/nvembed_eval_launcher/fixes.py (states without sacct, ...)
    assert launcher._target_ == "hydra_plugins.nvembed_eval_launcher.slurm_launcher.SlurmLauncher"
    assert launcher.gpus_per_node == 1  # the plugin requests no GPU by default
    assert launcher.timeout_min >= 24 * 60  # the plugin kills jobs after 60 minutes
    assert launcher.max_num_timeout >= 1  # resubmitted jobs resume from finished tasks and cached shards
    assert launcher.array_parallelism <= 8  # the plugin starts up to 256 jobs at once
    assert "export PYTHONSAFEPATH=1" in launcher.setup  # import the installed package, not the launch dir


def test_local_launcher_is_submitit_local():
    assert _launcher("local")._target_.endswith("LocalLauncher")
