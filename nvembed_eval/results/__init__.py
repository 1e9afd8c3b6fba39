"""Results: writes and reads run folders, the only code that knows their layout.

- `run_folder`: a run's folder: lock, records, result files with their provenance, reuse, taking a refused run back.
- `provenance`: what a result records about what made it, and which differences forbid reusing it.
- `scores`: a task's leaderboard score, a set of them, the leaderboard averages with their coverage.
- `reading`: scores from any source (run folder, mteb results folder, TaskResult JSON, score table) and what a
  folder says it is of.
- `references`: the published tables a run is shown against.
"""
