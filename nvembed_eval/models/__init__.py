"""Models: model families behind one `TextEncoder` protocol, and what a model is (its identity).

- `base`: the `TextEncoder` protocol, `ModelIdentity` and a folder's exact content revision.
- `sentence_transformer/`, `nvembed/`, `mteb_registry/`: the families (config keys = their constructor parameters).
- `hub`, `safety`: hub ids resolved to the commit actually loaded; no pickle, no names that leave a checkpoint folder.
- `mteb_adapter`: the bridge to mteb's encoder protocol (imports mteb: loaded on first use).
- `probe`: the embedding probes of `nvembed-eval-probe`.
"""
