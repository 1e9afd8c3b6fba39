"""The one packaging step pyproject.toml cannot express: ship the checkout's top-level data folders (Hydra configs,
instruction tables, published score tables) inside the package, so an installed wheel needs no checkout.

Everything else is declared in pyproject.toml; `nvembed_eval.resources` finds these folders at run time (in the
installed package, or in the checkout for an editable install).
"""

from setuptools import find_namespace_packages, setup

# Package name in the wheel -> folder in the checkout.
BUNDLED = {
    "nvembed_eval.conf": "conf",
    "nvembed_eval.instructions": "instructions",
    "nvembed_eval.published": "results/published",
}


def _with_subfolders(package: str, folder: str) -> list[str]:
    """The mapped package and its data subfolders (conf/model, ...), each listed so setuptools ships its files."""
    return [package, *(f"{package}.{sub}" for sub in find_namespace_packages(where=folder, exclude=["*__pycache__*"]))]


setup(
    packages=[
        *find_namespace_packages(include=["nvembed_eval*", "hydra_plugins*"], exclude=["*__pycache__*"]),
        *(name for package, folder in BUNDLED.items() for name in _with_subfolders(package, folder)),
    ],
    package_dir=BUNDLED,
)
