"""NV-Embed inputs as NVIDIA's encode builds them (golden README items 1-7, 12-16): `tokenizer.json` as-is
(`AutoTokenizer`'s Metaspace rebuild gets leading spaces and literal special tokens wrong), EOS, truncation, padding."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nvembed_eval.errors import CheckpointError

BOS, EOS = "<s>", "</s>"
TOKENIZE_CHUNK = 8192  # texts per encode_batch call: bounds the memory held by Rust `Encoding` objects


@dataclass
class EncodedBatch:
    """Right-padded model inputs for a list of texts, row i for text i. All arrays are int64 (B, L)."""

    input_ids: np.ndarray
    attention_mask: np.ndarray
    pool_mask: np.ndarray
    instruction_lens: int


class NVEmbedTokenizer:
    """Wraps a `tokenizers.Tokenizer` built from the checkpoint's `tokenizer.json`, unchanged."""

    def __init__(self, tokenizer_file: str | Path):
        from tokenizers import Tokenizer

        try:
            self._tok = Tokenizer.from_file(str(tokenizer_file))
        except Exception as exc:  # the Rust library raises a bare Exception on a bad file
            message = f"cannot read {tokenizer_file} ({exc}); restore the checkpoint's tokenizer.json."
            raise CheckpointError(message) from None
        self._tok.no_truncation()  # we truncate ourselves, counting <s>, exactly like NVIDIA's call
        self._tok.no_padding()
        self.bos_id, self.eos_id = self._tok.token_to_id(BOS), self._tok.token_to_id(EOS)
        if self.bos_id is None or self.eos_id is None:
            raise CheckpointError(f"{tokenizer_file} has no {BOS} / {EOS} token; this is not the Mistral tokenizer.")
        if self._tok.encode("").ids != [self.bos_id]:
            raise CheckpointError(f"{tokenizer_file} does not add {BOS} to a sequence; use the checkpoint's file.")
        self.pad_id = self.eos_id  # NVIDIA sets pad = </s> (id 2)

    def instruction_length(self, prefix: str) -> int:
        """Tokens of the prefix tokenized alone, without <s> (NVIDIA's `len(tokenizer.tokenize(prefix))`)."""
        return len(self._tok.encode(prefix, add_special_tokens=False).ids) if prefix else 0

    def token_ids(self, texts: Sequence[str], prefix: str, max_length: int) -> list[np.ndarray]:
        """`<s>` + tokens of (prefix + text + "</s>"), cut to `max_length` tokens (a cut </s> is not restored); one
        int32 array per text (a tenth of the memory of Python int lists, for large corpora)."""
        ids = []
        for start in range(0, len(texts), TOKENIZE_CHUNK):
            chunk = [prefix + text + EOS for text in texts[start : start + TOKENIZE_CHUNK]]
            ids += [np.asarray(enc.ids[:max_length], dtype=np.int32) for enc in self._tok.encode_batch(chunk)]
        return ids

    def pad(self, ids: Sequence[Sequence[int] | np.ndarray], instruction_lens: int) -> EncodedBatch:
        """Right-pad with </s>; pool_mask = attention_mask with positions [0, instruction_lens) zeroed. Counting from
        position 0 (<s>) is NVIDIA's rule; for prefixes ending in "Query: " it masks exactly <s> and the instruction
        (golden README item 3)."""
        width = max(len(row) for row in ids)
        input_ids = np.full((len(ids), width), self.pad_id, dtype=np.int64)
        attention_mask = np.zeros((len(ids), width), dtype=np.int64)
        for i, row in enumerate(ids):
            input_ids[i, : len(row)] = row
            attention_mask[i, : len(row)] = 1
        pool_mask = attention_mask.copy()
        pool_mask[:, :instruction_lens] = 0
        return EncodedBatch(input_ids, attention_mask, pool_mask, instruction_lens)

    def __call__(
        self, texts: Sequence[str], prefix: str = "", max_length: int = 32768, mask_instruction: bool = True
    ) -> EncodedBatch:
        """Tokenize and pad `texts` in the given order, as NVIDIA's `encode(texts, instruction=prefix)` does."""
        n_instr = self.instruction_length(prefix) if mask_instruction else 0
        return self.pad(self.token_ids(texts, prefix, max_length), n_instr)
