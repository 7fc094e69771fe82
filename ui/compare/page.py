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
import re
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

from PySide6.QtCore import QObject, QStandardPaths, Signal
from PySide6.QtWidgets import QFileDialog

from app.compare.figures import verdict_text
from app.compare.report import REPORT_SUFFIXES, save_report
from app.compare.runner import Comparer
from app.compare.spec import (
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
from app.forecast.estimate import ram_budget
from app.history import ComparisonRecord, EntryRecord, HistoryStore, ModelRecord
from app.outcomes import RunStatus
from app.remote.address import is_remote, same_model
from app.settings import Settings
from app.tasks import inputs
from app.tasks.input_form import (
    TYPED_NAME,
    FormInput,
    build,
    input_blocker,
    options_blocker,
    reading_blocker,
)
from app.tasks.spec import Classify, Passage, TaskInput, TaskKind
from app.words import plural
from ui.compare.compare_view import MAX_SEED, CompareView
from ui.compare.history import ComparisonHistory, Leaderboard
from ui.compare.result import LiveState, schedule_words
from ui.qt.background import BackgroundOp
from ui.qt.bridge import CompareBridge
from ui.qt.qt_models import LibraryModel
from ui.qt.staged import Staged
from ui.widgets.run_phase import RunPhase

log = logging.getLogger(__name__)

REPORT_FILTERS = {"Web page (*.html)": ".html", "Markdown (*.md)": ".md"}
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


class ComparePage(QObject, Staged):
    discoverRequested = Signal()  # the person wants more models
    addModelRequested = Signal()
    statusMessage = Signal(str, int)  # text, milliseconds: for the window's status bar

    def __init__(self, *, store: HistoryStore, comparer: Comparer, settings: Settings, library_model: LibraryModel,
                 bridge: CompareBridge, parent: QObject | None = None, staged: bool = False) -> None:
        super().__init__(parent)
        self.store, self.comparer, self.settings, self.library_model = store, comparer, settings, library_model
        self.kind = KINDS[0]
        self._phase = RunPhase.IDLE
        self._stop_asked = False
        self._live: ComparisonRecord | None = None  # the comparison running now, as far as it has got
        self._live_state = LiveState()
        self._groups: list[list[int]] = []
        self._shown: ComparisonRecord | None = None  # a finished comparison on show
        self._showing_live = False
        self._saved: _Saved | None = None
        # Temperature, top-p and answer length: the person's defaults, or a re-run comparison's (seed and
        # "deterministic" are on the form).
        self._sampling: Sampling | None = None
        self._context_length: int | None = None
        self._system_prompt = ""
        self._closed = False
        self.last_folder = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.DocumentsLocation) \
            or str(Path.home())
        self.view = CompareView(lambda: ComparisonHistory(store, self._is_live), lambda: Leaderboard(store),
                                staged=True)
        self.begin_building(self._stages(bridge), staged)

    def _stages(self, bridge: CompareBridge) -> Iterator[None]:
        while not self.view.build_step():
            yield
        self.history, self.leaderboard, self.panel, self.form = (
            self.view.history, self.view.leaderboard, self.view.panel, self.view.form)
        self._connect(bridge)
        self.set_kind(self.kind)
        self._models_changed()
        self.history.refresh()
        self.leaderboard.refresh()
        self.panel.show_empty(EMPTY_TEXT)

    def _base_sampling(self) -> Sampling:
        if self._sampling is not None:
            return self._sampling
        g = self.settings.generation
        return Sampling(temperature=g.temperature, top_p=g.top_p, max_tokens=g.max_tokens)

    def _connect(self, bridge: CompareBridge) -> None:
        view = self.view
        view.picker.chosen.connect(self.set_kind)
        view.model_list.ticked.connect(self._ticked)
        view.discoverRequested.connect(self.discoverRequested)
        view.addModelRequested.connect(self.addModelRequested)
        view.prompt.textChanged.connect(self._update_run_button)
        view.prompt.fileDropped.connect(self.open_file)  # a document dropped on the prompt is to be read
        self.form.changed.connect(self._input_changed)
        self.form.fileDropped.connect(self.open_file)
        view.fileDropped.connect(self.open_file)
        view.drop_zone.openRequested.connect(self.choose_file)
        view.drop_zone.removeRequested.connect(self._forget_saved)
        view.options.changed.connect(self._update_run_button)
        view.runRequested.connect(self.run)
        view.stopRequested.connect(self.stop)
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
        if self._phase is not RunPhase.IDLE:
            self.view.picker.choose(self.kind)
            return
        self.kind = kind
        self.view.show_kind(kind)
        self._update_run_button()

    def _models_changed(self) -> None:
        """The library changed: list it again, keeping the ticks of the models still there."""
        models = self.library_model.items()
        self.view.model_list.set_models(models)
        self.panel.base_model_paths = frozenset(m.path for m in models if m.is_base_model)
        self._describe_models()
        few = len(models) < MIN_MODELS
        self.view.few_models.setVisible(few)
        self.view.few_label.setText(
            f"Comparing needs at least {MIN_MODELS} models; your library has {plural(len(models), 'model')}. "
            "Download another (two quantizations of one model count as two), or add one from disk.")
        self._update_run_button()

    def _describe_models(self) -> None:
        """Each model's size and what the forecast says of it on this computer."""
        self.view.model_list.describe(self.library_model.assessment)
        count = len(self.view.model_list.chosen)
        self.view.count_label.setText(f"{count} of {MIN_MODELS}–{MAX_MODELS} chosen" if count else
                                      f"Tick {MIN_MODELS} to {MAX_MODELS}")

    def _ticked(self) -> None:
        self._describe_models()
        self._update_run_button()

    def chosen_models(self) -> list[ModelRecord]:
        by_id = {model.id: model for model in self.library_model.items()}
        return [by_id[model_id] for model_id in self.view.model_list.chosen if model_id in by_id]

    def set_chosen(self, model_ids: list[ModelId]) -> None:
        """Tick these models (in this order), and only these."""
        self.view.model_list.set_chosen(model_ids)
        self._describe_models()
        self._update_run_button()

    def choose_file(self) -> None:
        if self._phase is RunPhase.IDLE:
            self.form.choose_file(tables=self.kind == "classify")

    def open_file(self, path: Path | str) -> None:
        if self._phase is not RunPhase.IDLE:
            self.form.show_error("Wait for the comparison to finish (or stop it) before opening another file.")
            return
        if self.kind == "chat":
            self.set_kind("summarize")  # a document dropped on the page: it is to be read, not chatted with
        self.form.open_file(Path(path))

    def _input_changed(self) -> None:
        if self._saved is not None and (self.form.file is not None or self.form.reading):
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
        self.form.show_saved(saved.name, f"From the saved comparison · {things}", saved.text)
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
            return "" if self.view.prompt.toPlainText().strip() else "Write a prompt for the models to answer."
        kind = self.view.options.kind(self.kind)
        why = options_blocker(kind)
        if why or self._saved is not None:
            return why
        given = self.form.form_input(self.kind, kind)
        return reading_blocker(given) or input_blocker(given)

    def _update_run_button(self) -> None:
        why, view = self.run_blocker(), self.view
        idle = self._phase is RunPhase.IDLE
        view.run_button.setEnabled(not why and idle)
        view.run_button.setToolTip(why or "Run every chosen model on the same input (Ctrl+Enter)")
        view.blocker.setText(why if idle else "")
        view.blocker.setVisible(bool(why) and idle)

    def _ask(self) -> _Ask:
        task_kind = None if self.kind == "chat" else self.view.options.kind(self.kind)
        given = self.form.form_input(self.kind, task_kind) if task_kind is not None and self._saved is None \
            else None
        contenders = tuple(Contender(m.name, m.path if is_remote(m.path) else Path(m.path), m.file_size)
                           for m in self.chosen_models())
        sampling = replace(self._base_sampling(), seed=self.view.seed.value(),
                           deterministic=self.view.deterministic.isChecked())
        context = self._context_length or self.settings.generation.context_length
        return _Ask(self.kind, task_kind, self.view.prompt.toPlainText(), given, self._saved, contenders, sampling,
                    self.view.blind.isChecked(), not self.view.together.isChecked(), context,
                    self._system_prompt or self.settings.generation.system_prompt)

    def run(self) -> None:
        if self._phase is not RunPhase.IDLE or self._closed:
            return
        why = self.run_blocker()
        if why:
            self._update_run_button()
            self._say(why, kind="info")
            return
        ask = self._ask()
        self._stop_asked = False
        self._live, self._live_state, self._groups = None, LiveState(), []
        self._set_phase(RunPhase.STARTING)
        self._progress("Reading the models and checking the memory…")

        def started(answer: tuple[ComparisonRecord, int]) -> None:
            record, free = answer
            live = self._live
            if live is not None and live.id == record.id and live.status == RunStatus.RUNNING:
                self._live_state.schedule = schedule_words(live, self._groups, free)
                if self._showing_live:
                    self.panel.set_schedule(self._live_state.schedule)

        def failed(error: BaseException) -> None:
            if not isinstance(error, HearthError):
                log.error("a comparison could not start", exc_info=error)
            self._set_phase(RunPhase.IDLE)
            self._say(str(error) if isinstance(error, HearthError) else
                      "The comparison could not start because of an unexpected problem. Details are in the log file.")

        BackgroundOp(self, start_comparison, self.comparer, ask).success(started).failure(failed).run()

    def stop(self) -> None:
        """Esc: stop every model, keeping what each wrote so far."""
        if self._phase is RunPhase.STARTING:
            self._stop_asked = True
            self._set_phase(RunPhase.STOPPING)
            self._progress("Stopping…")
        elif self._phase is RunPhase.RUNNING:
            self.comparer.cancel()
            self._set_phase(RunPhase.STOPPING)
            self._progress("Stopping: closing the models…")

    def _set_phase(self, phase: RunPhase) -> None:
        self._phase = phase
        self.view.show_phase(phase)
        self._update_run_button()

    def _progress(self, text: str) -> None:
        self.view.progress_label.setText(text)

    def _is_live(self, comparison_id: int) -> bool:
        return self._live is not None and self._live.id == comparison_id

    def is_running(self) -> bool:
        return self._phase is not RunPhase.IDLE

    def _started(self, record: ComparisonRecord, groups: list[list[int]]) -> None:
        self._live, self._groups, self._live_state = record, groups, LiveState()
        if self._stop_asked:
            self.comparer.cancel()
        elif self._phase is RunPhase.STARTING:
            self._set_phase(RunPhase.RUNNING)
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
        self._set_phase(RunPhase.IDLE)
        if showing:
            self.show_comparison(record)
        self.history.refresh(select=record.id if showing else None)
        words = {RunStatus.DONE: "The comparison is done.", RunStatus.CANCELLED: "The comparison was stopped.",
                 RunStatus.FAILED: "The comparison failed."}
        self._say(words.get(record.status, "The comparison ended."), kind="info")

    # --- showing a comparison ---

    def show_comparison(self, record: ComparisonRecord) -> None:
        """A finished comparison (the one just run, or one chosen in the list)."""
        self._shown, self._showing_live = record, False
        self.panel.show_record(record)
        self.panel.set_run_again_allowed(self._phase is RunPhase.IDLE)

    def shown(self) -> ComparisonRecord | None:
        return self._shown

    def open_comparison(self, comparison_id: int) -> None:
        """A comparison the history's search found: read, then shown as if chosen in the page's history."""
        BackgroundOp(self, self.store.get_comparison, comparison_id).success(self._comparison_chosen).run()

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
        path, chosen = QFileDialog.getSaveFileName(self.view, "Save the comparison report",
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
        if record is None or self._phase is not RunPhase.IDLE:
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
        self.view.deterministic.setChecked(sampling.deterministic)
        self.view.seed.setValue(min(max(sampling.seed, 0), MAX_SEED))
        self.view.blind.setChecked(record.blind)
        self.view.together.setChecked(not record.settings.get("one_at_a_time", True))
        self.view.tabs.setCurrentIndex(0)
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
            self.view.prompt.setPlainText(record.input_text)
            return
        task = saved_input.task
        self.view.options.set_kind(task.kind)
        if record.input_kind == "pasted" or (record.input_kind == "lines" and record.input_name == TYPED_NAME):
            self.form.remove_file()
            self._saved = None
            self.view.text_input.setPlainText(record.input_text)
            return
        self._show_saved(_Saved(record.input_name, record.input_kind, record.input_text, task.passages, task.title,
                                record.kind))

    # --- the window ---

    def shutdown(self) -> None:
        """The window is closing."""
        self._closed = True
        self.history.stop_timers()

    def _say(self, text: str, kind: str = "error") -> None:
        if kind == "info":
            self.statusMessage.emit(text, 8000)
        else:
            self.panel.set_notice(text, kind)


def _same_file(a: str, b: str) -> bool:
    try:
        return same_model(a, b)
    except OSError:
        return a == b

