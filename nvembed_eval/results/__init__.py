"""Results: run folders (`run_folder`, the only code that knows their layout), what made each result (`provenance`),
scores from any source (`reading`, `scores`), reference tables (`references`) and the export to mteb (`export`)."""
