"""nvembed-eval's Hydra launcher plugin (`hydra/launcher=slurm`)."""
