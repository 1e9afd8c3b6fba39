"""Checkpoint loading: resolve a folder or hub id, check files, keys and shapes strictly, load safetensors weights.

No code from a checkpoint is ever executed (no `trust_remote_code`, `*.py` files are never downloaded) and pickle
weights are refused unless the caller sets `allow_pickle=True` (even then they are read with `weights_only=True`).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from nvembed_eval.errors import CheckpointError, ConfigError
from nvembed_eval.models.hub import download_snapshot, is_hub_id, snapshot_of_folder
from nvembed_eval.models.safety import PICKLE_PATTERNS, inside, pickle_refused

if TYPE_CHECKING:
    import torch

    from .modeling_nvembed import NVEmbedModel

CONFIG = "config.json"
TOKENIZER = "tokenizer.json"
WEIGHTS = "model.safetensors"
WEIGHTS_INDEX = "model.safetensors.index.json"
PICKLE_WEIGHTS = "pytorch_model.bin"
PICKLE_INDEX = "pytorch_model.bin.index.json"
OFFICIAL_IDS = ("nvidia/NV-Embed-v2", "nvidia/NV-Embed-v1")
# What a hub download fetches: config, weights, tokenizer. Never `*.py` (remote code) and, by default, no pickle.
HUB_PATTERNS = [CONFIG, "*.safetensors", WEIGHTS_INDEX, TOKENIZER, "tokenizer_config.json", "special_tokens_map.json"]
HUB_PICKLE_PATTERNS = [*PICKLE_PATTERNS, PICKLE_INDEX]
DTYPES = ("auto", "float32", "bfloat16", "float16")


@dataclass(frozen=True)
class ResolvedCheckpoint:
    """A local checkpoint folder and, when it came from the hub or its cache, the repo id and commit."""

    folder: Path
    hub_id: str | None = None
    commit: str | None = None

    @property
    def default_name(self) -> str:
        """mteb-style "org/model" name: the hub id, an official name for a folder called like it, else local/<dir>."""
        if self.hub_id:
            return self.hub_id
        for official in OFFICIAL_IDS:
            if self.folder.name.lower() == official.split("/")[1].lower():
                return official
        return f"local/{self.folder.name}"


def resolve_checkpoint(
    path: str | os.PathLike, revision: str | None = None, allow_pickle: bool = False
) -> ResolvedCheckpoint:
    """Turn `model.path` into a local folder: an existing folder as is, or a hub id through the HF cache.

    Args:
        path: A checkpoint folder, an HF cache snapshot folder, or a hub id such as "nvidia/NV-Embed-v2".
        revision: Hub branch, tag or commit (hub ids only); the result holds the commit it resolved to.
        allow_pickle: Also fetch pickle weights from the hub.

    Returns:
        A `ResolvedCheckpoint`.
    """
    folder = Path(path).expanduser()
    if folder.is_dir():
        snapshot = snapshot_of_folder(folder.resolve())
    elif is_hub_id(str(path)):
        patterns = HUB_PATTERNS + (HUB_PICKLE_PATTERNS if allow_pickle else [])
        snapshot = download_snapshot(str(path), revision, patterns, "model.path")
    else:
        raise CheckpointError(
            f"<model.path={str(path)!r}> is neither a checkpoint folder nor a hub id like 'nvidia/NV-Embed-v2'; "
            "point model.path at a folder holding config.json, model.safetensors and tokenizer.json."
        )
    return ResolvedCheckpoint(snapshot.folder, snapshot.repo_id, snapshot.commit)


def weight_files(folder: Path, allow_pickle: bool = False) -> tuple[list[Path], bool]:
    """The checkpoint's weight files (one file or the shards of its index) and whether they are pickle files.

    Shard names in an index must lie inside `folder` (`safety.inside`); pickle files need `allow_pickle`.
    """
    for index_name, single, pickled in ((WEIGHTS_INDEX, WEIGHTS, False), (PICKLE_INDEX, PICKLE_WEIGHTS, True)):
        index, files = folder / index_name, None
        if index.is_file():
            try:
                weight_map = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
                names = sorted(set(weight_map.values()), key=str)
            except (json.JSONDecodeError, KeyError, TypeError, AttributeError) as exc:
                raise CheckpointError(f"{index} is not a valid weight index ({exc}); restore it.") from None
            files = [inside(folder, name, f"{index_name} weight_map") for name in names]
        elif (folder / single).is_file():
            files = [folder / single]
        if files is None:
            continue
        missing = [f.name for f in files if not f.is_file()]
        if missing:
            raise CheckpointError(f"{folder} is missing weight shard(s) {', '.join(missing)}; download them again.")
        if pickled and not allow_pickle:
            raise pickle_refused(folder, files[0].name)
        return files, pickled
    raise CheckpointError(
        f"{folder} has no weights: expected {WEIGHTS} or {WEIGHTS_INDEX} with its shards; download the checkpoint "
        "again."
    )


def loaded_files(folder: Path, allow_pickle: bool = False) -> list[Path]:
    """Every file an NV-Embed load reads: config.json, tokenizer.json, the weight index if any, the weights."""
    weights, pickled = weight_files(folder, allow_pickle)
    index = folder / (PICKLE_INDEX if pickled else WEIGHTS_INDEX)
    return [folder / CONFIG, folder / TOKENIZER, *([index] if index.is_file() else []), *weights]


def check_files(folder: Path) -> None:
    """Raise naming every required non-weight file that is missing."""
    missing = [name for name in (CONFIG, TOKENIZER) if not (folder / name).is_file()]
    if missing:
        raise CheckpointError(
            f"{folder} is missing {', '.join(missing)}; an NV-Embed checkpoint folder needs config.json, "
            f"tokenizer.json and {WEIGHTS} (or {WEIGHTS_INDEX} with its shards). Download the checkpoint again."
        )


def _read_shapes(files: list[Path], pickled: bool) -> dict[str, tuple[int, ...]]:
    """Tensor name -> shape, read from safetensors headers only (no weight bytes are loaded)."""
    shapes: dict[str, tuple[int, ...]] = {}
    if pickled:
        for f in files:
            shapes.update({k: tuple(v.shape) for k, v in _load_pickle(f).items()})
        return shapes
    from safetensors import safe_open

    for f in files:
        try:
            with safe_open(str(f), framework="pt") as handle:
                for key in handle.keys():  # noqa: SIM118 - safe_open is not a dict
                    shapes[key] = tuple(handle.get_slice(key).get_shape())
        except Exception as exc:  # safetensors raises its own SafetensorError
            raise CheckpointError(f"{f} is not a readable safetensors file ({exc}); download it again.") from None
    return shapes


def _load_pickle(path: Path) -> dict[str, torch.Tensor]:
    import torch

    return torch.load(path, map_location="cpu", weights_only=True)


def _listing(names: list[str], limit: int = 8) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" (+{len(names) - limit} more)" if len(names) > limit else "")


def check_keys(expected: dict[str, tuple[int, ...]], found: dict[str, tuple[int, ...]], folder: Path) -> None:
    """Strict comparison of key sets and shapes; the error lists missing, unexpected and mismatched keys."""
    missing = sorted(set(expected) - set(found))
    unexpected = sorted(set(found) - set(expected))
    shared = set(expected) & set(found)
    mismatched = sorted(f"{k} {list(found[k])} (model {list(expected[k])})" for k in shared if found[k] != expected[k])
    problems = []
    if missing:
        problems.append(f"missing keys: {_listing(missing)}")
    if unexpected:
        problems.append(f"unexpected keys: {_listing(unexpected)}")
    if mismatched:
        problems.append(f"shape mismatches: {_listing(mismatched)}")
    if problems:
        raise CheckpointError(
            f"weights in {folder} do not match the NV-Embed model built from its config.json ({'; '.join(problems)}); "
            "use the checkpoint's own config.json and unmodified weight files."
        )


def load_weights(
    model: NVEmbedModel, folder: Path, *, allow_pickle: bool, dtype: torch.dtype, device: torch.device
) -> list[Path]:
    """Check, then load the checkpoint's weights into `model` (built on the meta device) in `dtype` on `device`.

    Returns:
        The weight files that were read.
    """
    files, pickled = weight_files(folder, allow_pickle)
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    check_keys(expected, _read_shapes(files, pickled), folder)
    state: dict[str, torch.Tensor] = {}
    for f in files:
        if pickled:
            state.update({k: v.to(device=device, dtype=dtype) for k, v in _load_pickle(f).items()})
            continue
        from safetensors import safe_open

        load_device = str(device) if device.type in ("cpu", "cuda") else "cpu"
        with safe_open(str(f), framework="pt", device=load_device) as handle:
            for key in handle.keys():  # noqa: SIM118 - safe_open is not a dict
                state[key] = handle.get_tensor(key).to(device=device, dtype=dtype)
    model.load_state_dict(state, strict=True, assign=True)
    return files


def resolve_device(device: str) -> torch.device:
    """`auto` -> cuda (this process's LOCAL_RANK GPU under torchrun) if available, else cpu."""
    import torch

    if device == "auto":
        if not torch.cuda.is_available():
            return torch.device("cpu")
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", torch.cuda.current_device())))
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError):
        raise ConfigError(f"<model.device={device!r}> is not a torch device; use auto, cpu, cuda or cuda:N.") from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"<model.device={device!r}> but CUDA is not available here; set model.device=cpu or auto.")
    return resolved


