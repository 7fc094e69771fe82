"""The Tasks and Compare pages a start builds after the first paint are built a stage per event-loop turn, so that
no turn holds the window up for a whole page (``benchmarks/history_scale.py`` measures the start's longest stall)."""

from __future__ import annotations

from pytestqt.qtbot import QtBot

from ui.main_window import MainWindow
from ui.qt.lazy_page import LazyPage

from tests.helpers.windows import MakeWindow


def _steps(page: LazyPage) -> int:  # type: ignore[type-arg]
    steps = 1
    while not page.step():
        steps += 1
    return steps


def test_each_page_is_built_in_several_short_stages_and_works_once_built(qtbot: QtBot, make_window: MakeWindow) -> None:
    window: MainWindow = make_window()
    for page in (window._tasks_page, window._compare_page):
        assert not page.is_built()
        assert _steps(page) >= 4  # making the page, its view's stages, putting the view in place
        assert page.is_built()
    window._show_page(3)
    assert window.tasks.view.isVisible() and window.tasks.history is window.tasks.view.history
    window._show_page(4)
    assert window.compare.view.isVisible() and window.compare.panel is window.compare.view.panel


def test_a_page_wanted_before_its_turns_came_is_finished_at_once(make_window: MakeWindow) -> None:
    window: MainWindow = make_window()
    page = window._tasks_page
    page.step()
    page.step()  # part way
    assert not page.is_built()
    tasks = window.tasks  # a first visit, or a document opened from the chat
    assert page.is_built() and tasks.output is tasks.view.output and page.step()
