"""Joined buttons, one per choice: the tasks on the Tasks page, the kinds of comparison on Compare."""

from __future__ import annotations

from collections.abc import Mapping

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QButtonGroup, QHBoxLayout, QPushButton, QWidget


class SegmentedPicker(QWidget):
    """Joined buttons, one per choice (the tasks on the Tasks page, the kinds of input on Compare)."""

    chosen = Signal(str)

    def __init__(self, labels: Mapping[str, str]) -> None:
        super().__init__()
        keys = list(labels)
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.setSpacing(0)
        self.group = QButtonGroup(self)
        self.buttons: dict[str, QPushButton] = {}
        for i, key in enumerate(keys):
            button = QPushButton(labels[key])
            button.setCheckable(True)
            button.setObjectName("segment")
            button.setProperty("position", "first" if i == 0 else "last" if i == len(keys) - 1 else "middle")
            self.group.addButton(button, i)
            self.buttons[key] = button
            row.addWidget(button)
        self.buttons[keys[0]].setChecked(True)
        self.group.idClicked.connect(lambda i: self.chosen.emit(keys[i]))

    def choose(self, key: str) -> None:
        self.buttons[key].setChecked(True)
