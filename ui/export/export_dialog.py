"""The Export dialog: what to take away (the conversation shown, a folder, the run or comparison shown, or
everything) and in which format, each format with a line on what it is good for, so that nobody needs to know what
DOCX means. It only asks; ``Exporter`` asks where, writes and says how it went, and shows that here."""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QButtonGroup,
    QDialog,
    QDialogButtonBox,
    QGridLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QRadioButton,
    QVBoxLayout,
    QWidget,
)

from app.export.files import Selection
from app.export.formats import ExportFormat

FORMATS = (ExportFormat.PDF, ExportFormat.DOCX, ExportFormat.HTML, ExportFormat.MARKDOWN, ExportFormat.JSON)


class ExportDialog(QDialog):
    exportRequested = Signal(object, object)  # Selection, ExportFormat: Export… was pressed

    def __init__(self, choices: Sequence[tuple[str, Selection]], fmt: ExportFormat, parent: QWidget | None = None
                 ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Export")
        self.choices = list(choices)
        layout = QVBoxLayout(self)
        layout.setSpacing(10)
        layout.addWidget(_title("What to export"))
        self.what = QButtonGroup(self)
        for index, (words, _selection) in enumerate(self.choices):
            button = QRadioButton(words)
            self.what.addButton(button, index)
            layout.addWidget(button)
        self.what.button(0).setChecked(True)
        layout.addSpacing(6)
        layout.addWidget(_title("Format"))
        grid = QGridLayout()
        grid.setHorizontalSpacing(14)
        grid.setVerticalSpacing(6)
        self.formats = QButtonGroup(self)
        for row, each in enumerate(FORMATS):
            button = QRadioButton(each.name_words)
            self.formats.addButton(button, row)
            use = QLabel(each.use_words)
            use.setObjectName("hint")
            use.setBuddy(button)
            grid.addWidget(button, row, 0)
            grid.addWidget(use, row, 1)
        grid.setColumnStretch(1, 1)
        layout.addLayout(grid)
        self.formats.button(FORMATS.index(fmt)).setChecked(True)
        layout.addSpacing(4)
        self.progress = QProgressBar()
        self.progress.setRange(0, 0)  # busy: how long a file takes to lay out is not known beforehand
        self.progress.setTextVisible(False)
        self.progress.setMaximumHeight(8)
        self.progress.hide()
        layout.addWidget(self.progress)
        self.status = QLabel()  # what is being written
        self.status.setObjectName("hint")
        self.failure = QLabel()  # why it could not be
        self.failure.setObjectName("exportFailure")
        for label in (self.status, self.failure):
            label.setWordWrap(True)
            label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            label.hide()
            layout.addWidget(label)
        buttons = QDialogButtonBox()
        self.export_button = QPushButton("Export…")
        self.export_button.setObjectName("primary")
        self.export_button.setDefault(True)
        buttons.addButton(self.export_button, QDialogButtonBox.ButtonRole.AcceptRole)
        self.cancel_button = buttons.addButton(QDialogButtonBox.StandardButton.Cancel)
        self.export_button.clicked.connect(self._export)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)

    def selection(self) -> Selection:
        return self.choices[self.what.checkedId()][1]

    def format(self) -> ExportFormat:
        return FORMATS[self.formats.checkedId()]

    def set_busy(self, text: str) -> None:
        """Writing: the choices stay as they were; Cancel becomes Close, since the file is finished either way
        (the status bar says when)."""
        self._show(self.status, text)
        self.progress.show()
        self._enable(False)
        self.cancel_button.setText("Close")

    def show_failure(self, text: str) -> None:
        """The file could not be written: why, and the choices back, to try again."""
        self._show(self.failure, text)
        self.progress.hide()
        self._enable(True)
        self.cancel_button.setText("Cancel")

    def _show(self, label: QLabel, text: str) -> None:
        self.status.hide()
        self.failure.hide()
        label.setText(text)
        label.show()
        self.adjustSize()  # a wrapped sentence is taller than the layout guessed: the dialog grows to show it all

    def _enable(self, enabled: bool) -> None:
        self.export_button.setEnabled(enabled)
        for button in (*self.what.buttons(), *self.formats.buttons()):
            button.setEnabled(enabled)

    def _export(self) -> None:
        self.exportRequested.emit(self.selection(), self.format())


def _title(text: str) -> QLabel:
    label = QLabel(text)
    label.setObjectName("sectionTitle")
    return label
