"""The local server's panel: on or off, where it listens, whether other computers may use it, and the requests it
answered. A dialog beside the window (File → Local server…), as Privacy is."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QGuiApplication, QStandardItem, QStandardItemModel
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from app.server.request_log import Served

COLUMNS = ("Time", "From", "Endpoint", "Model", "Tokens", "Seconds", "Status")
WIDEST = ("00:00:00", "255.255.255.255", "/v1/chat/completions", "", "99,999 + 99,999", "Seconds", "Status")
MAX_ROWS = 500  # the newest requests; the log file keeps them all


class ServerDialog(QDialog):
    switched = Signal(bool)  # the person turned the server on (True) or off
    networkChosen = Signal(bool)  # other computers may use it (True), or this computer only
    keepChosen = Signal(bool)  # answers are kept as conversations (True), or never saved

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Local server")
        self.resize(760, 520)
        layout = QVBoxLayout(self)
        hint = QLabel("Other programs can use your models through the OpenAI and Anthropic APIs, as they would a "
                      "service on the internet, but nothing leaves this computer. Chats in Hearth and requests take "
                      "turns on the same engine.")
        hint.setObjectName("hint")
        hint.setWordWrap(True)
        layout.addWidget(hint)
        row = QHBoxLayout()
        self.switch = QCheckBox("Serve models to other programs")
        self.switch.toggled.connect(self.switched)
        row.addWidget(self.switch)
        row.addStretch(1)
        port_label = QLabel("Port:")
        self.port = QSpinBox()
        self.port.setRange(1024, 65535)
        self.port.setAccessibleName("Port")
        port_label.setBuddy(self.port)
        row.addWidget(port_label)
        row.addWidget(self.port)
        layout.addLayout(row)
        self.network = QCheckBox("Allow other computers on the network (they need the API key)")
        self.network.toggled.connect(self.networkChosen)
        layout.addWidget(self.network)
        self.warning = QLabel("Any computer on your network that has the key can use your models and this "
                              "computer's memory and processor while it answers.")
        self.warning.setObjectName("banner")
        self.warning.setWordWrap(True)
        self.warning.hide()
        layout.addWidget(self.warning)
        self.keep = QCheckBox("Keep API conversations in history (each request as a chat, listed with “API:”)")
        self.keep.toggled.connect(self.keepChosen)
        layout.addWidget(self.keep)
        address_row = QHBoxLayout()
        self.address = QLineEdit()
        self.address.setReadOnly(True)
        self.address.setAccessibleName("Address for clients")
        self.copy_button = QPushButton("Copy")
        self.copy_button.setToolTip("Copy the address that clients use as their base URL")
        self.copy_button.clicked.connect(lambda: QGuiApplication.clipboard().setText(self.address.text()))
        address_row.addWidget(self.address, 1)
        address_row.addWidget(self.copy_button)
        layout.addLayout(address_row)
        self.state = QLabel("Off.")
        self.state.setWordWrap(True)
        layout.addWidget(self.state)
        self.requests = QStandardItemModel(0, len(COLUMNS), self)
        self.requests.setHorizontalHeaderLabels(list(COLUMNS))
        self.table = QTableView()
        self.table.setModel(self.requests)
        self.table.setTabKeyNavigation(False)
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setWordWrap(False)
        header = self.table.horizontalHeader()
        metrics = self.table.fontMetrics()
        for column, widest in enumerate(WIDEST):  # the widest each column holds: rows come one at a time
            header.resizeSection(column, metrics.horizontalAdvance(widest) + 24)
        header.setSectionResizeMode(COLUMNS.index("Model"), QHeaderView.ResizeMode.Stretch)
        layout.addWidget(self.table, 1)
        self.empty = QLabel("Requests appear here as they are answered.")
        self.empty.setObjectName("hint")
        layout.addWidget(self.empty)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.close)
        layout.addWidget(buttons)

    def show_state(self, text: str, *, on: bool, address: str) -> None:
        self.state.setText(text)
        self.address.setText(address)
        self.port.setEnabled(not on)
        self.network.setEnabled(not on)
        for widget in (self.switch,):
            widget.blockSignals(True)
            widget.setChecked(on)
            widget.blockSignals(False)

    def set_network(self, allowed: bool) -> None:
        self.network.blockSignals(True)
        self.network.setChecked(allowed)
        self.network.blockSignals(False)
        self.warning.setVisible(allowed)

    def add_request(self, served: Served) -> None:
        row = [served.at, served.client, served.endpoint, served.model,
               f"{served.prompt_tokens:,} + {served.completion_tokens:,}", f"{served.seconds:.2f}", str(served.status)]
        items = [QStandardItem(text) for text in row]
        for item in items[4:]:
            item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        self.requests.insertRow(0, items)
        if self.requests.rowCount() > MAX_ROWS:
            self.requests.removeRow(MAX_ROWS)
        self.empty.hide()
