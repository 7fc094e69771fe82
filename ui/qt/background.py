"""Run a core call off the GUI thread, then continue on the GUI thread with its result or its error.

    BackgroundOp(parent, store.list_conversations).success(show).failure(report).run()

The call site reads like the synchronous code it replaces, and no widget waits. The call runs on Qt's
global thread pool; its result comes back through the op's own signal, which Qt queues to the GUI thread
because the op lives there.

The op is not a child of its owner: a window deleted while the call runs would delete the op's C++ side under
the pool thread that is emitting from it, and that crashes now and then. The op keeps itself alive instead,
delivers to nobody once its owner is gone, and is released on the GUI thread once both its continuation has
run and the pool thread has let go of it (an object must not be destroyed inside the delivery of its own
signal, nor on a thread it does not live on).
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable
from typing import Any, Generic, ParamSpec, TypeVar

import shiboken6
from PySide6.QtCore import QObject, QThreadPool, QTimer, Signal, Slot

from app.errors import HearthError

log = logging.getLogger(__name__)

P = ParamSpec("P")
T = TypeVar("T")

_running: dict[int, BackgroundOp[Any]] = {}  # keeps each op's Python side alive until it is released
_presenter: Callable[[BaseException], None] | None = None


def present_failures_with(presenter: Callable[[BaseException], None] | None) -> None:
    """What an op without its own ``failure`` does with an error: the composition root passes the window's way
    of showing one (``None`` again when the window goes). Without a presenter, errors people can cause are
    dropped and bugs are logged."""
    global _presenter
    _presenter = presenter


class BackgroundOp(QObject, Generic[T]):
    """``fn(*args, **kwargs)`` on the thread pool; ``success`` gets its result (type-checked against ``fn``),
    ``failure`` its error, else the presenter of ``present_failures_with`` does. Nothing is called once
    ``owner`` (the page or window the op works for) has been deleted."""

    _done = Signal(object, object)  # result, error

    def __init__(self, owner: QObject | None, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> None:
        super().__init__(None)
        self._owner = owner
        self._call: Callable[[], T] | None = functools.partial(fn, *args, **kwargs)
        self._on_success: Callable[[T], object] | None = None
        self._on_failure: Callable[[BaseException], object] | None = None
        self._let_go = threading.Event()  # the pool thread holds no reference to the op any more
        self._done.connect(self._finished)

    def success(self, callback: Callable[[T], object]) -> BackgroundOp[T]:
        self._on_success = callback
        return self

    def failure(self, callback: Callable[[BaseException], object]) -> BackgroundOp[T]:
        self._on_failure = callback
        return self

    def run(self) -> BackgroundOp[T]:
        _running[id(self)] = self
        handed = [self]

        def job() -> None:
            op = handed.pop()
            let_go = op._let_go
            try:
                op._work()
            finally:
                del op  # while _running still holds the op, so it is never destroyed on this thread
                let_go.set()

        QThreadPool.globalInstance().start(job)
        return self

    def _work(self) -> None:
        call = self._call
        if call is None:
            return
        try:
            result, error = call(), None
        except BaseException as raised:
            result, error = None, raised
        self._done.emit(result, error)

    @Slot(object, object)
    def _finished(self, result: Any, error: BaseException | None) -> None:
        try:
            if self._owner is not None and not shiboken6.isValid(self._owner):
                log.debug("a background operation finished after its window closed")  # nobody left to tell
            elif error is None:
                if self._on_success:
                    self._on_success(result)
            elif self._on_failure:
                self._on_failure(error)
            elif _presenter is not None:
                _presenter(error)
            elif not isinstance(error, HearthError):
                log.error("background operation failed", exc_info=error)
        finally:
            self._call = self._on_success = self._on_failure = None  # no cycles left
            self._owner = None
            QTimer.singleShot(0, self._release)

    def _release(self) -> None:
        if not self._let_go.wait(0):
            QTimer.singleShot(1, self._release)  # the pool thread is still returning from the emit
            return
        _running.pop(id(self), None)


def wait_for_background(timeout_ms: int = 10_000) -> bool:
    """Let running operations finish (used at shutdown and by tests)."""
    return QThreadPool.globalInstance().waitForDone(timeout_ms)
