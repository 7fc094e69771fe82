"""The Models page's layout: the models on this computer, with the facts read from their files. It shows and asks
(``addRequested``, ``chatRequested``, ``removeRequested``); ``LibraryPage`` decides."""

from __future__ import annotations

from html import escape
from typing import TYPE_CHECKING

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
from app.words import format_bytes
from ui.qt import theme
from ui.qt.qt_models import LibraryModel

if TYPE_CHECKING:
    from app.forecast.model_check import Assessment


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
        self.table.setTabKeyNavigation(False)  # Tab moves on to the next control; the arrows move between cells
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
        self.details = QLabel()
        self.details.setObjectName("modelDetails")
        self.details.setWordWrap(True)
        self.details.setTextFormat(Qt.TextFormat.RichText)
        self.details.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(self.details)
        model.dataChanged.connect(lambda *_: self._show_details())
        model.modelReset.connect(self._select_first)
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

    def _select_first(self) -> None:
        if self.model.rowCount() and not self.table.selectionModel().hasSelection():
            self.table.selectRow(0)

    def _show_details(self) -> None:
        record = self.selected()
        if record is None:
            self.details.setText("Choose a model to see what it needs on this computer."
                                 if self.model.rowCount() else "")
            return
        self.details.setText(details_html(record, self.model.assessment(record.id)))

    def _update_buttons(self) -> None:
        self._show_details()
        has_selection = self.selected() is not None
        self.chat_button.setEnabled(has_selection)
        self.remove_button.setEnabled(has_selection)
        empty = self.model.rowCount() == 0
        self.empty.setVisible(empty)
        self.table.setVisible(not empty)


def details_html(record: ModelRecord, assessment: Assessment | str | None) -> str:
    """What a person wants to know before loading: will it run, how much memory, how fast."""
    lines = [f"<b>{escape(record.name)}</b> — {escape(record.path)}"]
    if assessment is None:
        return "<br>".join([*lines, "Working out what it needs on this computer…"])
    if isinstance(assessment, str):
        return "<br>".join([*lines, escape(assessment)])
    result, facts = assessment.forecast, assessment.facts
    m = result.memory
    lines.append(f"<b>{escape(result.verdict.value)}.</b> {escape(result.reason)}")
    lines.append(
        f"Memory with a {result.plan.context_length:,}-token context: <b>{format_bytes(m.ram_bytes)}</b>"
        + (f" plus {format_bytes(m.vram_bytes)} on the graphics card" if m.vram_bytes else "")
        + f" ({m.breakdown_words()}). {escape(m.saved_states_words())}")
    if reserved := m.reserved_words():
        lines.append(f"<span style='color:{theme.colors().ink_soft}'>{escape(reserved)}</span>")
    if assessment.last_used:
        lines.append(f"Estimated {format_bytes(m.ram_bytes)}; used {format_bytes(assessment.last_used)} at its last "
                     "load on this computer.")
    lines.append(f"Longest context that fits now: {result.max_context:,} tokens. "
                 + (f"Expected speed: {escape(result.speed.words())}." if result.speed else ""))
    shape = [f"{facts.block_count} layers" if facts.block_count else "",
             f"{facts.head_count} attention heads ({facts.head_count_kv} for keys and values)"
             if facts.head_count else "",
             f"{facts.expert_count} experts, {facts.expert_used_count} used per token" if facts.expert_count else "",
             f"sliding window of {facts.sliding_window:,} tokens" if facts.sliding_window else "",
             f"vocabulary of {facts.vocab_size:,}" if facts.vocab_size else ""]
    soft = theme.colors().ink_soft
    lines.append(f"<span style='color:{soft}'>" + escape(", ".join(x for x in shape if x).capitalize())
                 + f". Forecast: {escape(result.confidence.value)}.</span>")
    return "<br>".join(lines)
