"""Models: model families behind one `TextEncoder` protocol (`base`), what a model is (its identity), the hub and
checkpoint-safety rules (`hub`, `safety`), the bridge to mteb (`mteb_adapter`) and the embedding probes (`probe`)."""
