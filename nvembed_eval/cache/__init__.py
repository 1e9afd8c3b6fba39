"""Cache: embeddings keyed by sha256 over model identity, prefix and text, stored as checksummed safetensors shards
(docs/cache.md). `encoder.CachedEncoder` wraps any model adapter; `store` keeps the shards and prunes them; `claims`
lets concurrent jobs split work; `cli` is `nvembed-eval-cache` (inspect, clear, prune)."""
