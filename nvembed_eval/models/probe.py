"""Embedding probes: a versioned set of texts shipped in the package, encoded straight through a model (no cache) into
a baseline safetensors file, and compared text by text against it (`nvembed-eval-probe`, docs/probes.md)."""

from __future__ import annotations

import datetime
import hashlib
import json
import platform
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from nvembed_eval.errors import ResultsError, first_line
from nvembed_eval.io import atomic_write, installed_versions
from nvembed_eval.models.base import ModelIdentity, TextEncoder
from nvembed_eval.tasks.instructions import render_prefix

PROBE_SET_VERSION = 1  # the set nvembed-eval-probe writes new baselines with
BASELINE_FORMAT = "nvembed-eval-probe-baseline/1"
EMBEDDINGS_KEY = "embeddings"
# Default tolerance on the max abs difference of L2-normalised embeddings, by the dtype the model ran in; measured on
# CPU by scripts/measure_probe_tolerance.py (docs/probes.md). float32: batch size and thread count move vectors by
# <= 2.5e-7, a 1e-3 change of one weight of the tiny NV-Embed by up to 2.8e-4. bfloat16: batch size alone moves them
# by up to 3.9e-3, so only changes beyond rounding can be caught there. float16 is unmeasured (bfloat16's value).
DEFAULT_TOLERANCE: dict[str, float] = {"float32": 1e-5, "bfloat16": 1e-2, "float16": 1e-2}
PACKAGES = ("nvembed-eval", "torch", "transformers", "tokenizers", "sentence-transformers", "safetensors", "numpy")


@dataclass(frozen=True)
class Probe:
    """One probe text. `text` is already expanded (`repeat` applied); `instruction` is raw (not yet templated)."""

    id: str
    task_type: str
    side: str | None
    instruction: str | None
    text: str
    tags: tuple[str, ...]
    source: str


@dataclass(frozen=True)
class ProbeSet:
    """The probe texts of one version and a sha256 over their canonical JSON (catches edits without a bump)."""

    version: int
    sha256: str
    probes: tuple[Probe, ...]

    @property
    def ids(self) -> list[str]:
        return [p.id for p in self.probes]


