"""The Models page's layout: the models on this computer, with the facts read from their files. It shows and asks
(``addRequested``, ``chatRequested``, ``renameRequested``, ``removeRequested``); ``LibraryPage`` decides.

The table keeps to what tells models apart, so it fits the smallest window without scrolling sideways; the details
under it say the rest in plain words, and what only a technical reader wants (the model's shape, how the forecast
was made) waits behind "Technical details"."""

from __future__ import annotations

from html import escape
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableView,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from app.gguf.kind import BASE_MODEL_WARNING
from app.history import ModelRecord
from app.remote.address import parse
from app.remote.listing import computer_of
from app.words import format_bytes, model_words
from ui.qt import theme
from ui.qt.qt_models import LibraryModel

if TYPE_CHECKING:
    from app.forecast.model_check import Assessment


LOCAL_HINT = ("Add a GGUF model file from disk. Hearth reads its facts before adding it, and it never leaves this "
              "computer.")


class LibraryView(QWidget):
    addRequested = Signal()
    computersRequested = Signal()
    chatRequested = Signal(object)  # ModelRecord
    renameRequested = Signal(object)  # ModelRecord
    removeRequested = Signal(object)  # ModelRecord
    deviceChosen = Signal(bool)  # True: the processor only; False: the graphics card, as many layers as fit

    def __init__(self, model: LibraryModel) -> None:
        super().__init__()
        self.model = model
        layout = QVBoxLayout(self)
        layout.setContentsMargins(24, 16, 24, 16)
        self.title = QLabel("Models on this computer")
        self.title.setObjectName("pageTitle")
        layout.addWidget(self.title)
        self.hint = QLabel(LOCAL_HINT)
        self.hint.setObjectName("hint")
        self.hint.setWordWrap(True)
        layout.addWidget(self.hint)
        model.modelReset.connect(self._show_heading)
        self.table = QTableView()
        self.table.setTabKeyNavigation(False)  # Tab moves on to the next control; the arrows move between cells
        self.table.setModel(model)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.verticalHeader().hide()
        self.table.setAlternatingRowColors(True)
        self.table.setWordWrap(True)  # a long name takes a second line rather than losing its end
        self.table.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        header.setMinimumSectionSize(60)
        self.table.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
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
        self.technical_button = QToolButton()
        self.technical_button.setObjectName("disclosure")
        self.technical_button.setText("Technical details")
        self.technical_button.setCheckable(True)
        self.technical_button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.technical_button.setArrowType(Qt.ArrowType.RightArrow)
        self.technical_button.toggled.connect(self._show_technical)
        layout.addWidget(self.technical_button)
        self.technical = QLabel()
        self.technical.setObjectName("hint")
        self.technical.setWordWrap(True)
        self.technical.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.technical.hide()
        layout.addWidget(self.technical)
        self.device_row = QWidget()
        device_layout = QHBoxLayout(self.device_row)
        device_layout.setContentsMargins(0, 0, 0, 0)
        device_label = QLabel("Run models on:")
        self.device = QComboBox()
        self.device.setAccessibleName("Run models on")
        device_label.setBuddy(self.device)
        device_layout.addWidget(device_label)
        device_layout.addWidget(self.device)
        device_layout.addStretch(1)
        self.device_row.hide()  # shown where llama.cpp found a graphics card it can use
        self.device.activated.connect(lambda index: self.deviceChosen.emit(index == 1))
        layout.addWidget(self.device_row)
        model.dataChanged.connect(lambda *_: self._show_details())
        model.modelReset.connect(self._select_first)
        row = QHBoxLayout()
        self.add_button = QPushButton("Add a model from disk…")
        self.add_button.setObjectName("primary")
        self.add_button.setToolTip("Import a .gguf file (Ctrl+I)")
        self.add_button.clicked.connect(self.addRequested)
        self.chat_button = QPushButton("Chat with this model")
        self.chat_button.clicked.connect(self._chat)
        self.rename_button = QPushButton("Rename…")
        self.rename_button.setToolTip("Choose the name Hearth shows for this model (the file keeps its name)")
        self.rename_button.clicked.connect(self._rename)
        self.remove_button = QPushButton("Remove…")
        self.remove_button.clicked.connect(self._remove)
        row.addWidget(self.add_button)
        self.computers_button = QPushButton("Other computers…")
        self.computers_button.setToolTip("Use the models of a bigger computer, or of any server that speaks the "
                                         "OpenAI API (llama.cpp's server, vLLM, Ollama, LM Studio, another Hearth)")
        self.computers_button.clicked.connect(self.computersRequested)
        row.addWidget(self.computers_button)
        row.addStretch(1)
        row.addWidget(self.chat_button)
        row.addWidget(self.rename_button)
        row.addWidget(self.remove_button)
        layout.addLayout(row)
        self._update_buttons()

    def offer_devices(self, card: str, processor_only: bool) -> None:
        """The choice between the graphics card llama.cpp can use and the processor alone."""
        self.device.clear()
        self.device.addItem(f"{card}: as much of each model as fits")
        self.device.setItemData(0, "Models load on the graphics card, the rest of a model that does not fit on the "
                                   "processor", Qt.ItemDataRole.ToolTipRole)
        self.device.addItem("The processor only")
        self.device.setItemData(1, "Leaves the graphics card to other programs; models run more slowly",
                                Qt.ItemDataRole.ToolTipRole)
        self.device.setCurrentIndex(1 if processor_only else 0)
        self.device_row.show()

    def selected(self) -> ModelRecord | None:
        rows = self.table.selectionModel().selectedRows()
        return self.model.record(rows[0].row()) if rows else None

    def _chat(self) -> None:
        record = self.selected()
        if record is not None:
            self.chatRequested.emit(record)

    def _rename(self) -> None:
        record = self.selected()
        if record is not None:
            self.renameRequested.emit(record)

    def _remove(self) -> None:
        record = self.selected()
        if record is not None:
            self.removeRequested.emit(record)

    def select(self, model_id: int) -> None:
        row = self.model.row_of(model_id)
        if row >= 0:
            self.table.selectRow(row)

    def _select_first(self) -> None:
        if self.model.rowCount() and not self.table.selectionModel().hasSelection():
            self.table.selectRow(0)

    def _show_details(self) -> None:
        record = self.selected()
        if record is None:
            self.details.setText("Choose a model to see what it needs on this computer."
                                 if self.model.rowCount() else "")
            self.technical.setText("")
            return
        computer = computer_of(record)
        if computer is not None:
            self.details.setText(remote_details_html(record, computer))
            self.technical.setText("")
            return
        assessment = self.model.assessment(record.id)
        self.details.setText(details_html(record, assessment))
        self.technical.setText(technical_words(assessment))

    def _show_heading(self) -> None:
        """With other computers' models listed too, the page is no longer this computer's alone."""
        remote = any(computer_of(record) for record in self.model.items())
        self.title.setText("Models" if remote else "Models on this computer")
        self.hint.setText(LOCAL_HINT + (" Models of other computers you added are listed after this computer's, "
                                        "with where they run." if remote else ""))

    def _show_technical(self, shown: bool) -> None:
        self.technical_button.setArrowType(Qt.ArrowType.DownArrow if shown else Qt.ArrowType.RightArrow)
        self.technical.setVisible(shown)

    def _update_buttons(self) -> None:
        self._show_details()
        selected = self.selected()
        has_selection = selected is not None
        remote = selected is not None and computer_of(selected) is not None
        self.chat_button.setEnabled(has_selection)
        for button in (self.rename_button, self.remove_button):  # a remote model is its server's to name and remove
            button.setEnabled(has_selection and not remote)
        empty = self.model.rowCount() == 0
        self.empty.setVisible(empty)
        self.table.setVisible(not empty)
        self.technical_button.setVisible(has_selection)
        self.technical.setVisible(has_selection and self.technical_button.isChecked())


