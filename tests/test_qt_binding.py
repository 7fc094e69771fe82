"""The Qt binding itself must not corrupt the interpreter: PySide6 6.12.0 dropped a reference to ``None`` on every
call of a void Qt method (``QWidget.update``, ``QApplication.processEvents``…) under Python 3.11, so a session
that made enough of them (a long answer re-rendered token by token, say) ended in "Fatal Python error:
deallocating None". pyproject.toml keeps that version out; this keeps it out for good."""

from __future__ import annotations

import sys

from PySide6.QtWidgets import QApplication, QLabel
from pytestqt.qtbot import QtBot


def test_void_qt_calls_keep_none_alive(qtbot: QtBot) -> None:
    label = QLabel("x")
    qtbot.addWidget(label)
    app = QApplication.instance()
    assert app is not None
    before = sys.getrefcount(None)
    for _ in range(1000):
        label.update()
        label.setText("y")
        app.processEvents()
    assert sys.getrefcount(None) >= before - 50, "each void Qt call dropped a reference to None"
