"""Error types. Every user-facing failure is an `NVEmbedEvalError` whose message is one line that says the fix."""

from __future__ import annotations


class NVEmbedEvalError(Exception):
    """Base class: the CLI prints `error: <message>` and exits non-zero."""

    exit_code: int = 2


class ConfigError(NVEmbedEvalError):
    """A config value or override is invalid."""


class TaskNotFoundError(NVEmbedEvalError):
    """A task name is unknown to this harness or to mteb."""


class DataError(NVEmbedEvalError):
    """Local task data is missing or malformed."""


class CheckpointError(NVEmbedEvalError):
    """A model checkpoint is missing files, has wrong keys/shapes, or is unsafe to load."""


class EncodingError(NVEmbedEvalError):
    """The model produced unusable output (e.g. non-finite embeddings) or got unencodable input."""


class ResultsError(NVEmbedEvalError):
    """A results folder or reference table cannot be used."""


class CacheError(NVEmbedEvalError):
    """The embedding cache is unusable (unwritable, corrupt beyond repair)."""


class OutputLockedError(NVEmbedEvalError):
    """Another run is writing the same output folder."""


class ItemsUnavailable(NVEmbedEvalError):
    """Per-item data cannot be made or read for a task (unsupported metric, data mteb did not keep, a missing or
    tampered items file); the reason is the message, and the gate judges that task by tolerance."""


def first_line(exc: BaseException, limit: int | None = None) -> str:
    """The first non-blank line of an exception's message (its type's name when it has none), cut to `limit`
    characters: a library's reason, quoted inside a one-line message."""
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:limit]
