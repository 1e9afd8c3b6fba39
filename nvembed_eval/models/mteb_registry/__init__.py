"""Models from mteb's own registry (`model=mteb model.name=<mteb name>`), loaded from a pinned hub snapshot and run
with mteb's own prompts, behind this harness's cache, resume and provenance."""
