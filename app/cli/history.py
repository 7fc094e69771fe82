"""``hearth history``: the conversations, task runs and comparisons kept in the history: ``search``, ``export``
(Hearth's own JSON file, or the conversations as Markdown) and ``import`` (Hearth's file)."""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from app.paths import Paths

COMMANDS = ("history",)


def add_commands(commands: Any) -> None:
    history = commands.add_parser("history", help="the conversations, task runs and comparisons kept")
    sub = history.add_subparsers(dest="history_command", required=True)
    search = sub.add_parser("search", help="find words or \"a phrase\" in the history (a word also finds the "
                                           "words it begins)")
    search.add_argument("query")
    search.add_argument("--kind", action="append", choices=["conversation", "message", "task", "comparison", "entry"],
                        help="only this kind of match (may be given more than once)")
    search.add_argument("--model", help="only what this model wrote, or took part in")
    search.add_argument("--since", type=_date, help="only from this day on (YYYY-MM-DD)")
    search.add_argument("--until", type=_date, help="only before the end of this day (YYYY-MM-DD)")
    search.add_argument("--limit", type=int, default=20, help="at most this many of each kind (default 20)")
    search.add_argument("--json", action="store_true", help="print one JSON object with the matches")
    export = sub.add_parser("export", help="write the history, or some conversations, to a file")
    export.add_argument("--conversation", type=int, action="append", metavar="ID",
                        help="only this conversation (may be given more than once; default: everything)")
    export.add_argument("--format", choices=["json", "md"], default="json",
                        help="json: Hearth's history file, which `hearth history import` reads back; md: Markdown")
    export.add_argument("-o", "--output", required=True, type=Path, help="the file to write")
    importing = sub.add_parser("import", help="add the records of a Hearth history file (all of them, or none)")
    importing.add_argument("path", type=Path)
    sub.add_parser("backup", help="make a checked copy of the history database now")
    sub.add_parser("backups", help="the copies kept (daily, weekly, made by hand, from before a restore)")
    restore = sub.add_parser("restore", help="put a backup in the history's place (the history now is kept as "
                                             "one more backup); close Hearth's window first")
    restore.add_argument("backup", type=Path, help="one of `hearth history backups`")


def _date(text: str) -> datetime:
    try:
        return datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"“{text}” is not a date like 2026-12-31") from error


def run(args: argparse.Namespace, paths: Paths) -> int:
    from app.history import HistoryStore, open_database
    from app.history.records import MARK_END, MARK_START, HitKind, SearchQuery

    if args.history_command in ("backup", "backups", "restore"):
        return _backups(args, paths)
    store = HistoryStore(open_database(paths.database))
    if args.history_command == "export":
        return _export(store, args)
    if args.history_command == "import":
        print(store.import_file(args.path).sentence())
        return 0
    query = SearchQuery(args.query, kinds=frozenset(HitKind(k) for k in args.kind) if args.kind else frozenset(HitKind),
                        model=args.model, since=args.since,
                        until=args.until + timedelta(days=1) if args.until else None, limit=max(args.limit, 1))
    hits = store.search(query)
    if args.json:
        print(json.dumps({"query": args.query, "matches": [
            {"kind": h.kind.value, "id": h.item, "part": h.part, "title": h.title, "at": h.at.isoformat(),
             "model": h.model, "snippet": h.snippet.replace(MARK_START, "").replace(MARK_END, ""),
             "highlighted": h.snippet.replace(MARK_START, "[").replace(MARK_END, "]")} for h in hits]},
            indent=2, ensure_ascii=False))
        return 0
    if not hits:
        print(f"Nothing in the history matches “{args.query}”.")
        return 0
    for hit in hits:
        where = {HitKind.MESSAGE: f"conversation {hit.item}, message {hit.part}",
                 HitKind.CONVERSATION: f"conversation {hit.item} (its title)", HitKind.TASK: f"task run {hit.item}",
                 HitKind.COMPARISON: f"comparison {hit.item}",
                 HitKind.ENTRY: f"comparison {hit.item}, {hit.model}"}[hit.kind]
        snippet = " ".join(hit.snippet.replace(MARK_START, "[").replace(MARK_END, "]").split())
        print(f"{hit.at:%Y-%m-%d %H:%M}  {hit.title} — {where}\n    {snippet}")
    return 0


def _export(store: Any, args: argparse.Namespace) -> int:
    from app.errors import HearthError
    from app.history.markdown import conversations_markdown

    document = store.export(args.conversation, tasks_and_comparisons=args.conversation is None)
    if args.conversation and len(document["conversations"]) != len(set(args.conversation)):
        found = {c["id"] for c in document["conversations"]}
        missing = ", ".join(str(i) for i in sorted(set(args.conversation) - found))
        raise HearthError(f"No conversation with the id {missing} (see `hearth history search`).")
    text = json.dumps(document, indent=2, ensure_ascii=False) if args.format == "json" \
        else conversations_markdown(document)
    try:
        args.output.write_text(text, encoding="utf-8")
    except OSError as error:
        raise HearthError(f"Could not write {args.output}: {error.strerror or error}.") from error
    print(f"Wrote {len(document['conversations'])} conversation{'s' if len(document['conversations']) != 1 else ''}"
          + (f", {len(document['task_runs'])} task runs and {len(document['comparisons'])} comparisons"
             if args.format == "json" and args.conversation is None else "") + f" to {args.output}.")
    return 0


def _backups(args: argparse.Namespace, paths: Paths) -> int:
    from app.history.backups import BackupKind, back_up, backups, restore
    from app.words import format_bytes

    if args.history_command == "backup":
        made = back_up(paths.database, paths.backups_dir, BackupKind.MANUAL)
        print(f"Backed up the history to {made.path} ({format_bytes(made.size)}).")
    elif args.history_command == "backups":
        kept = backups(paths.backups_dir)
        if not kept:
            print("No backups yet: Hearth makes one a day while it runs, or run `hearth history backup`.")
        for backup in kept:
            print(f"{backup.made_at.astimezone():%Y-%m-%d %H:%M}  {backup.kind.value:<15} "
                  f"{format_bytes(backup.size):>10}  {backup.path}")
    else:
        replaced = restore(args.backup, paths.database, paths.backups_dir)
        print(f"Restored the history from {args.backup.name}."
              + (f" The history it replaced is kept at {replaced.path}." if replaced else ""))
    return 0
