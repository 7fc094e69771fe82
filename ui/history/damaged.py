"""At start, a history that failed its check: what the window says, and the way out it offers.

The start (``ui.main.start_window``) did not open the history (``app.history.backups.look_over``), so nothing has
written to it. The box offers the newest backup that passes its check, with its date; when there is none, a new
history, the damaged file set aside rather than deleted. Either runs off the GUI thread, and then the start goes on
as usual; Quit leaves everything as it is.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtWidgets import QMainWindow, QMessageBox, QPushButton, QWidget

from app.history.backups import DamagedHistoryError, restore, set_aside
from app.paths import Paths
from app.words import moment
from ui.qt.background import BackgroundOp


class DamagedHistoryBox(QMessageBox):
    def __init__(self, error: DamagedHistoryError, parent: QWidget | None = None) -> None:
        super().__init__(QMessageBox.Icon.Critical, "Hearth's history is damaged", error.summary, parent=parent)
        self.setInformativeText(error.advice)
        self.setDetailedText(f"The history file: {error.path}\nSQLite's check found: {error.finding}")
        self.restore_button: QPushButton | None = None
        self.new_button: QPushButton | None = None
        if error.newest_good is not None:
            self.restore_button = self.addButton(f"Restore the backup of {moment(error.newest_good.made_at)}",
                                                 QMessageBox.ButtonRole.AcceptRole)
            self.setDefaultButton(self.restore_button)
        else:
            self.new_button = self.addButton("Start a new history", QMessageBox.ButtonRole.AcceptRole)
        self.quit_button = self.addButton("Quit", QMessageBox.ButtonRole.RejectRole)
        self.setEscapeButton(self.quit_button)


def offer_a_way_out(window: QMainWindow, error: DamagedHistoryError, paths: Paths, *,
                    mended: Callable[[str], None], failed: Callable[[BaseException], None],
                    gave_up: Callable[[], None]) -> None:
    """Shows the box; ``mended`` gets a sentence for the status bar once the backup is restored (or a new history
    can be made), ``failed`` the error if that fails, and ``gave_up`` is called when the person quits."""
    box = DamagedHistoryBox(error, window)
    box.exec()
    clicked = box.clickedButton()
    backup = error.newest_good
    if backup is not None and clicked is box.restore_button:
        when = moment(backup.made_at)
        window.statusBar().showMessage(f"Restoring the history from the backup of {when}…")

        def restored(kept: Path | None) -> None:
            mended(f"Restored the history from the backup of {when}."
                   + (f" The damaged history is kept at {kept}." if kept else ""))

        BackgroundOp(window, restore, backup.path, paths.database, paths.backups_dir).success(restored) \
            .failure(failed).run()
    elif clicked is box.new_button and clicked is not None:
        BackgroundOp(window, set_aside, paths.database, paths.backups_dir).success(
            lambda kept: mended(f"Started a new history. The damaged one is kept at {kept}.")).failure(failed).run()
    else:
        gave_up()
