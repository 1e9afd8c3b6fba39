#!/usr/bin/env python
"""Run the NV-Embed model card example (2 queries x 2 passages) and print the score matrix x 100.

Both cards use the same texts and instruction. With the real weights, the nvidia/NV-Embed-v2 card reports
[[87.43, 0.46], [0.97, 86.04]] (max_length 32768) and the nvidia/NV-Embed-v1 card [[77.94, 0.42], [3.76, 79.60]]
(max_length 4096); --expect-card checks the chosen card (--card) within +-0.05 and exits 1 otherwise. That check
cannot run in this project's offline CI (no network, no 15 GB weights); point --model at a downloaded copy (folder or
HF cache) on a machine that has one. Against the tiny random checkpoint (tests) it runs the same path and prints
different numbers.

Examples:
    python scripts/check_model_card_example.py --model nvidia/NV-Embed-v2 --expect-card        # GPU + weights
    python scripts/check_model_card_example.py --model nvidia/NV-Embed-v1 --card v1 --expect-card
    python scripts/check_model_card_example.py --model /tmp/nv_embed_tiny --device cpu
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nvembed_eval.errors import NVEmbedEvalError

TASK = "Given a question, retrieve passages that answer the question"
QUERIES = ["are judo throws allowed in wrestling?", "how to become a radiology technician in michigan?"]
PASSAGES = [
    "Since you're reading this, you are probably someone from a judo background or someone who is just wondering how "
    "judo techniques can be applied under wrestling rules. So without further ado, let's get to the question. Are Judo "
    "throws allowed in wrestling? Yes, judo throws are allowed in freestyle and folkstyle wrestling. You only need to "
    "be careful to follow the slam rules when executing judo throws. In wrestling, a slam is lifting and returning an "
    "opponent to the mat with unnecessary force.",
    "Below are the basic steps to becoming a radiologic technologist in Michigan:Earn a high school diploma. As with "
    "most careers in health care, a high school education is the first step to finding entry-level employment. Taking "
    "classes in math and science, such as anatomy, biology, chemistry, physiology, and physics, can help prepare "
    "students for their college studies and future careers.Earn an associate degree. Entry-level radiologic positions "
    "typically require at least an Associate of Applied Science. Before enrolling in one of these degree programs, "
    "students should make sure it has been properly accredited by the Joint Review Committee on Education in "
    "Radiologic Technology (JRCERT).Get licensed or certified in the state of Michigan.",
]
# Each card's printed score matrix and the max_length its example passes to encode().
CARDS = {
    "v2": (np.array([[87.43, 0.46], [0.97, 86.04]]), 32768),
    "v1": (np.array([[77.94, 0.42], [3.76, 79.60]]), 4096),
}
TOLERANCE = 0.05


def card_scores(encoder) -> np.ndarray:
    """(query x passage) cosine scores x 100, encoded exactly as the model card does."""
    prefix = encoder.instruction_template().format(instruction=TASK)
    queries = encoder.encode(QUERIES, prefix=prefix)
    passages = encoder.encode(PASSAGES, prefix="")
    return queries @ passages.T * 100


def deviation_from_card(scores: np.ndarray, card: str) -> tuple[float, bool]:
    """The largest absolute difference from the card's matrix, and whether it is within TOLERANCE."""
    worst = float(np.abs(scores - CARDS[card][0]).max())
    return worst, worst <= TOLERANCE


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="checkpoint folder, HF cache snapshot or hub id")
    parser.add_argument("--revision", default=None)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--dtype", default="float32", help="float32 (default; 30 GB on GPU), bfloat16, float16")
    parser.add_argument("--card", choices=sorted(CARDS), default="v2", help="which model card to compare with")
    parser.add_argument("--max-length", type=int, default=None, help="default: the card's (v2 32768, v1 4096)")
    parser.add_argument("--expect-card", action="store_true", help="exit 1 unless within +-0.05 of the card")
    args = parser.parse_args(argv)
    card_matrix, card_max_length = CARDS[args.card]

    from nvembed_eval.models.nvembed.encoder_nvembed import NVEmbedEncoder

    try:
        encoder = NVEmbedEncoder(
            args.model,
            revision=args.revision,
            device=args.device,
            dtype=args.dtype,
            max_length=args.max_length or card_max_length,
        )
        scores = card_scores(encoder)
    except NVEmbedEvalError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    identity = encoder.identity
    print(f"{identity.name} @ {identity.revision} ({args.dtype}, {encoder.device}, max_length {encoder.max_length})")
    print(np.array2string(scores, precision=2, floatmode="fixed", suppress_small=True))
    if args.expect_card:
        worst, ok = deviation_from_card(scores, args.card)
        print(f"{args.card} card: {card_matrix.tolist()}; max deviation {worst:.3f} -> {'OK' if ok else 'MISMATCH'}")
        return 0 if ok else 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
