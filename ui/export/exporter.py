"""Export and print from the window: File → Export… (Ctrl+Shift+E) and File → Print… (Ctrl+P) for what is on show
(the conversation, the task run or the comparison) or everything, and ``show_choices`` for a menu that has
conversations in hand (a folder, a conversation of the list).

The flow: the dialog asks what and how; a save dialog asks where, with the format's suffix; the file is written off
the GUI thread (``app.export.files.write_export``, Qt's PDF writer handed in for a PDF) while the dialog shows that
it works; then the status bar says what was written, or the dialog says why not and lets the person try again.
Printing reads and lays out the page off the GUI thread too, then shows Qt's print dialog.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import shiboken6
from PySide6.QtCore import QObject, QStandardPaths, Qt, Signal
from PySide6.QtPrintSupport import QPrintDialog, QPrinter
from PySide6.QtWidgets import QFileDialog, QWidget

from app.errors import HearthError
from app.export.files import Exported, Selection, paper_page, write_export
from app.export.formats import ExportFormat
from ui.export import pdf
from ui.export.export_dialog import ExportDialog
from ui.qt.background import BackgroundOp

if TYPE_CHECKING:
    from app.history import ComparisonRecord, FolderRecord, TaskRunRecord
    from ui.services import Services

log = logging.getLogger(__name__)

EVERYTHING = "Everything: every conversation, task run and comparison"


@dataclass(frozen=True)
class Choice:
    words: str  # in the dialog: "The conversation “Trip to Paris”"
    selection: Selection
    name: str  # the file's name suggested, and the printed document's


def conversation_choice(conversation_id: int, title: str) -> Choice:
    return Choice(f"The conversation “{title}”", Selection.conversations([conversation_id]), title)


def task_run_choice(record: TaskRunRecord) -> Choice:
    from app.tasks.result_words import run_title

    title = run_title(record)
    return Choice(f"The task run shown: {title}", Selection.task_run(record.id), title)


def folder_choice(folder: FolderRecord) -> Choice:
    return Choice(f"The folder “{folder.name}”", Selection.folder(folder.id), folder.name)


def comparison_choice(record: ComparisonRecord) -> Choice:
    return Choice(f"The comparison “{record.title}”", Selection.comparison(record.id), f"Comparison – {record.title}")


class Exporter(QObject):
    statusMessage = Signal(str, int)  # text, milliseconds: for the window's status bar
    failed = Signal(object)  # an error no dialog is left to show, for the window

    services: Services

    def __init__(self, parent: QWidget) -> None:
        super().__init__(parent)
        self._window = parent
        self.folder = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.DocumentsLocation) \
            or str(Path.home())
        self.format = ExportFormat.PDF  # the last one chosen, offered first the next time
        self.dialog: ExportDialog | None = None  # the one open

    def attach(self, services: Services) -> None:
        self.services = services

    def show_choices(self, choices: list[Choice]) -> ExportDialog:
        """The dialog with these offered first (what is shown, a folder), then everything."""
        return self._open(choices)

    def _open(self, choices: list[Choice]) -> ExportDialog:
        everything = Choice(EVERYTHING, Selection.everything(), "Hearth history")
        options = [*choices, everything]
        dialog = ExportDialog([(choice.words, choice.selection) for choice in options], self.format, self._window)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        names = {choice.selection: choice.name for choice in options}
        dialog.exportRequested.connect(
            lambda selection, fmt: self._ask_where(dialog, selection, fmt, names[selection]))
        self.dialog = dialog
        dialog.finished.connect(lambda _result: self._closed(dialog))
        dialog.open()
        return dialog

    def _closed(self, dialog: ExportDialog) -> None:
        if self.dialog is dialog:
            self.dialog = None  # it deletes itself on closing

    def _ask_where(self, dialog: ExportDialog, selection: Selection, fmt: ExportFormat, name: str) -> None:
        suggested = Path(self.folder) / f"{_file_name(name)}{fmt.suffix}"
        path, _chosen = QFileDialog.getSaveFileName(dialog, "Export", str(suggested), fmt.file_filter)
        if not path:
            return
        target = Path(path)
        if target.suffix.lower() != fmt.suffix:
            target = target.with_name(target.name + fmt.suffix)
        self.folder, self.format = str(target.parent), fmt
        dialog.set_busy(f"Writing “{target.name}”…")
        self.export(selection, fmt, target, dialog)

    def export(self, selection: Selection, fmt: ExportFormat, path: Path, dialog: ExportDialog | None = None) -> None:
        """Writes ``selection`` to ``path`` off the GUI thread; the status bar (or ``dialog``) says how it went."""
        make_pdf = pdf.make_pdf if fmt is ExportFormat.PDF else None

        def written(exported: Exported) -> None:
            self.statusMessage.emit(exported.sentence(f"“{path.name}”"), 10_000)
            if dialog is not None and shiboken6.isValid(dialog):
                dialog.accept()

        def failed(error: BaseException) -> None:
            if not isinstance(error, HearthError):
                log.error("exporting to %s failed", path, exc_info=error)
            text = str(error) if isinstance(error, HearthError) else \
                f"Hearth could not write “{path.name}”. Details are in the log file."
            if dialog is not None and shiboken6.isValid(dialog) and dialog.isVisible():
                dialog.show_failure(text)
            else:
                self.failed.emit(HearthError(text))

        BackgroundOp(self, write_export, self.services.store, selection, fmt, path, make_pdf=make_pdf) \
            .success(written).failure(failed).run()

    def print_(self, shown: Choice | None) -> None:
        """File → Print…: what is on show, on paper (or in a PDF, as the system's print dialog offers)."""
        if shown is None:
            self.statusMessage.emit("Nothing to print here: open a conversation, a task run or a comparison first.",
                                    6000)
            return

        def failed(error: BaseException) -> None:
            if not isinstance(error, HearthError):
                log.error("preparing %s for printing failed", shown.name, exc_info=error)
            self.failed.emit(error if isinstance(error, HearthError) else
                             HearthError(f"Hearth could not prepare “{shown.name}” for printing. Details are in the "
                                         "log file."))

        BackgroundOp(self, paper_page, self.services.store, shown.selection) \
            .success(lambda page: self._ask_printer(*page)).failure(failed).run()

    def _ask_printer(self, page: str, title: str) -> None:
        printer = QPrinter(QPrinter.PrinterMode.HighResolution)
        printer.setDocName(title)
        dialog = QPrintDialog(printer, self._window)
        dialog.setWindowTitle(f"Print “{title}”")
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.accepted.connect(lambda: self._print(page, title, printer))
        dialog.setWindowModality(Qt.WindowModality.WindowModal)
        dialog.show()  # as open() would: its open() takes a slot in PySide6

    def _print(self, page: str, title: str, printer: QPrinter) -> None:
        pdf.lay_out(page).print_(printer)
        where = printer.outputFileName()
        self.statusMessage.emit(f"Printed “{title}” to “{Path(where).name}”." if where else
                                f"Sent “{title}” to the printer.", 8000)


def _file_name(name: str) -> str:
    """A title as a file name every system takes."""
    return re.sub(r'[\\/:*?"<>|\s]+', " ", name).strip(" .")[:80] or "Hearth export"
