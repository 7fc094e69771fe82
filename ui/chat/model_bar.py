"""The strip above the chat: which model answers, loading it with progress, and the engine's state; and, under it,
a warning when the model chosen is a base model, which continues text instead of answering."""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from app.gguf.kind import BASE_MODEL_WARNING
from app.history import ModelRecord
from app.remote.address import parse, same_model
from app.remote.listing import computer_of, shown_name
from ui.widgets.labels import wrapped

COMBO_CHARACTERS = 22  # what the chooser asks room for; a longer name shows whole in its list and its tooltip

if TYPE_CHECKING:
    from app.engine import protocol as p


class ModelBar(QWidget):
    loadRequested = Signal(object)  # ModelRecord
    unloadRequested = Signal()
    settingsRequested = Signal()
    addModelRequested = Signal()
    chatmlRequested = Signal()  # write prompts in ChatML: the loaded model's own chat template failed
    ownTemplateRequested = Signal()  # back to the model's own chat template, from ChatML chosen before

    def __init__(self) -> None:
        super().__init__()
        self.setObjectName("modelBar")
        column = QVBoxLayout(self)
        column.setContentsMargins(16, 8, 16, 8)
        column.setSpacing(6)
        layout = QHBoxLayout()
        layout.setContentsMargins(0, 0, 0, 0)
        column.addLayout(layout)
        self.base_warning = wrapped(BASE_MODEL_WARNING, "taskNotice")
        self.base_warning.hide()
        column.addWidget(self.base_warning)
        layout.addWidget(QLabel("Model:"))
        self.combo = QComboBox()
        self.combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.combo.setMinimumContentsLength(COMBO_CHARACTERS)
        self.combo.currentIndexChanged.connect(self._update_buttons)
        layout.addWidget(self.combo)
        self.load_button = QPushButton("Load")
        self.load_button.setToolTip("Load the chosen model (Ctrl+L)")
        self.load_button.clicked.connect(self._load_clicked)
        layout.addWidget(self.load_button)
        self.add_button = QPushButton("Add a model from disk…")
        self.add_button.clicked.connect(self.addModelRequested)
        layout.addWidget(self.add_button)
        self.progress = QProgressBar()
        self.progress.setRange(0, 100)
        self.progress.setMaximumWidth(160)
        self.progress.setTextVisible(True)
        self.progress.setFormat("Loading %p%")
        self.progress.hide()
        layout.addWidget(self.progress)
        self.status = QLabel("No model loaded")
        self.status.setObjectName("engineStatus")
        self.status.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        layout.addWidget(self.status, 1)
        self.chatml_button = QPushButton("Use ChatML")
        self.chatml_button.setToolTip("This model's chat template is broken: write the conversation in ChatML, a "
                                      "format most chat models understand, and answer again")
        self.chatml_button.clicked.connect(self.chatmlRequested)
        self.chatml_button.hide()
        layout.addWidget(self.chatml_button)
        self.own_template_button = QPushButton("Own template")
        self.own_template_button.setToolTip("This model writes its conversations in ChatML, chosen when its own chat "
                                            "template failed: load it again with its own template")
        self.own_template_button.clicked.connect(self.ownTemplateRequested)
        self.own_template_button.hide()
        layout.addWidget(self.own_template_button)
        self.settings_button = QPushButton("Conversation settings…")
        self.settings_button.setToolTip("System prompt, temperature, answer length, context length (Ctrl+,)")
        self.settings_button.clicked.connect(self.settingsRequested)
        layout.addWidget(self.settings_button)
        self.loaded_path: str | None = None
        self.loading = False
        self._update_buttons()

    def set_models(self, models: list[ModelRecord], select_id: int | None = None) -> None:
        current = self.selected()
        wanted = select_id if select_id is not None else (current.id if current else None)
        self.combo.blockSignals(True)
        self.combo.clear()
        for i, record in enumerate(models):
            self.combo.addItem(shown_name(record), record)
            self.combo.setItemData(i, _tooltip(record), Qt.ItemDataRole.ToolTipRole)
        index = next((i for i, r in enumerate(models) if r.id == wanted), 0 if models else -1)
        self.combo.setCurrentIndex(index)
        self.combo.blockSignals(False)
        self.add_button.setVisible(not models)
        self._update_buttons()

    def selected(self) -> ModelRecord | None:
        record = self.combo.currentData()
        return record if isinstance(record, ModelRecord) else None

    def select(self, model_id: int) -> None:
        for i in range(self.combo.count()):
            if self.combo.itemData(i).id == model_id:
                self.combo.setCurrentIndex(i)

    def _load_clicked(self) -> None:
        record = self.selected()
        if record is None:
            return
        if self._is_loaded(record):
            self.unloadRequested.emit()
        else:
            self.loadRequested.emit(record)

    def _is_loaded(self, record: ModelRecord | None) -> bool:
        return record is not None and self.loaded_path is not None and same_model(record.path, self.loaded_path)

    def _update_buttons(self) -> None:
        record = self.selected()
        self.load_button.setEnabled(record is not None and not self.loading)
        self.load_button.setText("Unload" if self._is_loaded(record) else "Load")
        self.combo.setEnabled(self.combo.count() > 0 and not self.loading)
        about = _tooltip(record) + "\n" if record else ""
        self.combo.setToolTip(about + "The model that answers (Ctrl+L to load it)")
        self.base_warning.setVisible(record is not None and record.is_base_model)

    # --- engine state ---

    def checking(self, name: str) -> None:
        self.loading = True
        self.status.setText(f"Checking that {name} fits…")
        self._update_buttons()

    def loading_started(self, name: str) -> None:
        self.loading = True
        self.loaded_path = None
        self.progress.setRange(0, 100)
        self.progress.setValue(0)
        self.progress.show()
        self.status.setText(f"Loading {name}…")
        self._update_buttons()

    def load_progress(self, fraction: float) -> None:
        self.progress.setValue(int(fraction * 100))

    def load_stage(self, text: str) -> None:
        """After the file is read, the first load of a model measures its fastest settings for a few seconds."""
        self.progress.setRange(0, 0)  # busy: that part has no fraction to show
        self.status.setText(text)

    def offer_chatml(self, offered: bool) -> None:
        self.chatml_button.setVisible(offered)

    def chatml_chosen(self, context_length: int) -> None:
        """The loaded model writes its conversations in ChatML, as the person chose (now, or for this model
        before)."""
        self.chatml_button.hide()
        self.own_template_button.show()
        self.status.setText(f"In ChatML · {context_length:,}-token context")

    def loaded(self, event: p.Loaded) -> None:
        self.loading = False
        self.chatml_button.hide()
        self.loaded_path = event.path
        self.progress.setRange(0, 100)
        self.progress.hide()
        if event.remote:
            self.status.setText(f"Ready on {event.remote} · {event.context_length:,}-token context")
            self.status.setToolTip(f"Runs on {event.remote}: Hearth sends it the conversation over the network "
                                   f"and shows its answer as it comes.\n{parse(event.path).base_url}")
            self.own_template_button.hide()
            self._update_buttons()
            return
        self.status.setText(f"Ready{' on the processor' if event.gpu_fallback else ''} · "
                            f"{event.context_length:,}-token context")
        plan, tuning = event.plan, event.tuning
        lines = [f"Loaded in {event.load_s:.1f} s",
                 f"Runs with up to {plan.threads} threads (fewer while other programs are busy), flash attention "
                 f"{'on' if plan.flash_attention else 'off'}"]
        if tuning is not None:
            lines.append("Measured just now: other programs were busy, so it measures again next time" if tuning.busy
                         else f"Measured just now as the fastest here: {tuning.threads} threads, flash attention "
                              f"{'on' if tuning.flash_attention else 'off'}")
        self.status.setToolTip("\n".join([*([event.gpu_fallback] if event.gpu_fallback else []), *lines,
                                          f"Chat format: {event.chat_format}", event.path]))
        self.own_template_button.hide()
        if event.plan.chatml and event.has_chat_template:
            self.chatml_chosen(event.context_length)
        self._update_buttons()

    def not_loaded(self, reason: str = "No model loaded") -> None:
        self.loading = False
        self.chatml_button.hide()
        self.own_template_button.hide()
        self.loaded_path = None
        self.progress.setRange(0, 100)
        self.progress.hide()
        self.status.setText(reason)
        self._update_buttons()


def _tooltip(record: ModelRecord) -> str:
    computer = computer_of(record)
    if computer:
        forecast = str(record.facts.get("forecast") or "")
        return "\n".join([record.name, f"Runs on {computer} ({parse(record.path).base_url})",
                          *([forecast] if forecast else [])])
    return "\n".join([record.name, record.path, *([BASE_MODEL_WARNING] if record.is_base_model else [])])
