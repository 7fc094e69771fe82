"""Run a core call off the GUI thread, then continue on the GUI thread with its result or its error.

    BackgroundOp(parent, store.list_conversations).success(show).failure(report).run()

The call site reads like the synchronous code it replaces, and no widget waits. Results come back through
a queued signal of a QObject that lives on the GUI thread; the operation keeps itself alive until then.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal, Slot

from app.errors import HearthError

log = logging.getLogger(__name__)

_running: set[BackgroundOp] = set()


class _Relay(QObject):
    done = Signal(object, object)  # result, error


class _Task(QRunnable):
    def __init__(self, fn: Callable[[], Any], relay: _Relay) -> None:
        super().__init__()
        self.fn, self.relay = fn, relay

    def run(self) -> None:
        try:
            result = self.fn()
        except BaseException as error:
            self.relay.done.emit(None, error)
        else:
            self.relay.done.emit(result, None)


class BackgroundOp(QObject):
    def __init__(self, parent: QObject | None, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        super().__init__(parent)
        self._call = lambda: fn(*args, **kwargs)
        self._on_success: Callable[[Any], None] | None = None
        self._on_failure: Callable[[BaseException], None] | None = None
        self._relay = _Relay()
        self._relay.done.connect(self._finished)

    def success(self, callback: Callable[[Any], None]) -> BackgroundOp:
        self._on_success = callback
        return self

    def failure(self, callback: Callable[[BaseException], None]) -> BackgroundOp:
        self._on_failure = callback
        return self

    def run(self) -> BackgroundOp:
        _running.add(self)
        QThreadPool.globalInstance().start(_Task(self._call, self._relay))
        return self

    @Slot(object, object)
    def _finished(self, result: Any, error: BaseException | None) -> None:
        _running.discard(self)
        try:
            if error is None:
                if self._on_success:
                    self._on_success(result)
            elif self._on_failure:
                self._on_failure(error)
            elif not isinstance(error, HearthError):
                log.error("background operation failed", exc_info=error)
        finally:
            self.deleteLater()


def wait_for_background(timeout_ms: int = 10_000) -> bool:
    """Let running operations finish (used at shutdown and by tests)."""
    return QThreadPool.globalInstance().waitForDone(timeout_ms)
