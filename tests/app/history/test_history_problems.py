"""A history that cannot be used says why: a full disk, a read-only disk, a folder Hearth may not write to and a lock
held by another program are told apart from damage, and only a file SQLite's integrity check finds damaged is
called damaged (with the advice to move it aside). Every condition is real: a small tmpfs filled to the brim,
a read-only remount, file modes, an exclusive lock, overwritten bytes, SQLite's own page limit."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import pytest
from sqlalchemy import event

from app.errors import HistoryError
from app.history import HistoryStore, open_database
from app.history import database as database_module
from app.settings import GenerationSettings

from tests.helpers import ROOT
from tests.helpers.command import HEARTH
from tests.helpers.disks import as_ordinary_user, file_modes_can_bind, run_on_small_disk, small_disks_available

DAMAGE_WORDS = ("damaged", "Move it", "start a new history")

DRIVER = """
import json, os, subprocess, sys
from pathlib import Path
from tests.helpers.command import hearth

home, condition, commands = Path(sys.argv[1]), sys.argv[2], json.loads(sys.argv[3])
first = hearth(home, "models", "list")  # the history exists and is intact before the disk goes bad
assert first.returncode == 0, first.stderr
if condition == "full":
    filler = os.open(home.parent / "filler", os.O_WRONLY | os.O_CREAT)
    try:
        while os.write(filler, bytes(1 << 16)):
            pass
    except OSError:
        pass
    os.close(filler)
else:
    subprocess.run(["mount", "-o", "remount,ro", str(home.parent)], check=True)
results = []
for command in commands:
    done = hearth(home, *command)
    results.append([done.returncode, done.stderr])
