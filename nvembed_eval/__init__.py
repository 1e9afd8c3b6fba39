"""nvembed-eval: reproduce and track NV-Embed-v2 on MTEB through mteb's own evaluators.

The Python API (nvembed_eval/api.py) loads on first use, so `import nvembed_eval` stays light:

    >>> import nvembed_eval
    >>> run = nvembed_eval.evaluate({"model": "minilm", "benchmark": "smoke"})  # doctest: +SKIP
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from nvembed_eval.errors import NVEmbedEvalError  # what the API raises for any refusal (light: no imports)

if TYPE_CHECKING:
    from nvembed_eval.api import EvalResult, evaluate, leaderboard, load_results

__version__ = "0.1.0"
__all__ = ["EvalResult", "NVEmbedEvalError", "__version__", "evaluate", "leaderboard", "load_results"]

_API = {"EvalResult", "evaluate", "leaderboard", "load_results"}


def __getattr__(name: str) -> Any:
    if name in _API:
        from nvembed_eval import api

        return getattr(api, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
