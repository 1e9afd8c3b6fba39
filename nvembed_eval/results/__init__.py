"""Results: writes and reads run folders (`run_folder`, the only code that knows their layout), what a result records
about what made it (`provenance`), leaderboard scores (`scores`), scores from any source (`reading`), the published
tables a run is shown against (`references`) and the export to mteb (`export`)."""
