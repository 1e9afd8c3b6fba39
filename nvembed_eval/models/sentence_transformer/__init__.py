"""Sentence-transformers models (all-MiniLM-L6-v2 is the CPU baseline used by the tests)."""
