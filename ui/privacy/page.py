"""Privacy: working offline (no network requests at all), the list of every request Hearth made and why, and the
Hugging Face token for gated and private models. Not a page of the stack: File menu actions and a dialog
(``PrivacyDialog``); this is what they do.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QInputDialog, QLineEdit, QMessageBox, QWidget

from app import network
from app.errors import HearthError
from app.hub import credentials
from app.settings import Settings
from ui.privacy.privacy_dialog import PrivacyDialog
from ui.qt.background import BackgroundOp

if TYPE_CHECKING:
    from ui.services import Services


class PrivacyPage(QObject):
    offlineChanged = Signal(bool)  # Hearth works offline now (True), or online
    failed = Signal(object)  # an error, for the window to show
    statusMessage = Signal(str, int)  # text, milliseconds: for the window's status bar
    settingsChanged = Signal()  # working offline is a setting

    services: Services

    def __init__(self, settings: Settings, parent: QWidget) -> None:
        super().__init__(parent)
        self._window = parent
        self.settings = settings

    def attach(self, services: Services) -> None:
        self.services = services

    def set_offline(self, offline: bool) -> None:
        network.set_offline(offline)
        self.offlineChanged.emit(offline)
        self.settings.work_offline = offline
        self.settingsChanged.emit()
        self.statusMessage.emit("Working offline: no network requests." if offline else "Online.", 4000)

    def edit_token(self) -> None:
        """Gated and private models need the person's Hugging Face token; it goes to the system's password
        store, never to Hearth's files."""
        token, ok = QInputDialog.getText(
            self._window, "Hugging Face token", "Paste a read token from huggingface.co/settings/tokens (leave empty "
            "to remove the saved one):", QLineEdit.EchoMode.Password)
        if not ok:
            return
        token = token.strip()

        def saved(_: object) -> None:
            self.services.downloads.token = token or None
            self.statusMessage.emit("Token saved in the system's password store." if token else "Token removed.", 5000)

        def failed(error: BaseException) -> None:
            if isinstance(error, HearthError):
                QMessageBox.warning(self._window, "Hugging Face token", str(error))
            else:
                self.failed.emit(error)

        action = (lambda: credentials.set_token(token)) if token else credentials.clear_token
        BackgroundOp(self, action).success(saved).failure(failed).run()

    def show_dialog(self) -> None:
        """Every network request Hearth made, and the switch to work offline."""
        dialog = PrivacyDialog(network.is_offline(), self._window)
        dialog.offlineToggled.connect(self.set_offline)
        BackgroundOp(dialog, self.services.store.network_requests).success(dialog.show_requests) \
            .failure(self.failed.emit).run()
        dialog.exec()
