#!/usr/bin/env python
"""Encoding throughput of this NV-Embed implementation vs a reference-style path, same weights, same inputs.

Ours: length-sorted token-budget batches, SDPA with a broadcast padding mask, latent block on pooled tokens only.
Reference-style: input order, fixed batch size, pad to the longest text, eager attention with a materialised
(B, 1, T, T) mask, latent block at every position (how NVIDIA's encode runs). Inputs: SciFact documents as MTEB
embeds them, (title + " " + text).strip(), in file order.

Examples:
    python scripts/bench_encode.py                       # CPU, small shape (hidden 256, 4 layers), fp32
    python scripts/bench_encode.py --full-size --n-texts 1024 --reference eager,sdpa_mask \\
        --variants sdpa,sdpa+compile,varlen,varlen+compile                 # GPU, 7B shape, bf16
"""

from __future__ import annotations

import argparse
import datetime
import platform
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import nvembed_bench as bm  # noqa: E402

from nvembed_eval.models.nvembed.configuration_nvembed import NVEmbedConfig  # noqa: E402
from nvembed_eval.models.nvembed.tiny import build_random_model, default_tokenizer_dir  # noqa: E402
from nvembed_eval.models.nvembed.tokenization_nvembed import NVEmbedTokenizer  # noqa: E402


def first_existing(*paths: Path) -> Path:
    for path in paths:
        if path.exists():
            return path
    return paths[0]


def main(argv: list[str] | None = None) -> int:
    shared = default_tokenizer_dir().parents[1]  # <repo>/../shared (or $NVEMBED_SHARED)
    assets = REPO / ".gpu_assets"
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n-texts", type=int, default=256, help="first N SciFact documents (default 256)")
    parser.add_argument(
        "--data",
        type=Path,
        default=first_existing(shared / "data/SciFact/corpus.jsonl.gz", assets / "scifact_corpus.jsonl.gz"),
    )
    parser.add_argument(
        "--tokenizer-dir", type=Path, default=first_existing(default_tokenizer_dir(), assets / "golden")
    )
    parser.add_argument("--full-size", action="store_true", help="the official 7B shape, random bf16 weights, on GPU")
    parser.add_argument(
        "--config",
        type=Path,
        default=first_existing(
            shared / "reference/nv_embed_v2_checkpoint/config.json", assets / "nv_embed_v2_config.json"
        ),
        help="config.json giving the --full-size shape",
    )
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda[:N]")
    parser.add_argument("--dtype", default=None, help="default: bfloat16 with --full-size, else float32")
    parser.add_argument("--batch-size", type=int, default=1024, help="ours: max texts per batch (token budget rules)")
    parser.add_argument("--token-budget", type=int, default=None, help="ours: padded tokens per batch")
    parser.add_argument("--ref-batch-size", type=int, default=16, help="reference-style: fixed texts per batch")
    parser.add_argument("--reference", default="eager", help="comma list of eager, sdpa_mask (default eager)")
    parser.add_argument(
        "--variants",
        default="sdpa",
        help="ours, comma list of <attn_implementation>[+compile]: sdpa, varlen, flash_attention_2 (CUDA), eager, "
        "each optionally +compile (default sdpa)",
    )
    parser.add_argument("--max-length", type=int, default=32768)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    import torch

    from nvembed_eval.models.nvembed.loading import resolve_device

    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    config = NVEmbedConfig.from_json_file(args.config) if args.full_size else bm.bench_config()
    dtype = getattr(torch, args.dtype or ("bfloat16" if args.full_size else "float32"))
    texts = bm.load_corpus_texts(args.data, args.n_texts)
    tokenizer = NVEmbedTokenizer(args.tokenizer_dir / "tokenizer.json")
    model = build_random_model(config, args.seed, dtype, device)
    n_params = sum(p.numel() for p in model.parameters())
    rows, diffs = bm.compare_paths(
        model,
        tokenizer,
        texts,
        max_length=args.max_length,
        batch_size=args.batch_size,
        ref_batch_size=args.ref_batch_size,
        token_budget=args.token_budget,
        variants=args.variants.split(","),
        reference_kernels=args.reference.split(","),
    )
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else f"{platform.processor() or 'cpu'}"
    print(
        f"# bench_encode {datetime.date.today()} | {where} | torch {torch.__version__} | threads "
        f"{torch.get_num_threads()} | {dtype} | {n_params / 1e6:.1f}M params | {len(texts)} SciFact docs"
    )
    print(bm.format_table(rows, baseline=rows[-1]))
    ours, ref = rows[0], rows[-1]
    print(f"speed-up ours / {ref.name}: {ours.tokens_per_s / ref.tokens_per_s:.2f}x")
    for name, diff in diffs.items():
        print(f"max abs diff of embeddings, {name} vs ours: {diff:.2e}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
