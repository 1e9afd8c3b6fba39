"""Measure what moves the probe embeddings, to justify `nvembed-eval-probe`'s default tolerances (docs/probes.md).

For the tiny random-weight NV-Embed and all-MiniLM-L6-v2 on this machine's device: batch-size invariance and thread
count in float32, bfloat16 against float32, batch-size invariance in bfloat16, and (tiny only) a 1e-3 change of one
weight. Each row is the largest and the smallest per-text max abs difference of L2-normalised embeddings over the
probe set, and the smallest cosine.

    python scripts/measure_probe_tolerance.py                 # CPU, about 3 minutes on 2 cores
    python scripts/measure_probe_tolerance.py --device cuda   # the GPU figures docs/probes.md still lacks
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from nvembed_eval.models.probe import compare_embeddings, encode_probes, load_probe_set

PERTURBED_WEIGHT = ("embedding_model.norm.weight", 0)  # (tensor, flat index) the tests perturb as well
PERTURBATION = 1e-3


def tiny_encoder(path: Path, dtype: str, device: str):
    from nvembed_eval.models.nvembed.encoder_nvembed import NVEmbedEncoder

    return NVEmbedEncoder(str(path), dtype=dtype, device=device, max_length=512, create_tiny_if_missing=True)


def minilm_encoder(dtype: str, device: str):
    import torch

    from nvembed_eval.models.sentence_transformer.encoder_st import SentenceTransformerEncoder

    encoder = SentenceTransformerEncoder(device=device, show_progress=False)
    if dtype == "bfloat16":
        encoder.model.to(torch.bfloat16)
    return encoder


def perturbed_copy(src: Path, dst: Path) -> Path:
    """A copy of the tiny checkpoint with PERTURBATION added to one element of one weight."""
    from safetensors.numpy import load_file, save_file

    shutil.copytree(src, dst)
    weights = load_file(str(dst / "model.safetensors"))
    name, index = PERTURBED_WEIGHT
    weights[name].reshape(-1)[index] += np.float32(PERTURBATION)
    save_file(weights, str(dst / "model.safetensors"), metadata={"format": "pt"})
    return dst


def row(label: str, probe_set, a: np.ndarray, b: np.ndarray) -> str:
    cmp = compare_embeddings(probe_set, a, b, tolerance=0.0)
    return (
        f"| {label} | {np.max(cmp.max_abs):.2e} | {np.min(cmp.max_abs):.2e} | {np.min(cmp.cosine):.9f} | "
        f"{np.count_nonzero(cmp.max_abs)}/{len(cmp.max_abs)} |"
    )


def main() -> None:
    import torch

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--tiny", type=Path, default=Path("~/.cache/nvembed-eval/nv_embed_tiny_v1").expanduser())
    args = parser.parse_args()
    probes = load_probe_set()
    threads = torch.get_num_threads()
    print(
        f"probe set v{probes.version}, {len(probes.probes)} texts; torch {torch.__version__}, device {args.device}, "
        f"{threads} threads"
    )
    print("| comparison | largest max abs diff | smallest max abs diff | min cosine | texts that moved |")
    print("|---|---:|---:|---:|---:|")
    start = time.perf_counter()
    for family in ("tiny", "minilm"):

        def build(dtype: str, family: str = family):
            return (
                tiny_encoder(args.tiny, dtype, args.device) if family == "tiny" else minilm_encoder(dtype, args.device)
            )

        fp32 = build("float32")
        base = encode_probes(fp32, probes, 32)
        print(row(f"{family} float32: same call twice", probes, base, encode_probes(fp32, probes, 32)), flush=True)
        print(row(f"{family} float32: batch size 32 vs 1", probes, base, encode_probes(fp32, probes, 1)), flush=True)
        print(row(f"{family} float32: batch size 32 vs 7", probes, base, encode_probes(fp32, probes, 7)), flush=True)
        if args.device == "cpu" and threads > 1:
            torch.set_num_threads(1)
            one_thread = encode_probes(fp32, probes, 32)
            torch.set_num_threads(threads)
            print(row(f"{family} float32: {threads} threads vs 1", probes, base, one_thread), flush=True)
        bf16 = build("bfloat16")
        low = encode_probes(bf16, probes, 32)
        print(row(f"{family} bfloat16 vs float32", probes, base, low), flush=True)
        print(row(f"{family} bfloat16: batch size 32 vs 1", probes, low, encode_probes(bf16, probes, 1)), flush=True)
        if family == "tiny":
            with tempfile.TemporaryDirectory() as tmp:
                moved = tiny_encoder(perturbed_copy(args.tiny, Path(tmp) / "perturbed"), "float32", args.device)
                name, index = PERTURBED_WEIGHT
                label = f"tiny float32: {name}[{index}] += {PERTURBATION:g}"
                print(row(label, probes, base, encode_probes(moved, probes, 32)), flush=True)
    print(f"\n{time.perf_counter() - start:.0f} s; {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
