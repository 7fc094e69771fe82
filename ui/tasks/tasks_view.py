"""The Tasks page's layout: the task and the model on top; on the left what the task reads, its options, the plan
with Run and Cancel, and the recent runs; the result on the right. It shows and asks (``runRequested``,
``cancelRequested``, a file dropped anywhere on it); ``TasksPage`` decides."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from app.history import ModelRecord
from app.remote.listing import shown_name
from ui.qt.staged import Staged
from ui.tasks.history import RunHistory
from ui.tasks.results import ResultPanel
from ui.widgets.document_form import DocumentForm, DropTargetPage
from ui.widgets.labels import page_header, section_title
from ui.widgets.run_phase import RunPhase
from ui.widgets.scroll_column import scrolled
from ui.widgets.segmented_picker import SegmentedPicker
from ui.widgets.task_options import TaskOptions

TASK_BUTTONS = {"summarize": "Summarize", "translate": "Translate", "classify": "Classify"}
EMPTY_OUTPUT = ("Choose what to do, give Hearth a document or some text, and press Run.\n\n"
                "The result appears here. Everything stays on this computer.")


class TasksView(DropTargetPage, Staged):
    runRequested = Signal()
    cancelRequested = Signal()

    def __init__(self, make_history: Callable[[], RunHistory], staged: bool = False) -> None:
        super().__init__()
        self.begin_building(self._stages(make_history), staged)

    def _stages(self, make_history: Callable[[], RunHistory]) -> Iterator[None]:
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        self.picker = SegmentedPicker(TASK_BUTTONS)
        header, row = page_header("Tasks", self.picker)
        row.addWidget(QLabel("Model:"))
        self.model_combo = QComboBox()
        self.model_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.model_combo.setMinimumContentsLength(18)  # a long name is cut, not the window made wider
        self.model_combo.setToolTip("The model that does the task")
        row.addWidget(self.model_combo)
        self.model_status = QLabel()
        self.model_status.setObjectName("engineStatus")
        self.model_status.setWordWrap(True)
        self.model_status.setMinimumWidth(120)
        row.addWidget(self.model_status)
        layout.addWidget(header)
        yield

        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.setObjectName("taskSplitter")  # the window keeps where it was left
        splitter.setChildrenCollapsible(False)
        left = QWidget()
        left.setObjectName("taskSetup")
        left_column = QVBoxLayout(left)
        left_column.setContentsMargins(0, 0, 0, 0)
        left_column.setSpacing(0)
        left_column.addWidget(scrolled(self._setup_panel()), 3)
        yield
        left_column.addWidget(self._run_panel())
        self.history = make_history()
        left_column.addWidget(self.history, 1)
        splitter.addWidget(left)
        yield
        self.output = ResultPanel()
        splitter.addWidget(self.output)
        splitter.setStretchFactor(0, 0)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([400, 520])
        layout.addWidget(splitter, 1)
        self.output.show_empty(EMPTY_OUTPUT)
        self.run_button.clicked.connect(self.runRequested)
        self.cancel_button.clicked.connect(self.cancelRequested)

    def _setup_panel(self) -> QWidget:
        panel = QWidget()
        panel.setObjectName("taskInputs")
        panel.setMinimumWidth(340)
        column = QVBoxLayout(panel)
        column.setContentsMargins(20, 12, 16, 4)
        column.setSpacing(8)
        self.form = DocumentForm()
        self.drop_zone, self.text_input, self.input_error = (
            self.form.drop_zone, self.form.text_input, self.form.error_label)
        column.addWidget(self.form, 1)
        column.addWidget(section_title("Options"))
        self.options = TaskOptions()
        column.addWidget(self.options)
        return panel

    def _run_panel(self) -> QWidget:
        """The plan, Run and Cancel, and the progress: under the inputs, always in sight."""
        panel = QWidget()
        column = QVBoxLayout(panel)
        column.setContentsMargins(20, 4, 16, 10)
        column.setSpacing(6)
        self.plan_label = QLabel()
        self.plan_label.setObjectName("planLine")
        self.plan_label.setWordWrap(True)
        self.plan_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        column.addWidget(self.plan_label)
        buttons = QHBoxLayout()
        self.run_button = QPushButton("Run")
        self.run_button.setObjectName("primary")
        self.run_button.setMinimumWidth(96)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop the task, keeping the parts already done (Esc)")
        self.cancel_button.hide()
        buttons.addWidget(self.run_button)
        buttons.addWidget(self.cancel_button)
        self.progress = QProgressBar()
        self.progress.setTextVisible(False)
        self.progress.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.progress.setMaximumHeight(10)
        self.progress.hide()
        buttons.addWidget(self.progress, 1)
        column.addLayout(buttons)
        self.progress_label = QLabel()
        self.progress_label.setObjectName("hint")
        self.progress_label.setWordWrap(True)
        self.progress_label.hide()
        column.addWidget(self.progress_label)
        return panel

    def selected_model(self) -> ModelRecord | None:
        record = self.model_combo.currentData()
        return record if isinstance(record, ModelRecord) else None

    def set_models(self, models: list[ModelRecord], wanted: int | None, enabled: bool) -> None:
        """The library in the model list, ``wanted`` chosen (else the first); no signal on the way."""
        self.model_combo.blockSignals(True)
        self.model_combo.clear()
        for record in models:
            self.model_combo.addItem(shown_name(record), record)
        if not models:
            self.model_combo.addItem("No models yet")
        index = next((i for i, r in enumerate(models) if r.id == wanted), 0)
        self.model_combo.setCurrentIndex(index)
        self.model_combo.setEnabled(enabled)
        self.model_combo.blockSignals(False)

    def mark_loaded(self, loaded: ModelRecord | None) -> None:
        """"(loaded)" after the name of the model the engine holds."""
        for i in range(self.model_combo.count()):
            record = self.model_combo.itemData(i)
            if isinstance(record, ModelRecord):
                self.model_combo.setItemText(i, shown_name(record) + ("  (loaded)" if loaded and record.id == loaded.id
                                                                      else ""))

    def show_phase(self, phase: RunPhase, *, has_models: bool) -> None:
        """What can be pressed while the page is idle, loading the model, starting, running or stopping a run."""
        idle = phase is RunPhase.IDLE
        self.drops_open = idle
        self.run_button.setVisible(idle)
        self.cancel_button.setVisible(not idle)
        self.cancel_button.setEnabled(phase is not RunPhase.STOPPING)
        self.progress.setVisible(not idle)
        self.progress_label.setVisible(not idle)
        self.picker.setEnabled(idle)
        self.model_combo.setEnabled(idle and has_models)
        self.options.set_enabled(idle)
        self.form.set_locked(not idle)
        self.output.set_chat_allowed(idle, "Wait for the task to finish: the chat needs the model.")
        self.history.update_buttons()
        if idle:
            self.progress.setRange(0, 1)

    def set_plan_text(self, text: str, *, problem: bool, stale: bool) -> None:
        self.plan_label.setText(text)
        self.plan_label.setVisible(bool(text))
        self.set_plan_style(problem=problem, stale=stale)

    def set_plan_style(self, *, problem: bool, stale: bool) -> None:
        """``stale``: greyed while an answer is due; ``problem``: the plan could not be made."""
        self.plan_label.setProperty("problem", problem)
        self.plan_label.setProperty("stale", stale)
        self.plan_label.style().unpolish(self.plan_label)
        self.plan_label.style().polish(self.plan_label)
