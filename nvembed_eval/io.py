"""Disk and console helpers every room shares: atomic writes, content digests, the files shipped with the package,
output folders written all-or-nothing, printing that survives `| head`, and the console scripts' one-line parser."""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import logging
import math
import os
import re
import shutil
import stat
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any, NoReturn

from nvembed_eval.errors import ConfigError, NVEmbedEvalError, ResultsError

TEMP_SUFFIX = ".partial"  # temp files carry it; readers skip them, `nvembed-eval-cache clear`/`prune` remove them
DIGESTS_ENV = "NVEMBED_EVAL_DIGESTS"  # where file digests are remembered (default ~/.cache/nvembed-eval/digests)
_CHUNK = 8 * 1024 * 1024

# ------------------------------------------------------------------------------------------------------ writing


def atomic_write(path: Path, data: bytes) -> None:
    """Write `data` to `path` via a uniquely named temp file in the same folder, fsync, then `os.replace` (atomic on
    POSIX filesystems, NFS included): readers (and a rerun after SIGKILL) see the old file or the whole new one, never
    half. On any failure the temp file is removed and the error re-raised."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:12]}{TEMP_SUFFIX}")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise
    # Make the rename itself durable; not every filesystem allows fsync on a folder, hence best effort.
    with contextlib.suppress(OSError):
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def write_json(path: Path, obj: Any, *, strict: bool = False) -> None:
    """`atomic_write` of `obj` as indented JSON. `strict`: refuse NaN and infinity (strict JSON, for result files)."""
    text = json.dumps(obj, indent=2, allow_nan=not strict, default=None if strict else str)
    atomic_write(path, (text + "\n").encode("utf-8"))


def parse_json(text: str | bytes, **kwargs: Any) -> Any:
    """`json.loads` for files the user hands over: a document nested too deeply for Python's parser (a hostile or
    corrupt file) is a `json.JSONDecodeError` like any other malformed JSON, never a RecursionError traceback."""
    try:
        return json.loads(text, **kwargs)
    except RecursionError:
        raise json.JSONDecodeError("nested too deeply to be read", str(text[:80]), 0) from None


def non_finite_to_null(value: Any) -> Any:
    """A copy of a nested JSON-like structure with every NaN and infinity replaced by None (JSON null)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: non_finite_to_null(v) for k, v in value.items()}
    if isinstance(value, list):
        return [non_finite_to_null(v) for v in value]
    return value


def publish(out_dir: Path, writers: dict[str, Callable[[Path], None]]) -> list[Path]:
    """Write every output into a scratch folder first and move them into `out_dir` only when all succeeded.

    Raises:
        ResultsError: the folder cannot be written (read-only, full disk); nothing is left behind.
    """
    if out_dir.is_symlink():
        raise ResultsError(f"{out_dir} is a symbolic link; outputs are written only into real folders: pass --out DIR")
    out_dir = out_dir.resolve()
    if out_dir.exists() and not out_dir.is_dir():
        raise ResultsError(f"cannot write outputs to {out_dir} (not a folder); pass --out DIR")
    try:
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    except OSError as exc:
        raise ResultsError(f"cannot write outputs to {out_dir} ({exc.strerror}); pass --out DIR") from None
    try:
        for name, write in writers.items():
            write(scratch / name)
        out_dir.mkdir(exist_ok=True)
        for name in writers:
            os.replace(scratch / name, out_dir / name)
        return [out_dir / name for name in writers]
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def default_out(inputs: Sequence[Path], folder_name: str) -> Path:
    """`<first input folder>/<folder_name>`: outputs sit with the run they describe, never in the current directory.

    Raises:
        ConfigError: every input is a file (a CSV or one TaskResult); the user must choose with --out.
    """
    if folder := next((path for path in inputs if path.is_dir()), None):
        return folder / folder_name
    raise ConfigError(
        f"pass --out DIR: the inputs ({', '.join(str(p) for p in inputs)}) are files, and outputs go next to a run "
        "folder, never into the current directory"
    )


def emit(text: str = "", stream: Any = None, end: str = "\n") -> None:
    """`print` for the console commands: to stdout (or `stream`). A reader that stops early (`| head -1`) closes the
    pipe: the rest of the output is dropped and the command keeps its own exit code (a gate's 1 stays 1), where
    `print` would end in a BrokenPipeError traceback."""
    stream = stream or sys.stdout
    try:
        stream.write(text + end)
        stream.flush()
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), stream.fileno())