def remote_details_html(record: ModelRecord, computer: str) -> str:
    """A model on another computer: where it runs, and what leaves this one when it is used."""
    where = parse(record.path)
    lines = [f"<b>{escape(record.name)}</b>",
             f"Runs on <b>{escape(computer)}</b> ({escape(where.base_url)}), whose server decides the memory it takes.",
             "Your conversations and documents are sent there when you use it; File → Privacy lists each request."]
    if record.context_length:
        lines.append(f"Context: {record.context_length:,} tokens.")
    forecast = record.facts.get("forecast")
    if isinstance(forecast, str) and forecast:
        lines.append(escape(forecast))
    lines.append(f"Model id on the server: {escape(where.model)}")
    return "<br>".join(lines)


def details_html(record: ModelRecord, assessment: Assessment | str | None) -> str:
    """What a person wants to know before loading: will it run, how much memory, how fast; then what the file is."""
    colors = theme.colors()
    lines = [f"<b>{escape(record.name)}</b>"]
    if record.is_base_model:
        lines.append(f"<span style='color:{colors.tight}'>{escape(BASE_MODEL_WARNING)}</span>")
    if assessment is None:
        lines.append("Working out what it needs on this computer…")
    elif isinstance(assessment, str):
        lines.append(escape(assessment))
    else:
        result = assessment.forecast
        m = result.memory
        lines.append(f"<b>{escape(result.verdict.value)}.</b> {escape(result.reason)}")
        lines.append(
            f"Memory with a {result.plan.context_length:,}-token context: <b>{format_bytes(m.ram_bytes)}</b>"
            + (f" plus {format_bytes(m.vram_bytes)} on the graphics card" if m.vram_bytes else "")
            + f" ({m.breakdown_words()}). {escape(m.saved_states_words())}")
        if assessment.placement is not None:
            lines.append(escape(f"{assessment.placement.words()}."))
        if assessment.last_used:
            lines.append(f"Estimated {format_bytes(m.ram_bytes)}; used {format_bytes(assessment.last_used)} at its "
                         "last load on this computer.")
        lines.append(f"Longest context that fits now: {result.max_context:,} tokens. "
                     + (f"Expected speed: {escape(result.speed.words())}." if result.speed else ""))
    about = model_words(parameter_count=record.parameter_count, quantization=record.quantization,
                        file_size=record.file_size, context_length=record.context_length,
                        has_chat_template=record.has_chat_template)
    lines.append(f"<span style='color:{colors.ink_soft}'>{escape(about)}</span>")
    where = "In Hearth's models folder" if not record.in_place else "Used where it was added"
    lines.append(f"<span style='color:{colors.ink_soft}'>{where}: {escape(record.path)}</span>")
    return "<br>".join(lines)


def technical_words(assessment: Assessment | str | None) -> str:
    """The model's shape and how its forecast was made: for those who want them, behind "Technical details"."""
    return "\n".join(assessment.technical_words()) if assessment is not None and not isinstance(assessment, str) \
        else ""
