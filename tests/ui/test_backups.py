"""The window keeps the history's backups: today's and this week's checked copies, made off the GUI thread once
the start has settled, and again as days go by; one made by hand; a restore that asks first, keeps the history it
replaces and opens the window again on the restored one; a damaged history at start, not opened, with the newest good
backup offered; and an import from the File menu."""

from __future__ import annotations

import gc
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from PySide6.QtCore import QCoreApplication, QEvent, Qt
from PySide6.QtWidgets import QApplication, QMessageBox, QWidget
from pytestqt.qtbot import QtBot

from app.history import HistoryStore, open_database
from app.history.backups import BackupKind, back_up, backups
from app.paths import Paths
from app.settings import Settings
from app.words import format_bytes, moment
from ui.history.damaged import DamagedHistoryBox
from ui.main import start_window
from ui.main_window import MainWindow
from ui.qt import background

from tests.helpers.damage import damage_pages
from tests.helpers.windows import TIMEOUT, MakeWindow

pytestmark = pytest.mark.gui


def test_the_window_makes_the_daily_and_weekly_backups(qtbot: QtBot, make_window: MakeWindow,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("ui.main_window.BACKUP_FIRST_MS", 0)
    window = make_window()
    folder = window.services.paths.backups_dir
    qtbot.waitUntil(lambda: len(backups(folder)) == 2, timeout=TIMEOUT)
    assert {b.kind for b in backups(folder)} == {BackupKind.DAILY, BackupKind.WEEKLY}
    window._keep_backups()  # again the same day: nothing more
    qtbot.wait(300)
    assert len(backups(folder)) == 2


# --- backing up and restoring by hand, a damaged history at start, importing ---

SHOTS = Path(os.environ.get("HEARTH_SCREENSHOTS", tempfile.gettempdir()))


def shoot(widget: QWidget, name: str) -> None:
    """What the person sees, saved for a look (``HEARTH_SCREENSHOTS``, else the temporary folder)."""
    widget.show()
    widget.grab().save(str(SHOTS / f"hearth-{name}.png"))


def titles(window: MainWindow) -> list[str]:
    model = window.chat.conversations
    return [record.title for row in range(model.rowCount()) if (record := model.record(row)) is not None]


def history(home: Path, *titles: str) -> Paths:
    paths = Paths.under(home).ensure()
    store = HistoryStore(open_database(paths.database))
    for title in titles:
        store.add_message(store.create_conversation(title, {}).id, "user", f"About {title.lower()}")
    store.close()
    return paths


@pytest.fixture
def start(qtbot: QtBot) -> Iterator[Callable[[Paths], tuple[MainWindow, list[BaseException]]]]:
    """Windows started as ``run_app`` starts them (``start_window``), and every window a restore opens after them;
    all closed and deleted at the end, on the GUI thread."""
    failures: list[BaseException] = []

    def started(paths: Paths) -> tuple[MainWindow, list[BaseException]]:
        window = start_window(paths, Settings.load(paths.settings_file), failed=failures.append)
        return window, failures

    yield started
    for widget in QApplication.topLevelWidgets():
        if isinstance(widget, MainWindow):
            widget.close()
    qtbot.waitUntil(lambda: not background._running, timeout=TIMEOUT)
    background.wait_for_background()
    for widget in QApplication.topLevelWidgets():
        if isinstance(widget, MainWindow):
            widget.deleteLater()
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    from app import network

    network.configure(None)
    gc.collect()


def another_window(old: MainWindow) -> MainWindow | None:
    return next((w for w in QApplication.topLevelWidgets()
                 if isinstance(w, MainWindow) and w is not old and w.isVisible()), None)


def test_back_up_now_and_the_list_of_backups(qtbot: QtBot, make_window: MakeWindow) -> None:
    window = make_window()
    folder = window.services.paths.backups_dir
    back_up(window.services.paths.database, folder, BackupKind.DAILY, datetime(2026, 12, 1, 9, tzinfo=UTC))
    window.keeper.show_backups()
    dialog = window.keeper.dialog
    assert dialog is not None
    qtbot.waitUntil(lambda: dialog.table.rowCount() == 1, timeout=TIMEOUT)
    qtbot.mouseClick(dialog.back_up_button, Qt.MouseButton.LeftButton)
    assert not dialog.back_up_button.isEnabled() and dialog.progress.isVisible()  # while it runs
    qtbot.waitUntil(lambda: dialog.table.rowCount() == 2, timeout=TIMEOUT)
    assert dialog.back_up_button.isEnabled() and not dialog.progress.isVisible()
    assert dialog.status.text().startswith("Backed up the history (")
    newest, oldest = backups(folder)
    assert newest.kind is BackupKind.MANUAL
    cells = [[dialog.table.item(row, column).text() for column in range(3)] for row in range(2)]
    assert cells == [[moment(newest.made_at), "Made by hand", format_bytes(newest.size)],
                     [moment(oldest.made_at), "Daily", format_bytes(oldest.size)]]
    assert dialog.chosen() == newest and dialog.restore_button.isEnabled()
    shoot(dialog, "backups-dialog")
    dialog.reject()
    assert window.keeper.dialog is None


def test_restore_from_a_backup_asks_first_keeps_the_history_and_reopens_the_window(
        qtbot: QtBot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        start: Callable[[Paths], tuple[MainWindow, list[BaseException]]]) -> None:
    paths = history(tmp_path / "home", "Before")
    earlier = back_up(paths.database, paths.backups_dir, BackupKind.MANUAL)
    history(tmp_path / "home", "After")
    window, failures = start(paths)
    with qtbot.waitSignal(window.ready, timeout=TIMEOUT):
        pass
    qtbot.waitUntil(lambda: sorted(titles(window)) == ["After", "Before"], timeout=TIMEOUT)
    window.keeper.show_backups()
    dialog = window.keeper.dialog
    assert dialog is not None
    qtbot.waitUntil(lambda: dialog.table.rowCount() == 1, timeout=TIMEOUT)

    asked: list[str] = []

    def cancel(box: QMessageBox) -> int:
        asked.append(f"{box.text()} {box.informativeText()}")
        shoot(box, "restore-confirmation")
        box.button(QMessageBox.StandardButton.Cancel).click()
        return 0

    monkeypatch.setattr(QMessageBox, "exec", cancel)
    qtbot.mouseClick(dialog.restore_button, Qt.MouseButton.LeftButton)
    assert asked == [f"Put the history back as it was on {moment(earlier.made_at)}? The history as it is now is kept "
                     "as one more backup first, so you can come back to it. Hearth stops what it is doing (an "
                     "answer being written, a task, a comparison; downloads pause and go on later) and opens its "
                     "window again on the restored history."]
    assert backups(paths.backups_dir) == [earlier]  # cancelled: nothing done

    def restore_it(box: QMessageBox) -> int:
        next(b for b in box.buttons() if b.text() == "Restore").click()
        return 0

    monkeypatch.setattr(QMessageBox, "exec", restore_it)
    qtbot.mouseClick(dialog.restore_button, Qt.MouseButton.LeftButton)
    assert not dialog.restore_button.isEnabled() and not dialog.close_button.isEnabled()
    qtbot.waitUntil(lambda: another_window(window) is not None, timeout=TIMEOUT)
    again = another_window(window)
    assert again is not None
    with qtbot.waitSignal(again.ready, timeout=TIMEOUT):
        pass
    qtbot.waitUntil(lambda: titles(again) == ["Before"], timeout=TIMEOUT)
    assert again.statusBar().currentMessage().startswith(
        f"Restored the history from the backup of {moment(earlier.made_at)}. The history from before is kept as a "
        "backup: history-before-restore-")
    kept = [b for b in backups(paths.backups_dir) if b.kind is BackupKind.BEFORE_RESTORE]
    assert len(kept) == 1
    copy = HistoryStore(open_database(kept[0].path))
    assert sorted(c.title for c in copy.list_conversations()) == ["After", "Before"]
    copy.close()
    assert failures == []


def test_a_damaged_history_at_start_is_not_opened_and_the_newest_good_backup_is_offered(
        qtbot: QtBot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        start: Callable[[Paths], tuple[MainWindow, list[BaseException]]]) -> None:
    paths = history(tmp_path / "home", "Garden", "Bread")
    good = back_up(paths.database, paths.backups_dir, BackupKind.DAILY)
    damage_pages(paths.database)
    damaged = paths.database.read_bytes()
    offered: list[tuple[str, list[str]]] = []

    def restore_it(box: DamagedHistoryBox) -> int:
        assert paths.database.read_bytes() == damaged  # not opened for writing: nothing migrated, nothing marked
        offered.append((box.informativeText(), choices(box)))
        shoot(box, "damaged-history")
        assert box.restore_button is not None
        box.restore_button.click()
        return 0

    monkeypatch.setattr(DamagedHistoryBox, "exec", restore_it)
    window, failures = start(paths)
    with qtbot.waitSignal(window.ready, timeout=TIMEOUT):
        pass
    when = moment(good.made_at)
    assert offered == [(f"The newest good backup is from {when}: restoring it brings back the history as it was "
                        "then, and the damaged file is kept beside the backups.",
                        [f"Restore the backup of {when}", "Quit"])]
    qtbot.waitUntil(lambda: sorted(titles(window)) == ["Bread", "Garden"], timeout=TIMEOUT)
    [aside] = paths.backups_dir.glob("history-damaged-*.sqlite3")
    assert aside.read_bytes() == damaged
    assert window.statusBar().currentMessage() == (f"Restored the history from the backup of {when}. The damaged "
                                                   f"history is kept at {aside}.")
    assert failures == []


def test_a_damaged_history_without_a_backup_can_start_a_new_one(
        qtbot: QtBot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        start: Callable[[Paths], tuple[MainWindow, list[BaseException]]]) -> None:
    paths = history(tmp_path / "home", "Garden")
    damage_pages(paths.database)
    offered: list[list[str]] = []

    def start_anew(box: DamagedHistoryBox) -> int:
        offered.append(choices(box))
        shoot(box, "damaged-history-no-backup")
        assert box.new_button is not None
        box.new_button.click()
        return 0

    monkeypatch.setattr(DamagedHistoryBox, "exec", start_anew)
    window, failures = start(paths)
    with qtbot.waitSignal(window.ready, timeout=TIMEOUT):
        pass
    assert offered == [["Start a new history", "Quit"]]
    assert titles(window) == [] and failures == []
    [aside] = paths.backups_dir.glob("history-damaged-*.sqlite3")
    assert window.statusBar().currentMessage() == f"Started a new history. The damaged one is kept at {aside}."


def test_importing_a_chatgpt_export_from_the_window(qtbot: QtBot, make_window: MakeWindow, tmp_path: Path) -> None:
    from tests.app.history.test_history_chatgpt import export

    window = make_window()
    path = tmp_path / "conversations.json"
    path.write_text(json.dumps(export(), ensure_ascii=False), encoding="utf-8")
    window.keeper.import_file(path)
    qtbot.waitUntil(lambda: bool(shown_boxes(window)), timeout=TIMEOUT)
    [box] = shown_boxes(window)
    assert box.text() == ("Imported 2 conversations (6 messages) from ChatGPT. 1 conversation without a text message "
                          "was left out.")
    shoot(box, "import-result")
    box.close()
    qtbot.waitUntil(lambda: sorted(titles(window)) == ["Bread 🍞", "日本語のチャット"], timeout=TIMEOUT)

    path.write_text("[" * 100_000, encoding="utf-8")
    window.keeper.import_file(path)
    qtbot.waitUntil(lambda: bool(shown_boxes(window)), timeout=TIMEOUT)
    [box] = shown_boxes(window)
    assert box.icon() is QMessageBox.Icon.Warning
    assert box.text().startswith("“conversations.json” is ") and box.text().endswith("Nothing was imported.")
    box.close()
    assert sorted(titles(window)) == ["Bread 🍞", "日本語のチャット"]


def choices(box: QMessageBox) -> list[str]:
    """The box's answers (not its Show Details…)."""
    return [b.text() for b in box.buttons() if box.buttonRole(b) is not QMessageBox.ButtonRole.ActionRole]


def shown_boxes(window: MainWindow) -> list[QMessageBox]:
    return [box for box in window.findChildren(QMessageBox) if box.isVisible()]
