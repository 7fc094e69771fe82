"""A folder's name, and what new chats in it start with: a system prompt and a model."""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QVBoxLayout,
    QWidget,
)

from app.history import FolderRecord, ModelRecord


@dataclass(frozen=True)
class FolderChoice:
    name: str
    system_prompt: str
    model: ModelRecord | None  # None: new chats start with the model chosen at the time


class FolderDialog(QDialog):
    def __init__(self, parent: QWidget | None, models: list[ModelRecord], folder: FolderRecord | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Folder settings" if folder else "New folder")
        column = QVBoxLayout(self)
        form = QFormLayout()
        self.name = QLineEdit(folder.name if folder else "")
        self.name.setPlaceholderText("Work, Recipes, Thesis…")
        form.addRow("&Name:", self.name)
        self.system_prompt = QPlainTextEdit(folder.system_prompt if folder else "")
        self.system_prompt.setPlaceholderText("Optional: how the model should answer in this folder's chats")
        self.system_prompt.setTabChangesFocus(True)
        self.system_prompt.setFixedHeight(self.system_prompt.fontMetrics().lineSpacing() * 5 + 12)
        form.addRow("&System prompt:", self.system_prompt)
        self.model = QComboBox()
        self.model.addItem("The model chosen at the time", None)
        for record in models:
            self.model.addItem(record.name, record)
        if folder is not None and folder.model_name:
            found = next((i for i in range(1, self.model.count())
                          if self.model.itemData(i).id == folder.model_id), -1)
            if found < 0:  # removed from the library since: kept, by name
                self.model.addItem(f"{folder.model_name} (no longer in the library)", None)
                found = self.model.count() - 1
            self.model.setCurrentIndex(found)
        form.addRow("&Model:", self.model)
        column.addLayout(form)
        hint = QLabel("New chats in this folder start with these. Chats already in it keep their own settings.")
        hint.setObjectName("hint")
        hint.setWordWrap(True)
        column.addWidget(hint)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        column.addWidget(self.buttons)
        self.name.textChanged.connect(self._check)
        self._check()
        self.resize(460, self.sizeHint().height())

    def _check(self) -> None:
        save = self.buttons.button(QDialogButtonBox.StandardButton.Save)
        save.setEnabled(bool(self.name.text().strip()))

    def choice(self) -> FolderChoice:
        return FolderChoice(self.name.text().strip(), self.system_prompt.toPlainText().strip(),
                            self.model.currentData())

    def keeps_removed_model(self) -> bool:
        """The folder's model is no longer in the library and was left as it was."""
        return self.model.currentData() is None and self.model.currentIndex() > 0
