"""The library page: the models on this computer, with the facts read from their files."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from app.history import ModelRecord
from ui.qt_models import LibraryModel


class LibraryView(QWidget):
    addRequested = Signal()
    chatRequested = Signal(object)  # ModelRecord
    removeRequested = Signal(object)  # ModelRecord

    def __init__(self, model: LibraryModel) -> None:
        super().__init__()
        self.model = model
        layout = QVBoxLayout(self)
        layout.setContentsMargins(24, 16, 24, 16)
        title = QLabel("Models on this computer")
        title.setObjectName("pageTitle")
        layout.addWidget(title)
        hint = QLabel("Add a GGUF model file from disk. Hearth reads its facts before adding it, and it "
                      "never leaves this computer.")
        hint.setObjectName("hint")
        hint.setWordWrap(True)
        layout.addWidget(hint)
        self.table = QTableView()
        self.table.setModel(model)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.verticalHeader().hide()
        self.table.setAlternatingRowColors(True)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.doubleClicked.connect(lambda _index: self._chat())
        self.table.selectionModel().selectionChanged.connect(self._update_buttons)
        model.modelReset.connect(self._update_buttons)
        layout.addWidget(self.table, 1)
        self.empty = QLabel("No models yet. Add a .gguf file you have downloaded, for example a small "
                            "instruction-tuned model such as Qwen2.5 0.5B Instruct (Q4_K_M).")
        self.empty.setObjectName("emptyState")
        self.empty.setWordWrap(True)
        self.empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
        layout.addWidget(self.empty)
        row = QHBoxLayout()
        self.add_button = QPushButton("Add a model from disk…")
        self.add_button.setObjectName("primary")
        self.add_button.setToolTip("Import a .gguf file (Ctrl+I)")
        self.add_button.clicked.connect(self.addRequested)
        self.chat_button = QPushButton("Chat with this model")
        self.chat_button.clicked.connect(self._chat)
        self.remove_button = QPushButton("Remove…")
        self.remove_button.clicked.connect(self._remove)
        row.addWidget(self.add_button)
        row.addStretch(1)
        row.addWidget(self.chat_button)
        row.addWidget(self.remove_button)
        layout.addLayout(row)
        self._update_buttons()

    def selected(self) -> ModelRecord | None:
        rows = self.table.selectionModel().selectedRows()
        return self.model.record(rows[0].row()) if rows else None

    def _chat(self) -> None:
        record = self.selected()
        if record is not None:
            self.chatRequested.emit(record)

    def _remove(self) -> None:
        record = self.selected()
        if record is not None:
            self.removeRequested.emit(record)

    def _update_buttons(self) -> None:
        has_selection = self.selected() is not None
        self.chat_button.setEnabled(has_selection)
        self.remove_button.setEnabled(has_selection)
        empty = self.model.rowCount() == 0
        self.empty.setVisible(empty)
        self.table.setVisible(not empty)
