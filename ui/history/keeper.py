"""File → Back up the history now, Restore from a backup…, and Import history…: what they do.

A restore puts another database file in the history's place, and every part of the app holds the store open on the
old one: the chat runner, the task session, the comparer, the library, the tracker of loads, the pages and their
lists, each with ids that mean other records in the restored file. Rather than teach each of them to let go and
read again, the window stops them all as closing does and closes the store (``let_go``), the restore runs off the
GUI thread, and then ``reopenRequested`` asks the start (``ui.main.start_window``) for a new window, built exactly as
a start builds one, on the restored history. The process goes on, so nothing depends on how Hearth was launched
(a frozen app, ``python -m``, a desktop entry), as restarting the process would; the person sees the window come
back with its lists filled from the restored history a second later.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtWidgets import QFileDialog, QMessageBox, QWidget

from app.errors import HearthError
from ui.qt.background import BackgroundOp

if TYPE_CHECKING:
    from app.history.backups import Backup
    from app.history.exchange import Imported
    from ui.history.backups_dialog import BackupsDialog
    from ui.services import Services

log = logging.getLogger(__name__)


class HistoryKeeper(QObject):
    failed = Signal(object)  # an error, for the window to show
    statusMessage = Signal(str, int)  # text, milliseconds: for the window's status bar
    imported = Signal()  # records were added to the history: the lists read it again
    importing = Signal(bool)  # an import runs (True) or has ended
    reopenRequested = Signal(str, object)  # after a restore: a sentence for the new window, or an error to show

    services: Services

    def __init__(self, parent: QWidget) -> None:
        super().__init__(parent)
        self._window = parent
        self.dialog: BackupsDialog | None = None
        self._let_go: Callable[[], None] = lambda: None
        self._importing = False

    def attach(self, services: Services, let_go: Callable[[], None]) -> None:
        """``let_go`` stops everything that works on the history and closes the store, before a restore."""
        self.services = services
        self._let_go = let_go

    # --- backups ---

    def back_up_now(self) -> None:
        from app.history.backups import BackupKind, back_up
        from app.words import format_bytes

        paths = self.services.paths
        if self.dialog is not None:
            self.dialog.set_busy("Backing up the history…")
        self.statusMessage.emit("Backing up the history…", 0)

        def made(backup: Backup) -> None:
            words = f"Backed up the history ({format_bytes(backup.size)}): {backup.path.name}."
            self.statusMessage.emit(words, 8000)
            if self.dialog is not None:
                self.dialog.set_busy(None)
                self.dialog.say(words)
                self._list_backups()

        def not_made(error: BaseException) -> None:
            self.statusMessage.emit("", 0)
            if self.dialog is not None:
                self.dialog.set_busy(None)
                if isinstance(error, HearthError):
                    self.dialog.say(str(error))
                    return
            self.failed.emit(error)

        BackgroundOp(self, back_up, paths.database, paths.backups_dir, BackupKind.MANUAL).success(made) \
            .failure(not_made).run()

    def show_backups(self) -> None:
        """The dialog of backups, newest first; opened, not run, so the window goes on (a backup being made shows
        up in it when done)."""
        from ui.history.backups_dialog import BackupsDialog

        if self.dialog is not None:
            self.dialog.raise_()
            return
        dialog = BackupsDialog(str(self.services.paths.backups_dir), self._window)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.backUpRequested.connect(self.back_up_now)
        dialog.restoreRequested.connect(self.confirm_restore)
        dialog.finished.connect(self._dialog_closed)
        self.dialog = dialog
        self._list_backups()
        dialog.open()

    def _dialog_closed(self) -> None:
        self.dialog = None

    def _list_backups(self) -> None:
        from app.history.backups import backups

        dialog = self.dialog
        if dialog is not None:
            BackgroundOp(dialog, backups, self.services.paths.backups_dir).success(dialog.show_backups) \
                .failure(self.failed.emit).run()

    def confirm_restore(self, backup: Backup) -> None:
        from app.words import moment

        box = QMessageBox(QMessageBox.Icon.Question, "Restore from a backup",
                          f"Put the history back as it was on {moment(backup.made_at)}?",
                          parent=self.dialog or self._window)
        box.setInformativeText("The history as it is now is kept as one more backup first, so you can come back to "
                               "it. Hearth stops what it is doing (an answer being written, a task, a comparison; "
                               "downloads pause and go on later) and opens its window again on the restored "
                               "history.")
        restore_button = box.addButton("Restore", QMessageBox.ButtonRole.AcceptRole)
        box.addButton(QMessageBox.StandardButton.Cancel)
        box.exec()
        if box.clickedButton() is restore_button:
            self.restore(backup)

    def restore(self, backup: Backup) -> None:
        """``backup`` in the history's place (confirmed already), then the window opened again on it."""
        from app.history.backups import restore
        from app.words import moment

        when = moment(backup.made_at)
        if self.dialog is not None:
            self.dialog.set_busy(f"Restoring the history from the backup of {when}…")
        self.statusMessage.emit(f"Restoring the history from the backup of {when}…", 0)
        self._let_go()
        paths = self.services.paths

        def restored(kept: Path | None) -> None:
            self.reopenRequested.emit(f"Restored the history from the backup of {when}."
                                      + (f" The history from before is kept as a backup: {kept.name}." if kept
                                         else ""), None)

        def not_restored(error: BaseException) -> None:
            if not isinstance(error, HearthError):
                log.error("restoring a backup failed", exc_info=error)
            self.reopenRequested.emit("", error)

        BackgroundOp(self, restore, backup.path, paths.database, paths.backups_dir).success(restored) \
            .failure(not_restored).run()

    # --- importing ---

    def import_history(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self._window, "Import history", str(Path.home()),
            "Hearth history or ChatGPT export (*.json *.zip);;All files (*)")
        if path:
            self.import_file(Path(path))

    def import_file(self, path: Path) -> None:
        """A Hearth history file or a ChatGPT export (``conversations.json`` or its .zip), added off the GUI thread;
        the sentence that says what came of it is shown in a box."""
        if self._importing:
            self.statusMessage.emit("An import is running already; wait for it to end.", 5000)
            return
        self._importing = True
        self.importing.emit(True)
        self.statusMessage.emit(f"Importing {path.name}…", 0)

        def done(result: Imported) -> None:
            self._ended()
            self.imported.emit()
            self._tell(QMessageBox.Icon.Information, result.sentence())

        def not_done(error: BaseException) -> None:
            self._ended()
            if isinstance(error, HearthError):
                self._tell(QMessageBox.Icon.Warning, str(error))
            else:
                self.failed.emit(error)

        BackgroundOp(self, self.services.store.import_file, path).success(done).failure(not_done).run()

    def _ended(self) -> None:
        self._importing = False
        self.importing.emit(False)
        self.statusMessage.emit("", 0)

    def _tell(self, icon: QMessageBox.Icon, text: str) -> None:
        box = QMessageBox(icon, "Import history", text, parent=self._window)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.open()
