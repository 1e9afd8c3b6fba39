"""Judge: two score sets side by side.

- `compare`: the comparison, task by task, judged by tolerance, by noise, or both.
- `gate`: what stops a comparison (one-line refusals) and what flags a row (evaluator fidelity).
- `significance`, `bootstrap`: per-item data read back and checked, and the paired intervals made from it.
- `item_values`: per-item data made at run time from mteb's predictions.
- `render`: `nvembed-eval-compare` and its outputs (markdown, CSV, JUnit XML, PNG).
- `report`: `nvembed-eval-report`, leaderboard tables over runs and sweeps.
"""
