"""Constants shared by the NV-Embed tests (imported by name: pytest puts this folder on sys.path)."""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SHARED = Path(os.environ["NVEMBED_SHARED"]) if os.environ.get("NVEMBED_SHARED") else REPO.parent / "shared"
GOLDEN = SHARED / "golden" / "nvembed-tiny"
NQ_PREFIX = "Instruct: Given a question, retrieve passages that answer the question\nQuery: "
TEXTS = [
    "are judo throws allowed in wrestling?",
    "a",
    "",
    "Below are the basic steps to becoming a radiologic technologist in Michigan: earn a high school diploma, then an "
    "associate degree, then get licensed or certified in the state of Michigan.",
    "  two leading spaces and a literal </s> inside",
    "日本語のテキスト 🙂",
    "how to become a radiology technician in michigan?",
]
