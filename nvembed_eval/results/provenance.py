"""Provenance of one task result: everything that determines its value, stored inside the result file, and the
comparison that decides whether a stored result may be reused by a run (docs/provenance.md lists every field)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from nvembed_eval.io import installed_versions

FORMAT = 1

# Pinned in pyproject.toml because they compute the scores from the vectors (evaluators, logistic regression,
# k-means, trec_eval): a result made under other versions of these is not reused.
SCORE_PINS = ("mteb", "scikit-learn", "scipy", "pytrec-eval-terrier")
# Recorded for the record (they move vectors by rounding, or drive sampling), not compared.
RECORDED_VERSIONS = (*SCORE_PINS, "numpy", "torch", "transformers", "sentence-transformers", "datasets")
# Keys of the data record that describe, but do not determine, the data (where it sat, why that commit).
DATA_INFO_KEYS = frozenset({"path", "revision_source", "loaded_revision", "verified"})


@dataclass(frozen=True)
class FieldDiff:
    """One provenance field that differs between a stored result and the run that would reuse it."""

    field: str
    stored: Any
    expected: Any


def make_provenance(
    *,
    task: dict[str, Any],
    model: dict[str, Any],
    prefixes: dict[str, str],
    data: dict[str, Any],
    installed: dict[str, str | None] | None = None,
) -> dict[str, Any]:
    """The provenance record of one task result: `task` {"name", "version", "split", "subset"} of the task spec, `model`
    {"name", "revision", "knobs", "identity_key"} of the model identity, `prefixes` side ("query", "document", "none")
    -> the literal text prepended to that side's inputs, `data` where the data came from ({"source": "hub",
    "repository", "revision", ...}, {"source": "local", "path", "sha256"} or {"source": "package", "sha256"}),
    `installed` package versions (default: the installed `RECORDED_VERSIONS`)."""
    versions = installed if installed is not None else installed_versions(RECORDED_VERSIONS)
    return {"format": FORMAT, "task": task, "model": model, "prefixes": prefixes, "data": data, "versions": versions}


def differences(stored: dict[str, Any], expected: dict[str, Any]) -> list[FieldDiff]:
    """The fields that determine a result's value and differ between `stored` and `expected`: format, task
    version/split/subset, model identity key, every prefix, the data record (except `DATA_INFO_KEYS`) and the
    `SCORE_PINS` versions; never the `FIDELITY_KEY` section (the evaluator-fidelity counts describe the data; its
    content is data.sha256 / data.revision). The model's name, revision and knobs are reported instead of its identity
    key when they differ, so the message says what changed."""
    out: list[FieldDiff] = []

    def compare(label: str, a: Any, b: Any, keys: tuple[str, ...] = (), skip: frozenset[str] = frozenset()) -> None:
        """Each key of two sections (default: the keys of either, sorted, less `skip`) that differs."""
        a, b = (a if isinstance(a, dict) else {}), (b if isinstance(b, dict) else {})
        for key in keys or sorted((set(a) | set(b)) - skip):
            if a.get(key) != b.get(key):
                out.append(FieldDiff(f"{label}.{key}", a.get(key), b.get(key)))

    if stored.get("format") != expected.get("format"):
        out.append(FieldDiff("format", stored.get("format"), expected.get("format")))
    compare("task", stored.get("task"), expected.get("task"), ("version", "split", "subset"))
    key_a, key_b = _get(stored, "model", "identity_key"), _get(expected, "model", "identity_key")
    if key_a != key_b:
        before = len(out)
        compare("model", stored.get("model"), expected.get("model"), ("name", "revision"))
        compare("model", _get(stored, "model", "knobs"), _get(expected, "model", "knobs"))
        if len(out) == before:
            out.append(FieldDiff("model.identity_key", key_a, key_b))
    compare("prefix", stored.get("prefixes"), expected.get("prefixes"))
    compare("data", stored.get("data"), expected.get("data"), skip=DATA_INFO_KEYS)
    compare("versions", stored.get("versions"), expected.get("versions"), SCORE_PINS)
    return out


def summarize(diffs: list[FieldDiff]) -> list[str]:
    """Diffs as text, fields with the same change merged: `prefix.query/none 'Instruct: ...' -> ''`."""
    groups: dict[tuple[str, str], list[str]] = {}
    for diff in diffs:
        groups.setdefault(_shown_pair(diff.stored, diff.expected), []).append(diff.field)
    out = []
    for (stored, expected), names in groups.items():
        family = {n.split(".", 1)[0] for n in names}
        label = "/".join(names)
        if len(family) == 1 and len(names) > 1:  # one section: `prefix.query/none`
            label = f"{family.pop()}.{'/'.join(n.split('.', 1)[1] for n in names)}"
        out.append(f"{label} {stored} -> {expected}")
    return out


def _get(record: dict[str, Any], section: str, key: str) -> Any:
    part = record.get(section)
    return part.get(key) if isinstance(part, dict) else None


def _short(value: Any, limit: int = 48) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _shown_pair(stored: Any, expected: Any, limit: int = 48) -> tuple[str, str]:
    """Both values, short; two long texts are cut around their first difference (each cut quoted whole), so the shown
    old and new never look the same."""
    if not (isinstance(stored, str) and isinstance(expected, str)) or max(len(stored), len(expected)) <= limit:
        return _short(stored, limit), _short(expected, limit)
    pairs = enumerate(zip(stored, expected, strict=False))
    start = max(0, next((i for i, (a, b) in pairs if a != b), min(len(stored), len(expected))) - 12)

    def cut(text: str) -> str:
        end = start + limit - 12
        return ("..." if start else "") + repr(text[start:end]) + ("..." if end < len(text) else "")

    return cut(stored), cut(expected)
