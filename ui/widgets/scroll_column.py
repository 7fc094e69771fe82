"""A column of controls that scrolls when the window is too short for it."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFrame, QScrollArea, QStyle, QWidget


def scrolled(content: QWidget) -> QScrollArea:
    """``content`` in a frameless area that scrolls up and down when the window is too short for it (a 1024×700
    screen), so that a column of controls never sets the window's least height; its least width stays the
    column's, with room for the scroll bar."""
    area = QScrollArea()
    area.setWidget(content)
    area.setWidgetResizable(True)
    area.setFrameShape(QFrame.Shape.NoFrame)
    area.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    bar = area.style().pixelMetric(QStyle.PixelMetric.PM_ScrollBarExtent)
    area.setMinimumWidth(content.minimumSizeHint().width() + bar)
    return area
