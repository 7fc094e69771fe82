"""Backups of the history: checked copies made with SQLite's backup API, daily and weekly ones kept to their number,
a restore that keeps the history it replaces, and a damaged copy never kept or restored."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from app.errors import HistoryError
from app.history import HistoryStore, open_database
from app.history.backups import KEEP_DAILY, KEEP_WEEKLY, BackupKind, back_up, backups, check, keep_up, restore


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
    assert replaced is not None and replaced.kind is BackupKind.BEFORE_RESTORE
    assert [c.title for c in HistoryStore(open_database(database)).list_conversations()] == ["Garden"]
    assert {c.title for c in HistoryStore(open_database(replaced.path)).list_conversations()} == \
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
