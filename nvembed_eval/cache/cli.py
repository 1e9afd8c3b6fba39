"""`nvembed-eval-cache`: report the size of the embedding cache, clear it, or prune it to a size cap (LRU)."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from nvembed_eval.cache.encoder import ENV_VAR, default_cache_dir
from nvembed_eval.cache.store import PruneSummary, clear_folder, model_folders, prune_root, scan_root
from nvembed_eval.errors import CacheError, NVEmbedEvalError
from nvembed_eval.io import SIZE_EXAMPLES, Parser, emit, human_size, parse_size

logger = logging.getLogger(__name__)


def _resolve_dir(arg: str | None) -> Path:
    if arg:
        return Path(arg).expanduser()
    path = default_cache_dir()
    if ENV_VAR not in os.environ:
        logger.info("using default cache dir %s (set --cache-dir or $%s to choose another)", path, ENV_VAR)
    return path


def _confirm(question: str, yes: bool) -> bool:
    """True to go ahead: --yes, or "y" typed on a terminal. Without a terminal, refuse rather than guess."""
    if yes:
        return True
    if not sys.stdin.isatty():
        raise CacheError(f"refusing to {question} without --yes")
    if input(f"{question}? [y/N] ").strip().lower() in {"y", "yes"}:
        return True
    emit("nothing deleted")
    return False


def _cmd_info(args: argparse.Namespace) -> int:
    root = _resolve_dir(args.cache_dir)
    rows = scan_root(root)
    emit(f"cache dir: {root}")
    if not rows:
        emit("empty")
        return 0
    emit(f"{'model key':<18}{'shards':>8}{'entries':>11}{'size':>12}  model")
    for r in rows:
        size = human_size(r["bytes"])
        emit(f"{r['key']:<18}{r['shards']:>8}{r['entries']:>11}{size:>12}  {r['name']}@{r['revision']}")
        if r["partial_files"] or r["unreadable_shards"]:
            emit(
                f"{'':<18}{r['partial_files']} unfinished temp files ({human_size(r['partial_bytes'])}), "
                f"{r['unreadable_shards']} unreadable shards; `clear` removes them"
            )
    total = human_size(sum(r["bytes"] for r in rows))
    emit(f"{'total':<18}{sum(r['shards'] for r in rows):>8}{sum(r['entries'] for r in rows):>11}{total:>12}")
    return 0


def _cmd_clear(args: argparse.Namespace) -> int:
    root = _resolve_dir(args.cache_dir)
    prefix = (args.model_key or "").lower()
    if prefix and not all(c in "0123456789abcdef" for c in prefix):
        raise CacheError(f"<--model-key={args.model_key}> must be hex (a prefix of a key shown by `info`)")
    folders = model_folders(root)
    chosen = [p for p in folders if p.name.startswith(prefix)]
    if not folders and not prefix:
        emit(f"nothing to clear in {root}")
        return 0
    if not chosen:
        known = ", ".join(p.name for p in folders) or "none"
        raise CacheError(f"no cached model matches <--model-key={prefix or '*'}> in {root}; cached keys: {known}")
    question = f"delete cached embeddings of {len(chosen)} model(s) in {root} ({', '.join(p.name for p in chosen)})"
    if not _confirm(question, args.yes):
        return 1
    removed = [clear_folder(folder) for folder in chosen]
    files, size = sum(f for f, _ in removed), sum(b for _, b in removed)
    emit(f"removed {files} files ({human_size(size)}) from {len(chosen)} model folder(s) in {root}")
    return 0


def _print_prune(summary: PruneSummary, verb: str, root: Path, max_bytes: int) -> None:
    emit(f"{verb} {summary.files_removed} files ({human_size(summary.bytes_removed)}) from {root}")
    for key, n in sorted(summary.shards_removed.items()):
        emit(f"  {key}: {n} shards")
    over = "; the rest are temp files of jobs still writing" if summary.bytes_left > max_bytes else ""
    emit(f"left: {human_size(summary.bytes_left)} of cache files (cap {human_size(max_bytes)}){over}")


def _cmd_prune(args: argparse.Namespace) -> int:
    max_bytes = parse_size(args.max_size, "--max-size")  # before anything is touched
    root = _resolve_dir(args.cache_dir)
    plan = prune_root(root, max_bytes, dry_run=True)
    if plan.files_removed == 0:
        emit(f"nothing to remove: {human_size(plan.bytes_left)} of cache files in {root} (cap {human_size(max_bytes)})")
        return 0
    if args.dry_run:
        _print_prune(plan, "would remove", root, max_bytes)
        return 0
    question = (
        f"delete {plan.files_removed} least recently used cache files ({human_size(plan.bytes_removed)}) in {root} "
        f"to fit {args.max_size}"
    )
    if not _confirm(question, args.yes):
        return 1
    _print_prune(prune_root(root, max_bytes), "removed", root, max_bytes)  # planned again: other jobs may have run
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """`nvembed-eval-cache`: report the size of the embedding cache, clear it, or prune it to a size; returns the exit
    code (an error's `exit_code`, 1 when the user declines)."""
    parser = Parser(prog="nvembed-eval-cache", description="Inspect, clear or prune the cache.")
    sub = parser.add_subparsers(dest="command", required=True)
    info = sub.add_parser("info", help="entries and bytes per model identity")
    clear = sub.add_parser("clear", help="delete cached embeddings")
    prune = sub.add_parser("prune", help="delete least recently used shards until the cache fits a size")
    for p in (info, clear, prune):
        p.add_argument("--cache-dir", help=f"cache root (default: ${ENV_VAR} or ~/.cache/nvembed-eval/embeddings)")
    clear.add_argument("--model-key", help="only models whose key starts with this hex prefix (see `info`)")
    prune.add_argument("--max-size", required=True, metavar="SIZE", help=f"the cap, e.g. {SIZE_EXAMPLES}")
    prune.add_argument("--dry-run", action="store_true", help="print what would be removed; remove nothing")
    for p in (clear, prune):
        p.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    commands = {"info": _cmd_info, "clear": _cmd_clear, "prune": _cmd_prune}
    try:
        return commands[args.command](args)
    except (NVEmbedEvalError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return getattr(e, "exit_code", 1)


if __name__ == "__main__":
    sys.exit(main())
