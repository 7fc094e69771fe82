"""Backups of the history: checked copies made with SQLite's backup API, daily and weekly ones kept to their number,
a restore that keeps the history it replaces, and a damaged copy never kept or restored."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from app.errors import HistoryError
from app.history import HistoryStore, open_database
from app.history.backups import (
    KEEP_DAILY,
    KEEP_WEEKLY,
    BackupKind,
    DamagedHistoryError,
    back_up,
    backups,
    check,
    keep_up,
    look_over,
    restore,
    set_aside,
)
from app.words import moment


@pytest.fixture
def database(tmp_path: Path) -> Path:
    store = HistoryStore(open_database(tmp_path / "data" / "history.sqlite3"))
    chat = store.create_conversation("Garden", {})
    store.add_message(chat.id, "user", "When do tulips flower?")
    store.close()
    return tmp_path / "data" / "history.sqlite3"


def test_a_backup_is_a_checked_copy_with_what_the_app_wrote(database: Path, tmp_path: Path) -> None:
    running = HistoryStore(open_database(database))  # the app, running: its last writes are in the write-ahead log
    running.create_conversation("Just now", {})
    made = back_up(database, tmp_path / "backups", BackupKind.MANUAL)
    running.close()
    assert made.path.name.startswith("history-manual-") and made.size > 0 and check(made.path) == ""
    copy = HistoryStore(open_database(made.path))
    assert {c.title for c in copy.list_conversations()} == {"Garden", "Just now"}
    assert [b.path for b in backups(tmp_path / "backups")] == [made.path]
    assert not list((tmp_path / "backups").glob("*.partial"))


def test_daily_and_weekly_copies_are_kept_to_their_number(database: Path, tmp_path: Path) -> None:
    folder = tmp_path / "backups"
    start = datetime(2026, 1, 5, 9, tzinfo=UTC)  # a Monday
    for day in range(40):
        keep_up(database, folder, start + timedelta(days=day))
        keep_up(database, folder, start + timedelta(days=day, hours=5))  # again that day: nothing new
    kept = backups(folder)
    daily = [b for b in kept if b.kind is BackupKind.DAILY]
    weekly = [b for b in kept if b.kind is BackupKind.WEEKLY]
    assert len(daily) == KEEP_DAILY and len(weekly) == KEEP_WEEKLY
    assert daily[0].made_at == start + timedelta(days=39) and weekly[0].made_at.isocalendar()[1] == \
        (start + timedelta(days=39)).isocalendar()[1]


def test_restore_keeps_the_history_it_replaces(database: Path, tmp_path: Path) -> None:
    folder = tmp_path / "backups"
    before = back_up(database, folder, BackupKind.MANUAL)
    store = HistoryStore(open_database(database))
    store.create_conversation("Written after the backup", {})
    store.close()
    replaced = restore(before.path, database, folder)
    assert replaced is not None and [b.kind for b in backups(folder) if b.path == replaced] == \
        [BackupKind.BEFORE_RESTORE]
    assert [c.title for c in HistoryStore(open_database(database)).list_conversations()] == ["Garden"]
    assert {c.title for c in HistoryStore(open_database(replaced)).list_conversations()} == \
        {"Garden", "Written after the backup"}


def test_a_damaged_copy_is_neither_kept_nor_restored(database: Path, tmp_path: Path) -> None:
    folder = tmp_path / "backups"
    made = back_up(database, folder, BackupKind.MANUAL)
    damaged = tmp_path / "damaged.sqlite3"
    data = bytearray(made.path.read_bytes())
    data[4096:8192] = b"\xff" * 4096  # a page of the database overwritten
    damaged.write_bytes(bytes(data))
    assert check(damaged) != ""
    with pytest.raises(HistoryError, match="That backup failed its check"):
        restore(damaged, database, folder)
    with pytest.raises(HistoryError, match="The history failed its check"):
        back_up(damaged, folder, BackupKind.MANUAL)
    assert [b.path for b in backups(folder)] == [made.path]  # nothing added by either
    assert [c.title for c in HistoryStore(open_database(database)).list_conversations()] == ["Garden"]


def test_hearth_history_backup_backups_and_restore(tmp_path: Path) -> None:
    from app.paths import Paths

    from tests.helpers.command import hearth

    home = tmp_path / "home"
    store = HistoryStore(open_database(Paths.under(home).ensure().database))
    store.create_conversation("Garden", {})
    made = hearth(home, "history", "backup")
    assert made.returncode == 0 and made.stdout.startswith("Backed up the history to ")
    listed = hearth(home, "history", "backups")
    assert listed.returncode == 0 and " manual " in listed.stdout
    path = listed.stdout.split()[-1]
    restored = hearth(home, "history", "restore", path)
    assert restored.returncode == 0 and restored.stdout.startswith("Restored the history from history-manual-")
    missing = hearth(home, "history", "restore", str(tmp_path / "nothing.sqlite3"))
    assert missing.returncode == 1 and "There is no backup at" in missing.stderr


def test_a_start_finds_a_damaged_history_and_the_newest_good_backup(database: Path, tmp_path: Path) -> None:
    from tests.helpers.damage import damage_pages

    folder = tmp_path / "backups"
    look_over(database, folder)  # a sound history: nothing to say
    look_over(tmp_path / "not-made-yet.sqlite3", folder)
    older = back_up(database, folder, BackupKind.DAILY, datetime(2026, 3, 1, 9, tzinfo=UTC))
    newer = back_up(database, folder, BackupKind.MANUAL, datetime(2026, 3, 2, 9, tzinfo=UTC))
    damage_pages(newer.path)  # damaged on disk after it was made: not offered
    damage_pages(database)
    with pytest.raises(DamagedHistoryError) as raised:
        look_over(database, folder)
    assert raised.value.newest_good is not None and raised.value.newest_good.path == older.path
    assert "damaged or is not a database" in str(raised.value) and str(database) in str(raised.value)
    assert f"The newest good backup is from {moment(older.made_at)}:" in str(raised.value)

    older.path.unlink()
    with pytest.raises(DamagedHistoryError, match="There is no good backup to restore") as raised:
        look_over(database, folder)
    assert raised.value.newest_good is None


def test_restoring_over_a_damaged_history_sets_it_aside(database: Path, tmp_path: Path) -> None:
    from tests.helpers.damage import damage_pages

    folder = tmp_path / "backups"
    good = back_up(database, folder, BackupKind.DAILY)
    damage_pages(database)
    damaged_bytes = database.read_bytes()
    kept = restore(good.path, database, folder)
    assert kept is not None and kept.name.startswith("history-damaged-") and kept.read_bytes() == damaged_bytes
    assert kept not in [b.path for b in backups(folder)]  # set aside, never offered as a backup
    assert [c.title for c in HistoryStore(open_database(database)).list_conversations()] == ["Garden"]


def test_a_history_that_is_not_a_database_is_set_aside_for_a_new_one(tmp_path: Path) -> None:
    database = tmp_path / "data" / "history.sqlite3"
    database.parent.mkdir()
    database.write_bytes(b"not a database at all " * 500)
    database.with_name("history.sqlite3-wal").write_bytes(b"its log")
    with pytest.raises(DamagedHistoryError, match="file is not a database"):
        look_over(database, tmp_path / "backups")
    moved = set_aside(database, tmp_path / "backups")
    assert not database.exists() and moved.read_bytes().startswith(b"not a database")
    assert moved.with_name(moved.name + "-wal").read_bytes() == b"its log"
    assert HistoryStore(open_database(database)).list_conversations() == []


def test_a_locked_history_is_not_called_damaged(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Only SQLite's findings of damage count: a lock held by another program says nothing of the file."""
    import sqlite3

    from app.history import backups as backups_module

    monkeypatch.setattr(backups_module, "BUSY_TIMEOUT_S", 0.05)
    database = tmp_path / "history.sqlite3"
    holder = sqlite3.connect(database, isolation_level=None)
    holder.execute("CREATE TABLE chats (title TEXT)")
    holder.execute("BEGIN EXCLUSIVE")
    holder.execute("INSERT INTO chats VALUES ('held')")
    try:
        look_over(database, tmp_path / "backups")  # nothing raised: the opening says why it cannot open
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            check(database, quick=True)
    finally:
        holder.execute("ROLLBACK")
        holder.close()


def test_the_command_line_does_not_open_a_damaged_history_and_says_how_to_restore(tmp_path: Path) -> None:
    from app.history import HistoryStore, open_database
    from app.paths import Paths

    from tests.helpers.command import hearth
    from tests.helpers.damage import damage_pages

    home = tmp_path / "home"
    paths = Paths.under(home).ensure()
    store = HistoryStore(open_database(paths.database))
    for n in range(300):
        store.create_conversation(f"Chat {n}", {"note": "x" * 200})
    store.close()
    damage_pages(paths.database)
    before = paths.database.read_bytes()
    result = hearth(home, "history", "search", "chat")
    assert result.returncode != 0
    assert "damaged" in result.stderr and "`hearth history restore BACKUP`" in result.stderr, result.stderr
    assert paths.database.read_bytes() == before  # not opened for writing
