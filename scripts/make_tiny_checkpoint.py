#!/usr/bin/env python
"""Write a tiny random-weight NV-Embed checkpoint in the official layout (official keys, config.json schema, tokenizer
files copied from --tokenizer-dir; nothing is downloaded).

Examples:
    python scripts/make_tiny_checkpoint.py /tmp/nv_embed_tiny
    python scripts/make_tiny_checkpoint.py /tmp/nv_embed_tiny_sharded --shards 3 --seed 1
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nvembed_eval.errors import NVEmbedEvalError
from nvembed_eval.models.nvembed.tiny import default_tokenizer_dir, write_tiny_checkpoint


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out_dir", type=Path, help="folder to create")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--shards", type=int, default=1, help=">1 writes model-0000i-of-0000n.safetensors + index")
    parser.add_argument(
        "--tokenizer-dir", type=Path, default=None, help=f"tokenizer files to copy (default {default_tokenizer_dir()})"
    )
    parser.add_argument("--overwrite", action="store_true")
    args = parser.parse_args(argv)
    try:
        out = write_tiny_checkpoint(
            args.out_dir,
            seed=args.seed,
            tokenizer_dir=args.tokenizer_dir,
            num_shards=args.shards,
            overwrite=args.overwrite,
        )
    except NVEmbedEvalError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    print(out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
