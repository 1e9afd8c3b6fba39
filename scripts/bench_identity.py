"""What an exact model identity costs: sha256 over every byte of a checkpoint folder the size of NV-Embed-v2 (15 GB in
4 shards), first with no remembered digests, then again with them (`io.file_sha256(remember=True)`).

    python scripts/bench_identity.py --size-gb 15             # writes the folder under a temp dir, removes it after
    python scripts/bench_identity.py --folder /weights/NV-Embed-v2

The shards are written with real (non-zero) bytes so the disk is read as for a real checkpoint; the first pass is
bounded by disk read and sha256 speed (one core), the second by one stat per file.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nvembed_eval.models.base import folder_revision

CHUNK = 64 * 1024 * 1024


def write_folder(root: Path, size_gb: float, shards: int = 4) -> list[Path]:
    """`shards` safetensors-named files of `size_gb` GB in all, plus config.json and tokenizer.json."""
    root.mkdir(parents=True, exist_ok=True)
    block = os.urandom(CHUNK)
    files = []
    per_shard = int(size_gb * 1e9 / shards)
    for i in range(shards):
        path = root / f"model-{i + 1:05d}-of-{shards:05d}.safetensors"
        with path.open("wb") as handle:
            left = per_shard
            while left > 0:
                handle.write(block[: min(CHUNK, left)])
                left -= CHUNK
        files.append(path)
    for name in ("config.json", "tokenizer.json"):
        (root / name).write_text(json.dumps({"name": name}))
        files.append(root / name)
    return files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-gb", type=float, default=15.0)
    parser.add_argument("--folder", type=Path, default=None, help="an existing checkpoint folder instead")
    args = parser.parse_args(argv)
    scratch = Path(tempfile.mkdtemp(prefix="bench-identity-"))
    os.environ["NVEMBED_EVAL_DIGESTS"] = str(scratch / "digests")  # no digest remembered before this run
    try:
        if args.folder:
            folder = args.folder
            files = [p for p in folder.iterdir() if p.is_file()]
        else:
            folder = scratch / "checkpoint"
            start = time.perf_counter()
            files = write_folder(folder, args.size_gb)
            print(f"wrote {args.size_gb:g} GB in {time.perf_counter() - start:.1f} s")
        size = sum(p.stat().st_size for p in files)
        start = time.perf_counter()
        first = folder_revision(folder, files)
        cold = time.perf_counter() - start
        start = time.perf_counter()
        second = folder_revision(folder, files)
        warm = time.perf_counter() - start
        assert first == second
        print(f"{len(files)} files, {size / 1e9:.2f} GB: identity {first}")
        print(f"first run (every byte read): {cold:.1f} s = {size / 1e6 / cold:.0f} MB/s")
        print(f"next runs (digests remembered): {warm * 1e3:.1f} ms ({cold / warm:,.0f}x faster)")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
