"""The Compare page's layout: the kind of comparison on top; on the left the models to tick, the prompt or the
document with the task's options, the comparison's options and Run, or the past comparisons and the leaderboard;
the answers side by side on the right. It shows and asks (``runRequested``, ``stopRequested``, a file dropped
anywhere on it); ``ComparePage`` decides."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QFrame,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from app.compare.spec import KIND_WORDS
from ui.compare.history import ComparisonHistory, Leaderboard
from ui.compare.model_choice import ModelChoice
from ui.compare.result import ComparisonPanel
from ui.qt.staged import Staged
from ui.widgets.document_form import DocumentForm, DropTargetPage, TextInput
from ui.widgets.labels import page_header, section_title
from ui.widgets.run_phase import RunPhase
from ui.widgets.segmented_picker import SegmentedPicker
from ui.widgets.task_options import TaskOptions

MAX_SEED = 999_999


class CompareView(DropTargetPage, Staged):
    runRequested = Signal()
    stopRequested = Signal()
    discoverRequested = Signal()  # the person wants more models
    addModelRequested = Signal()

    def __init__(self, make_history: Callable[[], ComparisonHistory], make_leaderboard: Callable[[], Leaderboard],
                 staged: bool = False) -> None:
        super().__init__()
        self.begin_building(self._stages(make_history, make_leaderboard), staged)

    def _stages(self, make_history: Callable[[], ComparisonHistory], make_leaderboard: Callable[[], Leaderboard]
                ) -> Iterator[None]:
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        self.picker = SegmentedPicker(KIND_WORDS)
        header, _ = page_header("Compare", self.picker)
        layout.addWidget(header)
        yield

        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.setObjectName("compareSplitter")  # the window keeps where it was left
        splitter.setChildrenCollapsible(False)
        self.tabs = QTabWidget()
        self.tabs.setObjectName("compareTabs")
        self.tabs.setDocumentMode(True)
        self.tabs.addTab(self._setup_tab(), "New comparison")
        yield
        self.tabs.addTab(self._history_tab(make_history, make_leaderboard), "History")
        splitter.addWidget(self.tabs)
        yield
        self.panel = ComparisonPanel()
        splitter.addWidget(self.panel)
        splitter.setStretchFactor(0, 0)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([360, 660])
        layout.addWidget(splitter, 1)
        self.run_button.clicked.connect(self.runRequested)
        self.stop_button.clicked.connect(self.stopRequested)
        self.discover_button.clicked.connect(self.discoverRequested)
        self.add_button.clicked.connect(self.addModelRequested)
        self.new_seed.clicked.connect(lambda: self.seed.setValue(random.randint(1, MAX_SEED)))

    def _setup_tab(self) -> QWidget:
        page = QWidget()
        page.setObjectName("taskSetup")
        column = QVBoxLayout(page)
        column.setContentsMargins(0, 0, 0, 0)
        column.setSpacing(0)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        form = QWidget()
        form.setObjectName("taskInputs")
        form.setMinimumWidth(320)
        box = QVBoxLayout(form)
        box.setContentsMargins(16, 12, 12, 6)
        box.setSpacing(8)

        heading = QHBoxLayout()
        heading.addWidget(section_title("Models", fixed_height=True))
        heading.addStretch(1)
        self.count_label = QLabel()
        self.count_label.setObjectName("hint")
        heading.addWidget(self.count_label)
        box.addLayout(heading)
        self.model_list = ModelChoice()
        box.addWidget(self.model_list)
        self.few_models = QFrame()
        self.few_models.setObjectName("compareHint")
        hint_column = QVBoxLayout(self.few_models)
        hint_column.setContentsMargins(10, 8, 10, 8)
        self.few_label = QLabel()
        self.few_label.setWordWrap(True)
        hint_column.addWidget(self.few_label)
        hint_row = QHBoxLayout()
        self.discover_button = QPushButton("Find models…")
        self.discover_button.setToolTip("Open Discover to download a model (Ctrl+3)")
        self.add_button = QPushButton("Add from disk…")
        self.add_button.setToolTip("Add a .gguf file that is already on this computer (Ctrl+I)")
        hint_row.addWidget(self.discover_button)
        hint_row.addWidget(self.add_button)
        hint_row.addStretch(1)
        hint_column.addLayout(hint_row)
        box.addWidget(self.few_models)

        self.input_title = section_title("Prompt", fixed_height=True)
        box.addWidget(self.input_title)
        self.prompt = TextInput()
        self.prompt.setObjectName("taskText")
        self.prompt.setPlaceholderText("The prompt every model answers, for example:\nExplain in three sentences "
                                       "why the sky is blue.")
        self.prompt.setTabChangesFocus(True)
        self.prompt.setMinimumHeight(90)
        box.addWidget(self.prompt, 1)
        self.form = DocumentForm()
        self.drop_zone, self.text_input = self.form.drop_zone, self.form.text_input
        self.form.setMinimumHeight(230)
        box.addWidget(self.form, 1)
        self.task_title = section_title("Task", fixed_height=True)
        box.addWidget(self.task_title)
        self.options = TaskOptions()
        box.addWidget(self.options)

        box.addWidget(section_title("Options", fixed_height=True))
        self.deterministic = QCheckBox("Deterministic (temperature 0)")
        self.deterministic.setChecked(True)
        self.deterministic.setToolTip("Each model gives its single most likely answer: the fairest way to compare. "
                                      "Off: the models sample, with the seed below for every model.")
        box.addWidget(self.deterministic)
        seed_row = QHBoxLayout()
        seed_row.addWidget(QLabel("Seed:"))
        self.seed = QSpinBox()
        self.seed.setRange(0, MAX_SEED)
        self.seed.setValue(random.randint(1, MAX_SEED))
        self.seed.setToolTip("The same seed for every model, so running it again gives the same answers")
        seed_row.addWidget(self.seed)
        self.new_seed = QPushButton("New seed")
        self.new_seed.setToolTip("Pick another random seed")
        seed_row.addWidget(self.new_seed)
        seed_row.addStretch(1)
        box.addLayout(seed_row)
        self.blind = QCheckBox("Blind: hide the names until I vote")
        self.blind.setToolTip("The columns are shuffled and called Model A, Model B…; the names appear after your "
                              "vote")
        box.addWidget(self.blind)
        self.together = QCheckBox("Run them at the same time when they fit")
        self.together.setToolTip("Otherwise each model runs alone, one after another, so every speed is the model's "
                                 "own. Together they share the processor: the comparison ends sooner, but each "
                                 "model writes slower than it would alone")
        box.addWidget(self.together)
        scroll.setWidget(form)
        column.addWidget(scroll, 1)

        run_panel = QWidget()
        run_column = QVBoxLayout(run_panel)
        run_column.setContentsMargins(16, 6, 12, 10)
        run_column.setSpacing(6)
        self.blocker = QLabel()
        self.blocker.setObjectName("hint")
        self.blocker.setWordWrap(True)
        run_column.addWidget(self.blocker)
        buttons = QHBoxLayout()
        self.run_button = QPushButton("Run")
        self.run_button.setObjectName("primary")
        self.run_button.setMinimumWidth(96)
        self.stop_button = QPushButton("Stop")
        self.stop_button.setToolTip("Stop every model; what they wrote so far is kept (Esc)")
        self.stop_button.hide()
        buttons.addWidget(self.run_button)
        buttons.addWidget(self.stop_button)
        self.progress_label = QLabel()
        self.progress_label.setObjectName("hint")
        self.progress_label.setWordWrap(True)
        buttons.addWidget(self.progress_label, 1)
        run_column.addLayout(buttons)
        column.addWidget(run_panel)
        return page

    def _history_tab(self, make_history: Callable[[], ComparisonHistory],
                     make_leaderboard: Callable[[], Leaderboard]) -> QWidget:
        page = QWidget()
        page.setObjectName("recentRuns")
        page.setAttribute(Qt.WidgetAttribute.WA_StyledBackground)
        column = QVBoxLayout(page)
        column.setContentsMargins(16, 12, 12, 10)
        column.setSpacing(0)
        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.setObjectName("compareHistorySplitter")  # the window keeps where it was left
        splitter.setChildrenCollapsible(False)
        self.history = make_history()
        splitter.addWidget(self.history)
        self.leaderboard = make_leaderboard()
        splitter.addWidget(self.leaderboard)
        splitter.setSizes([300, 260])
        column.addWidget(splitter)
        return page

    def show_phase(self, phase: RunPhase) -> None:
        """What can be changed while the page is idle, starting, running or stopping a comparison."""
        idle = phase is RunPhase.IDLE
        self.drops_open = idle
        self.run_button.setVisible(idle)
        self.stop_button.setVisible(not idle)
        self.stop_button.setEnabled(phase is not RunPhase.STOPPING)
        self.progress_label.setVisible(not idle)
        self.picker.setEnabled(idle)
        self.model_list.setEnabled(idle)
        self.prompt.setReadOnly(not idle)
        self.form.set_locked(not idle)
        self.options.set_enabled(idle)
        for widget in (self.deterministic, self.seed, self.new_seed, self.blind, self.together):
            widget.setEnabled(idle)
        self.panel.set_run_again_allowed(idle)
        self.history.update_buttons()
        if idle:
            self.progress_label.setText("")

    def show_kind(self, kind: str) -> None:
        """A chat prompt, or a document with the task's options."""
        self.picker.choose(kind)
        chat = kind == "chat"
        self.prompt.setVisible(chat)
        self.form.setVisible(not chat)
        self.task_title.setVisible(not chat)
        self.options.setVisible(not chat)
        self.input_title.setText("Prompt" if chat else "Texts to label" if kind == "classify" else "Document")
        if not chat:
            self.options.set_task(kind)
            self.form.set_task(kind)
