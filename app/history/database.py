"""Opening the history database: checks, backup, migration, then a ready engine.

The order matters. A file that is not a database, or one written by a newer Hearth, is refused before
anything touches it; an existing database that needs upgrading is copied aside first, so a failed or
regretted upgrade never costs anyone their chats.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import NullPool

from app.errors import HistoryError

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
BUSY_TIMEOUT_MS = 30_000
UNVERSIONED = "unversioned"

_BEGIN_OPTION = "hearth_sqlite_begin"


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
        with factory() as session, session.begin():
            yield session

    def close(self) -> None:
        self.engine.dispose()


def open_database(path: Path) -> Database:
    """Open (creating or upgrading as needed) the history database at ``path``."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise HistoryError(
            f"Hearth could not create the folder for its history ({path.parent}): {exc}"
        ) from exc

    state = _inspect(path)
    head = head_revision()
    if state.revision is not None and state.revision not in known_revisions():
        raise HistoryError(
            "This history was written by a newer version of Hearth, so this version cannot read it. "
            f"Please update Hearth. (File: {path})"
        )
    backup: Path | None = None
    if state.exists and state.revision != head:
        backup = _backup(path, state.revision or UNVERSIONED)
    _migrate(path, backup)

    engine = _make_engine(path)
    return Database(engine, path)


def _inspect(path: Path) -> _FileState:
    if not path.exists():
        return _FileState(exists=False, revision=None)
    try:
        with closing(sqlite3.connect(path)) as conn:
            tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            revision = None
            if "alembic_version" in tables:
                row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
                revision = row[0] if row else None
    except sqlite3.DatabaseError as exc:
        raise HistoryError(
            f"Hearth's history file is damaged or is not a database, so it cannot be opened: {path}. "
            "Move it somewhere else to start a new history."
        ) from exc
    return _FileState(exists=bool(tables), revision=revision)


def _backup(path: Path, label: str) -> Path:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    target = path.with_name(f"{path.stem}.backup-{label}-{stamp}.sqlite3")
    counter = 1
    while target.exists():
        counter += 1
        target = path.with_name(f"{path.stem}.backup-{label}-{stamp}-{counter}.sqlite3")
    # The backup API reads through the WAL, so the copy is consistent even if the last run left one.
    try:
        with closing(sqlite3.connect(path)) as source, closing(sqlite3.connect(target)) as copy:
            source.backup(copy)
    except (sqlite3.Error, OSError) as exc:
        raise HistoryError(
            f"Hearth could not back up its history before upgrading it, so it left it untouched: {exc}"
        ) from exc
    log.info("backed up history database to %s before upgrading it", target)
    return target


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
