"""nvembed-eval: reproduce and track NV-Embed-v2 on MTEB through mteb's own evaluators."""

__version__ = "0.1.0"
