"""Each task's options (a summary's length and focus, the languages of a translation, the labels to classify
with), as the Tasks and Compare pages both show them; ``kind`` reads them as the core's task kind."""

from __future__ import annotations

from PySide6.QtCore import QLocale, QSize, Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QLineEdit,
    QPlainTextEdit,
    QSizePolicy,
    QStackedWidget,
    QWidget,
)

from app.tasks.inputs import parse_labels
from app.tasks.spec import LANGUAGES, LENGTH_WORDS, Classify, Summarize, TaskKind, Translate

TASKS = ("summarize", "translate", "classify")
DETECT = "Detect automatically"


class TaskOptions(QStackedWidget):
    """Each task's options; ``kind`` reads them as the core's task kind."""

    changed = Signal()

    def __init__(self) -> None:
        super().__init__()
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Maximum)

        summarize = QWidget()
        form = _form(summarize)
        self.length = QComboBox()
        for key, words in LENGTH_WORDS.items():
            self.length.addItem(words, key)
        self.length.setCurrentIndex(self.length.findData("points"))
        self.length.currentIndexChanged.connect(self.changed)
        form.addRow("Length:", self.length)
        self.focus = QLineEdit()
        self.focus.setPlaceholderText("Optional, e.g. the tenant's duties")
        self.focus.setToolTip("What the summary should pay most attention to")
        self.focus.textChanged.connect(self.changed)
        form.addRow("Focus on:", self.focus)
        self.addWidget(summarize)

        translate = QWidget()
        form = _form(translate)
        self.source = QComboBox()
        self.source.addItem(DETECT, None)
        for language in LANGUAGES:
            self.source.addItem(language, language)
        self.source.currentIndexChanged.connect(self.changed)
        form.addRow("From:", self.source)
        self.target = QComboBox()
        self.target.addItems(LANGUAGES)
        self.target.setCurrentText(default_target())
        self.target.currentIndexChanged.connect(self.changed)
        form.addRow("Into:", self.target)
        self.addWidget(translate)

        classify = QWidget()
        form = _form(classify)
        self.labels = QPlainTextEdit()
        self.labels.setObjectName("labelsEditor")
        self.labels.setPlaceholderText("One label per line, optionally with what it means:\n"
                                       "praise: the writer is happy\ncomplaint: something went wrong\nquestion")
        self.labels.setToolTip("One label per line, optionally followed by a colon and what it means; "
                               "or all on one line, separated by commas")
        self.labels.setFixedHeight(92)
        self.labels.setTabChangesFocus(True)
        self.labels.textChanged.connect(self.changed)
        form.addRow("Labels:", self.labels)
        self.multi = QCheckBox("A text may get several labels")
        self.multi.toggled.connect(self.changed)
        form.addRow("", self.multi)
        self.addWidget(classify)

    def set_task(self, task: str) -> None:
        self.setCurrentIndex(TASKS.index(task))
        self.updateGeometry()

    def sizeHint(self) -> QSize:
        """The shown page's size, not the tallest page's: no empty band under short options."""
        page = self.currentWidget()
        return page.sizeHint() if page is not None else super().sizeHint()

    def minimumSizeHint(self) -> QSize:
        page = self.currentWidget()
        return page.minimumSizeHint() if page is not None else super().minimumSizeHint()

    def kind(self, task: str) -> TaskKind:
        if task == "summarize":
            return Summarize(str(self.length.currentData()), " ".join(self.focus.text().split()))
        if task == "translate":
            return Translate(self.target.currentText(), self.source.currentData())
        return Classify(parse_labels(self.labels.toPlainText()), multi=self.multi.isChecked())

    def set_kind(self, kind: TaskKind) -> None:
        """Show a task's options as ``kind`` has them (a comparison run again)."""
        if isinstance(kind, Summarize):
            self.length.setCurrentIndex(max(self.length.findData(kind.length), 0))
            self.focus.setText(kind.focus)
        elif isinstance(kind, Translate):
            self.target.setCurrentText(kind.target)
            self.source.setCurrentIndex(max(self.source.findData(kind.source), 0))
        elif isinstance(kind, Classify):
            self.labels.setPlainText("\n".join(f"{label.name}: {label.description}" if label.description
                                               else label.name for label in kind.labels))
            self.multi.setChecked(kind.multi)

    def set_enabled(self, enabled: bool) -> None:
        for widget in (self.length, self.focus, self.source, self.target, self.labels, self.multi):
            widget.setEnabled(enabled)


def default_target() -> str:
    """The language this computer is set to, when the list has it; English otherwise."""
    name = QLocale.languageToString(QLocale.system().language())
    return name if name in LANGUAGES else "English"


def _form(page: QWidget) -> QFormLayout:
    form = QFormLayout(page)
    form.setContentsMargins(0, 0, 0, 0)
    form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
    form.setLabelAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
    return form