def load_probe_set(version: int = PROBE_SET_VERSION) -> ProbeSet:
    """The shipped `probe_sets/probes_v<version>.json`; ResultsError naming the versions there are if it is absent."""
    folder = resources.files("nvembed_eval.models").joinpath("probe_sets")
    name = f"probes_v{version}.json"
    if not folder.joinpath(name).is_file():
        have = ", ".join(sorted(p.name for p in folder.iterdir() if p.name.startswith("probes_v"))) or "none"
        fix = "use the nvembed-eval release that wrote the baseline, or write a new baseline"
        raise ResultsError(f"this nvembed-eval has no probe set v{version} (it has: {have}); {fix}")
    raw = json.loads(folder.joinpath(name).read_text(encoding="utf-8"))
    entries = raw["probes"]
    canonical = json.dumps(entries, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    probes = tuple(
        Probe(
            e["id"],
            e["task_type"],
            e.get("side"),
            e.get("instruction"),
            e["text"] * int(e.get("repeat", 1)),
            tuple(e.get("tags", ())),
            e["source"],
        )
        for e in entries
    )
    return ProbeSet(int(raw["version"]), hashlib.sha256(canonical.encode("utf-8")).hexdigest(), probes)


def encode_probes(encoder: TextEncoder, probe_set: ProbeSet, batch_size: int = 32) -> np.ndarray:
    """float32 (len(probe_set.probes), embed_dim), row i for probe i with its templated instruction, one `encode` per
    prefix. Pass the bare adapter, not `CachedEncoder`: a cached vector would hide the change the probe must catch."""
    template = encoder.instruction_template()
    prefixes = [render_prefix(p.instruction, template) if template is not None else "" for p in probe_set.probes]
    out = np.zeros((len(probe_set.probes), encoder.embed_dim), dtype=np.float32)
    for prefix in dict.fromkeys(prefixes):  # first-seen order, so a run is reproducible
        rows = [i for i, p in enumerate(prefixes) if p == prefix]
        out[rows] = encoder.encode([probe_set.probes[i].text for i in rows], prefix=prefix, batch_size=batch_size)
    return out


def probe_versions() -> dict[str, str]:
    return {name: version or "not installed" for name, version in installed_versions(PACKAGES).items()}


def identity_dict(identity: ModelIdentity) -> dict[str, Any]:
    return {"name": identity.name, "revision": identity.revision, "knobs": dict(identity.knobs)}


@dataclass(frozen=True)
class Baseline:
    """A baseline file: embeddings (N, D) float32 and what wrote them."""

    path: Path
    embeddings: np.ndarray
    probe_set_version: int
    probe_set_sha256: str
    probe_ids: list[str]
    identity: dict[str, Any]
    instruction_template: str | None
    versions: dict[str, str]
    device: str
    batch_size: int
    written: str


def write_baseline(
    path: Path,
    embeddings: np.ndarray,
    probe_set: ProbeSet,
    identity: ModelIdentity,
    *,
    instruction_template: str | None,
    device: str,
    batch_size: int,
) -> None:
    """Write a baseline atomically: one float32 tensor plus JSON metadata in the safetensors header."""
    from safetensors.numpy import save

    meta = {
        "format": BASELINE_FORMAT,
        "probe_set_version": str(probe_set.version),
        "probe_set_sha256": probe_set.sha256,
        "probe_ids": json.dumps(probe_set.ids),
        "model_identity": json.dumps(identity_dict(identity), sort_keys=True, default=str),
        "instruction_template": json.dumps(instruction_template),
        "package_versions": json.dumps(probe_versions() | {"python": platform.python_version()}),
        "device": device,
        "batch_size": str(batch_size),
        "written": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    atomic_write(Path(path), save({EMBEDDINGS_KEY: np.ascontiguousarray(embeddings, dtype=np.float32)}, metadata=meta))


def check_baseline_path(path: Path, must_exist: bool) -> None:
    """ResultsError (one line) for a folder or other non-file, or (`must_exist`) a missing path."""
    path = Path(path)
    what = "a folder" if path.is_dir() else "not a regular file" if path.exists() and not path.is_file() else None
    if what:
        target = path / "baseline.safetensors" if path.is_dir() else "FILE.safetensors"
        writer = f"a baseline is a .safetensors file written by: nvembed-eval-probe write {target} model=..."
        raise ResultsError(f"probe baseline {path} is {what}; {writer}")
    if must_exist and not path.is_file():
        raise ResultsError(f"probe baseline {path} does not exist; write one with: nvembed-eval-probe write {path} ...")


def read_baseline(path: Path) -> Baseline:
    """Read and validate a baseline; ResultsError naming what is wrong (missing, not safetensors, not a baseline)."""
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    check_baseline_path(path, must_exist=True)
    try:
        with safe_open(str(path), framework="numpy") as handle:
            meta = handle.metadata() or {}
            if EMBEDDINGS_KEY not in handle.keys():  # noqa: SIM118 (safe_open is not a mapping)
                raise ResultsError(f"{path} has no '{EMBEDDINGS_KEY}' tensor; it is not a probe baseline")
            embeddings = handle.get_tensor(EMBEDDINGS_KEY)
    except (SafetensorError, OSError, ValueError) as exc:
        reason = first_line(exc, 120)
        raise ResultsError(f"{path} is not a readable safetensors file ({reason}); rewrite the baseline") from None
    if meta.get("format") != BASELINE_FORMAT:
        found = f"format={meta.get('format')!r}"
        raise ResultsError(f"{path} is not a {BASELINE_FORMAT} file ({found}); write it with nvembed-eval-probe")
    try:
        return Baseline(
            path=path,
            embeddings=np.asarray(embeddings, dtype=np.float32),
            probe_set_version=int(meta["probe_set_version"]),
            probe_set_sha256=meta["probe_set_sha256"],
            probe_ids=list(json.loads(meta["probe_ids"])),
            identity=json.loads(meta["model_identity"]),
            instruction_template=json.loads(meta["instruction_template"]),
            versions=json.loads(meta["package_versions"]),
            device=meta["device"],
            batch_size=int(meta["batch_size"]),
            written=meta["written"],
        )
    except (KeyError, ValueError, TypeError) as exc:
        raise ResultsError(f"{path} has incomplete probe metadata ({exc}); rewrite the baseline") from None


def check_usable(baseline: Baseline, probe_set: ProbeSet) -> None:
    """ResultsError when the baseline cannot be compared row for row with this probe set: other version, edited set,
    or a shape that does not match the probe list."""
    if baseline.probe_set_version != probe_set.version:
        written = f"{baseline.path} was written with probe set v{baseline.probe_set_version}"
        fix = "rewrite the baseline with nvembed-eval-probe write"
        raise ResultsError(f"{written}, this run uses v{probe_set.version}; {fix}")
    if baseline.probe_set_sha256 != probe_set.sha256:
        sha = f"sha256 {baseline.probe_set_sha256[:12]} vs {probe_set.sha256[:12]}"
        differs = f"probe set v{probe_set.version} differs from the one {baseline.path} was written with ({sha})"
        raise ResultsError(f"{differs}: it was edited without a version bump")
    n = len(probe_set.probes)
    if baseline.embeddings.ndim != 2 or baseline.embeddings.shape[0] != n or baseline.probe_ids != probe_set.ids:
        shape, ids = tuple(baseline.embeddings.shape), len(baseline.probe_ids)
        held = f"{baseline.path} holds embeddings of shape {shape} for {ids} ids"
        raise ResultsError(f"{held}; probe set v{probe_set.version} has {n} texts; rewrite the baseline")


def identity_difference(baseline: Baseline, identity: ModelIdentity) -> str | None:
    """A short description of how the running model differs from the baseline's, or None when it is the same."""
    mine, theirs = identity_dict(identity), baseline.identity
    diffs = [f"{k} {theirs.get(k)!r} -> {mine[k]!r}" for k in ("name", "revision") if theirs.get(k) != mine[k]]
    knobs_a, knobs_b = theirs.get("knobs") or {}, mine["knobs"]
    keys = sorted(set(knobs_a) | set(knobs_b))
    diffs += [f"{k} {knobs_a.get(k)!r} -> {knobs_b.get(k)!r}" for k in keys if knobs_a.get(k) != knobs_b.get(k)]
    return "; ".join(diffs) or None


def default_tolerance(identity: dict[str, Any]) -> float:
    """DEFAULT_TOLERANCE for the dtype the model ran in (float32 when its identity records none)."""
    dtype = str((identity.get("knobs") or {}).get("dtype", "float32"))
    return DEFAULT_TOLERANCE.get(dtype, DEFAULT_TOLERANCE["float32"])


def _unit(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return np.divide(vectors, norms, out=np.zeros_like(vectors), where=norms > 0)


@dataclass
class ProbeComparison:
    """Per-text agreement of two embedding matrices of the same probe set: `max_abs` is the largest element-wise
    |difference| of the L2-normalised vectors, `cosine` their cosine."""

    probe_set: ProbeSet
    cosine: np.ndarray  # (N,)
    max_abs: np.ndarray  # (N,)
    tolerance: float

    @property
    def failed(self) -> np.ndarray:
        """Indices of the probes beyond tolerance (non-finite differences count as beyond)."""
        return np.flatnonzero(~(self.max_abs <= self.tolerance))

    @property
    def exit_code(self) -> int:
        return 1 if self.failed.size else 0

    def worst(self, k: int) -> list[int]:
        """Indices of the k probes with the largest max abs difference, largest first (ties by probe order)."""
        key = np.nan_to_num(self.max_abs, nan=np.inf)
        return [int(i) for i in np.lexsort((np.arange(key.size), -key))[:k]]


def compare_embeddings(
    probe_set: ProbeSet, baseline: np.ndarray, current: np.ndarray, tolerance: float
) -> ProbeComparison:
    """Compare row i of `current` with row i of `baseline`, both (N, D)."""
    a, b = _unit(np.asarray(baseline, np.float64)), _unit(np.asarray(current, np.float64))
    return ProbeComparison(probe_set, np.sum(a * b, axis=1), np.max(np.abs(a - b), axis=1), tolerance)


def render_comparison(cmp: ProbeComparison, baseline: Baseline, current_versions: dict[str, str], k: int = 10) -> str:
    """The check report: version changes since the baseline, the k worst texts, and a verdict line."""
    lines = [f"probe set v{cmp.probe_set.version}: {len(cmp.probe_set.probes)} texts; baseline {baseline.path}"]
    lines.append(f"baseline written {baseline.written} on {baseline.device} (batch size {baseline.batch_size})")
    old = baseline.versions
    changed = [f"{n} {old.get(n, '?')} -> {v}" for n, v in current_versions.items() if old.get(n) != v]
    lines.append("package changes since the baseline: " + ("; ".join(changed) if changed else "none"))
    lines += ["", f"{'probe':<34} {'tags':<28} {'cosine':>12} {'max abs diff':>13}  text", "-" * 110]
    for i in cmp.worst(k):
        p = cmp.probe_set.probes[i]
        preview = repr(p.text[:48]) + (f"... ({len(p.text):,} chars)" if len(p.text) > 48 else "")
        mark = " *" if not cmp.max_abs[i] <= cmp.tolerance else ""
        scores = f"{cmp.cosine[i]:>12.9f} {cmp.max_abs[i]:>13.3e}"
        lines.append(f"{p.id:<34} {','.join(p.tags)[:28]:<28} {scores}  {preview}{mark}")
    worst = float(np.nanmax(cmp.max_abs)) if cmp.max_abs.size else 0.0
    summary = f"max abs diff {worst:.3e}, min cosine {float(np.nanmin(cmp.cosine)):.9f}, tolerance {cmp.tolerance:.1e}"
    n, bad = len(cmp.probe_set.probes), cmp.failed.size
    verdict = f"FAIL: {bad}/{n} texts beyond tolerance (* above)" if bad else f"PASS: {n}/{n} texts within tolerance"
    lines += ["", f"{verdict}; {summary}"]
    return "\n".join(lines) + "\n"
