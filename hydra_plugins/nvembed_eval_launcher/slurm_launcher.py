"""`hydra/launcher=slurm`: Hydra's submitit SLURM launcher with nvembed-eval's fixes (`fixes.py`).
Hydra instantiates launchers from the `hydra_plugins` namespace only, and imports every module here at startup: without
the `slurm` extra this module defines nothing, and `hydra/launcher=slurm` fails as it did before, naming the plugin."""

from __future__ import annotations

try:
    from hydra_plugins.hydra_submitit_launcher.submitit_launcher import SlurmLauncher as _SubmititSlurmLauncher
except ImportError:  # hydra-submitit-launcher is not installed (pip install "nvembed-eval[slurm]")
    _SubmititSlurmLauncher = None

if _SubmititSlurmLauncher is not None:
    from hydra_plugins.nvembed_eval_launcher.fixes import SlurmLauncherFixes

    class SlurmLauncher(SlurmLauncherFixes, _SubmititSlurmLauncher):
        """Hydra's submitit SLURM launcher with `fixes.SlurmLauncherFixes`."""
