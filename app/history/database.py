"""Opening the history database: checks, backup, migration, then a ready engine.

The order matters. A file that is not a database, or one written by a newer Hearth, is refused before
anything touches it; an existing database that needs upgrading is backed up first (a checked copy among the
backups, ``app.history.backups``), so a failed or regretted upgrade never costs anyone their chats.

When SQLite refuses the file, ``history_problem`` says why in words. Most refusals are about the place, not the
file: a full disk (SQLite often reports it as a "disk I/O error" while growing its shared-memory file), a
read-only disk, a folder that belongs to someone else, or a lock held by another program. Only when SQLite's own
``PRAGMA integrity_check`` finds faults (or the file is not a database at all) is the history called damaged and
moving it aside suggested: advice to discard a history that is intact costs people their chats.
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import NullPool

from app.errors import HistoryError
from app.history.backups import BackupKind, back_up
from app.words import format_bytes

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
BUSY_TIMEOUT_MS = 30_000
UNVERSIONED = "unversioned"

_BEGIN_OPTION = "hearth_sqlite_begin"


SEARCH_PREFIX = "search_"  # the full-text index's tables (migration 0013), with FTS5's own beside them


def in_orm(name: str | None, type_: str, _parents: object) -> bool:
    """Alembic's ``include_name`` when comparing the ORM with the database: the search index's tables are virtual
    tables that the migrations make and the triggers fill, never ORM models."""
    return not (type_ == "table" and name is not None and name.startswith(SEARCH_PREFIX))


def alembic_config(connection: Connection | None = None) -> Config:
    """Built in code so an installed app needs no alembic.ini and no working directory."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None, "the history migrations folder has no revisions"
    return head


def known_revisions() -> set[str]:
    script = ScriptDirectory.from_config(alembic_config())
    return {rev.revision for rev in script.walk_revisions()}


@dataclass(frozen=True)
class _FileState:
    exists: bool  # holds at least one table; an empty file is as good as a new one
    revision: str | None


class Database:
    """An engine plus short sessions; safe to share between threads because nothing long-lived is."""

    def __init__(self, engine: Engine, path: Path) -> None:
        self.engine = engine
        self.path = path
        self._readers = sessionmaker(bind=engine, expire_on_commit=False)
        # BEGIN IMMEDIATE takes the write lock up front, so a writer waits on the busy timeout instead of
        # failing when another thread committed between its first read and its first write.
        self._writers = sessionmaker(
            bind=engine.execution_options(**{_BEGIN_OPTION: "IMMEDIATE"}), expire_on_commit=False
        )

    @contextmanager
    def session(self, *, write: bool = True) -> Iterator[Session]:
        """One short transaction: committed when the block ends, rolled back if it raises."""
        factory = self._writers if write else self._readers
        try:
            with factory() as session, session.begin():
                yield session
        except DBAPIError as exc:
            if not _is_place_or_damage(exc.orig):
                raise  # a constraint or a programming error: a bug, with its traceback
            raise HistoryError(history_problem(self.path, exc.orig or exc)) from exc

    def close(self) -> None:
        self.engine.dispose()


