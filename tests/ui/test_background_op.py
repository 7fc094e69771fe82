"""Background operations: the result comes back on the GUI thread; an error goes to the op's own failure, else to
the presenter the composition root set, else (a bug) to the log."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator

import pytest
import shiboken6
from PySide6.QtWidgets import QWidget
from pytestqt.qtbot import QtBot

from app.errors import HearthError
from ui.qt import background
from ui.qt.background import BackgroundOp, present_failures_with
from ui.qt.cross_thread import guarded_emit

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


def test_an_owner_deleted_while_the_call_runs_hears_nothing_and_the_op_goes(qtbot: QtBot) -> None:
    """The op is not the owner's child: deleting the owner mid-call must not delete the object the pool thread
    is about to emit from."""
    owner = QWidget()
    started, release = threading.Event(), threading.Event()
    heard: list[int] = []

    def work() -> int:
        started.set()
        release.wait(10)
        return 1

    op = BackgroundOp(owner, work).success(heard.append).failure(lambda _e: heard.append(-1)).run()
    assert started.wait(10)
    owner.deleteLater()
    qtbot.waitUntil(lambda: not shiboken6.isValid(owner))
    assert shiboken6.isValid(op)  # the op outlives its owner while its call runs
    release.set()
    qtbot.waitUntil(lambda: id(op) not in background._running)
    assert heard == []


def test_many_events_relayed_while_the_bridge_is_deleted(qtbot: QtBot) -> None:
    """A core thread emits through ``guarded_emit`` while the GUI thread deletes the owner: calls made after
    the deletion do nothing, and none crashes."""
    from PySide6.QtCore import QObject, Signal

    class Owner(QObject):
        said = Signal(int)

    owner = Owner()
    heard: list[int] = []
    owner.said.connect(heard.append)
    say = guarded_emit(owner, owner.said.emit)
    stop = threading.Event()
    sent: list[int] = []

    def chatter() -> None:
        n = 0
        while not stop.is_set():
            say(n)
            sent.append(n)
            n += 1

    thread = threading.Thread(target=chatter)
    thread.start()
    qtbot.waitUntil(lambda: len(heard) > 100)
    owner.deleteLater()
    qtbot.waitUntil(lambda: not shiboken6.isValid(owner))
    after = len(sent)
    qtbot.waitUntil(lambda: len(sent) > after + 1000)  # the thread goes on calling a dead owner, harmlessly
    stop.set()
    thread.join(10)
    assert not thread.is_alive() and 100 < len(heard) <= after + 1
