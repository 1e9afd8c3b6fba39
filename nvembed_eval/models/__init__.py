"""Models: model families behind one `TextEncoder` protocol (`base.py`), each in its own subpackage, and the bridge
to mteb's encoder protocol. `MtebEncoder` and `init_from_env` import mteb/torch, so they load on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from nvembed_eval.models.base import ModelIdentity, TextEncoder, planned_instruction_template
from nvembed_eval.models.fingerprint import weights_fingerprint

if TYPE_CHECKING:
    from nvembed_eval.models.mteb_adapter import MtebEncoder
    from nvembed_eval.models.nvembed.distributed import init_from_env

__all__ = [
    "ModelIdentity",
    "MtebEncoder",
    "TextEncoder",
    "init_from_env",
    "planned_instruction_template",
    "weights_fingerprint",
]

_LAZY = {
    "MtebEncoder": "nvembed_eval.models.mteb_adapter",
    "init_from_env": "nvembed_eval.models.nvembed.distributed",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
