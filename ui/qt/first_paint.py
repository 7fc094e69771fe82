"""The moment a window is first on screen: the one way Hearth measures its start, and the hook after it.

``seconds_until_shown`` is what ``--self-test`` reports and ``benchmarks/cold_start.py`` compares with a bare Qt
window, so both sides are measured the same way: from the process's launch to the window's being exposed. This
module imports nothing but Qt and the launch clock, so using it adds nothing to what it measures.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from PySide6.QtCore import QEvent, QEventLoop, QObject, QTimer
from PySide6.QtWidgets import QApplication, QWidget

from app.launch_clock import seconds_since_launch


def is_shown(window: QWidget) -> bool:
    handle = window.windowHandle()
    return handle is not None and handle.isExposed()


def seconds_until_shown(window: QWidget, timeout_s: float) -> float | None:
    """Runs Qt's events until ``window`` (already ``show()``n) is exposed; the seconds since launch then, or None if
    it was not shown within ``timeout_s``."""
    app = QApplication.instance()
    assert app is not None
    deadline = time.monotonic() + timeout_s
    while not is_shown(window):
        if time.monotonic() > deadline:
            return None
        app.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 50)
    return seconds_since_launch()


def after_first_paint(window: QWidget, callback: Callable[[], None]) -> None:
    """Calls ``callback`` once, on the GUI thread, in an event-loop turn after ``window`` was first exposed (and so
    painted): work started then cannot delay the first paint, not even by holding the GIL while it imports."""
    if is_shown(window):
        QTimer.singleShot(0, callback)
    else:
        _ExposeWatch(window, callback)


class _ExposeWatch(QObject):
    """Watches a shown window's native window for exposes until it is on screen, then removes itself."""

    def __init__(self, window: QWidget, callback: Callable[[], None]) -> None:
        handle = window.windowHandle()
        assert handle is not None, "show() the window first"
        super().__init__(handle)
        self._window, self._handle = window, handle
        self._callback: Callable[[], None] | None = callback
        handle.installEventFilter(self)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.Expose:
            QTimer.singleShot(0, self._check)  # after the expose has been handled, and the window painted
        return False

    def _check(self) -> None:
        if self._callback is not None and is_shown(self._window):
            callback, self._callback = self._callback, None
            self._handle.removeEventFilter(self)
            self.deleteLater()
            callback()
