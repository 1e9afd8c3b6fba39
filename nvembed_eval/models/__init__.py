"""Model families behind the `TextEncoder` protocol (`base.py`); each family lives in its own subpackage."""
