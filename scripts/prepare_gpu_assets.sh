#!/usr/bin/env bash
# Copy what scripts/gpu_check.py needs from ../shared into .gpu_assets/ (about 14 MB, git-ignored locally), so it can
# travel to a GPU machine that has only the repository: the golden tiny set, the official NV-Embed-v2 config.json and
# the first 2000 SciFact documents.
#   bash scripts/prepare_gpu_assets.sh            # NVEMBED_SHARED overrides the ../shared location
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
shared=${NVEMBED_SHARED:-$repo/../shared}
out=$repo/.gpu_assets
golden=$shared/golden/nvembed-tiny

for need in "$golden/cases.json" "$shared/reference/nv_embed_v2_checkpoint/config.json" \
  "$shared/data/SciFact/corpus.jsonl.gz"; do
  [[ -f $need ]] || { echo "error: $need is missing; set NVEMBED_SHARED to the shared folder" >&2; exit 2; }
done

mkdir -p "$out/golden"
for f in config.json model.safetensors tokenizer.json tokenizer_config.json special_tokens_map.json cases.json \
  expected.npz; do
  install -m 0644 "$golden/$f" "$out/golden/$f"
done
install -m 0644 "$shared/reference/nv_embed_v2_checkpoint/config.json" "$out/nv_embed_v2_config.json"
(gzip -dc "$shared/data/SciFact/corpus.jsonl.gz" || true) | head -n 2000 | gzip -n >"$out/scifact_corpus.jsonl.gz"

# Keep the copy out of `git status` (local exclude file; nothing tracked changes).
exclude=$(git -C "$repo" rev-parse --git-path info/exclude 2>/dev/null || true)
if [[ -n $exclude ]]; then
  [[ $exclude = /* ]] || exclude=$repo/$exclude
  mkdir -p "$(dirname "$exclude")"
  grep -qxF '/.gpu_assets/' "$exclude" 2>/dev/null || echo '/.gpu_assets/' >>"$exclude"
fi
du -sh "$out"
echo "carry .gpu_assets to the GPU machine, then run: python3 scripts/gpu_check.py"
