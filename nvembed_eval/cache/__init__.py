"""Cache: embeddings keyed by sha256 over model identity, prefix and text, stored as checksummed safetensors shards
(docs/cache.md); `CachedEncoder` wraps any model adapter, `nvembed-eval-cache` inspects, clears and prunes.
"""

from nvembed_eval.cache.encoder import CachedEncoder, default_cache_dir, human_size, parse_size
from nvembed_eval.cache.store import prune_root

__all__ = ["CachedEncoder", "default_cache_dir", "human_size", "parse_size", "prune_root"]