def open_database(path: Path, backups_dir: Path | None = None) -> Database:
    """Open (creating or upgrading as needed) the history database at ``path``; the copy made before an upgrade goes
    to ``backups_dir``, by default the ``backups`` folder beside it (where ``Paths.backups_dir`` is)."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise HistoryError(history_problem(path, exc)) from exc

    state = _inspect(path)
    head = head_revision()
    if state.revision is not None and state.revision not in known_revisions():
        raise HistoryError(
            "This history was written by a newer version of Hearth, so this version cannot read it. "
            f"Please update Hearth. (File: {path})"
        )
    backup: Path | None = None
    if state.exists and state.revision != head:
        backup = _backup(path, backups_dir or path.parent / "backups", state.revision or UNVERSIONED)
    if not (state.exists and state.revision == head):  # up to date: Alembic and the links' check would read it all
        _migrate(path, backup)

    engine = _make_engine(path)
    return Database(engine, path)


def _inspect(path: Path) -> _FileState:
    if not path.exists():
        return _FileState(exists=False, revision=None)
    try:
        with closing(sqlite3.connect(path, timeout=BUSY_TIMEOUT_MS / 1000)) as conn:
            tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            revision = None
            if "alembic_version" in tables:
                row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
                revision = row[0] if row else None
    except sqlite3.DatabaseError as exc:
        raise HistoryError(history_problem(path, exc)) from exc
    return _FileState(exists=bool(tables), revision=revision)


def _backup(path: Path, folder: Path, revision: str) -> Path:
    """A checked copy among the backups (``app.history.backups``), kept until the person removes it: an upgrade
    regretted weeks later can still be undone."""
    try:
        made = back_up(path, folder, BackupKind.BEFORE_UPGRADE)
    except HistoryError as exc:
        cause = exc.__cause__
        words = history_problem(path, cause) if isinstance(cause, sqlite3.Error | OSError) else str(exc)
        raise HistoryError("Hearth could not back up its history before upgrading it, so it left it untouched. "
                           + words) from exc
    log.info("backed up the history (schema %s) to %s before upgrading it", revision, made.path)
    return made.path


def _migrate(path: Path, backup: Path | None) -> None:
    # Foreign keys stay off while migrating: batch mode rebuilds tables, which would otherwise cascade.
    engine = _make_engine(path, foreign_keys=False, poolclass=NullPool)
    try:
        with engine.execution_options(**{_BEGIN_OPTION: "IMMEDIATE"}).begin() as conn:
            command.upgrade(alembic_config(conn), "head")
            broken = conn.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
            if broken:
                raise HistoryError(
                    f"Upgrading Hearth's history left {len(broken)} broken links between records, "
                    "so the upgrade was undone." + _backup_note(backup)
                )
    except DBAPIError as exc:
        if not _is_place_or_damage(exc.orig):
            raise HistoryError(
                f"Hearth could not upgrade its history database ({path}): {exc.orig}." + _backup_note(backup)
            ) from exc
        raise HistoryError(history_problem(path, exc.orig or exc) + _backup_note(backup)) from exc
    except (SQLAlchemyError, CommandError) as exc:
        raise HistoryError(
            f"Hearth could not open or upgrade its history database ({path}): {exc}." + _backup_note(backup)
        ) from exc
    finally:
        engine.dispose()


def _backup_note(backup: Path | None) -> str:
    return f" A copy from before the upgrade is at {backup}." if backup else ""


def _make_engine(path: Path, *, foreign_keys: bool = True, poolclass: Any = None) -> Engine:
    kwargs: dict[str, Any] = {"connect_args": {"check_same_thread": False, "timeout": BUSY_TIMEOUT_MS / 1000}}
    if poolclass is not None:
        kwargs["poolclass"] = poolclass
    engine = create_engine(f"sqlite:///{path}", **kwargs)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: sqlite3.Connection, _record: object) -> None:
        # Hand transaction control to the "begin" hook below; sqlite3's own skips BEGIN for SELECT and DDL.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute(f"PRAGMA foreign_keys={'ON' if foreign_keys else 'OFF'}")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        mode = conn.get_execution_options().get(_BEGIN_OPTION, "DEFERRED")
        conn.exec_driver_sql(f"BEGIN {mode}")

    return engine


# --- why SQLite refused the file, in words ----------------------------------------------------------------------

LOW_SPACE_BYTES = 16 * 1024 * 1024  # less than this free, and SQLite cannot grow its journal and shared memory
_PLACE_CODES = frozenset({sqlite3.SQLITE_FULL, sqlite3.SQLITE_READONLY, sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_PERM,
                          sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_IOERR, sqlite3.SQLITE_AUTH})
_DAMAGE_CODES = frozenset({sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB})


def _code(error: BaseException | None) -> int | None:
    """SQLite's primary result code (``SQLITE_IOERR`` for ``SQLITE_IOERR_SHMSIZE``), if ``error`` has one."""
    code = getattr(error, "sqlite_errorcode", None)
    return code & 0xFF if isinstance(code, int) else None


