"""Models from mteb's own registry (`model=mteb`), loaded from a pinned hub snapshot and run with mteb's prompts."""
