"""Fixtures for the NV-Embed tests: the shared golden set and a tiny random-weight checkpoint per session."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from nvembed_testlib import GOLDEN, REPO, TEXTS

sys.path.insert(0, str(REPO / "scripts"))  # the benchmark helpers the NV-Embed scripts share (nvembed_bench)


@pytest.fixture(scope="session")
def golden_dir() -> Path:
    if not (GOLDEN / "cases.json").is_file():
        pytest.fail(f"golden set missing at {GOLDEN}; CI must provide ../shared (or set NVEMBED_SHARED)")
    return GOLDEN


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory, golden_dir) -> Path:
    """A tiny random-weight checkpoint (seed 0, one weights file), written once per session."""
    from nvembed_eval.models.nvembed.tiny import write_tiny_checkpoint

    return write_tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "nv_embed_tiny", tokenizer_dir=golden_dir)


@pytest.fixture(scope="session")
def tiny_encoder(tiny_dir):
    from nvembed_eval.models.nvembed.encoder_nvembed import NVEmbedEncoder

    return NVEmbedEncoder(str(tiny_dir), device="cpu", max_length=512, progress=False)


@pytest.fixture
def texts() -> list[str]:
    return list(TEXTS)
