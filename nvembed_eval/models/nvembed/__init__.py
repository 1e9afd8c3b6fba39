"""NV-Embed family: configuration, network, tokenization, loading and the `NVEmbedEncoder` adapter.

Import the submodules directly (`nvembed_eval.models.nvembed.encoder_nvembed`); nothing is imported here.
"""