def _is_place_or_damage(error: BaseException | None) -> bool:
    return _code(error) in _PLACE_CODES | _DAMAGE_CODES


def history_problem(path: Path, error: BaseException) -> str:
    """Why the history at ``path`` cannot be opened or saved, as a sentence for people, from SQLite's ``error``
    (or the OS's): locked, disk full, read-only, not allowed, damaged (only when SQLite's integrity check says
    so), or else SQLite's own words with the assurance that the file is not known to be damaged."""
    code = _code(error)
    folder = path.parent
    os_errno = error.errno if isinstance(error, OSError) else None
    if code in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
        return (f"Hearth's history is locked by another program that has it open ({path}), so Hearth cannot use "
                "it now. Close that program (a database viewer, or a copy of Hearth that is stuck) and try again. "
                "Your history is unharmed.")
    damaged = _integrity(path) if code in _DAMAGE_CODES else None
    if not damaged:
        free = _free_bytes(folder)
        if code == sqlite3.SQLITE_FULL or os_errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):
            return _full_disk(folder, free)
        if os_errno == errno.EROFS or _read_only_file_system(folder):
            return (f"The disk that holds Hearth's history is read-only ({folder}), so Hearth cannot save to it. "
                    "Your history is unharmed: make the disk writable, or start Hearth with its data on another "
                    "disk.")
        if os_errno in (errno.EACCES, errno.EPERM) or not _writable(path):
            return (f"Hearth is not allowed to write to its history ({path}): the file or its folder belongs to "
                    "another user account or is write-protected. Your history is unharmed: give your account "
                    "permission to change that folder, then try again.")
        if free is not None and free < LOW_SPACE_BYTES:
            return _full_disk(folder, free)
        if damaged is None:
            damaged = _integrity(path)
    if damaged:
        return (f"Hearth's history file is damaged or is not a database, so it cannot be opened: {path}. "
                "SQLite's integrity check found it unreadable. Move it somewhere else to start a new history "
                "(keep the file: much of it may still be recoverable).")
    words = str(error).strip().rstrip(".") or type(error).__name__
    return (f"Hearth could not use its history ({path}): SQLite said “{words}”. "
            + ("SQLite's integrity check found the file intact, so nothing is lost. " if damaged is False else
               "This does not mean the history is damaged. ")
            + "Check that the disk is connected and working, and try again.")


def _full_disk(folder: Path, free: int | None) -> str:
    left = f" ({format_bytes(free)} free)" if free is not None else ""
    return (f"The disk that holds Hearth's history is full{left}, so Hearth cannot open or save it ({folder}). "
            "Your history is unharmed: free some space on that disk and try again.")


def _free_bytes(folder: Path) -> int | None:
    for place in (folder, *folder.parents):
        try:
            return shutil.disk_usage(place).free
        except OSError:
            continue
    return None


def _read_only_file_system(folder: Path) -> bool:
    statvfs = getattr(os, "statvfs", None)  # not on Windows, where a read-only disk refuses with EACCES
    for place in (folder, *folder.parents):
        try:
            return statvfs is not None and bool(statvfs(place).f_flag & os.ST_RDONLY)
        except OSError:
            continue
    return False


def _writable(path: Path) -> bool:
    """Whether this account may write the file (if it exists) and create files beside it (the journal)."""
    folder = path.parent
    if not folder.exists():
        return _writable(folder) if folder != folder.parent else False
    return os.access(folder, os.W_OK | os.X_OK) and (not path.exists() or os.access(path, os.R_OK | os.W_OK))


def _integrity(path: Path) -> bool | None:
    """True if SQLite's ``PRAGMA integrity_check`` finds the file damaged (or not a database), False if it finds
    it intact, None if the check could not run (the disk, not the file, is what failed)."""
    if not path.is_file():
        return None
    try:
        with closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=1)) as conn:
            rows = conn.execute("PRAGMA integrity_check").fetchall()
    except sqlite3.DatabaseError as exc:
        return True if _code(exc) in _DAMAGE_CODES else None
    return rows != [("ok",)]
