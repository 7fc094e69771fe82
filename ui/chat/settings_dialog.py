"""Per-conversation settings: system prompt and sampling, with the defaults a new chat starts from."""

from __future__ import annotations

from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from app.settings import PRESETS, GenerationSettings

CUSTOM = "Custom"


class ConversationSettingsDialog(QDialog):
    def __init__(self, settings: GenerationSettings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Conversation settings")
        self.setMinimumWidth(480)
        layout = QVBoxLayout(self)
        form = QFormLayout()
        self.system_prompt = QPlainTextEdit(settings.system_prompt)
        self.system_prompt.setPlaceholderText("Instructions the model follows for the whole conversation")
        self.system_prompt.setFixedHeight(96)
        form.addRow("System prompt:", self.system_prompt)
        self.preset = QComboBox()
        self.preset.addItems([*PRESETS, CUSTOM])
        self.preset.setToolTip("Precise: focused, repeatable answers. Balanced: the defaults. Creative: more varied "
                               "writing. Changing a value below makes it Custom.")
        form.addRow("Style:", self.preset)
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
            "repeat_penalty": self.repeat_penalty}
        self.preset.setCurrentText(settings.preset() or CUSTOM)
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
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel
                                   | QDialogButtonBox.StandardButton.RestoreDefaults)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        buttons.button(QDialogButtonBox.StandardButton.RestoreDefaults).clicked.connect(self._restore)
        layout.addWidget(buttons)

    def apply_preset(self, name: str) -> None:
        for key, value in PRESETS.get(name, {}).items():
            box = self._sampler_boxes[key]
            if isinstance(box, QSpinBox):
                box.setValue(int(value))
            else:
                box.setValue(value)

    def _sampler_edited(self) -> None:
        self.preset.setCurrentText(self.result_settings().preset() or CUSTOM)

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
