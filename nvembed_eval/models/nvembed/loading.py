"""Checkpoint loading: resolve a folder or hub id, check files, keys and shapes strictly, load safetensors weights.
No checkpoint code ever runs (`*.py` is never downloaded); pickle needs `allow_pickle=True` (read `weights_only`)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from nvembed_eval.errors import CheckpointError, ConfigError
from nvembed_eval.models.hub import Snapshot, download_snapshot, is_hub_id, snapshot_of_folder
from nvembed_eval.models.safety import PICKLE_PATTERNS
from nvembed_eval.models.weights import (
    PICKLE_INDEX,
    WEIGHTS,
    WEIGHTS_INDEX,
    check_weights,
    read_pickle,
    stored_shapes,
    weight_files,
)

if TYPE_CHECKING:
    import torch

    from .modeling_nvembed import NVEmbedModel

CONFIG = "config.json"
TOKENIZER = "tokenizer.json"
OFFICIAL_IDS = ("nvidia/NV-Embed-v2", "nvidia/NV-Embed-v1")
# What a hub download fetches: config, weights, tokenizer. Never `*.py` (remote code) and, by default, no pickle.
HUB_PATTERNS = [CONFIG, "*.safetensors", WEIGHTS_INDEX, TOKENIZER, "tokenizer_config.json", "special_tokens_map.json"]
HUB_PICKLE_PATTERNS = [*PICKLE_PATTERNS, PICKLE_INDEX]
DTYPES = ("auto", "float32", "bfloat16", "float16")


def default_name(snapshot: Snapshot) -> str:
    """mteb-style "org/model" name: the hub id, an official name for a folder called like it, else local/<dir>."""
    if snapshot.repo_id:
        return snapshot.repo_id
    for official in OFFICIAL_IDS:
        if snapshot.folder.name.lower() == official.split("/")[1].lower():
            return official
    return f"local/{snapshot.folder.name}"


def resolve_checkpoint(path: str | os.PathLike, revision: str | None = None, allow_pickle: bool = False) -> Snapshot:
    """`model.path` as a local folder: a checkpoint or HF cache snapshot folder as is, or a hub id through the HF
    cache at `revision` (its commit recorded), with pickle weights only if `allow_pickle`."""
    folder = Path(path).expanduser()
    if folder.is_dir():
        return snapshot_of_folder(folder.resolve())
    if not is_hub_id(str(path)):
        fix = "point model.path at a folder holding config.json, model.safetensors and tokenizer.json."
        neither = "is neither a checkpoint folder nor a hub id like 'nvidia/NV-Embed-v2'"
        raise CheckpointError(f"<model.path={str(path)!r}> {neither}; {fix}")
    patterns = HUB_PATTERNS + (HUB_PICKLE_PATTERNS if allow_pickle else [])
    return download_snapshot(str(path), revision, patterns, "model.path")


def loaded_files(folder: Path, allow_pickle: bool = False) -> list[Path]:
    """Every file an NV-Embed load reads: config.json, tokenizer.json, the weight index if any, the weights."""
    weights, pickled = weight_files(folder, allow_pickle)
    index = folder / (PICKLE_INDEX if pickled else WEIGHTS_INDEX)
    return [folder / CONFIG, folder / TOKENIZER, *([index] if index.is_file() else []), *weights]


def check_files(folder: Path) -> None:
    missing = [name for name in (CONFIG, TOKENIZER) if not (folder / name).is_file()]
    if missing:
        needs = "an NV-Embed checkpoint folder needs config.json, tokenizer.json and "
        needs += f"{WEIGHTS} (or {WEIGHTS_INDEX} with its shards)"
        raise CheckpointError(f"{folder} is missing {', '.join(missing)}; {needs}. Download the checkpoint again.")


def load_weights(
    model: NVEmbedModel, folder: Path, *, allow_pickle: bool, dtype: torch.dtype, device: torch.device
) -> list[Path]:
    """Check, then load the weights into `model` (built on the meta device) in `dtype` on `device`; the files read."""
    files, pickled = weight_files(folder, allow_pickle)
    check_weights(model, stored_shapes(files, pickled), folder, "the NV-Embed model built from its config.json")
    state: dict[str, torch.Tensor] = {}
    for f in files:
        if pickled:
            state.update({k: v.to(device=device, dtype=dtype) for k, v in read_pickle(f).items()})
            continue
        from safetensors import safe_open

        load_device = str(device) if device.type in ("cpu", "cuda") else "cpu"
        with safe_open(str(f), framework="pt", device=load_device) as handle:
            for key in handle.keys():  # noqa: SIM118 - safe_open is not a dict
                state[key] = handle.get_tensor(key).to(device=device, dtype=dtype)
    needed = model.state_dict().keys()  # a stored non-persistent buffer was accepted above, and is not loaded
    model.load_state_dict({k: v for k, v in state.items() if k in needed}, strict=True, assign=True)
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
        gpu = torch.cuda.get_device_name(device)
        raise ConfigError(f"<model.dtype=bfloat16> is not supported by {device} ({gpu}); use float16.")
    try:
        _probe(resolved, device)
    except (RuntimeError, NotImplementedError) as exc:
        reason, fix = str(exc).splitlines()[0], "use model.dtype=float32."
        raise ConfigError(f"<model.dtype={dtype}> cannot run on {device} ({reason}); {fix}") from None
    return resolved


def _probe(dtype: torch.dtype, device: torch.device) -> None:
    """Run the op types the model needs (matmul, SDPA, softmax, RMSNorm maths) once on a tiny tensor."""
    import torch
    import torch.nn.functional as F

    x = torch.ones(1, 2, 4, 8, dtype=dtype, device=device)
    F.scaled_dot_product_attention(x, x, x)
    F.layer_norm(x @ x.transpose(-1, -2), (4,))
    F.gelu(x) * F.silu(x)
