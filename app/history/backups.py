"""Copies of the history database, so that a damaged disk, a bad update or a mistake never costs anyone their chats.

A copy is made with SQLite's online backup API (consistent while the app writes, the write-ahead log included) into a
temporary file, checked with ``PRAGMA integrity_check``, and only then given its name, so a backup on the list is one
that can be restored. The app makes a daily copy while it runs and a weekly one, keeping the newest ``KEEP_DAILY`` and
``KEEP_WEEKLY``; a person can make one at any time (``manual``), an upgrade of the schema keeps the database it
upgrades (``before-upgrade``) and a restore the one it replaces (``before-restore``); only daily and weekly copies are
ever removed. Hand-written rather than a backup library's: the whole of it is the API's one call, the check, and the
rotation by name.

A start looks the database over first (``look_over``) and opens nothing for writing when SQLite finds it damaged:
writing to a damaged file can spread the damage, and the newest good backup is offered instead. A damaged database a
restore replaces cannot be backed up (its copy would fail the check), so it is set aside as it is (``set_aside``).
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
from app.words import moment

log = logging.getLogger(__name__)

KEEP_DAILY = 7
KEEP_WEEKLY = 4
BUSY_TIMEOUT_S = 30.0
_NAME = re.compile(r"^history-(daily|weekly|manual|before-upgrade|before-restore)-(\d{8}T\d{6}Z)(?:-\d+)?\.sqlite3$")


class BackupKind(enum.StrEnum):
    DAILY = "daily"
    WEEKLY = "weekly"
    MANUAL = "manual"
    BEFORE_UPGRADE = "before-upgrade"
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
    now = (now or datetime.now(UTC)).astimezone(UTC).replace(microsecond=0)  # what the name keeps of it
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


def check(path: Path, *, quick: bool = False) -> str:
    """SQLite's own check of the database at ``path``: "" when sound, else its first finding. ``quick`` is
    ``PRAGMA quick_check``: every page and record read, but no index compared with its table, so it costs time in
    proportion to the file rather than a sort per index (about two thirds of the full check's time on a history of
    100,000 messages); an index out of step with its table loses no chat and is rebuilt by ``REINDEX``."""
    try:
        with closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=BUSY_TIMEOUT_S)) as db:
            rows = db.execute("PRAGMA quick_check" if quick else "PRAGMA integrity_check").fetchall()
    except sqlite3.DatabaseError as error:
        if _damage(error):  # not a database at all, or damaged where SQLite starts reading
            return str(error)
        raise  # locked, not allowed, a disk that fails: no finding about the file, whatever it holds
    findings = [str(row[0]) for row in rows if row and row[0] != "ok"]
    return findings[0] if findings else ""


def _damage(error: sqlite3.Error) -> bool:
    code = getattr(error, "sqlite_errorcode", None)
    return isinstance(code, int) and code & 0xFF in (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB)


class DamagedHistoryError(HistoryError):
    """The history failed SQLite's check at start, so it was not opened; ``newest_good`` is the newest backup that
    passes the full check (None when there is none), what the window offers to restore."""

    def __init__(self, path: Path, finding: str, newest_good: Backup | None, way_out: str = "") -> None:
        """``way_out``: what to do, where the window's offer is not at hand (the command line)."""
        if newest_good is not None:
            advice = (f"The newest good backup is from {moment(newest_good.made_at)}: restoring it brings back the "
                      "history as it was then, and the damaged file is kept beside the backups.")
        else:
            advice = ("There is no good backup to restore. Start a new history, and keep the damaged file (Hearth "
                      "sets it aside beside the backups): much of it may still be recoverable.")
        self.summary = ("Hearth's history file is damaged or is not a database, so Hearth did not open it, to keep the "
                        "damage from spreading.")
        super().__init__(f"{self.summary[:-1]}: {path}. SQLite's check found: {finding.rstrip('.')}. {advice}"
                         + (f" {way_out}" if way_out else ""))
        self.path, self.finding, self.newest_good, self.advice = path, finding, newest_good, advice


