"""Cache: embeddings keyed by sha256 over model identity, prefix and text, in checksummed safetensors shards
(docs/cache.md); `encoder.CachedEncoder` wraps any model adapter, `cli` is `nvembed-eval-cache`."""
