"""The window keeps the history's backups: today's and this week's checked copies, made off the GUI thread once
the start has settled, and again as days go by."""

from __future__ import annotations

import pytest
from pytestqt.qtbot import QtBot

from app.history.backups import BackupKind, backups

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