def look_over(database: Path, folder: Path) -> None:
    """Raises ``DamagedHistoryError`` when the history at ``database`` fails SQLite's quick check (or is not a
    database); a history not made yet passes. The quick check, not the full one, because every start pays for it
    (the full one still checks every backup kept); when it fails, the backups in ``folder`` are checked in full,
    newest first, for the one to offer."""
    if not database.is_file() or database.stat().st_size == 0:
        return
    try:
        finding = check(database, quick=True)
    except sqlite3.Error as error:
        log.warning("the history %s could not be checked at start: %s", database, error)
        return  # opening it says why, in words (``app.history.database.history_problem``)
    if finding:
        log.error("the history %s failed its check at start: %s", database, finding)
        raise DamagedHistoryError(database, finding, newest_good(folder))


def newest_good(folder: Path) -> Backup | None:
    """The newest backup that passes the full check now (a copy is checked when it is made, but a disk can damage
    it since)."""
    for backup in backups(folder):
        try:
            problem = check(backup.path)
        except sqlite3.Error as error:
            problem = str(error)
        if not problem:
            return backup
        log.warning("the backup %s failed its check: %s", backup.path, problem)
    return None


def set_aside(database: Path, folder: Path, now: datetime | None = None) -> Path:
    """Moves the (damaged) database, with its write-ahead log, into ``folder`` under a name no list of backups
    shows, so that a new history or a restored one can take its place and nothing of it is lost. Returns where."""
    stamp = (now or datetime.now(UTC)).astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    target = folder / f"history-damaged-{stamp}.sqlite3"
    counter = 1
    while target.exists():
        counter += 1
        target = folder / f"history-damaged-{stamp}-{counter}.sqlite3"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        database.replace(target)
        wal = database.with_name(database.name + "-wal")
        if wal.exists():
            wal.replace(target.with_name(target.name + "-wal"))  # SQLite reads it back with the file it belongs to
        database.with_name(database.name + "-shm").unlink(missing_ok=True)
    except OSError as error:
        raise HistoryError(f"Could not move the damaged history aside to {target}: {error.strerror or error}.") \
            from error
    log.warning("the damaged history %s was set aside as %s", database, target)
    return target


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


def restore(backup: Path, database: Path, folder: Path) -> Path | None:
    """Puts ``backup`` in the place of ``database``, which is kept first (where there is one): as one more backup,
    or, when it fails its check, set aside as it is. Nothing may write to the database meanwhile (the window
    stops what writes and closes its store first; the CLI asks for the window to be closed). Returns where the
    database replaced is kept."""
    if not backup.is_file():
        raise HistoryError(f"There is no backup at {backup}; `hearth history backups` lists them.")
    try:
        problem = check(backup)
    except sqlite3.Error as error:
        raise HistoryError(f"Could not read that backup ({error}); the history was left as it was.") from error
    if problem:
        raise HistoryError(f"That backup failed its check ({problem}); the history was left as it was.")
    replaced: Path | None = None
    if database.exists():
        try:
            replaced = back_up(database, folder, BackupKind.BEFORE_RESTORE).path
        except HistoryError:
            try:
                damaged = check(database)
            except sqlite3.Error:
                damaged = ""
            if not damaged:
                raise  # the history could not be copied (a full disk, a lock), not for damage: it stays as it is
            replaced = set_aside(database, folder)
    try:
        # Into the database through SQLite, its write-ahead log left in place: a connection the app has not closed
        # yet (a read still running as the store lets go) then sees the restored pages, where deleting the log
        # under it would let it write stale pages back when it closes.
        with closing(sqlite3.connect(backup)) as source, \
                closing(sqlite3.connect(database, timeout=BUSY_TIMEOUT_S)) as target:
            source.backup(target)
    except (sqlite3.Error, OSError) as error:
        kept = f" The history from before is kept at {replaced}." if replaced else ""
        raise HistoryError(f"Could not restore the backup ({error}).{kept}") from error
    log.info("history restored from %s (the one replaced: %s)", backup, replaced or "none")
    return replaced
