"""The Privacy page: the Work offline switch, and every network request Hearth has ever made."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QHeaderView,
    QLabel,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.network import RequestRecord
from app.words import format_bytes


class PrivacyDialog(QDialog):
    offlineToggled = Signal(bool)

    def __init__(self, offline: bool, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Privacy")
        self.resize(820, 520)
        layout = QVBoxLayout(self)
        intro = QLabel("Chats, documents and answers never leave this computer. Hearth connects to the internet "
                       "only to find and download models, and every request it has made is listed below.")
        intro.setWordWrap(True)
        layout.addWidget(intro)
        self.offline = QCheckBox("Work offline: block every network request")
        self.offline.setChecked(offline)
        self.offline.toggled.connect(self.offlineToggled)
        layout.addWidget(self.offline)
        self.table = QTableWidget(0, 5)
        self.table.setTabKeyNavigation(False)
        self.table.setHorizontalHeaderLabels(["When", "Where", "Why", "Answer", "Size"])
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.horizontalHeader().setStretchLastSection(True)
        layout.addWidget(self.table, 1)
        self.empty = QLabel("No network request has been made.")
        self.empty.setObjectName("hint")
        layout.addWidget(self.empty)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)

    def show_requests(self, requests: list[RequestRecord]) -> None:
        self.table.setRowCount(len(requests))
        for row, request in enumerate(requests):
            cells = [f"{request.at.astimezone():%d %b %Y %H:%M:%S}", request.host, request.purpose,
                     str(request.status), format_bytes(request.bytes) if request.bytes else "–"]
            for column, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if column == 1:
                    item.setToolTip(f"{request.method} {request.host}{request.path}")
                self.table.setItem(row, column, item)
        self.empty.setVisible(not requests)
        self.table.setVisible(bool(requests))
