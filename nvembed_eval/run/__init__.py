"""Run: one run from its composed config to its summary.

- `record`: the config resolved once into a frozen `RunRecord` (settings, tasks and their data, benchmark, reference,
  paths), and the `plan=true` report.
- `session`: the folder locked, the model built behind the cache, the run accepted or taken back whole.
- `loop`: the task loop through `mteb.evaluate`, each result written with its provenance.
- `summary`: the end-of-run table and leaderboard view.
"""
