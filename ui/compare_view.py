"""The Compare page: two to four installed models get the same prompt or document, and their answers appear
side by side with their speed and memory; the person votes, and the votes add up in a leaderboard.

The page collects the form on the GUI thread, then builds the comparison's input and starts it through a
``BackgroundOp`` (the comparer reads every model's header and writes history); the ``Comparer`` runs each
model in its own engine worker, and its events come back through the ``CompareBridge``. Votes, the list of
past comparisons, the leaderboard and reports are read and written through ``BackgroundOp`` too. Nothing
here waits.
"""

from __future__ import annotations

import logging
import random
import re
from dataclasses import dataclass, replace
from pathlib import Path

from PySide6.QtCore import QStandardPaths, Qt, Signal
from PySide6.QtGui import QDragEnterEvent, QDragLeaveEvent, QDropEvent
from PySide6.QtWidgets import (
    QCheckBox,
    QFileDialog,
    QFrame,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from app.compare.figures import verdict_text
from app.compare.report import REPORT_SUFFIXES, save_report
from app.compare.runner import Comparer
from app.compare.spec import (
    KIND_WORDS,
    KINDS,
    MAX_MODELS,
    MIN_MODELS,
    CompareInput,
    CompareRequest,
    Contender,
    Sampling,
    input_of,
    sampling_of,
)
from app.errors import HearthError
from app.forecast import ram_budget
from app.history import ComparisonRecord, EntryRecord, HistoryStore, ModelRecord
from app.model_check import Assessment
from app.settings import Settings
from app.tasks import inputs
from app.tasks.input_form import (
    TYPED_NAME,
    FormInput,
    build,
    input_blocker,
    options_blocker,
    plural,
    reading_blocker,
)
from app.tasks.spec import Classify, Passage, TaskInput, TaskKind
from app.units import format_bytes
from ui.compare_history import ComparisonHistory, Leaderboard
from ui.compare_result import ComparisonPanel, LiveState, schedule_words
from ui.qt.background import BackgroundOp
from ui.qt.bridge import CompareBridge
from ui.qt.qt_models import LibraryModel, verdict_label
from ui.widgets.document_form import DocumentForm, TextInput, local_files
from ui.widgets.labels import section_title
from ui.widgets.segmented_picker import SegmentedPicker
from ui.widgets.task_options import TaskOptions

log = logging.getLogger(__name__)

REPORT_FILTERS = {"Web page (*.html)": ".html", "Markdown (*.md)": ".md"}
MAX_SEED = 999_999
EMPTY_TEXT = ("Choose two to four models and give them the same prompt or document.\n\nTheir answers appear here "
              "side by side, with how fast each was and how much memory it took. Everything runs on this computer.")
ModelId = int


@dataclass(frozen=True)
class _Saved:
    """A saved comparison's document, back in the form by "Run again" (the file itself may be gone)."""

    name: str
    input_kind: str
    text: str
    passages: tuple[Passage, ...]
    title: str
    kind: str  # the kind it was compared for: its passages are texts to label when "classify"


@dataclass(frozen=True)
class _Ask:
    """The form as it was when Run was pressed, for ``build_request`` to work on away from the widgets."""

    kind: str
    task_kind: TaskKind | None
    prompt: str
    given: FormInput | None  # the document form, when what it holds is the input (not a saved comparison's)
    saved: _Saved | None
    contenders: tuple[Contender, ...]
    sampling: Sampling
    blind: bool
    one_at_a_time: bool
    context_length: int
    system_prompt: str


def compare_input(ask: _Ask) -> CompareInput:
    """The input every model gets. Raises HearthError when the text cannot be used (too long, empty)."""
    if ask.kind == "chat" or ask.task_kind is None:
        return CompareInput.prompt(ask.prompt.strip())
    kind = ask.task_kind
    if ask.saved is not None:
        saved = ask.saved
        passages = saved.passages
        if isinstance(kind, Classify) and saved.kind != "classify":
            passages = tuple(Passage(row) for row in inputs.rows_from_lines(saved.text))
        return CompareInput(saved.name, saved.input_kind, saved.text, TaskInput(kind, passages, title=saved.title))
    assert ask.given is not None
    built = build(ask.given)
    if isinstance(built, str):
        raise HearthError(built)
    source = built.source
    return CompareInput(name=source.name, input_kind=source.kind, text=source.text, task=built.task)


def start_comparison(comparer: Comparer, ask: _Ask) -> tuple[ComparisonRecord, int]:
    """Build the request and start it (off the GUI thread); returns the record and the memory free now."""
    request = CompareRequest(ask.contenders, compare_input(ask), ask.sampling, blind=ask.blind,
                             one_at_a_time=ask.one_at_a_time, context_length=ask.context_length,
                             system_prompt=ask.system_prompt)
    free, _ = ram_budget(comparer.machine())
    return comparer.start(request), free


class CompareView(QWidget):
    discoverRequested = Signal()  # the person wants more models
    addModelRequested = Signal()

    def __init__(self, *, store: HistoryStore, comparer: Comparer, settings: Settings, library_model: LibraryModel,
                 bridge: CompareBridge) -> None:
        super().__init__()
        self.store, self.comparer, self.settings, self.library_model = store, comparer, settings, library_model
        self.kind = KINDS[0]
        self._phase = "idle"  # idle, starting (reading headers, saving), running, stopping
        self._stop_asked = False
        self._live: ComparisonRecord | None = None  # the comparison running now, as far as it has got
        self._live_state = LiveState()
        self._groups: list[list[int]] = []
        self._shown: ComparisonRecord | None = None  # a finished comparison on show
        self._showing_live = False
        self._chosen: list[ModelId] = []  # in the order they were ticked: the columns' order
        self._saved: _Saved | None = None
        # Temperature, top-p and answer length: the person's defaults, or a re-run comparison's (seed and
        # "deterministic" are on the form).
        self._sampling: Sampling | None = None
        self._context_length: int | None = None
        self._system_prompt = ""
        self._closed = False
        self.last_folder = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.DocumentsLocation) \
            or str(Path.home())
        self.setAcceptDrops(True)
        self._build()
        self._connect(bridge)
        self.set_kind(self.kind)
        self._models_changed()
        self.history.refresh()
        self.leaderboard.refresh()
        self.panel.show_empty(EMPTY_TEXT)

    @property
    def view(self) -> CompareView:
        return self

    def _base_sampling(self) -> Sampling:
        if self._sampling is not None:
            return self._sampling
        g = self.settings.generation
        return Sampling(temperature=g.temperature, top_p=g.top_p, max_tokens=g.max_tokens)

    # --- layout ---

    def _build(self) -> None:
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        header = QWidget()
        header.setObjectName("taskHeader")
        row = QHBoxLayout(header)
        row.setContentsMargins(20, 10, 16, 10)
        title = QLabel("Compare")
        title.setObjectName("pageTitle")
        row.addWidget(title)
        row.addSpacing(12)
        self.picker = SegmentedPicker(KIND_WORDS)
        row.addWidget(self.picker)
        row.addStretch(1)
        layout.addWidget(header)

        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.setChildrenCollapsible(False)
        self.tabs = QTabWidget()
        self.tabs.setObjectName("compareTabs")
        self.tabs.setDocumentMode(True)
        self.tabs.addTab(self._setup_tab(), "New comparison")
        self.tabs.addTab(self._history_tab(), "History")
        splitter.addWidget(self.tabs)
        self.panel = ComparisonPanel()
        splitter.addWidget(self.panel)
        splitter.setStretchFactor(0, 0)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([360, 660])
        layout.addWidget(splitter, 1)

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
        self.model_list = QListWidget()
        self.model_list.setObjectName("modelChoice")
        self.model_list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.model_list.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.model_list.setToolTip(f"Tick {MIN_MODELS} to {MAX_MODELS} models; the columns follow the order you "
                                   "tick them in")
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
        self.inputs = DocumentForm()
        self.drop_zone, self.text_input = self.inputs.drop_zone, self.inputs.text_input
        self.inputs.setMinimumHeight(230)
        box.addWidget(self.inputs, 1)
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

    def _history_tab(self) -> QWidget:
        page = QWidget()
        page.setObjectName("recentRuns")
        page.setAttribute(Qt.WidgetAttribute.WA_StyledBackground)
        column = QVBoxLayout(page)
        column.setContentsMargins(16, 12, 12, 10)
        column.setSpacing(0)
        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.setChildrenCollapsible(False)
        self.history = ComparisonHistory(self.store, self._is_live)
        splitter.addWidget(self.history)
        self.leaderboard = Leaderboard(self.store)
        splitter.addWidget(self.leaderboard)
        splitter.setSizes([300, 260])
        column.addWidget(splitter)
        return page

    def _connect(self, bridge: CompareBridge) -> None:
        self.picker.chosen.connect(self.set_kind)
        self.model_list.itemChanged.connect(self._item_changed)
        self.discover_button.clicked.connect(self.discoverRequested)
        self.add_button.clicked.connect(self.addModelRequested)
        self.prompt.textChanged.connect(self._update_run_button)
        self.prompt.fileDropped.connect(self.open_file)  # a document dropped on the prompt is to be read
        self.inputs.changed.connect(self._input_changed)
        self.inputs.fileDropped.connect(self.open_file)
        self.drop_zone.openRequested.connect(self.choose_file)
        self.drop_zone.removeRequested.connect(self._forget_saved)
        self.options.changed.connect(self._update_run_button)
        self.new_seed.clicked.connect(lambda: self.seed.setValue(random.randint(1, MAX_SEED)))
        self.run_button.clicked.connect(self.run)
        self.stop_button.clicked.connect(self.stop)
        self.panel.voteRequested.connect(self.vote)
        self.panel.saveRequested.connect(self.save_report_as)
        self.panel.runAgainRequested.connect(self.run_again)
        self.history.chosen.connect(self._comparison_chosen)
        self.history.deleted.connect(self._comparison_deleted)
        self.history.restored.connect(self._comparison_restored)
        self.history.failed.connect(self._say)
        self.leaderboard.failed.connect(self._say)
        self.library_model.modelReset.connect(self._models_changed)
        self.library_model.dataChanged.connect(lambda *_: self._describe_models())  # forecasts arrived
        bridge.compareStarted.connect(self._started)
        bridge.entryChanged.connect(self._entry_changed)
        bridge.entryText.connect(self._entry_text)
        bridge.entryEnded.connect(self._entry_ended)
        bridge.compareEnded.connect(self._ended)

    # --- kind, models, input ---

    def set_kind(self, kind: str) -> None:
        if self._phase != "idle":
            self.picker.choose(self.kind)
            return
        self.kind = kind
        self.picker.choose(kind)
        chat = kind == "chat"
        self.prompt.setVisible(chat)
        self.inputs.setVisible(not chat)
        self.task_title.setVisible(not chat)
        self.options.setVisible(not chat)
        self.input_title.setText("Prompt" if chat else "Texts to label" if kind == "classify" else "Document")
        if not chat:
            self.options.set_task(kind)
            self.inputs.set_task(kind)
        self._update_run_button()

    def _models_changed(self) -> None:
        """The library changed: list it again, keeping the ticks of the models still there."""
        models = self.library_model.items()
        ids = {model.id for model in models}
        self._chosen = [model_id for model_id in self._chosen if model_id in ids]
        self.model_list.blockSignals(True)
        self.model_list.clear()
        for model in models:
            item = QListWidgetItem()
            item.setData(Qt.ItemDataRole.UserRole, model)
            item.setCheckState(Qt.CheckState.Checked if model.id in self._chosen else Qt.CheckState.Unchecked)
            self.model_list.addItem(item)
        self.model_list.blockSignals(False)
        self._describe_models()
        few = len(models) < MIN_MODELS
        self.few_models.setVisible(few)
        self.few_label.setText(
            f"Comparing needs at least {MIN_MODELS} models; your library has {plural(len(models), 'model')}. "
            "Download another (two quantizations of one model count as two), or add one from disk.")
        rows = max(min(len(models), 5), 1)
        self.model_list.setFixedHeight(rows * self._row_height() + 6)
        self.model_list.setVisible(bool(models))
        self._update_run_button()

    def _row_height(self) -> int:
        return self.model_list.fontMetrics().lineSpacing() * 2 + 12

    def _describe_models(self) -> None:
        """Each model's size and what the forecast says of it on this computer."""
        full = len(self._chosen) >= MAX_MODELS
        self.model_list.blockSignals(True)
        for row in range(self.model_list.count()):
            item = self.model_list.item(row)
            model = item.data(Qt.ItemDataRole.UserRole)
            if not isinstance(model, ModelRecord):
                continue
            assessment = self.library_model.assessment(model.id)
            details = [format_bytes(model.file_size)]
            if model.quantization:
                details.append(model.quantization)
            tip = model.path
            if isinstance(assessment, Assessment):
                result = assessment.forecast
                details.append(f"{verdict_label(result.verdict)} in {format_bytes(result.memory.ram_bytes)}")
                tip += f"\n{result.verdict.value}. {result.reason}"
            elif isinstance(assessment, str):
                details.append("Cannot read")
                tip += f"\n{assessment}"
            item.setText(f"{model.name}\n{' · '.join(details)}")
            item.setToolTip(tip)
            ticked = model.id in self._chosen
            flags = Qt.ItemFlag.ItemIsUserCheckable | Qt.ItemFlag.ItemIsSelectable
            if ticked or not full:
                flags |= Qt.ItemFlag.ItemIsEnabled
            else:
                item.setToolTip(f"At most {MAX_MODELS} models at a time: untick one first.\n{tip}")
            item.setFlags(flags)
        self.model_list.blockSignals(False)
        count = len(self._chosen)
        self.count_label.setText(f"{count} of {MIN_MODELS}–{MAX_MODELS} chosen" if count else
                                 f"Tick {MIN_MODELS} to {MAX_MODELS}")

    def _item_changed(self, item: QListWidgetItem) -> None:
        model = item.data(Qt.ItemDataRole.UserRole)
        if not isinstance(model, ModelRecord):
            return
        ticked = item.checkState() == Qt.CheckState.Checked
        if ticked and model.id not in self._chosen:
            self._chosen.append(model.id)
        elif not ticked and model.id in self._chosen:
            self._chosen.remove(model.id)
        self._describe_models()
        self._update_run_button()

    def chosen_models(self) -> list[ModelRecord]:
        by_id = {model.id: model for model in self.library_model.items()}
        return [by_id[model_id] for model_id in self._chosen if model_id in by_id]

    def set_chosen(self, model_ids: list[ModelId]) -> None:
        """Tick these models (in this order), and only these."""
        present = {model.id for model in self.library_model.items()}
        self._chosen = [model_id for model_id in model_ids if model_id in present][:MAX_MODELS]
        self.model_list.blockSignals(True)
        for row in range(self.model_list.count()):
            item = self.model_list.item(row)
            model = item.data(Qt.ItemDataRole.UserRole)
            ticked = isinstance(model, ModelRecord) and model.id in self._chosen
            item.setCheckState(Qt.CheckState.Checked if ticked else Qt.CheckState.Unchecked)
        self.model_list.blockSignals(False)
        self._describe_models()
        self._update_run_button()

    def choose_file(self) -> None:
        if self._phase == "idle":
            self.inputs.choose_file(tables=self.kind == "classify")

    def open_file(self, path: Path | str) -> None:
        if self._phase != "idle":
            self.inputs.show_error("Wait for the comparison to finish (or stop it) before opening another file.")
            return
        if self.kind == "chat":
            self.set_kind("summarize")  # a document dropped on the page: it is to be read, not chatted with
        self.inputs.open_file(Path(path))

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if local_files(event.mimeData()) and self._phase == "idle":
            event.acceptProposedAction()
            self.drop_zone.set_dragging(True)

    def dragLeaveEvent(self, event: QDragLeaveEvent) -> None:
        self.drop_zone.set_dragging(False)

    def dropEvent(self, event: QDropEvent) -> None:
        self.drop_zone.set_dragging(False)
        files = local_files(event.mimeData())
        if files:
            event.acceptProposedAction()
            self.open_file(files[0])

    def _input_changed(self) -> None:
        if self._saved is not None and (self.inputs.file is not None or self.inputs.reading):
            self._saved = None  # another file replaces the saved comparison's document
        self._update_run_button()

    def _forget_saved(self) -> None:
        if self._saved is not None:
            self._saved = None
            self._update_run_button()

    def _show_saved(self, saved: _Saved) -> None:
        """A saved comparison's document in the drop zone, with its text below, as an opened file shows."""
        things = plural(len(saved.passages), "text") if saved.kind == "classify" else \
            plural(len(saved.passages), "paragraph")
        self.inputs.show_saved(saved.name, f"From the saved comparison · {things}", saved.text)
        self._saved = saved
        self._update_run_button()

    # --- running ---

    def run_blocker(self) -> str:
        """Why Run cannot be pressed now ("" when it can)."""
        models = self.library_model.items()
        if len(models) < MIN_MODELS:
            return f"Add at least {MIN_MODELS} models to compare them."
        if not MIN_MODELS <= len(self.chosen_models()) <= MAX_MODELS:
            return f"Tick {MIN_MODELS} to {MAX_MODELS} models to compare."
        if self.kind == "chat":
            return "" if self.prompt.toPlainText().strip() else "Write a prompt for the models to answer."
        kind = self.options.kind(self.kind)
        why = options_blocker(kind)
        if why or self._saved is not None:
            return why
        given = self.inputs.form_input(self.kind, kind)
        return reading_blocker(given) or input_blocker(given)

    def _update_run_button(self) -> None:
        why = self.run_blocker()
        idle = self._phase == "idle"
        self.run_button.setEnabled(not why and idle)
        self.run_button.setToolTip(why or "Run every chosen model on the same input (Ctrl+Enter)")
        self.blocker.setText(why if idle else "")
        self.blocker.setVisible(bool(why) and idle)

    def _ask(self) -> _Ask:
        task_kind = None if self.kind == "chat" else self.options.kind(self.kind)
        given = self.inputs.form_input(self.kind, task_kind) if task_kind is not None and self._saved is None \
            else None
        contenders = tuple(Contender(m.name, Path(m.path), m.file_size) for m in self.chosen_models())
        sampling = replace(self._base_sampling(), seed=self.seed.value(),
                           deterministic=self.deterministic.isChecked())
        context = self._context_length or self.settings.generation.context_length
        return _Ask(self.kind, task_kind, self.prompt.toPlainText(), given, self._saved, contenders, sampling,
                    self.blind.isChecked(), not self.together.isChecked(), context,
                    self._system_prompt or self.settings.generation.system_prompt)

    def run(self) -> None:
        if self._phase != "idle" or self._closed:
            return
        why = self.run_blocker()
        if why:
            self._update_run_button()
            self._say(why, kind="info")
            return
        ask = self._ask()
        self._stop_asked = False
        self._live, self._live_state, self._groups = None, LiveState(), []
        self._set_phase("starting")
        self._progress("Reading the models and checking the memory…")

        def started(answer: tuple[ComparisonRecord, int]) -> None:
            record, free = answer
            live = self._live
            if live is not None and live.id == record.id and live.status == "running":
                self._live_state.schedule = schedule_words(live, self._groups, free)
                if self._showing_live:
                    self.panel.set_schedule(self._live_state.schedule)

        def failed(error: BaseException) -> None:
            if not isinstance(error, HearthError):
                log.error("a comparison could not start", exc_info=error)
            self._set_phase("idle")
            self._say(str(error) if isinstance(error, HearthError) else
                      "The comparison could not start because of an unexpected problem. Details are in the log file.")

        BackgroundOp(self, start_comparison, self.comparer, ask).success(started).failure(failed).run()

    def stop(self) -> None:
        """Esc: stop every model, keeping what each wrote so far."""
        if self._phase == "starting":
            self._stop_asked = True
            self._set_phase("stopping")
            self._progress("Stopping…")
        elif self._phase == "running":
            self.comparer.cancel()
            self._set_phase("stopping")
            self._progress("Stopping: closing the models…")

    def _set_phase(self, phase: str) -> None:
        self._phase = phase
        idle = phase == "idle"
        self.run_button.setVisible(idle)
        self.stop_button.setVisible(not idle)
        self.stop_button.setEnabled(phase != "stopping")
        self.progress_label.setVisible(not idle)
        self.picker.setEnabled(idle)
        self.model_list.setEnabled(idle)
        self.prompt.setReadOnly(not idle)
        self.inputs.set_locked(not idle)
        self.options.set_enabled(idle)
        for widget in (self.deterministic, self.seed, self.new_seed, self.blind, self.together):
            widget.setEnabled(idle)
        self.panel.set_run_again_allowed(idle)
        self.history.update_buttons()
        if idle:
            self._progress("")
        self._update_run_button()

    def _progress(self, text: str) -> None:
        self.progress_label.setText(text)

    def _is_live(self, comparison_id: int) -> bool:
        return self._live is not None and self._live.id == comparison_id

    def is_running(self) -> bool:
        return self._phase != "idle"

    def _started(self, record: ComparisonRecord, groups: list[list[int]]) -> None:
        self._live, self._groups, self._live_state = record, groups, LiveState()
        if self._stop_asked:
            self.comparer.cancel()
        elif self._phase == "starting":
            self._set_phase("running")
            self._progress("Running…")
        self._showing_live, self._shown = True, None
        self.history.forget_choice()
        self.panel.show_record(record, self._live_state)
        self.history.refresh()

    def _entry_changed(self, comparison_id: int, position: int, _status: str, detail: str) -> None:
        if not self._is_live(comparison_id):
            return
        self._live_state.details[position] = detail
        self._live_state.texts[position] = ""
        if self._showing_live:
            self.panel.entry_changed(position, detail)
            self.panel.entry_text(position, "")

    def _entry_text(self, comparison_id: int, position: int, text: str) -> None:
        if not self._is_live(comparison_id):
            return
        self._live_state.texts[position] = text
        if self._showing_live:
            self.panel.entry_text(position, text)

    def _entry_ended(self, comparison_id: int, entry: EntryRecord) -> None:
        live = self._live
        if live is None or live.id != comparison_id:
            return
        self._live = live = replace(live, entries=tuple(entry if e.position == entry.position else e
                                                        for e in live.entries))
        if self._showing_live:
            self.panel.update_entry(live, entry)

    def _ended(self, record: ComparisonRecord) -> None:
        live = self._live
        if live is None or live.id != record.id:
            self.history.refresh()
            return
        showing = self._showing_live
        self._live, self._showing_live = None, False
        self._set_phase("idle")
        if showing:
            self.show_comparison(record)
        self.history.refresh(select=record.id if showing else None)
        words = {"done": "The comparison is done.", "cancelled": "The comparison was stopped.",
                 "failed": "The comparison failed."}
        self._say(words.get(record.status, "The comparison ended."), kind="info")

    # --- showing a comparison ---

    def show_comparison(self, record: ComparisonRecord) -> None:
        """A finished comparison (the one just run, or one chosen in the list)."""
        self._shown, self._showing_live = record, False
        self.panel.show_record(record)
        self.panel.set_run_again_allowed(self._phase == "idle")

    def shown(self) -> ComparisonRecord | None:
        return self._shown

    def _comparison_chosen(self, record: ComparisonRecord) -> None:
        live = self._live
        if live is not None and live.id == record.id:
            self._showing_live, self._shown = True, None
            self.panel.show_record(live, self._live_state)
            return
        self.show_comparison(record)

    def _comparison_deleted(self, comparison_id: int) -> None:
        if self._shown is not None and self._shown.id == comparison_id:
            self._shown = None
            self.panel.show_empty(EMPTY_TEXT)
        self.leaderboard.refresh()

    def _comparison_restored(self, record: ComparisonRecord) -> None:
        self.show_comparison(record)
        self.leaderboard.refresh()

    # --- vote, report, run again ---

    def vote(self, verdict: str, winner_position: int | None) -> None:
        record = self._shown
        if record is None:
            return
        comparison_id = record.id

        def voted(saved: ComparisonRecord) -> None:
            if self._shown is not None and self._shown.id == comparison_id:
                self.show_comparison(saved)
            self.history.refresh()
            self.leaderboard.refresh(saved.kind)
            self._say(f"Vote saved: {verdict_text(saved)}.", kind="info")

        def failed(error: BaseException) -> None:
            if self._shown is not None and self._shown.id == comparison_id:
                self.panel.show_record(self._shown)  # the buttons as the saved vote has them
            log.error("a vote could not be saved", exc_info=error)
            self._say("Hearth could not save the vote. Details are in the log file.")

        BackgroundOp(self, self.store.vote, comparison_id, verdict, winner_position).success(voted) \
            .failure(failed).run()

    def save_report_as(self) -> None:
        record = self._shown
        if record is None:
            return
        name = re.sub(r'[\\/:*?"<>|\s]+', " ", record.title).strip()[:60] or "comparison"
        path, chosen = QFileDialog.getSaveFileName(self, "Save the comparison report",
                                                   str(Path(self.last_folder) / f"Comparison – {name}"),
                                                   ";;".join(REPORT_FILTERS))
        if not path:
            return
        target = Path(path)
        if target.suffix.lower() not in REPORT_SUFFIXES:
            target = target.with_name(target.name + REPORT_FILTERS.get(chosen, ".html"))
        self.last_folder = str(target.parent)
        self.save_report(target)

    def save_report(self, path: Path) -> None:
        """Write the comparison on show, with its chart, to ``path`` (.html or .md), off the GUI thread."""
        record = self._shown
        if record is None:
            return
        chart = self.panel.chart.chart_png() if self.panel.chart.rows else b""

        def saved(written: Path) -> None:
            self._say(f"Saved “{written.name}”.", kind="info")

        def failed(error: BaseException) -> None:
            if not isinstance(error, HearthError):
                log.error("saving the report %s failed", path, exc_info=error)
            self._say(str(error) if isinstance(error, HearthError) else
                      f"Hearth could not save “{path.name}”. Details are in the log file.")

        BackgroundOp(self, save_report, record, path, chart or None).success(saved).failure(failed).run()

    def run_again(self) -> None:
        """The shown comparison's input, models and options back in the form, ready to run (or change)."""
        record = self._shown
        if record is None or self._phase != "idle":
            return
        try:
            saved_input = input_of(record.kind, record.input_name, record.input_kind, record.input_text,
                                   record.settings)
            sampling = sampling_of(record.settings)
        except (KeyError, TypeError, ValueError) as error:
            log.error("comparison %s cannot be rebuilt", record.id, exc_info=error)
            self._say("This comparison's input could not be read back, so it cannot be run again.")
            return
        self._sampling = sampling
        self._context_length = int(record.settings.get("context_length") or 0) or None
        self._system_prompt = str(record.settings.get("system_prompt") or "")
        self.set_kind(record.kind)
        missing = self._choose_models_of(record)
        self._fill_input(record, saved_input)
        self.deterministic.setChecked(sampling.deterministic)
        self.seed.setValue(min(max(sampling.seed, 0), MAX_SEED))
        self.blind.setChecked(record.blind)
        self.together.setChecked(not record.settings.get("one_at_a_time", True))
        self.tabs.setCurrentIndex(0)
        message = "The form holds that comparison again: change anything you like, then press Run."
        if missing:
            message += (f" Not in your library any more: {', '.join(missing)}." if not record.names_hidden else
                        f" {plural(len(missing), 'model is', 'models are')} no longer in your library.")
        self._say(message, kind="info")

    def _choose_models_of(self, record: ComparisonRecord) -> list[str]:
        """Tick the comparison's models (by file, else by name); returns the names of those not found."""
        models = self.library_model.items()
        ids: list[int] = []
        missing: list[str] = []
        for entry in sorted(record.entries, key=lambda e: e.position):
            match = next((m for m in models if _same_file(m.path, entry.model_path)), None) or \
                next((m for m in models if m.name == entry.model_name), None)
            if match is None or match.id in ids:
                missing.append(entry.model_name)
            else:
                ids.append(match.id)
        self.set_chosen(ids)
        return missing

    def _fill_input(self, record: ComparisonRecord, saved_input: CompareInput) -> None:
        if record.kind == "chat" or saved_input.task is None:
            self.prompt.setPlainText(record.input_text)
            return
        task = saved_input.task
        self.options.set_kind(task.kind)
        if record.input_kind == "pasted" or (record.input_kind == "lines" and record.input_name == TYPED_NAME):
            self.inputs.remove_file()
            self._saved = None
            self.text_input.setPlainText(record.input_text)
            return
        self._show_saved(_Saved(record.input_name, record.input_kind, record.input_text, task.passages, task.title,
                                record.kind))

    # --- the window ---

    def shutdown(self) -> None:
        """The window is closing."""
        self._closed = True
        self.history.stop_timers()

    def _say(self, text: str, kind: str = "error") -> None:
        window = self.window()
        bar = getattr(window, "statusBar", None)
        if kind == "info" and bar is not None:
            bar().showMessage(text, 8000)
        else:
            self.panel.set_notice(text, kind)


def _same_file(a: str, b: str) -> bool:
    try:
        return Path(a).resolve() == Path(b).resolve()
    except OSError:
        return a == b

