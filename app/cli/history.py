"""``hearth history``: the conversations, task runs and comparisons kept in the history: ``search``, ``export``
(everything, some conversations, a task run or a comparison, as Markdown, HTML, PDF, Word or Hearth's own JSON file:
``app.export``) and ``import`` (Hearth's file, or a ChatGPT export)."""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from app.export.formats import ExportFormat
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
    search.add_argument("--folder", metavar="NAME", help="only the conversations in this folder")
    search.add_argument("--since", type=_date, help="only from this day on (YYYY-MM-DD)")
    search.add_argument("--until", type=_date, help="only before the end of this day (YYYY-MM-DD)")
    search.add_argument("--limit", type=int, default=20, help="at most this many of each kind (default 20)")
    search.add_argument("--json", action="store_true", help="print one JSON object with the matches")
    export = sub.add_parser("export", help="write the history, some conversations, a task run or a comparison to "
                                           "a file")
    what = export.add_mutually_exclusive_group()
    what.add_argument("--conversation", type=int, action="append", metavar="ID",
                      help="only this conversation (may be given more than once)")
    what.add_argument("--folder", metavar="NAME", help="the conversations in this folder")
    what.add_argument("--all", action="store_true", help="every conversation, task run and comparison (the default)")
    what.add_argument("--task-run", type=int, metavar="ID", help="only this task run")
    what.add_argument("--comparison", type=int, metavar="ID", help="only this comparison")
    export.add_argument("--format", choices=[f.value for f in ExportFormat],
                        help="md: Markdown; html: one web page; pdf; docx: Word; json: Hearth's history file, which "
                             "`hearth history import` reads back (default: the output's suffix, else json)")
    export.add_argument("-o", "--output", required=True, type=Path, help="the file to write")
    importing = sub.add_parser("import", help="add the records of a Hearth history file, or the conversations of a "
                                              "ChatGPT export (conversations.json or its .zip): all of them, or none")
    importing.add_argument("path", type=Path, help="the file; which kind it is, is read from it")
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
    from app.cli.loading import open_history
    from app.history.records import MARK_END, MARK_START, HitKind, SearchQuery

    if args.history_command in ("backup", "backups", "restore"):
        return _backups(args, paths)
    store = open_history(paths)
    if args.history_command == "export":
        return _export(store, args)
    if args.history_command == "import":
        print(store.import_file(args.path).sentence())
        return 0
    folder = _folder(store, args.folder) if args.folder else None
    query = SearchQuery(args.query, kinds=frozenset(HitKind(k) for k in args.kind) if args.kind else frozenset(HitKind),
                        model=args.model, since=args.since, folder_id=folder.id if folder else None,
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
    from app.export.files import NotFound, Selection, write_export

    fmt = ExportFormat(args.format) if args.format else ExportFormat.of_path(args.output) or ExportFormat.JSON
    if args.conversation:
        selection = Selection.conversations(args.conversation)
    elif args.folder:
        selection = Selection.folder(_folder(store, args.folder).id)
    elif args.task_run is not None:
        selection = Selection.task_run(args.task_run)
    elif args.comparison is not None:
        selection = Selection.comparison(args.comparison)
    else:
        selection = Selection.everything()
    try:
        exported = write_export(store, selection, fmt, args.output, make_pdf=args.make_pdf)
    except NotFound as error:
        raise HearthError(f"{str(error).removesuffix('.')} (see `hearth history search`).") from error
    print(exported.sentence(str(args.output)))
    return 0


def _folder(store: Any, name: str) -> Any:
    from app.errors import HearthError

    folder = store.find_folder(name)
    if folder is None:
        names = ", ".join(f"“{f.name}”" for f in store.folders()) or "none yet"
        raise HearthError(f"There is no folder called “{name}” (the folders: {names}).")
    return folder


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
              + (f" The history it replaced is kept at {replaced}." if replaced else ""))
    return 0
