"""Tasks: which tasks a run evaluates, on which data, with which instructions.

- `specs`, `benchmarks`: a task as scored here (task YAML, else mteb's metadata); the one place picking a run's tasks.
- `instructions`: which instruction goes on which side, templated into a prefix in one place.
- `data_source`, `revisions`, `hub_data`, `local_data`: where each task's data comes from, provenance;
  `data_checks`: data an evaluator cannot score; `fidelity`: where mteb 1.x and 2.x define a score differently;
  `cost_plan`: what a run would encode (`plan=true`); `smoke`: one tiny task per MTEB task type."""