PROGRESS_EVERY_S = 30.0  # a long step's line interval; SciFact's corpus on a loaded CPU once went 57 min unannounced


class ProgressLine:
    """One quiet INFO line every `every_s` seconds of a long step (console and run log), e.g. "SciFact document:
    2,048/5,183 texts, 41 texts/s, ETA 1:16", and a closing line when it printed any; a short step prints nothing.
    The libraries' own bars (`progress=true`) are another matter."""

    def __init__(self, what: str, total: int, every_s: float | None = None) -> None:
        self.what, self.total, self.every_s = what, total, PROGRESS_EVERY_S if every_s is None else every_s
        self.done, self.printed = 0, False
        self.start = self.last = time.monotonic()
        self.log = logging.getLogger("nvembed_eval.progress")

    def update(self, n: int) -> None:
        self.done += n
        now = time.monotonic()
        if now - self.last >= self.every_s and self.done < self.total:
            rate = self.done / max(now - self.start, 1e-9)
            eta = _clock((self.total - self.done) / max(rate, 1e-9))
            counts = f"{self.done:,}/{self.total:,}"
            self.log.info("%s: %s texts, %.0f texts/s, ETA %s", self.what, counts, rate, eta)
            self.last, self.printed = now, True

    def close(self) -> None:
        if self.printed:
            elapsed = _clock(time.monotonic() - self.start)
            self.log.info("%s: %s/%s texts in %s", self.what, f"{self.done:,}", f"{self.total:,}", elapsed)


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes // 60}:{minutes % 60:02d}:{secs:02d}" if minutes >= 60 else f"{minutes}:{secs:02d}"


