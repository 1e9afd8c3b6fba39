"""Where the files shipped with the package live (the Hydra config tree, the instruction tables, the published score
tables): inside the installed package for a wheel, in the checkout for an editable install; never the working folder.
"""

from __future__ import annotations

import os
from pathlib import Path

from nvembed_eval.errors import ConfigError

# Name inside the installed package -> folder in the source checkout (pyproject.toml maps one onto the other).
BUNDLED = {"conf": "conf", "instructions": "instructions", "published": "results/published"}
CONF_ENV = "NVEMBED_EVAL_CONF"  # a whole replacement config tree (tests, forks); a user's own configs compose on top


def bundled_dir(name: str) -> Path:
    """The folder of one bundled data set.

    Args:
        name: "conf", "instructions" or "published".

    Returns:
        `<site-packages>/nvembed_eval/<name>` in an installed wheel, else the checkout's folder next to the package
        (`<repo>/conf`, `<repo>/instructions`, `<repo>/results/published`) for an editable install.

    Raises:
        ConfigError: neither exists (a broken install).
    """
    package = Path(__file__).resolve().parent
    for candidate in (package / name, package.parent / BUNDLED[name]):
        if candidate.is_dir():
            return candidate
    raise ConfigError(
        f"the package's {name}/ folder is missing from {package}; reinstall nvembed-eval (pip install nvembed-eval, "
        "or pip install -e . in a checkout)"
    )


def conf_dir() -> Path:
    """The Hydra config root: `$NVEMBED_EVAL_CONF` when set, else the bundled `conf/`."""
    override = os.environ.get(CONF_ENV)
    return Path(override) if override else bundled_dir("conf")
