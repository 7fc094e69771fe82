"""Copies of the history database, so that a damaged disk, a bad update or a mistake never costs anyone their chats.

A copy is made with SQLite's online backup API (consistent while the app writes, the write-ahead log included) into a
temporary file, checked with ``PRAGMA integrity_check``, and only then given its name, so a backup on the list is one
that can be restored. The app makes a daily copy while it runs and a weekly one, keeping the newest ``KEEP_DAILY`` and
``KEEP_WEEKLY``; a person can make one at any time (``manual``), and a restore keeps the database it replaces
(``before-restore``). Hand-written rather than a backup library's: the whole of it is the API's one call, the check,
and the rotation by name.
"""

from __future__ import annotations

import contextlib
import enum
import logging
import re
import sqlite3
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from app.errors import HistoryError

log = logging.getLogger(__name__)

KEEP_DAILY = 7
KEEP_WEEKLY = 4
_NAME = re.compile(r"^history-(daily|weekly|manual|before-restore)-(\d{8}T\d{6}Z)(?:-\d+)?\.sqlite3$")


class BackupKind(enum.StrEnum):
    DAILY = "daily"
    WEEKLY = "weekly"
    MANUAL = "manual"
    BEFORE_RESTORE = "before-restore"


@dataclass(frozen=True)
class Backup:
    path: Path
    kind: BackupKind
    made_at: datetime
    size: int


def back_up(database: Path, folder: Path, kind: BackupKind, now: datetime | None = None) -> Backup:
    """A checked copy of ``database`` in ``folder``; a ``HistoryError`` with a sentence when it cannot be made or
    the copy fails its check (nothing is kept then)."""
    now = now or datetime.now(UTC)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise HistoryError(f"Could not make the backups folder {folder}: {error.strerror or error}.") from error
    stamp = now.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    target = folder / f"history-{kind.value}-{stamp}.sqlite3"
    counter = 1
    while target.exists():
        counter += 1
        target = folder / f"history-{kind.value}-{stamp}-{counter}.sqlite3"
    partial = target.with_suffix(".partial")
    try:
        with closing(sqlite3.connect(database)) as source, closing(sqlite3.connect(partial)) as copy:
            source.backup(copy)
        problem = check(partial)
    except (sqlite3.Error, OSError) as error:
        partial.unlink(missing_ok=True)
        raise HistoryError(f"Could not back up the history: {error}.") from error
    if problem:
        partial.unlink(missing_ok=True)
        raise HistoryError(f"The history failed its check ({problem}), so no backup was kept of it. Restore an "
                           "earlier backup to get a sound history back.")
    partial.rename(target)
    log.info("history backed up to %s", target)
    return Backup(target, kind, now, target.stat().st_size)


def check(path: Path) -> str:
    """SQLite's own integrity check of the database at ``path``: "" when sound, else its first finding."""
    try:
        with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
            rows = db.execute("PRAGMA integrity_check").fetchall()
    except sqlite3.DatabaseError as error:  # not a database at all, or damaged where SQLite starts reading
        return str(error)
    findings = [str(row[0]) for row in rows if row and row[0] != "ok"]
    return findings[0] if findings else ""


def backups(folder: Path) -> list[Backup]:
    """The backups in ``folder``, newest first."""
    found = []
    for path in folder.glob("history-*.sqlite3") if folder.is_dir() else ():
        match = _NAME.match(path.name)
        if match is None:
            continue
        made = datetime.strptime(match.group(2), "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
        with contextlib.suppress(OSError):
            found.append(Backup(path, BackupKind(match.group(1)), made, path.stat().st_size))
    return sorted(found, key=lambda b: (b.made_at, b.path.name), reverse=True)


def keep_up(database: Path, folder: Path, now: datetime | None = None) -> list[Backup]:
    """The daily copy if today has none, the weekly one if this week has none, then the oldest beyond what is kept
    removed; returns the copies made (often none)."""
    now = now or datetime.now(UTC)
    made = []
    kept = backups(folder)
    if not any(b.kind is BackupKind.DAILY and b.made_at.date() == now.date() for b in kept):
        made.append(back_up(database, folder, BackupKind.DAILY, now))
    week = now.isocalendar()[:2]
    if not any(b.kind is BackupKind.WEEKLY and b.made_at.isocalendar()[:2] == week for b in kept):
        made.append(back_up(database, folder, BackupKind.WEEKLY, now))
    for kind, keep in ((BackupKind.DAILY, KEEP_DAILY), (BackupKind.WEEKLY, KEEP_WEEKLY)):
        for old in [b for b in backups(folder) if b.kind is kind][keep:]:
            with contextlib.suppress(OSError):
                old.path.unlink()
    return made


def restore(backup: Path, database: Path, folder: Path) -> Backup | None:
    """Puts ``backup`` in the place of ``database``, which is kept as one more backup first (where there is one).
    Nothing else may have the database open. Returns the backup of the database replaced."""
    if not backup.is_file():
        raise HistoryError(f"There is no backup at {backup}; `hearth history backups` lists them.")
    problem = check(backup)
    if problem:
        raise HistoryError(f"That backup failed its check ({problem}); the history was left as it was.")
    replaced = back_up(database, folder, BackupKind.BEFORE_RESTORE) if database.exists() else None
    try:
        for leftover in (database.with_name(database.name + "-wal"), database.with_name(database.name + "-shm")):
            leftover.unlink(missing_ok=True)
        with closing(sqlite3.connect(backup)) as source, closing(sqlite3.connect(database)) as target:
            source.backup(target)
    except (sqlite3.Error, OSError) as error:
        kept = f" The history from before is kept at {replaced.path}." if replaced else ""
        raise HistoryError(f"Could not restore the backup ({error}).{kept}") from error
    log.info("history restored from %s (the one replaced: %s)", backup, replaced.path if replaced else "none")
    return replaced
