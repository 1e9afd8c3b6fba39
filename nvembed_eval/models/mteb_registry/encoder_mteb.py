"""MtebRegistryEncoder: any sentence-transformers model in mteb's registry, with mteb's own per-task prompts, recorded
by the commit of the hub snapshot actually loaded (mteb's `ModelMeta.revision` is only a claim)."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from nvembed_eval.errors import CheckpointError, ConfigError, EncodingError, NVEmbedEvalError
from nvembed_eval.models.base import ModelIdentity
from nvembed_eval.models.hub import download_snapshot
from nvembed_eval.models.sentence_transformer.checkpoint import check_folder, check_loaded, hub_patterns
from nvembed_eval.models.sentence_transformer.encoder_st import auto_device, count_tokens, st_model_kwargs

if TYPE_CHECKING:
    from mteb.abstasks.task_metadata import TaskMetadata
    from mteb.models.abs_encoder import AbsEncoder
    from mteb.models.model_meta import ModelMeta

log = logging.getLogger(__name__)

PROMPT_KEY_PREFIX = "mteb-prompt:"


def _stable(value: Any) -> Any:
    """A JSON-able, run-independent form of loader arguments (functions by their qualified name, not their address)."""
    if callable(value):
        return f"{getattr(value, '__module__', '')}.{getattr(value, '__qualname__', type(value).__name__)}"
    if isinstance(value, dict):
        return {str(k): _stable(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, (list, tuple)):
        return [_stable(v) for v in value]
    return value if isinstance(value, (str, int, float, bool, type(None))) else repr(value)


class MtebRegistryEncoder:
    """`TextEncoder` over a model of mteb's registry (`name` as `mteb.get_model_meta` knows it) that mteb loads with
    sentence-transformers; `revision` None = the registry's. ConfigError: unknown name, a loader that cannot be pinned
    to a commit or needs remote code. CheckpointError: the snapshot cannot be resolved or loaded, holds pickle, or
    names files outside itself."""

    def __init__(
        self, name: str | None = None, revision: str | None = None, device: str = "auto", allow_pickle: bool = False
    ) -> None:
        import mteb
        from mteb.models.instruct_wrapper import InstructSentenceTransformerModel
        from mteb.models.sentence_transformer_wrapper import SentenceTransformerEncoderWrapper

        if not name:
            hint = "give a name from mteb's registry, e.g. model.name=sentence-transformers/all-MiniLM-L6-v2"
            raise ConfigError(f"<model.name> is required with model=mteb; {hint}")
        try:
            meta = mteb.get_model_meta(name)
        except KeyError as exc:  # mteb's message carries its suggestion
            message, registry = exc.args[0] if exc.args else exc, "mteb's registry (mteb.get_model_metas())"
            raise ConfigError(f"<model.name={name}>: {message} model=mteb runs models of {registry}.") from None
        # mteb loaders whose first argument goes straight to `SentenceTransformer(...)` (so a snapshot folder can
        # replace the hub id) -> how each applies prompts: "prompt" (`model_prompts`) or "instruction"
        # (`get_task_instruction`). Subclasses are left out: they may override what is keyed here.
        loaders = {SentenceTransformerEncoderWrapper: "prompt", InstructSentenceTransformerModel: "instruction"}
        prompt_style = loaders.get(meta.loader) if isinstance(meta.loader, type) else None
        loader_name = getattr(meta.loader, "__qualname__", repr(meta.loader))
        if (meta.loader_kwargs or {}).get("trust_remote_code"):
            remote = "mteb loads it with trust_remote_code=True (code from the model repo)"
            native = "for NV-Embed use model=nv_embed_v2 or model=nv_embed_v1 (native code)."
            raise ConfigError(f"<model.name={name}>: {remote}, which this harness never runs; {native}")
        if prompt_style is None:
            runs = f"model=mteb runs models mteb loads with {' or '.join(c.__name__ for c in loaders)}."
            unpinned = f"which this harness cannot pin to the commit it loads; {runs}"
            raise ConfigError(f"<model.name={name}> is loaded by mteb's {loader_name}, {unpinned}")
        snapshot = download_snapshot(meta.name, revision or meta.revision, hub_patterns(allow_pickle), "model.name")
        check_folder(snapshot.folder, allow_pickle, key="model.name")
        if snapshot.commit != meta.revision:
            message = "%s: loading commit %s; mteb's registry lists %s (its published scores are for that one)"
            log.warning(message, meta.name, snapshot.commit, meta.revision)
        self.mteb_model = self._load(meta, str(snapshot.folder), auto_device(device), name, allow_pickle)
        check_loaded(self.mteb_model.model, snapshot.folder, allow_pickle)
        self.mteb_model.mteb_model_meta = meta.model_copy(update={"revision": snapshot.commit})
        self.folder = snapshot.folder
        self._prompt_style = prompt_style
        self._mteb_version = mteb.__version__
        self._tasks: dict[str, TaskMetadata] = {}
        st_model = self.mteb_model.model
        self.embed_dim = int(st_model.get_embedding_dimension())
        self.max_tokens: int | None = int(st_model.max_seq_length) if st_model.max_seq_length else None
        kwargs = json.dumps(_stable(meta.loader_kwargs or {}), sort_keys=True)
        knobs = {"mteb": self._mteb_version, "loader": loader_name, "loader_kwargs": kwargs}
        self.identity = ModelIdentity(meta.name, snapshot.commit or "", knobs | {"max_seq_length": self.max_tokens})
        self.stats: dict[str, int] = {"texts": 0, "tokens": 0}
        log.info("loaded %s from %s: %s", meta.name, snapshot.folder, self.identity)

    @staticmethod
    def _load(meta: ModelMeta, folder: str, device: str, name: str, allow_pickle: bool) -> AbsEncoder:
        """mteb's own `ModelMeta.load_model`, pointed at the snapshot folder instead of the hub id, with the loading
        settings of the sentence-transformers family (`st_model_kwargs`)."""
        loader_kwargs = dict(meta.loader_kwargs or {})
        model_kwargs = {**loader_kwargs.get("model_kwargs", {}), **st_model_kwargs(allow_pickle)}
        update = {"name": folder, "revision": None, "loader_kwargs": {**loader_kwargs, "model_kwargs": model_kwargs}}
        try:
            return meta.model_copy(update=update).load_model(device=device)
        except NVEmbedEvalError:
            raise
        except Exception as exc:  # whatever sentence-transformers or mteb raise for a broken folder
            reason = (str(exc).strip().splitlines() or [""])[0]
            why = f"({type(exc).__name__}: {reason}); download the model again."
            raise CheckpointError(f"cannot load mteb model <model.name={name}> from {folder} {why}") from None

    @staticmethod
    def template_for_config(config: Mapping[str, Any]) -> None:
        """`plan=true`: no prefix of the harness's. mteb's model adds its own prompts, which the plan does not count,
        as the run's own token counts do not (`count_tokens` counts the texts)."""
        return None

    def instruction_template(self) -> None:  # mteb's model applies its own prompts; the runner asks `prompt_key`
        return None

    def _metadata(self, task_name: str) -> TaskMetadata:
        if task_name not in self._tasks:
            import mteb

            self._tasks[task_name] = mteb.get_task(task_name).metadata
        return self._tasks[task_name]

    def prompt_key(self, task_name: str, side: str | None) -> str:
        """What mteb's model does for this task and side: "mteb-prompt:" + JSON of mteb version, wrapper, side (mteb
        calls `encode_query` or `encode_document` by it) and the prompt name and text (`get_prompt_name`,
        `model_prompts`; plain wrapper) or the formatted instruction (`get_task_instruction`; instruct wrapper)."""
        from mteb.types import PromptType

        metadata = self._metadata(task_name)
        prompt_type = PromptType(side) if side else None
        resolved: dict[str, Any] = {"mteb": self._mteb_version, "wrapper": type(self.mteb_model).__name__, "side": side}
        if self._prompt_style == "instruction":
            resolved["instruction"] = self.mteb_model.get_task_instruction(metadata, prompt_type)
        else:
            prompt_name = self.mteb_model.get_prompt_name(metadata, prompt_type)
            resolved["prompt_name"] = prompt_name
            resolved["prompt"] = (self.mteb_model.model_prompts or {}).get(prompt_name) if prompt_name else None
        return PROMPT_KEY_PREFIX + json.dumps(resolved, sort_keys=True, ensure_ascii=False)

    def encode(
        self,
        texts: Sequence[str],
        *,
        prefix: str = "",
        batch_size: int = 32,
        task_name: str | None = None,
        side: str | None = None,
    ) -> np.ndarray:
        """float32 (len(texts), embed_dim) from the mteb model's own `encode` for `task_name` on `side`; EncodingError
        when `task_name` is missing (prompts depend on it) or `prefix` is not `prompt_key(task_name, side)`."""
        from datasets import Dataset
        from mteb.types import PromptType
        from torch.utils.data import DataLoader

        if task_name is None:
            raise EncodingError(f"{self.identity.name} (model=mteb) needs the task name to choose mteb's prompt")
        if prefix != self.prompt_key(task_name, side):
            wrong = f"prefix {prefix!r} for {task_name} is not this model's prompt key"
            raise EncodingError(f"{wrong}; the runner must use prompt_key()")
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.embed_dim), dtype=np.float32)
        metadata = self._metadata(task_name)
        # The shape mteb's own text loaders have: a DataLoader over a `datasets.Dataset` with a "text" column.
        loader = DataLoader(Dataset.from_dict({"text": texts}), batch_size=batch_size)
        vectors = self.mteb_model.encode(
            loader,
            task_metadata=metadata,
            hf_split=metadata.eval_splits[0] if metadata.eval_splits else "test",
            hf_subset="default",  # read by neither supported wrapper
            prompt_type=PromptType(side) if side else None,
            batch_size=batch_size,
            show_progress_bar=len(texts) > batch_size,
        )
        if hasattr(vectors, "detach"):
            vectors = vectors.detach().cpu().float().numpy()
        self.stats["texts"] += len(texts)
        self.stats["tokens"] += count_tokens(self.mteb_model.model, texts)  # the texts' tokens, not the prompt's
        return np.asarray(vectors, dtype=np.float32)
