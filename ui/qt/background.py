"""Run a core call off the GUI thread, then continue on the GUI thread with its result or its error.

    BackgroundOp(parent, store.list_conversations).success(show).failure(report).run()

The call site reads like the synchronous code it replaces, and no widget waits. The call runs on Qt's
global thread pool; its result comes back through the op's own signal, which Qt queues to the GUI thread
because the op lives there. The op keeps itself alive until then, and is released one event-loop turn
after its continuation ran: an object must not be destroyed inside the delivery of its own signal.
"""

from __future__ import annotations

import contextlib
import functools
import logging
from collections.abc import Callable
from typing import Any, Generic, ParamSpec, TypeVar

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
    ``failure`` its error, else the presenter of ``present_failures_with`` does."""

    _done = Signal(object, object)  # result, error

    def __init__(self, parent: QObject | None, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> None:
        super().__init__(parent)
        self._call: Callable[[], T] | None = functools.partial(fn, *args, **kwargs)
        self._on_success: Callable[[T], object] | None = None
        self._on_failure: Callable[[BaseException], object] | None = None
        self._done.connect(self._finished)

    def success(self, callback: Callable[[T], object]) -> BackgroundOp[T]:
        self._on_success = callback
        return self

    def failure(self, callback: Callable[[BaseException], object]) -> BackgroundOp[T]:
        self._on_failure = callback
        return self

    def run(self) -> BackgroundOp[T]:
        _running[id(self)] = self
        # A window closed before the op finished deletes the op with it, and the queued result is never
        # delivered: forget it then, on the GUI thread, or it would stay "running" for ever.
        self.destroyed.connect(functools.partial(_running.pop, id(self), None))
        QThreadPool.globalInstance().start(self._work)
        return self

    def _work(self) -> None:
        call = self._call
        if call is None:
            return
        try:
            result, error = call(), None
        except BaseException as raised:
            result, error = None, raised
        try:
            self._done.emit(result, error)
        except RuntimeError:
            log.debug("a background operation finished after its window closed")  # nobody left to tell

    @Slot(object, object)
    def _finished(self, result: Any, error: BaseException | None) -> None:
        try:
            if error is None:
                if self._on_success:
                    self._on_success(result)
            elif self._on_failure:
                self._on_failure(error)
            elif _presenter is not None:
                _presenter(error)
            elif not isinstance(error, HearthError):
                log.error("background operation failed", exc_info=error)
        finally:
            QTimer.singleShot(0, self._release)

    def _release(self) -> None:
        """Drop the callbacks and the parent; the parent may already be gone with its window, and then so
        is this object's C++ side, which is fine: only the Python reference is left to drop."""
        self._call = self._on_success = self._on_failure = None  # no cycles left
        _running.pop(id(self), None)
        with contextlib.suppress(RuntimeError):
            self.setParent(None)


def wait_for_background(timeout_ms: int = 10_000) -> bool:
    """Let running operations finish (used at shutdown and by tests)."""
    return QThreadPool.globalInstance().waitForDone(timeout_ms)
