"""Time `nvembed-eval ... plan=true` (goal: under 10 s, no network, no model) and calibrate its characters per token.

    python scripts/bench_plan.py                    # wall time of plan=true for mteb_eng_v1, retrieval and ci
    python scripts/bench_plan.py --calibrate        # NV-Embed's tokenizer on the local MTEB texts (docs/plan.md)

Calibration: the texts of ../shared/data (STSBenchmark, SciFact, Banking77) as mteb feeds them, tokenized with
NV-Embed-v2's own tokenizer files (../shared/golden/nvembed-tiny, byte-identical to the hub's), no special tokens.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("NVEMBED_SHARED", REPO.parent / "shared"))


def time_plans(repeats: int) -> None:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    for args in (["benchmark=mteb_eng_v1", "model=nv_embed_v2"], ["benchmark=retrieval"], ["benchmark=ci"]):
        times, cpu = [], []
        for _ in range(repeats):
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            start = time.perf_counter()
            proc = subprocess.run(
                [sys.executable, "-m", "nvembed_eval", *args, "plan=true"], env=env, capture_output=True, text=True
            )
            times.append(time.perf_counter() - start)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
            if proc.returncode:
                raise SystemExit(proc.stderr)
        print(
            f"plan=true {' '.join(args)}: median {statistics.median(times):.1f} s wall over {repeats} runs "
            f"(min {min(times):.1f}, max {max(times):.1f}); CPU {statistics.median(cpu):.1f} s"
        )
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")


def _jsonl(path: Path) -> list[dict]:
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]


def calibrate() -> None:
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(SHARED / "golden" / "nvembed-tiny" / "tokenizer.json"))
    data = SHARED / "data"
    sts = _jsonl(data / "STSBenchmark" / "test.jsonl.gz")
    corpus = _jsonl(data / "SciFact" / "corpus.jsonl.gz")
    groups = {
        "STSBenchmark sentences": [r["sentence1"] for r in sts] + [r["sentence2"] for r in sts],
        "SciFact documents": [(d["title"] + " " + d["text"]).strip() for d in corpus],
        "SciFact queries": [q["text"] for q in _jsonl(data / "SciFact" / "queries.jsonl.gz")],
        "Banking77 test": [r["text"] for r in _jsonl(data / "Banking77Classification" / "test.jsonl.gz")],
        "NV-Embed instructions (conf/task)": _instructions(),
    }
    print("| texts | n | characters | tokens | chars/token |\n|---|---:|---:|---:|---:|")
    for name, texts in groups.items():
        tokens = sum(len(e.ids) for e in tokenizer.encode_batch(texts, add_special_tokens=False))
        chars = sum(len(t) for t in texts)
        print(f"| {name} | {len(texts):,} | {chars:,} | {tokens:,} | {chars / tokens:.2f} |")


def _instructions() -> list[str]:
    import yaml

    found = set()
    for path in sorted((REPO / "conf" / "task").glob("*.yaml")):
        for text in (yaml.safe_load(path.read_text(encoding="utf-8")).get("instructions") or {}).values():
            if text:
                found.add("Instruct: " + text + "\nQuery: ")
    return sorted(found)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calibrate", action="store_true", help="characters per token instead of timing")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    calibrate() if args.calibrate else time_plans(args.repeats)


if __name__ == "__main__":
    main()
