"""Per-conversation settings: system prompt and sampling, with the defaults a new chat starts from, and the user's
own sampler presets ("styles"), which are saved at once, whether or not the dialog is."""

from __future__ import annotations

from collections.abc import Mapping

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from app.settings import CUSTOM, PRESETS, GenerationSettings


class ConversationSettingsDialog(QDialog):
    """``presets`` are the user's own; ``presetsChanged`` gives them all each time one is saved or deleted."""

    presetsChanged = Signal(dict)

    def __init__(self, settings: GenerationSettings, parent: QWidget | None = None, *,
                 presets: Mapping[str, Mapping[str, float]] | None = None) -> None:
        super().__init__(parent)
        self.presets = {name: dict(values) for name, values in (presets or {}).items()}
        self._deleted: tuple[str, dict[str, float]] | None = None
        self.setWindowTitle("Conversation settings")
        self.setMinimumWidth(520)
        layout = QVBoxLayout(self)
        form = QFormLayout()
        self.system_prompt = QPlainTextEdit(settings.system_prompt)
        self.system_prompt.setPlaceholderText("Instructions the model follows for the whole conversation")
        self.system_prompt.setFixedHeight(96)
        form.addRow("System prompt:", self.system_prompt)
        self.preset = QComboBox()
        self.preset.setToolTip("Precise: focused, repeatable answers. Balanced: the defaults. Creative: more varied "
                               "writing. Your own styles follow. Changing a value below makes it Custom.")
        self.save_preset_button = QPushButton("Save as…")
        self.save_preset_button.setToolTip("Keep the values below as a style of your own, to pick in any chat")
        self.save_preset_button.clicked.connect(self.ask_preset_name)
        self.delete_preset_button = QPushButton("Delete")
        self.delete_preset_button.setToolTip("Delete this style of your own (the values below stay as they are)")
        self.delete_preset_button.clicked.connect(self.delete_preset)
        style_row = QHBoxLayout()
        style_row.addWidget(self.preset, 1)
        style_row.addWidget(self.save_preset_button)
        style_row.addWidget(self.delete_preset_button)
        form.addRow("Style:", style_row)
        self.preset_name = QLineEdit()
        self.preset_name.setPlaceholderText("A name for this style")
        self.preset_name.setMaxLength(40)
        self.preset_name.textChanged.connect(self._check_preset_name)
        self.confirm_preset_button = QPushButton("Save style")
        self.confirm_preset_button.clicked.connect(self.save_preset)
        self.cancel_preset_button = QPushButton("Cancel")
        self.cancel_preset_button.clicked.connect(self._close_name_row)
        self.name_row = QWidget()
        name_layout = QHBoxLayout(self.name_row)
        name_layout.setContentsMargins(0, 0, 0, 0)
        name_layout.addWidget(self.preset_name, 1)
        name_layout.addWidget(self.confirm_preset_button)
        name_layout.addWidget(self.cancel_preset_button)
        self.name_row.hide()
        form.addRow("", self.name_row)
        self.preset_note = QLabel()
        self.preset_note.setObjectName("hint")
        self.preset_note.setWordWrap(True)
        self.preset_note.hide()
        form.addRow("", self.preset_note)
        self.undo_row = QWidget()
        undo_layout = QHBoxLayout(self.undo_row)
        undo_layout.setContentsMargins(0, 0, 0, 0)
        self.undo_label = QLabel()
        self.undo_label.setWordWrap(True)
        self.undo_button = QPushButton("Undo")
        self.undo_button.setToolTip("Bring back the style just deleted")
        self.undo_button.clicked.connect(self.undo_delete)
        undo_layout.addWidget(self.undo_label, 1)
        undo_layout.addWidget(self.undo_button)
        self.undo_row.hide()
        form.addRow("", self.undo_row)
        self.temperature = QDoubleSpinBox(minimum=0.0, maximum=2.0, singleStep=0.1, decimals=2)
        self.temperature.setValue(settings.temperature)
        self.temperature.setToolTip("Lower is more focused and repeatable; higher is more varied. 0 always "
                                    "picks the most likely word.")
        form.addRow("Temperature:", self.temperature)
        self.top_p = QDoubleSpinBox(minimum=0.01, maximum=1.0, singleStep=0.05, decimals=2)
        self.top_p.setValue(settings.top_p)
        self.top_p.setToolTip("Only the most likely words that together reach this probability are considered.")
        form.addRow("Top-p:", self.top_p)
        self.top_k = QSpinBox(minimum=0, maximum=1000, singleStep=5)
        self.top_k.setValue(settings.top_k)
        self.top_k.setToolTip("Only this many of the most likely words are considered (0: no limit).")
        form.addRow("Top-k:", self.top_k)
        self.min_p = QDoubleSpinBox(minimum=0.0, maximum=1.0, singleStep=0.01, decimals=2)
        self.min_p.setValue(settings.min_p)
        self.min_p.setToolTip("Words less likely than this share of the most likely word are never picked.")
        form.addRow("Min-p:", self.min_p)
        self.repeat_penalty = QDoubleSpinBox(minimum=1.0, maximum=2.0, singleStep=0.05, decimals=2)
        self.repeat_penalty.setValue(settings.repeat_penalty)
        self.repeat_penalty.setToolTip("Makes words used in the last 64 tokens less likely, so small models do not "
                                       "repeat themselves in loops. 1.00: off.")
        form.addRow("Repeat penalty:", self.repeat_penalty)
        self.presence_penalty = QDoubleSpinBox(minimum=-2.0, maximum=2.0, singleStep=0.1, decimals=2)
        self.presence_penalty.setValue(settings.presence_penalty)
        self.presence_penalty.setToolTip("Above 0, any word already used becomes less likely: more new topics.")
        form.addRow("Presence penalty:", self.presence_penalty)
        self.frequency_penalty = QDoubleSpinBox(minimum=-2.0, maximum=2.0, singleStep=0.1, decimals=2)
        self.frequency_penalty.setValue(settings.frequency_penalty)
        self.frequency_penalty.setToolTip("Above 0, a word becomes less likely the more often it was used.")
        form.addRow("Frequency penalty:", self.frequency_penalty)
        self._sampler_boxes: dict[str, QSpinBox | QDoubleSpinBox] = {
            "temperature": self.temperature, "top_p": self.top_p, "top_k": self.top_k, "min_p": self.min_p,
            "repeat_penalty": self.repeat_penalty, "presence_penalty": self.presence_penalty,
            "frequency_penalty": self.frequency_penalty}
        self._fill_presets()
        self.preset.textActivated.connect(self.apply_preset)
        for box in self._sampler_boxes.values():
            box.valueChanged.connect(self._sampler_edited)
        self.max_tokens = QSpinBox(minimum=1, maximum=32768, singleStep=64)
        self.max_tokens.setValue(settings.max_tokens)
        self.max_tokens.setToolTip("The longest answer, in tokens (about ¾ of a word each).")
        form.addRow("Max answer length:", self.max_tokens)
        self.context_length = QSpinBox(minimum=256, maximum=131072, singleStep=512)
        self.context_length.setValue(settings.context_length)
        self.context_length.setToolTip("How much of the conversation the model sees at once. Larger needs more "
                                       "memory; it is capped at what the model was trained for. Changing it "
                                       "reloads the model.")
        form.addRow("Context length:", self.context_length)
        seed_row = QHBoxLayout()
        self.fixed_seed = QCheckBox("Fixed seed")
        self.seed = QSpinBox(minimum=0, maximum=2**31 - 1)
        self.fixed_seed.setChecked(settings.seed is not None)
        self.seed.setValue(settings.seed or 0)
        self.seed.setEnabled(settings.seed is not None)
        self.fixed_seed.toggled.connect(self.seed.setEnabled)
        seed_row.addWidget(self.fixed_seed)
        seed_row.addWidget(self.seed, 1)
        form.addRow("Repeatability:", seed_row)
        layout.addLayout(form)
        note = QLabel("These settings belong to this conversation. New chats start from the defaults.")
        note.setWordWrap(True)
        note.setObjectName("hint")
        layout.addWidget(note)
        self.make_default = QCheckBox("Also use these settings for new chats")
        layout.addWidget(self.make_default)
        self.buttons = buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel
            | QDialogButtonBox.StandardButton.RestoreDefaults)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        buttons.button(QDialogButtonBox.StandardButton.RestoreDefaults).clicked.connect(self._restore)
        layout.addWidget(buttons)

    def apply_preset(self, name: str) -> None:
        values = PRESETS.get(name) or self.presets.get(name)
        if values is None:  # Custom: the values stay as they are
            return
        for key, value in GenerationSettings().with_samplers(values).sampler_values().items():
            box = self._sampler_boxes[key]
            if isinstance(box, QSpinBox):
                box.setValue(int(value))
            else:
                box.setValue(value)
        self._sampler_edited()

    def _samplers(self) -> GenerationSettings:
        return GenerationSettings().with_samplers({key: box.value() for key, box in self._sampler_boxes.items()})

    def _sampler_edited(self) -> None:
        self.preset.setCurrentText(self._samplers().preset(self.presets) or CUSTOM)
        self.delete_preset_button.setVisible(self.preset.currentText() in self.presets)
        if self.name_row.isVisible():
            self._check_preset_name()

    def _fill_presets(self) -> None:
        self.preset.blockSignals(True)
        self.preset.clear()
        self.preset.addItems([*PRESETS, *self.presets, CUSTOM])
        for name, values in self.presets.items():
            self.preset.setItemData(self.preset.findText(name), _describe(values), Qt.ItemDataRole.ToolTipRole)
        self.preset.blockSignals(False)
        self._sampler_edited()

    # --- the user's own styles ---

    def ask_preset_name(self) -> None:
        """The name is asked for in the dialog itself, under the style; Enter or "Save style" saves it."""
        self.undo_row.hide()
        self.name_row.show()
        current = self.preset.currentText()
        self.preset_name.setText(current if current in self.presets else "")
        self.preset_name.selectAll()
        self.preset_name.setFocus()
        self.confirm_preset_button.setDefault(True)  # Enter saves the style, not the whole dialog
        self._check_preset_name()

    def _check_preset_name(self) -> None:
        """Says before saving why a name or the values cannot be saved, or that an older style is replaced."""
        name = self.preset_name.text().strip()
        same = self._samplers().preset(self.presets)
        if name in (*PRESETS, CUSTOM):
            note = f"“{name}” is one of Hearth's own styles: choose another name."
        elif same is not None and same != name:
            note = f"These values are already the style “{same}”."
        elif name in self.presets and same != name:
            note = f"Replaces your style “{name}” with the values below."
        else:
            note = ""
        self.preset_note.setText(note)
        self.preset_note.setVisible(bool(note))
        usable = bool(name) and name not in (*PRESETS, CUSTOM) and (same is None or same == name)
        self.confirm_preset_button.setEnabled(usable and same != name)
        self.confirm_preset_button.setText("Replace style" if name in self.presets else "Save style")

    def save_preset(self) -> None:
        if not self.confirm_preset_button.isEnabled():
            return
        name = self.preset_name.text().strip()
        self.presets[name] = self._samplers().sampler_values()
        self._close_name_row()
        self._fill_presets()
        self.presetsChanged.emit(self.presets_copy())

    def _close_name_row(self) -> None:
        self.name_row.hide()
        self.preset_note.hide()
        self.confirm_preset_button.setDefault(False)
        self.buttons.button(QDialogButtonBox.StandardButton.Save).setDefault(True)

    def delete_preset(self) -> None:
        name = self.preset.currentText()
        if name not in self.presets:
            return
        self._deleted = (name, self.presets.pop(name))
        self._close_name_row()
        self._fill_presets()
        self.undo_label.setText(f"Deleted your style “{name}”.")
        self.undo_row.show()
        self.undo_button.setFocus()  # the Delete button it was on is gone
        self.presetsChanged.emit(self.presets_copy())

    def undo_delete(self) -> None:
        if self._deleted is None:
            return
        name, values = self._deleted
        self._deleted = None
        self.presets[name] = values
        self.undo_row.hide()
        self._fill_presets()
        self.preset.setFocus()
        self.presetsChanged.emit(self.presets_copy())

    def presets_copy(self) -> dict[str, dict[str, float]]:
        return {name: dict(values) for name, values in self.presets.items()}

    def _restore(self) -> None:
        defaults = GenerationSettings()
        self.system_prompt.setPlainText(defaults.system_prompt)
        self.temperature.setValue(defaults.temperature)
        self.top_p.setValue(defaults.top_p)
        self.top_k.setValue(defaults.top_k)
        self.min_p.setValue(defaults.min_p)
        self.repeat_penalty.setValue(defaults.repeat_penalty)
        self.presence_penalty.setValue(defaults.presence_penalty)
        self.frequency_penalty.setValue(defaults.frequency_penalty)
        self.max_tokens.setValue(defaults.max_tokens)
        self.context_length.setValue(defaults.context_length)
        self.fixed_seed.setChecked(False)

    def result_settings(self) -> GenerationSettings:
        return GenerationSettings(
            system_prompt=self.system_prompt.toPlainText().strip(),
            temperature=self.temperature.value(),
            top_p=self.top_p.value(),
            top_k=self.top_k.value(),
            min_p=self.min_p.value(),
            repeat_penalty=self.repeat_penalty.value(),
            presence_penalty=self.presence_penalty.value(),
            frequency_penalty=self.frequency_penalty.value(),
            max_tokens=self.max_tokens.value(),
            context_length=self.context_length.value(),
            seed=self.seed.value() if self.fixed_seed.isChecked() else None,
        ).validated()


def _describe(values: Mapping[str, float]) -> str:
    return (f"Your style: temperature {values['temperature']:.2f}, top-p {values['top_p']:.2f}, "
            f"top-k {int(values['top_k'])}, min-p {values['min_p']:.2f}, "
            f"repeat penalty {values['repeat_penalty']:.2f}, presence penalty {values['presence_penalty']:.2f}, "
            f"frequency penalty {values['frequency_penalty']:.2f}")
