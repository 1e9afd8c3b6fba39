"""NV-Embed family: config, network, tokenization, loading and `NVEmbedEncoder` (import the submodules directly)."""
