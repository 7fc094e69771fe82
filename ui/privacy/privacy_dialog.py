"""The Privacy page: the Work offline switch, and every attempt Hearth made to reach the network, answered or not."""

from __future__ import annotations

from collections import Counter

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

from app.network import CONNECTION_CHECK, Outcome, RequestRecord
from app.words import format_bytes, plural


class PrivacyDialog(QDialog):
    offlineToggled = Signal(bool)

    def __init__(self, offline: bool, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Privacy")
        self.resize(820, 520)
        layout = QVBoxLayout(self)
        intro = QLabel("Chats, documents and answers never leave this computer. Hearth connects to the internet "
                       "only to find and download models, and every attempt it has made is listed below: answered, "
                       "refused, failed to connect, or blocked by Work offline.")
        intro.setWordWrap(True)
        layout.addWidget(intro)
        self.offline = QCheckBox("Work offline: block every network request")
        self.offline.setChecked(offline)
        self.offline.toggled.connect(self.offlineToggled)
        layout.addWidget(self.offline)
        self.summary = QLabel()
        self.summary.setObjectName("hint")
        layout.addWidget(self.summary)
        self.table = _table(["When", "Where", "Why", "Outcome", "Size"])
        layout.addWidget(self.table, 1)
        self.empty = QLabel("No network request has been made.")
        self.empty.setObjectName("hint")
        layout.addWidget(self.empty)
        self.incoming_title = QLabel("Requests other programs made to the local server (File → Local server…). "
                                     "Only their address, what they asked for and the answer's status are kept.")
        self.incoming_title.setWordWrap(True)
        layout.addWidget(self.incoming_title)
        self.incoming = _table(["When", "From", "Asked for", "Model", "Outcome"])
        layout.addWidget(self.incoming, 1)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)

    def show_requests(self, records: list[RequestRecord]) -> None:
        """Hearth's own requests in the first list; other programs' requests to the local server, if any, in the
        second."""
        requests = [record for record in records if not record.incoming]
        incoming = [record for record in records if record.incoming]
        self.incoming.setRowCount(len(incoming))
        for row, request in enumerate(incoming):
            cells = [f"{request.at.astimezone():%d %b %Y %H:%M:%S}", request.host, request.path,
                     request.purpose or "–", f"{'Answered' if request.status < 400 else 'Refused'} ({request.status})"]
            for column, text in enumerate(cells):
                self.incoming.setItem(row, column, QTableWidgetItem(text))
        self.incoming_title.setVisible(bool(incoming))
        self.incoming.setVisible(bool(incoming))
        self.table.setRowCount(len(requests))
        for row, request in enumerate(requests):
            cells = [f"{request.at.astimezone():%d %b %Y %H:%M:%S}", request.host, request.purpose,
                     outcome_words(request), format_bytes(request.bytes) if request.bytes else "–"]
            for column, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if column == 1:
                    item.setToolTip("A connection check: nothing was sent" if request.method == CONNECTION_CHECK
                                    else f"{request.method} {request.host}{request.path}")
                self.table.setItem(row, column, item)
        counts = Counter(request.outcome for request in requests)
        parts = [f"{counts[o]} {o.words[0].lower()}{o.words[1:]}" for o in Outcome if counts[o]]
        self.summary.setText(f"{plural(len(requests), 'attempt')} to reach the network: {', '.join(parts)}."
                             if requests else "")
        self.summary.setVisible(bool(requests))
        self.empty.setVisible(not requests)
        self.table.setVisible(bool(requests))


def _table(columns: list[str]) -> QTableWidget:
    table = QTableWidget(0, len(columns))
    table.setTabKeyNavigation(False)
    table.setHorizontalHeaderLabels(columns)
    table.verticalHeader().hide()
    table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
    table.horizontalHeader().setStretchLastSection(True)
    return table


def outcome_words(request: RequestRecord) -> str:
    """"Answered (200)", "Refused", "Failed to connect", "Blocked by Work offline"; a connection check that got
    through says "Connected", as nothing was asked."""
    if request.outcome is Outcome.ANSWERED:
        return "Connected" if request.method == CONNECTION_CHECK else f"Answered ({request.status})"
    return request.outcome.words
