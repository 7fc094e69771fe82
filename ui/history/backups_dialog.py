"""The backups of the history, newest first, with "Back up now" and "Restore…": layout only, the work is
``HistoryKeeper``'s.

Open with ``open()`` rather than run with ``exec()``: a restore closes the window the dialog belongs to, which must
not happen inside a nested event loop of that window's dialog.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QDialogButtonBox,
    QHeaderView,
    QLabel,
    QProgressBar,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.history.backups import Backup, BackupKind
from app.words import format_bytes, moment

KIND_WORDS = {BackupKind.DAILY: "Daily", BackupKind.WEEKLY: "Weekly", BackupKind.MANUAL: "Made by hand",
              BackupKind.BEFORE_UPGRADE: "Before an upgrade of Hearth",
              BackupKind.BEFORE_RESTORE: "Before a restore"}


class BackupsDialog(QDialog):
    backUpRequested = Signal()
    restoreRequested = Signal(object)  # the Backup chosen; the keeper asks for a confirmation first

    def __init__(self, folder: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Backups of the history")
        self.resize(720, 440)
        layout = QVBoxLayout(self)
        intro = QLabel("Hearth copies its history every day while it runs, keeping the last 7 daily and 4 weekly "
                       "copies, and before every upgrade. Each copy is checked before it is kept. Restoring one puts "
                       "the history back as it was then; the history as it is now is kept as one more backup.")
        intro.setWordWrap(True)
        layout.addWidget(intro)
        self.table = QTableWidget(0, 3)
        self.table.setHorizontalHeaderLabels(["Made", "Kind", "Size"])
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().hide()
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.ResizeToContents)
        self.table.itemSelectionChanged.connect(self._update_buttons)
        self.table.itemDoubleClicked.connect(lambda _item: self._restore())
        layout.addWidget(self.table, 1)
        self.empty = QLabel("No backups yet. Hearth makes the first one a few seconds after it starts; "
                            "“Back up now” makes one at once.")
        self.empty.setObjectName("hint")
        self.empty.setWordWrap(True)
        self.empty.hide()
        layout.addWidget(self.empty)
        self.where = QLabel(f"In {folder}")
        self.where.setObjectName("hint")
        self.where.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(self.where)
        self.status = QLabel()
        self.status.setWordWrap(True)
        self.status.hide()
        layout.addWidget(self.status)
        self.progress = QProgressBar()
        self.progress.setRange(0, 0)  # busy: SQLite's copy says nothing of how far it is
        self.progress.setTextVisible(False)
        self.progress.hide()
        layout.addWidget(self.progress)
        buttons = QDialogButtonBox()
        self.back_up_button = QPushButton("Back up now")
        self.restore_button = QPushButton("Restore…")
        self.close_button = QPushButton("Close")
        buttons.addButton(self.back_up_button, QDialogButtonBox.ButtonRole.ActionRole)
        buttons.addButton(self.restore_button, QDialogButtonBox.ButtonRole.AcceptRole)
        buttons.addButton(self.close_button, QDialogButtonBox.ButtonRole.RejectRole)
        self.back_up_button.clicked.connect(self.backUpRequested)
        self.restore_button.clicked.connect(self._restore)
        self.close_button.clicked.connect(self.reject)
        layout.addWidget(buttons)
        self._backups: list[Backup] = []
        self._busy = False
        self._update_buttons()

    def show_backups(self, backups: list[Backup]) -> None:
        """``backups`` newest first, as ``app.history.backups.backups`` gives them; the newest chosen."""
        self._backups = backups
        self.table.setRowCount(len(backups))
        for row, backup in enumerate(backups):
            for column, text in enumerate((moment(backup.made_at), KIND_WORDS[backup.kind],
                                           format_bytes(backup.size))):
                item = QTableWidgetItem(text)
                item.setToolTip(str(backup.path))
                if column == 2:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.table.setItem(row, column, item)
        self.table.setVisible(bool(backups))
        self.empty.setVisible(not backups)
        if backups:
            self.table.selectRow(0)
        self._update_buttons()

    def chosen(self) -> Backup | None:
        rows = self.table.selectionModel().selectedRows()
        return self._backups[rows[0].row()] if rows and rows[0].row() < len(self._backups) else None

    def set_busy(self, text: str | None) -> None:
        """While a copy or a restore runs: what it does, a busy bar, and no button that could start another (Close
        too: the restore goes on whatever the dialog does)."""
        self._busy = text is not None
        self.progress.setVisible(self._busy)
        if text is not None:
            self.say(text)
        self._update_buttons()

    def say(self, text: str) -> None:
        self.status.setText(text)
        self.status.setVisible(bool(text))

    def reject(self) -> None:
        if not self._busy:
            super().reject()

    def _restore(self) -> None:
        backup = self.chosen()
        if backup is not None and not self._busy:
            self.restoreRequested.emit(backup)

    def _update_buttons(self) -> None:
        self.back_up_button.setEnabled(not self._busy)
        self.restore_button.setEnabled(not self._busy and self.chosen() is not None)
        self.close_button.setEnabled(not self._busy)
        self.table.setEnabled(not self._busy)