def text_table(rows: Sequence[Sequence[Any]], header: Sequence[str], *, markdown: bool = True) -> str:
    """Rows as an aligned text table: a markdown table (`| a | b |` and a `|---|` rule), or plain columns two
    spaces apart under a dashed rule. (tabulate pads headers and strips cells, which would change every table.)"""
    cells = [[str(c) for c in row] for row in [header, *rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    if markdown:
        lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |" for row in cells]
        return "\n".join([lines[0], "|" + "|".join("-" * (w + 2) for w in widths) + "|", *lines[1:]])
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells]
    return "\n".join([lines[0], "  ".join("-" * w for w in widths), *lines[1:]])


SIZE_EXAMPLES = "500MiB, 200GB, 1.5TiB, 0 or a byte count such as 1048576"


# Our grammar, not pydantic's `ByteSize`: it reads "1,5GiB" and "1.5" as 1 byte (a cache pruned to nothing) and
# "5 M" as 5 MB; here a size has a unit ending in B (binary KiB..TiB or decimal KB..TB) or is a whole byte count.
_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*((?:[kmgt]i?)?b)?\s*", re.IGNORECASE)
_UNIT_BYTES = {"b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12}
_UNIT_BYTES.update({"kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40})


def parse_size(value: object, key: str, *, hint: str = "") -> int:
    """Bytes in a size: `500MiB`, `200GB`, `1.5TiB`, `0` or a bare byte count (units case-insensitive). `value`: a
    string, or a whole number (Hydra reads `cache.max_size=1048576` as an int, `1e9` as a float); `key`: the setting as
    the user wrote it (`cache.max_size`, `--max-size`), for the error; `hint`: extra words for its fix.

    Raises:
        ConfigError: the value is not a size; the message names it and shows valid ones.
    """
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    match = _SIZE.fullmatch(value) if isinstance(value, str) else None
    unit = (match[2] or "b").lower() if match else ""
    if match and not (unit == "b" and "." in match[1]):  # a fraction of a byte is a typo
        return int(Decimal(match[1]) * _UNIT_BYTES[unit])
    raise ConfigError(f"<{key}={value}> is not a size; write e.g. {SIZE_EXAMPLES}{hint}")


def human_size(n: float) -> str:
    """`1536` -> `1.5 KiB`: sizes as the CLI and logs print them."""
    units = ["B", "KiB", "MiB", "GiB", "TiB"]
    while n >= 1024 and len(units) > 1:
        n, units = n / 1024, units[1:]
    return f"{n:.0f} {units[0]}" if units[0] == "B" else f"{n:.1f} {units[0]}"


def names_a_path(text: str) -> bool:
    """Whether a value that may be a name (a shipped table, `auto`) is meant as a path: it has a folder part, a
    suffix, or starts with `~`."""
    return "/" in text or bool(Path(text).suffix) or text.startswith("~")


def nearest_existing(path: Path) -> Path:
    """`path` or its nearest ancestor that exists."""
    return next(p for p in (path, *path.parents) if p.exists())


# ------------------------------------------------------------------------------------------------------ reading

READ_MAX_BYTES = 256 * 1024 * 1024  # a results, record or score file (a real one is at most a few MB)


def check_regular_file(
    path: Path, what: str | None = None, limit: int | None = None, error: type[NVEmbedEvalError] = ResultsError
) -> int:
    """The size in bytes of `path` when it is a regular file (links followed) of at most `limit` bytes: a reader given
    a FIFO would wait forever, a device would never end, a huge file would fill the memory.

    Raises:
        `error` (ResultsError): a pipe, device, socket or folder, or a file larger than `limit` (one line naming it).
        OSError: it cannot be looked at (missing, no permission).
    """
    info = path.stat()
    if not stat.S_ISREG(info.st_mode):
        kind = "a pipe" if stat.S_ISFIFO(info.st_mode) else "a folder" if stat.S_ISDIR(info.st_mode) else "a device"
        raise error(f"{what or path} is {kind}, not a regular file; pass the file itself")
    if limit is not None and info.st_size > limit:
        raise error(
            f"{what or path} is {human_size(info.st_size)}, more than the {human_size(limit)} a file of its kind can "
            "be; it is not read (check that it is the file you meant)"
        )
    return info.st_size


def read_bounded(
    path: Path, limit: int = READ_MAX_BYTES, what: str | None = None, error: type[NVEmbedEvalError] = ResultsError
) -> bytes:
    """Every byte of the regular file `path`, refused when larger than `limit` bytes (before reading it, and when it
    grew past `limit` while being read).

    Raises:
        `error`: as `check_regular_file`. OSError: it cannot be read.
    """
    check_regular_file(path, what, limit, error)
    with path.open("rb") as handle:
        body = handle.read(limit + 1)
    if len(body) > limit:
        raise error(f"{what or path} grew past {human_size(limit)} while being read; it is not read")
    return body


def read_text(path: Path, limit: int = READ_MAX_BYTES, error: type[NVEmbedEvalError] = ResultsError) -> str:
    """`read_bounded` decoded as UTF-8 (raises UnicodeDecodeError as `Path.read_text` does)."""
    return read_bounded(path, limit, error=error).decode("utf-8")


# ------------------------------------------------------------------------------------------------------ digests


def file_sha256(path: Path, *, salt: bytes = b"", remember: bool = False) -> str:
    """sha256 hex digest of `salt` (a model fingerprint hashes the file size first) followed by every byte of one
    file; nothing is sampled. `remember`: reuse a digest computed earlier for the same (path, size, mtime, ctime, inode,
    device, salt), kept in `$NVEMBED_EVAL_DIGESTS` (default `~/.cache/nvembed-eval/digests`): a 15 GB checkpoint is read
    once, not on every run. Writing to the file changes its ctime (which no tool can set back), and so misses.

    Raises:
        OSError: the file cannot be read.
    """
    info = path.stat()
    memo = None
    if remember:
        with contextlib.suppress(OSError, RuntimeError):  # no usable home folder: nothing is remembered
            memo = _memo_path(path, info, salt)
    if memo is not None:
        with contextlib.suppress(OSError, UnicodeDecodeError):
            known = memo.read_text(encoding="ascii").strip()
            if len(known) == 64:
                return known
    digest = hashlib.sha256(salt)
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    value = digest.hexdigest()
    if memo is not None:
        with contextlib.suppress(OSError):  # a read-only HOME only costs the next run a re-read
            atomic_write(memo, value.encode("ascii"))
    return value


def _memo_path(path: Path, info: os.stat_result, salt: bytes) -> Path:
    root = os.environ.get(DIGESTS_ENV)
    folder = Path(root).expanduser() if root else Path.home() / ".cache" / "nvembed-eval" / "digests"
    facts = [path.resolve(), info.st_size, info.st_mtime_ns, info.st_ctime_ns, info.st_ino, info.st_dev, salt.hex()]
    key = json.dumps(facts, default=str)
    return folder / hashlib.sha256(key.encode("utf-8")).hexdigest()


def files_sha256(root: Path, files: Iterable[Path], *, salted: bool = False, remember: bool = False) -> str:
    """sha256 hex digest over `files` below `root`: each relative path and its content digest, in sorted path order.

    Renaming, adding, removing or editing any file changes the digest; moving the whole folder does not.
    `salted`: each file's digest covers its size first (the model fingerprint's formula, kept so that recorded
    model identities stay valid).
    """
    digest = hashlib.sha256()
    for path in sorted({Path(f) for f in files}, key=lambda p: p.relative_to(root).as_posix()):
        name = path.relative_to(root).as_posix().encode("utf-8")
        if salted:
            digest.update(name)
            digest.update(file_sha256(path, salt=str(path.stat().st_size).encode(), remember=remember).encode())
        else:
            digest.update(len(name).to_bytes(8, "little") + name)
            digest.update(bytes.fromhex(file_sha256(path, remember=remember)))
    return digest.hexdigest()


def folder_sha256(root: Path) -> str:
    """`files_sha256` over every regular file below `root` (a local task data folder).

    Hidden files and folders (a leading ".", e.g. `.DS_Store`, `.git/`) are skipped: tools write them without
    touching the data. Symlinks are followed (a Hugging Face cache snapshot links into its blobs).

    Raises:
        OSError: a file cannot be read.
    """
    visible = (p for p in root.rglob("*") if not any(part.startswith(".") for part in p.relative_to(root).parts))
    return files_sha256(root, [p for p in visible if p.is_file()])


def installed_versions(names: Iterable[str]) -> dict[str, str | None]:
    """Installed versions of the given distributions (None for one that is not installed)."""
    from importlib import metadata

    def version(name: str) -> str | None:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return None

    return {name: version(name) for name in names}


# ------------------------------------------------------------------------------------------- shipped resources

# Name inside the installed package -> folder in the source checkout (setup.py maps one onto the other).
BUNDLED = {"conf": "conf", "instructions": "instructions", "published": "results/published"}
CONF_ENV = "NVEMBED_EVAL_CONF"  # a whole replacement config tree (tests, forks); a user's own configs compose on top


def bundled_dir(name: str) -> Path:
    """The folder of one data set shipped with the package ("conf", "instructions" or "published"):
    `<site-packages>/nvembed_eval/<name>` in an installed wheel, else the checkout's folder next to the package
    (`conf/`, `instructions/`, `results/published/`) for an editable install; never the working folder.

    Raises:
        ConfigError: neither exists (a broken install).
    """
    package = Path(__file__).resolve().parent
    for candidate in (package / name, package.parent / BUNDLED[name]):
        if candidate.is_dir():
            return candidate
    raise ConfigError(
        f"the package's {name}/ folder is missing from {package}; reinstall nvembed-eval (pip install nvembed-eval, "
        "or pip install -e . in a checkout)"
    )


def conf_dir() -> Path:
    """The Hydra config root: `$NVEMBED_EVAL_CONF` when set, else the bundled `conf/`."""
    override = os.environ.get(CONF_ENV)
    return Path(override) if override else bundled_dir("conf")


# ------------------------------------------------------------------------------------ console-script arguments


class Parser(argparse.ArgumentParser):
    """`argparse.ArgumentParser` whose usage errors are one line, `error: <what>; see <prog> --help`, exit 2, like
    every other refusal (docs/bad_input.md); its subcommand parsers are of this class too."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {message}; see {self.prog} --help\n")


def non_negative_int(text: str) -> int:
    """An argument that is a whole number >= 0 (a seed, a count).

    Raises:
        argparse.ArgumentTypeError: anything else; the parser turns it into its one error line.
    """
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, got {text!r}")
    return value


def finite_non_negative_float(text: str) -> float:
    """An argument that is a finite number >= 0 (a tolerance): NaN would make every comparison false, i.e. pass.

    Raises:
        argparse.ArgumentTypeError: not a number, NaN, infinite or negative.
    """
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"expected a finite number >= 0, got {text!r}")
    return value