def resolve_dtype(dtype: str, device: torch.device) -> torch.dtype:
    """`auto` -> bfloat16 on CUDA, float32 elsewhere; refuse dtypes the device cannot run (probed with a tiny op)."""
    import torch

    if str(dtype) not in DTYPES:
        raise ConfigError(f"<model.dtype={dtype!r}> is not one of {', '.join(DTYPES)}; pick one of them.")
    if dtype == "auto":
        dtype = "bfloat16" if device.type == "cuda" else "float32"
    resolved = getattr(torch, dtype)
    if device.type == "cuda" and resolved is torch.bfloat16 and not torch.cuda.is_bf16_supported():
        raise ConfigError(f"<model.dtype=bfloat16> is not supported by {device} ({_device_name(device)}); use float16.")
    try:
        _probe(resolved, device)
    except (RuntimeError, NotImplementedError) as exc:
        raise ConfigError(
            f"<model.dtype={dtype}> cannot run on {device} ({str(exc).splitlines()[0]}); use model.dtype=float32."
        ) from None
    return resolved


def _probe(dtype: torch.dtype, device: torch.device) -> None:
    """Run the op types the model needs (matmul, SDPA, softmax, RMSNorm maths) once on a tiny tensor."""
    import torch
    import torch.nn.functional as F

    x = torch.ones(1, 2, 4, 8, dtype=dtype, device=device)
    F.scaled_dot_product_attention(x, x, x)
    F.layer_norm(x @ x.transpose(-1, -2), (4,))
    F.gelu(x) * F.silu(x)


def _device_name(device: torch.device) -> str:
    import torch

    return torch.cuda.get_device_name(device) if device.type == "cuda" else device.type
