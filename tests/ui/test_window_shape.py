"""The window opens as it was left: its size and place, and where its splitters were dragged; a window last seen on
a screen that is gone opens on one that is there."""

from __future__ import annotations

import json

import pytest
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QSplitter
from pytestqt.qtbot import QtBot

from ui.main_window import DISCOVER_PAGE, TASKS_PAGE, MainWindow

from tests.helpers.windows import MakeWindow

pytestmark = pytest.mark.gui


def _splitter(window: MainWindow, name: str) -> QSplitter:
    splitter = window.findChild(QSplitter, name)
    assert splitter is not None, name
    return splitter


def _drag(qtbot: QtBot, window: MainWindow, page: int, name: str, position: int) -> list[int]:
    window._show_page(page)
    splitter = _splitter(window, name)
    qtbot.waitUntil(splitter.isVisible)
    splitter.moveSplitter(position, 1)  # what dragging its handle does
    return splitter.sizes()


def test_size_and_place_are_kept_and_a_lost_screen_does_not_hide_the_window(qtbot: QtBot,
                                                                             make_window: MakeWindow) -> None:
    window = make_window()
    usual = window.size()
    # this test's screen is 800 px wide, and the window needs a little more: its narrowest fits both
    window.resize(window.minimumSizeHint().width(), 640)
    size = window.size()
    assert size != usual
    window.move(5000, 300)  # on a second screen to the right, which will be gone next time
    window.close()

    reopened = make_window()
    assert reopened.size() == size
    screen = QGuiApplication.primaryScreen().availableGeometry()
    assert screen.contains(reopened.frameGeometry().topLeft()), "on a screen that is there"
    assert reopened.isVisible()


def test_splitters_open_where_they_were_dragged(qtbot: QtBot, make_window: MakeWindow) -> None:
    window = make_window()
    window.resize(window.minimumSizeHint().width(), 640)  # a size this test's screen keeps (see above)
    discover = _drag(qtbot, window, DISCOVER_PAGE, "discoverSplitter", 420)
    tasks = _drag(qtbot, window, TASKS_PAGE, "taskSplitter", 380)
    window.close()
    saved = json.loads(window.services.paths.settings_file.read_text(encoding="utf-8"))
    assert set(saved["splitter_states"]) == {"discoverSplitter", "taskSplitter"}

    reopened = make_window()
    assert reopened.size() == window.size()
    reopened._show_page(DISCOVER_PAGE)
    qtbot.waitUntil(lambda: _splitter(reopened, "discoverSplitter").sizes() == discover)
    reopened._show_page(TASKS_PAGE)  # a page built after the start takes its splitter's place too
    qtbot.waitUntil(lambda: _splitter(reopened, "taskSplitter").sizes() == tasks)


def test_a_splitter_never_moved_is_not_saved(qtbot: QtBot, make_window: MakeWindow) -> None:
    """Hidden pages' splitters have no real sizes, and one never moved should follow its page's own defaults."""
    window = make_window()
    window._show_page(DISCOVER_PAGE)
    qtbot.waitUntil(_splitter(window, "discoverSplitter").isVisible)
    window.close()
    saved = json.loads(window.services.paths.settings_file.read_text(encoding="utf-8"))
    assert saved["splitter_states"] == {} and saved["window_geometry"]
