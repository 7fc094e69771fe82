"""The form that says what a task reads, shared by the Tasks and Compare pages: a document or a table, dropped or
opened, or the text in the box. These widgets show and collect (reading files off the GUI thread); the page decides
what runs, and ``app.tasks.input_form`` turns what the form holds into the task's input."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QMimeData, QStandardPaths, Signal
from PySide6.QtGui import QDragEnterEvent, QDragLeaveEvent, QDropEvent, QGuiApplication
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QFrame,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app.documents.document import Document
from app.documents.reader import FILE_DIALOG_FILTER, read_document
from app.errors import DocumentError, EncryptedDocumentError, HearthError
from app.tasks import inputs
from app.tasks.input_form import FormInput, size_words
from app.tasks.spec import TaskKind
from app.words import format_bytes, plural
from ui.qt.background import BackgroundOp

log = logging.getLogger(__name__)

CSV_FILTER = "Tables to classify (*.csv)"
PREVIEW_CHARS = 20_000
PREVIEW_ROWS = 500
KIND_WORDS = {"pdf": "PDF", "docx": "Word document", "html": "Web page", "md": "Markdown", "txt": "Text",
              "pasted": "Pasted text"}


def document_words(document: Document) -> str:
    """"PDF · 38 pages · 2.1 MB"."""
    return " · ".join((KIND_WORDS.get(document.kind, document.kind), size_words(document),
                       format_bytes(document.size_bytes)))


def local_files(mime: QMimeData) -> list[Path]:
    return [Path(url.toLocalFile()) for url in mime.urls() if url.isLocalFile()] if mime.hasUrls() else []


class TextInput(QPlainTextEdit):
    """The text box; a file dropped on it opens the file instead of pasting its path as text."""

    fileDropped = Signal(object)  # Path

    def canInsertFromMimeData(self, source: QMimeData) -> bool:
        return bool(local_files(source)) or super().canInsertFromMimeData(source)

    def insertFromMimeData(self, source: QMimeData) -> None:
        files = local_files(source)
        if files:
            self.fileDropped.emit(files[0])
        else:
            super().insertFromMimeData(source)


class DropZone(QFrame):
    """Where a document goes: shows how to give one, the one being read, or the one chosen."""

    fileDropped = Signal(object)  # Path
    openRequested = Signal()
    pasteRequested = Signal()
    removeRequested = Signal()
    columnChosen = Signal(str)

    def __init__(self) -> None:
        super().__init__()
        self.setObjectName("dropZone")
        self.setAcceptDrops(True)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(14, 12, 14, 12)
        layout.setSpacing(4)
        self.headline = QLabel()
        self.headline.setObjectName("dropTitle")
        self.headline.setWordWrap(True)
        layout.addWidget(self.headline)
        self.details = QLabel()
        self.details.setObjectName("hint")
        self.details.setWordWrap(True)
        layout.addWidget(self.details)
        row = QHBoxLayout()
        row.setContentsMargins(0, 6, 0, 0)
        self.open_button = QPushButton("Open file…")
        self.open_button.setToolTip("Choose a document on this computer (Ctrl+O)")
        self.open_button.clicked.connect(self.openRequested)
        self.paste_button = QPushButton("Paste text")
        self.paste_button.setToolTip("Put the text on the clipboard into the box below")
        self.paste_button.clicked.connect(self.pasteRequested)
        self.column_label = QLabel("Column:")
        self.column = QComboBox()
        self.column.setToolTip("The column whose cells are the texts to label")
        self.column.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.column.textActivated.connect(self.columnChosen)
        self.remove_button = QPushButton("Remove")
        self.remove_button.setToolTip("Stop using this file and go back to the text box")
        self.remove_button.clicked.connect(self.removeRequested)
        for widget in (self.open_button, self.paste_button, self.column_label, self.column):
            row.addWidget(widget)
        row.addStretch(1)
        row.addWidget(self.remove_button)
        layout.addLayout(row)
        self.show_empty()

    def show_empty(self) -> None:
        self.headline.setText("Drop a document here")
        self.details.setText("PDF, Word, web page, Markdown or plain text")
        self._buttons(file=False)

    def show_reading(self, name: str) -> None:
        self.headline.setText(name)
        self.details.setText("Reading the document…")
        self._buttons(file=True)

    def show_file(self, name: str, details: str, columns: list[str] | None = None, column: str = "") -> None:
        self.headline.setText(name)
        self.details.setText(details)
        self._buttons(file=True, columns=columns)
        if columns is not None:
            self.column.blockSignals(True)
            self.column.clear()
            self.column.addItems(columns)
            self.column.setCurrentText(column)
            self.column.blockSignals(False)

    def set_details(self, details: str) -> None:
        self.details.setText(details)

    def _buttons(self, *, file: bool, columns: list[str] | None = None) -> None:
        self.paste_button.setVisible(not file)
        self.remove_button.setVisible(file)
        self.column_label.setVisible(columns is not None)
        self.column.setVisible(columns is not None)

    def set_dragging(self, dragging: bool) -> None:
        self.setProperty("dragging", dragging)
        self.style().unpolish(self)
        self.style().polish(self)

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if local_files(event.mimeData()):
            event.acceptProposedAction()
            self.set_dragging(True)

    def dragLeaveEvent(self, event: QDragLeaveEvent) -> None:
        self.set_dragging(False)

    def dropEvent(self, event: QDropEvent) -> None:
        self.set_dragging(False)
        files = local_files(event.mimeData())
        if files:
            event.acceptProposedAction()
            self.fileDropped.emit(files[0])


@dataclass(frozen=True)
class InputFile:
    path: Path
    document: Document | None  # None: a CSV table, read a column at a time
    columns: tuple[str, ...] = ()


class DocumentForm(QWidget):
    """What a task reads: a document or a table (dropped or opened), or the text in the box. Files are read
    off the GUI thread; a newer file wins over one still being read."""

    changed = Signal()
    fileDropped = Signal(object)  # Path: the page decides whether a file may be opened now

    def __init__(self) -> None:
        super().__init__()
        self.file: InputFile | None = None
        self.csv_rows: list[str] | None = None
        self.reading: str | None = None  # the name of the file being read
        self.error = ""
        self.last_folder = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.DocumentsLocation) \
            or str(Path.home())
        self._reads = 0
        column = QVBoxLayout(self)
        column.setContentsMargins(0, 0, 0, 0)
        column.setSpacing(8)
        self.drop_zone = DropZone()
        column.addWidget(self.drop_zone)
        self.error_label = QLabel()
        self.error_label.setObjectName("inputError")
        self.error_label.setWordWrap(True)
        self.error_label.hide()
        column.addWidget(self.error_label)
        self.text_input = TextInput()
        self.text_input.setObjectName("taskText")
        self.text_input.setMinimumHeight(80)
        self.text_input.setTabChangesFocus(True)
        column.addWidget(self.text_input, 1)
        self.preview = QPlainTextEdit()  # in the text box's place: what Hearth read from the file
        self.preview.setObjectName("taskPreview")
        self.preview.setReadOnly(True)
        self.preview.setMinimumHeight(80)
        self.preview.setToolTip("The text Hearth read from the file (the start of it, for a long one)")
        self.preview.hide()
        column.addWidget(self.preview, 1)
        self.drop_zone.fileDropped.connect(self.fileDropped)
        self.drop_zone.pasteRequested.connect(self.paste_text)
        self.drop_zone.removeRequested.connect(self.remove_file)
        self.drop_zone.columnChosen.connect(self.choose_column)
        self.text_input.fileDropped.connect(self.fileDropped)
        self.text_input.textChanged.connect(self.changed)

    def text(self) -> str:
        """The text box, when it is the input."""
        return self.text_input.toPlainText() if self.file is None else ""

    def form_input(self, task: str, kind: TaskKind) -> FormInput:
        """What the form holds now, for ``app.tasks.input_form`` to work on away from the widgets."""
        file = self.file
        if file is not None and file.document is None:
            return FormInput(task, kind, table=file.path.name, rows=self.csv_rows, reading=self.reading)
        return FormInput(task, kind, self.text(), file.document if file is not None else None,
                         reading=self.reading)

    def set_task(self, task: str) -> None:
        """Texts to classify are one per line: the box says so, and shows each line as one."""
        self.text_input.setPlaceholderText(
            "One text per line, for example:\nThe parcel arrived two weeks late.\nThank you, the repair was quick!"
            if task == "classify" else "Write or paste the text here…")
        self.text_input.setLineWrapMode(TextInput.LineWrapMode.NoWrap if task == "classify" else
                                        TextInput.LineWrapMode.WidgetWidth)  # a line is a text: show it as one

    def set_locked(self, locked: bool) -> None:
        self.drop_zone.setEnabled(not locked)
        self.text_input.setReadOnly(locked)

    def choose_file(self, *, tables: bool) -> None:
        filters = [FILE_DIALOG_FILTER, *([CSV_FILTER] if tables else []), "All files (*)"]
        path, _ = QFileDialog.getOpenFileName(self, "Open a document", self.last_folder, ";;".join(filters))
        if path:
            self.last_folder = str(Path(path).parent)
            self.open_file(Path(path))

    def open_file(self, path: Path, password: str | None = None) -> None:
        self._reads += 1
        ticket = self._reads
        self.reading = path.name
        self.show_error("")
        self.drop_zone.show_reading(path.name)
        self._show_text_box(False)
        self.changed.emit()

        def failed(error: BaseException) -> None:
            if ticket != self._reads:
                return
            self.reading = None
            if isinstance(error, EncryptedDocumentError):
                self._ask_password(path, error)
                return
            if not isinstance(error, HearthError):
                log.error("reading %s failed", path, exc_info=error)
                error = DocumentError(path.name, f"Hearth could not read “{path.name}” because of an unexpected "
                                                 "problem. Details are in the log file.")
            self._set_file(None)
            self.show_error(str(error))

        if path.suffix.lower() == ".csv":
            def columns_read(columns: list[str]) -> None:
                if ticket == self._reads:
                    self.reading = None
                    self._set_file(InputFile(path, None, tuple(columns)))

            BackgroundOp(self, inputs.csv_columns, path).success(columns_read).failure(failed).run()
            return

        def read(document: Document) -> None:
            if ticket == self._reads:
                self.reading = None
                self._set_file(InputFile(path, document))

        BackgroundOp(self, read_document, path, password=password).success(read).failure(failed).run()

    def _ask_password(self, path: Path, error: EncryptedDocumentError) -> None:
        password, ok = QInputDialog.getText(self, "Password needed", str(error), QLineEdit.EchoMode.Password)
        if ok and password:
            self.open_file(path, password)
            return
        self._set_file(None)
        self.show_error(f"“{path.name}” is protected with a password; it was not opened.")

    def _set_file(self, file: InputFile | None) -> None:
        self.file, self.csv_rows = file, None
        if file is None:
            self.drop_zone.show_empty()
            self._show_text_box(True)
        elif file.document is None:
            column = file.columns[0] if file.columns else ""
            self.drop_zone.show_file(file.path.name, "Table · reading the column…", list(file.columns), column)
            self.choose_column(column)
        else:
            warning = f"\n{file.document.warning}" if file.document.warning else ""  # e.g. text that reads as gibberish
            self.drop_zone.show_file(file.path.name, document_words(file.document) + warning)
            self._show_text_box(False, file.document.text)
        self.changed.emit()

    def show_saved(self, name: str, details: str, text: str) -> None:
        """A document that is no file any more (a saved comparison's), shown as an opened file shows."""
        self.remove_file()
        self.drop_zone.show_file(name, details)
        self._show_text_box(False, text)

    def _show_text_box(self, shown: bool, preview: str = "") -> None:
        self.text_input.setVisible(shown)
        self.preview.setVisible(not shown)
        self.preview.setPlainText(preview[:PREVIEW_CHARS] + ("\n…" if len(preview) > PREVIEW_CHARS else ""))

    def choose_column(self, column: str) -> None:
        """The CSV column whose cells are the texts to classify."""
        file = self.file
        if file is None or file.document is not None:
            return
        self.csv_rows = None
        self.drop_zone.set_details("Table · reading the column…")

        def read(rows: list[str]) -> None:
            if self.file is file:
                self.csv_rows = rows
                self.drop_zone.set_details(f"Table · {plural(len(rows), 'text')} in the column “{column}”")
                self._show_text_box(False, "\n".join(rows[:PREVIEW_ROWS]))
                self.changed.emit()

        def failed(error: BaseException) -> None:
            if self.file is file:
                self.drop_zone.set_details("Table")
                self.show_error(str(error) if isinstance(error, HearthError) else
                                f"Hearth could not read “{file.path.name}”.")
                self.changed.emit()

        self.show_error("")
        BackgroundOp(self, inputs.rows_from_csv, file.path, column).success(read).failure(failed).run()

    def remove_file(self) -> None:
        self._reads += 1  # a read still going is forgotten
        self.reading = None
        self.show_error("")
        self._set_file(None)
        self.text_input.setFocus()

    def paste_text(self) -> None:
        text = QGuiApplication.clipboard().text()
        if self.file is not None:
            self.remove_file()
        if text.strip():
            self.text_input.setPlainText(text)
            self.show_error("")
        else:
            self.show_error("The clipboard holds no text. Copy some text first, or write it in the box.")
        self.text_input.setFocus()

    def show_error(self, text: str) -> None:
        self.error = text
        self.error_label.setText(text)
        self.error_label.setVisible(bool(text))


class DropTargetPage(QWidget):
    """A page that opens a document dropped anywhere on it, not only on its drop zone (which lights up meanwhile);
    while ``drops_open`` is False (a run is going) it takes none. The page's layout puts its ``form`` in it."""

    fileDropped = Signal(object)  # Path
    form: DocumentForm

    def __init__(self) -> None:
        super().__init__()
        self.drops_open = True
        self.setAcceptDrops(True)

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if local_files(event.mimeData()) and self.drops_open:
            event.acceptProposedAction()
            self.form.drop_zone.set_dragging(True)

    def dragLeaveEvent(self, event: QDragLeaveEvent) -> None:
        self.form.drop_zone.set_dragging(False)

    def dropEvent(self, event: QDropEvent) -> None:
        self.form.drop_zone.set_dragging(False)
        files = local_files(event.mimeData())
        if files:
            event.acceptProposedAction()
            self.fileDropped.emit(files[0])
