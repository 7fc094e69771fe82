"""Keeps a window's input out while the window is on screen before it can act on it.

The main window is shown before the history, the library and the engine it works on are ready (they take a second
to open off the GUI thread), so that a start looks quick. Until then a click or a key, shortcuts included, that is
meant for that window is dropped, as it would have been before the window existed; nothing else is touched, so
the window looks as it will when ready and other windows (the crash report) take input as usual.
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtWidgets import QApplication, QWidget

_INPUT = frozenset({
    QEvent.Type.MouseButtonPress, QEvent.Type.MouseButtonRelease, QEvent.Type.MouseButtonDblClick,
    QEvent.Type.KeyPress, QEvent.Type.KeyRelease, QEvent.Type.Wheel, QEvent.Type.ContextMenu,
    QEvent.Type.DragEnter, QEvent.Type.DragMove, QEvent.Type.Drop, QEvent.Type.InputMethod,
})


class InputGate(QObject):
    def __init__(self, window: QWidget) -> None:
        super().__init__(window)
        self._window = window
        window.setCursor(Qt.CursorShape.BusyCursor)
        app = QApplication.instance()
        assert app is not None
        app.installEventFilter(self)

    def open(self) -> None:
        app = QApplication.instance()
        if app is not None:
            app.removeEventFilter(self)
        self._window.unsetCursor()
        self.deleteLater()

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        kind = event.type()
        if kind != QEvent.Type.ShortcutOverride and kind not in _INPUT:
            return False
        if not isinstance(watched, QWidget) or watched.window() is not self._window:
            return False
        if kind == QEvent.Type.ShortcutOverride:
            event.accept()  # an accepted override keeps the key from triggering a shortcut; the key press is dropped
        return True
