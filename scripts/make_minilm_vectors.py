"""Write tests/data/minilm_scifact.safetensors: every text a MiniLM run of SciFact (../shared/data) encodes, with the
vector all-MiniLM-L6-v2 gives it, recorded through the harness's own run (`nvembed-eval model=minilm tasks=[SciFact]`).

The test suite seeds its embedding cache with these vectors (tests/conftest.py `minilm_cache`) and checks a sample of
them against live encoding first, so the full-size reproduction of MiniLM's published SciFact score costs seconds, not
the ten CPU minutes of encoding 5,183 abstracts; a change of MiniLM's vectors fails that check and means: rerun this.

    python scripts/make_minilm_vectors.py            # ~10 min on two CPU cores
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
OUT = REPO / "tests" / "data" / "minilm_scifact.safetensors"


def main() -> int:
    from safetensors.numpy import save_file

    from nvembed_eval.cli import main as nvembed_eval
    from nvembed_eval.models.sentence_transformer import encoder_st

    texts: list[str] = []
    vectors: list[np.ndarray] = []
    encode = encoder_st.SentenceTransformerEncoder.encode

    def recording(self, batch, **kwargs):  # the bare model's calls: what the cache stores, text by text
        out = encode(self, batch, **kwargs)
        assert not kwargs.get("prefix"), "MiniLM runs without instructions"
        texts.extend(batch)
        vectors.append(out)
        return out

    encoder_st.SentenceTransformerEncoder.encode = recording
    shared = REPO.parent / "shared" / "data"
    with tempfile.TemporaryDirectory() as scratch:
        args = ["model=minilm", "tasks=[SciFact]", f"data_dir={shared}", f"output_dir={scratch}/run", "cache=off"]
        try:
            nvembed_eval(args)
        except SystemExit as exc:
            if exc.code:
                return int(exc.code)
    unique = dict(zip(texts, np.concatenate(vectors), strict=True))
    encoded = [t.encode("utf-8") for t in unique]
    tensors = {
        "vectors": np.stack(list(unique.values())).astype(np.float32),
        "texts_utf8": np.frombuffer(b"".join(encoded), dtype=np.uint8),
        "text_ends": np.cumsum([len(b) for b in encoded]).astype(np.int64),
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(OUT), metadata={"model": "sentence-transformers/all-MiniLM-L6-v2", "task": "SciFact"})
    print(f"wrote {OUT}: {len(unique)} texts")
    return 0


if __name__ == "__main__":
    sys.exit(main())
