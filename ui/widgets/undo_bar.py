"""The bar under a history list that deletes a record softly and offers Undo for a few seconds.

The Tasks page's recent runs and the Compare page's past comparisons delete the same way: a soft delete
in history, "Deleted “…”. [Undo]" for ten seconds, and a restore that brings the record back.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QTimer, Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton

from ui.qt.background import BackgroundOp

UNDO_SECONDS = 10


class UndoBar(QFrame):
    """Call ``delete(record, record_id, title)``; ``deleted(record)`` follows once history has it,
    ``restored(record)`` after Undo, ``failed(error)`` when history could not be changed."""

    deleted = Signal(object)
    restored = Signal(object)
    failed = Signal(object)  # the exception

    def __init__(self, delete: Callable[[int], None], restore: Callable[[int], None],
                 seconds: int = UNDO_SECONDS) -> None:
        super().__init__()
        self._delete, self._restore = delete, restore
        self._deleted: list[tuple[Any, int]] = []
        self.setObjectName("undoBar")
        row = QHBoxLayout(self)
        row.setContentsMargins(8, 4, 4, 4)
        self.label = QLabel()
        self.label.setWordWrap(True)
        self.button = QPushButton("Undo")
        self.button.setToolTip("Bring back what was just deleted")
        self.button.clicked.connect(self.undo)
        row.addWidget(self.label, 1)
        row.addWidget(self.button)
        self.hide()
        self._timer = QTimer(self, singleShot=True, interval=seconds * 1000)
        self._timer.timeout.connect(self.hide)

    def delete(self, record: Any, record_id: int, title: str) -> None:
        def done(_: object) -> None:
            self._deleted.append((record, record_id))
            self.label.setText(f"Deleted “{title}”.")
            self.show()
            self._timer.start()
            self.deleted.emit(record)

        BackgroundOp(self, self._delete, record_id).success(done).failure(self.failed.emit).run()

    def undo(self) -> None:
        if not self._deleted:
            return
        record, record_id = self._deleted.pop()
        self.hide()
        self._timer.stop()
        BackgroundOp(self, self._restore, record_id).success(lambda _: self.restored.emit(record)) \
            .failure(self.failed.emit).run()

    def stop(self) -> None:
        self._timer.stop()
