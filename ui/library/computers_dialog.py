"""Other computers (Models → Other computers…): the servers whose models Hearth may use, added with their address and
API key, checked before they are kept, and removed again. Their models then appear beside this computer's."""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QMessageBox,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from app.errors import HearthError
from app.remote.computers import DEFAULT_CONTEXT, Computer, Computers, normalized
from ui.qt.background import BackgroundOp

SHOWN_MODELS = 5  # named in the sentence that says a computer was added


@dataclass(frozen=True)
class _Found:
    models: list[str]
    context_length: int | None  # as the server says it, for its first model
    hardware: list[str]  # another Hearth's sentences about its computer


def _check(base_url: str, key: str) -> _Found:
    """What the server has; raises ``RemoteError`` with a sentence."""
    from app.remote.server import RemoteServer

    server = RemoteServer(base_url, key or None)
    try:
        listed = server.models()
        hardware = server.hardware() if any(model.hearth for model in listed) else None
        return _Found([model.id for model in listed], server.context_length(listed[0].id) if listed else None,
                      [str(sentence) for sentence in hardware["sentences"]] if hardware else [])
    finally:
        server.close()


class ComputersDialog(QDialog):
    changed = Signal()  # a computer was added or removed: the settings are to be saved, the models listed again

    def __init__(self, computers: Computers, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.computers = computers
        self.setWindowTitle("Other computers")
        self.resize(620, 520)
        layout = QVBoxLayout(self)
        hint = QLabel("Use the models of a bigger computer, or of any server that speaks the OpenAI API: llama.cpp's "
                      "llama-server, vLLM, Ollama, LM Studio or another Hearth. Conversations and documents you use "
                      "with its models are sent to it over the network; Hearth contacts only the computers listed "
                      "here.")
        hint.setObjectName("hint")
        hint.setWordWrap(True)
        layout.addWidget(hint)
        self.list = QListWidget()
        self.list.setAccessibleName("Computers Hearth may use")
        self.list.currentItemChanged.connect(lambda *_: self._update_buttons())
        layout.addWidget(self.list, 1)
        row = QHBoxLayout()
        row.addStretch(1)
        self.remove_button = QPushButton("Remove")
        self.remove_button.clicked.connect(self._remove)
        row.addWidget(self.remove_button)
        layout.addLayout(row)

        form = QFormLayout()
        self.name = QLineEdit()
        self.name.setPlaceholderText("Study-PC")
        form.addRow("Name:", self.name)
        self.address = QLineEdit()
        self.address.setPlaceholderText("http://study-pc:8080")
        self.address.textChanged.connect(lambda _text: self._update_buttons())
        form.addRow("Address:", self.address)
        self.key = QLineEdit()
        self.key.setEchoMode(QLineEdit.EchoMode.Password)
        self.key.setPlaceholderText("Only if the server asks for one")
        form.addRow("API key:", self.key)
        self.context = QSpinBox()
        self.context.setRange(256, 1_048_576)
        self.context.setSingleStep(1024)
        self.context.setValue(DEFAULT_CONTEXT)
        self.context.setSuffix(" tokens")
        self.context.setToolTip("Used only where the server does not say how long a context its models take: "
                                "the context it was started with (llama-server's -c, for one)")
        form.addRow("Context length:", self.context)
        layout.addLayout(form)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(self.status)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        self.add_button = buttons.addButton("Check and add", QDialogButtonBox.ButtonRole.ActionRole)
        self.add_button.setDefault(True)
        self.add_button.clicked.connect(self._add)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
        self._checking = False
        self._fill()

    def _fill(self, current: str | None = None) -> None:
        self.list.clear()
        for computer in self.computers.all():
            item = QListWidgetItem(f"{computer.name} — {computer.base_url}")
            item.setData(Qt.ItemDataRole.UserRole, computer.base_url)
            self.list.addItem(item)
            if computer.base_url == current:
                self.list.setCurrentItem(item)
        if not self.list.count():
            self.list.addItem(QListWidgetItem("No other computers yet: add one below."))
            self.list.item(0).setFlags(Qt.ItemFlag.NoItemFlags)
        self._update_buttons()

    def _selected(self) -> str | None:
        item = self.list.currentItem()
        url = item.data(Qt.ItemDataRole.UserRole) if item is not None else None
        return str(url) if url else None

    def _update_buttons(self) -> None:
        self.remove_button.setEnabled(self._selected() is not None)
        self.add_button.setEnabled(bool(self.address.text().strip()) and not self._checking)

    def _say(self, text: str, problem: bool = False) -> None:
        self.status.setText(text)
        self.status.setProperty("problem", problem)
        self.status.style().unpolish(self.status)
        self.status.style().polish(self.status)

    def _add(self) -> None:
        try:
            base_url = normalized(self.address.text())
        except HearthError as error:
            self._say(str(error), problem=True)
            return
        name, key, context = self.name.text().strip(), self.key.text(), self.context.value()
        self._checking = True
        self._update_buttons()
        self._say(f"Asking {base_url} for its models…")

        def added(found: _Found) -> None:
            self._checking = False
            try:
                computer = self.computers.add(base_url, name, key, 0 if found.context_length else context)
            except HearthError as error:
                self._say(str(error), problem=True)
                self._update_buttons()
                return
            self._added(computer, found)

        def failed(error: BaseException) -> None:
            self._checking = False
            self._update_buttons()
            self._say(str(error) if isinstance(error, HearthError) else f"Could not ask {base_url}: {error}",
                      problem=True)

        BackgroundOp(self, _check, base_url, key).success(added).failure(failed).run()

    def _added(self, computer: Computer, found: _Found) -> None:
        for field in (self.name, self.address, self.key):
            field.clear()
        self._fill(computer.base_url)
        self.changed.emit()
        models, stated = found.models, found.context_length
        named = ", ".join(models[:SHOWN_MODELS]) + (f" and {len(models) - SHOWN_MODELS} more"
                                                   if len(models) > SHOWN_MODELS else "")
        context = f"its context: {stated:,} tokens" if stated else \
            f"it does not say its context length, so Hearth uses {computer.context_length:,} tokens"
        said = f"Added {computer.name}: {named} ({context}). Its models are listed with “on {computer.name}” beside " \
               "this computer's." if models else f"Added {computer.name}, which has no models yet."
        if found.hardware:  # another Hearth: what it has, in its own words
            said += f" {computer.name} has " + found.hardware[0][0].lower() + found.hardware[0][1:]
        self._say(said)

    def _remove(self) -> None:
        base_url = self._selected()
        computer = self.computers.find(base_url) if base_url else None
        if computer is None:
            return
        answer = QMessageBox.question(self, "Remove the computer", f"Stop using the models of {computer.name}? Its "
                                      "API key is deleted from this computer; the chats you had with its models stay.")
        if answer != QMessageBox.StandardButton.Yes:
            return
        try:
            self.computers.remove(computer.base_url)
        except HearthError as error:
            self._say(str(error), problem=True)
            return
        self._fill()
        self.changed.emit()
        self._say(f"Removed {computer.name}.")
