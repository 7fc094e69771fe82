"""Background operations: the result comes back on the GUI thread; an error goes to the op's own failure, else to
the presenter the composition root set, else (a bug) to the log."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator

import pytest
from PySide6.QtWidgets import QWidget
from pytestqt.qtbot import QtBot

from app.errors import HearthError
from ui.qt.background import BackgroundOp, present_failures_with

pytestmark = pytest.mark.gui


@pytest.fixture
def parent(qtbot: QtBot) -> Iterator[QWidget]:
    widget = QWidget()
    qtbot.addWidget(widget)
    yield widget
    present_failures_with(None)


def _fail(error: BaseException) -> None:
    raise error


def test_the_result_comes_back_on_the_gui_thread(qtbot: QtBot, parent: QWidget) -> None:
    got: list[tuple[int, bool]] = []
    worker: list[bool] = []

    def work(a: int, *, b: int) -> int:
        worker.append(threading.current_thread() is threading.main_thread())
        return a + b

    BackgroundOp(parent, work, 2, b=3).success(lambda n: got.append((n, threading.current_thread()
                                                                     is threading.main_thread()))).run()
    qtbot.waitUntil(lambda: bool(got))
    assert got == [(5, True)] and worker == [False]


def test_an_error_goes_to_the_ops_failure_then_to_the_presenter(qtbot: QtBot, parent: QWidget) -> None:
    own: list[BaseException] = []
    presented: list[BaseException] = []
    present_failures_with(presented.append)
    BackgroundOp(parent, _fail, HearthError("The disk is full.")).failure(own.append).run()
    qtbot.waitUntil(lambda: bool(own))
    BackgroundOp(parent, _fail, HearthError("No network.")).run()
    qtbot.waitUntil(lambda: bool(presented))
    assert [str(e) for e in own] == ["The disk is full."] and [str(e) for e in presented] == ["No network."]


def test_without_a_presenter_a_bug_is_logged(qtbot: QtBot, parent: QWidget,
                                             caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR, logger="ui.qt.background"):
        BackgroundOp(parent, _fail, RuntimeError("a bug")).run()
        qtbot.waitUntil(lambda: "background operation failed" in caplog.text)
    assert "a bug" in caplog.text