print(json.dumps(results))
"""


def _on_bad_disk(tmp_path: Path, condition: str, commands: list[list[str]]) -> list[tuple[int, str]]:
    disk = tmp_path / "disk"
    done = run_on_small_disk(disk, "8m", sys.executable, "-c", DRIVER, str(disk / "home"), condition,
                             json.dumps(commands))
    assert done.returncode == 0, done.stderr
    return [(code, stderr) for code, stderr in json.loads(done.stdout.strip().splitlines()[-1])]


def _model_commands(model: Path) -> list[list[str]]:
    readme = str(ROOT / "README.md")
    return [["models", "list"], ["models", "import", str(model)], ["chat", str(model), "--prompt", "Hello"],
            ["summarize", readme, "--model", str(model)], ["compare", str(model), str(model), "--prompt", "Hello"]]


@pytest.mark.skipif(not small_disks_available(), reason="needs a private tmpfs (Linux user namespaces)")
def test_a_full_disk_is_called_full_by_every_command(tmp_path: Path, test_model_path: Path) -> None:
    results = _on_bad_disk(tmp_path, "full", _model_commands(test_model_path))
    for code, stderr in results:
        assert code == 1, stderr
        assert "The disk that holds Hearth's history is full" in stderr and "unharmed" in stderr
        assert not any(words in stderr for words in DAMAGE_WORDS), stderr
        assert "Traceback" not in stderr and "Logging error" not in stderr


@pytest.mark.skipif(not small_disks_available(), reason="needs a private tmpfs (Linux user namespaces)")
def test_a_read_only_disk_is_called_read_only(tmp_path: Path, test_model_path: Path) -> None:
    results = _on_bad_disk(tmp_path, "read-only", _model_commands(test_model_path)[:2])
    for code, stderr in results:
        assert code == 1, stderr
        assert "is read-only" in stderr and "unharmed" in stderr
        assert not any(words in stderr for words in DAMAGE_WORDS), stderr
        assert "Traceback" not in stderr


@pytest.mark.skipif(not file_modes_can_bind(), reason="root without setpriv ignores file modes")
@pytest.mark.parametrize("locked", ["folder", "file"])
def test_a_history_hearth_may_not_write_is_not_called_damaged(tmp_path: Path, test_model_path: Path,
                                                              locked: str) -> None:
    home = tmp_path / "home"
    env = {**os.environ, "HEARTH_HOME": str(home)}
    first = subprocess.run([*HEARTH, "models", "list"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert first.returncode == 0, first.stderr
    data = home / "data"
    target = data if locked == "folder" else data / "history.sqlite3"
    target.chmod(0o555 if locked == "folder" else 0o444)
    try:
        done = subprocess.run(as_ordinary_user([*HEARTH, "models", "import", str(test_model_path), "--in-place"]),
                              cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    finally:
        target.chmod(0o755 if locked == "folder" else 0o644)
    assert done.returncode == 1, done.stderr
    assert "not allowed to write to its history" in done.stderr, done.stderr
    assert not any(words in done.stderr for words in DAMAGE_WORDS) and "Traceback" not in done.stderr


def test_a_lock_held_by_another_program_is_called_a_lock(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "data" / "history.sqlite3"
    open_database(path).close()
    monkeypatch.setattr(database_module, "BUSY_TIMEOUT_MS", 200)
    with closing(sqlite3.connect(path)) as other:  # as a database viewer that opened the file exclusively
        other.execute("PRAGMA locking_mode=EXCLUSIVE")
        other.execute("BEGIN EXCLUSIVE")
        with pytest.raises(HistoryError) as refused:
            open_database(path)
    assert "locked by another program" in str(refused.value) and "unharmed" in str(refused.value)
    assert not any(words in str(refused.value) for words in DAMAGE_WORDS)
    open_database(path).close()  # and once the lock is gone, it opens


def test_a_write_refused_by_a_full_database_says_so_and_loses_nothing(tmp_path: Path) -> None:
    path = tmp_path / "data" / "history.sqlite3"
    db = open_database(path)
    store = HistoryStore(db)
    conversation = store.create_conversation("Kept", GenerationSettings().to_dict())
    store.add_message(conversation.id, "user", "already saved")

    @event.listens_for(db.engine, "connect")
    def _no_room(connection: sqlite3.Connection, _record: object) -> None:
        pages = connection.execute("PRAGMA page_count").fetchone()[0]
        connection.execute(f"PRAGMA max_page_count = {pages}")  # SQLite's own limit: SQLITE_FULL, for real

    db.engine.dispose()
    with pytest.raises(HistoryError) as refused:
        store.add_message(conversation.id, "user", "x" * 200_000)
    assert "is full" in str(refused.value) and not any(words in str(refused.value) for words in DAMAGE_WORDS)
    event.remove(db.engine, "connect", _no_room)
    db.engine.dispose()
    assert [m.content for m in store.messages(conversation.id)] == ["already saved"]
    db.close()
    with closing(sqlite3.connect(path)) as check:
        assert check.execute("PRAGMA integrity_check").fetchall() == [("ok",)]


def test_only_a_file_the_integrity_check_finds_damaged_is_called_damaged(tmp_path: Path) -> None:
    path = tmp_path / "data" / "history.sqlite3"
    db = open_database(path)
    store = HistoryStore(db)
    conversation = store.create_conversation("Doomed", GenerationSettings().to_dict())
    for index in range(200):
        store.add_message(conversation.id, "user", f"message {index} " * 40)
    db.close()
    with closing(sqlite3.connect(path)) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
    data = bytearray(path.read_bytes())
    for page in range(pages // 2, pages):  # the messages' pages, overwritten; the schema on page 1 still reads
        data[page * page_size + 8:page * page_size + 200] = b"\xa5" * 192
    path.write_bytes(bytes(data))

    with pytest.raises(HistoryError) as refused:
        HistoryStore(open_database(path)).messages(conversation.id)
    assert "damaged" in str(refused.value) and "Move it somewhere else" in str(refused.value)


def test_a_sqlite_error_on_an_intact_file_never_suggests_discarding_it(tmp_path: Path) -> None:
    path = tmp_path / "data" / "history.sqlite3"
    open_database(path).close()
    words = database_module.history_problem(path, sqlite3.OperationalError("disk I/O error"))
    assert "integrity check found the file intact" in words
    assert not any(damage in words for damage in DAMAGE_WORDS)
