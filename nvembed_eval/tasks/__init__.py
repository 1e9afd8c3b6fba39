"""Tasks: which tasks a run evaluates, on which data, with which instructions.

- `specs`, `benchmarks`: a task as this harness scores it (`conf/task/<Name>.yaml`, else mteb's metadata), names
  checked against mteb; task lists (`conf/benchmark/`, mteb's benchmarks) and the one place that picks a run's tasks.
- `instructions`: which instruction goes on which side, and the one place it is templated into a prefix.
- `data_source`, `revisions`, `hub_data`: where each task's data comes from (a hub commit, a local folder, the package)
  and its part of a result's provenance; `local_data`, `local_rows`, `local_beir`: local folders read into mteb's
  task; `data_checks`: data an evaluator cannot score, refused before encoding; `fidelity`: where mteb 1.x and 2.x
  define a score differently. `cost_plan`, `cost_plan_report`: what a run would encode and cost (`plan=true`).
- `smoke`: the embedded `smoke` benchmark, one tiny task per MTEB task type."""
