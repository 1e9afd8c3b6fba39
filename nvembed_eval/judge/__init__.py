"""Judge: two score sets side by side. `compare`: task by task, by tolerance, noise or both; `gate`: one-line refusals
and fidelity flags; `significance`, `bootstrap`: per-item data read back and checked, and the paired intervals made
from it; `item_values`: per-item data made at run time from mteb's predictions; `render`: `nvembed-eval-compare` and
its outputs (markdown, CSV, JUnit XML, PNG); `report`: `nvembed-eval-report`, leaderboards over runs and sweeps."""
