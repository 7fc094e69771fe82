"""The Tasks page: summarize, translate or classify a document with a model on this computer.

The page reads documents through ``BackgroundOp`` (parsing a PDF takes a child process), asks the engine
how the chosen model would read the input (``plan_task``, debounced while the person edits), starts runs
through the ``TaskSession`` (which saves every run in history) and follows them by the bridges' signals.
When the chosen model is not the loaded one, the run waits for the window to load it, as a chat message
does. Nothing here waits. ``TasksView`` is the page's layout; this is what it does.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QFileDialog

from app.engine import EngineClient, EngineState
from app.engine import protocol as p
from app.errors import HearthError
from app.forecast.model_check import Assessment
from app.forecast.task_time import estimate_seconds
from app.gguf.kind import BASE_MODEL_TASK_WARNING
from app.history import HistoryStore, ModelRecord, TaskRunRecord
from app.remote.address import same_model
from app.settings import Settings
from app.task_session import RunEnded, TaskSession
from app.tasks import export
from app.tasks.input_form import BuiltInput, build
from app.tasks.result_words import input_words, metrics_line, result_from_dict, run_options, run_title, step_words
from app.tasks.spec import (
    ClassifiedText,
    Classify,
    Part,
    Plan,
    Progress,
    TaskResult,
    task_name,
)
from ui.qt.background import BackgroundOp
from ui.qt.bridge import EngineBridge, TaskBridge
from ui.qt.qt_models import LibraryModel
from ui.qt.staged import Staged
from ui.tasks.history import RunHistory
from ui.tasks.run_models import options_words, plan_words, status_notice, verb_of
from ui.tasks.tasks_view import EMPTY_OUTPUT, TASK_BUTTONS, TasksView
from ui.widgets.run_phase import RunPhase

log = logging.getLogger(__name__)

PLAN_DELAY_MS = 300
PROGRESS_STEPS = 1000  # the bar's range: a run's progress in thousandths
RECENT_RUNS = 200
# Word first: the format people who are not programmers open; the first filter is the dialog's default.
SAVE_FILTERS = {"Word document (*.docx)": ".docx", "Markdown (*.md)": ".md", "Plain text (*.txt)": ".txt"}


@dataclass(frozen=True)
class _Pending:
    prepared: BuiltInput
    model: ModelRecord


class TasksPage(QObject, Staged):
    loadRequested = Signal(object, int)  # ModelRecord, context length: the window checks memory and loads it
    chatRequested = Signal(str)  # the first message of a new conversation about a result
    statusMessage = Signal(str, int)  # text, milliseconds: for the window's status bar

    def __init__(self, *, store: HistoryStore, engine: EngineClient, session: TaskSession, settings: Settings,
                 settings_file: Path, library_model: LibraryModel, engine_bridge: EngineBridge,
                 task_bridge: TaskBridge, parent: QObject | None = None, staged: bool = False) -> None:
        super().__init__(parent)
        self.store, self.engine, self.session = store, engine, session
        self.settings, self.settings_file = settings, settings_file
        self.library_model = library_model
        self.task = "summarize"
        self._prepared: BuiltInput | str | None = None  # ready, or why not
        self._plan_request: int | None = None
        self._plan: Plan | None = None
        self._plan_error = ""
        self._replan = False
        self._asks = self._answered = 0  # the newest preparation asked for, and the newest answered
        self._closed = False
        self._phase = RunPhase.IDLE
        self._pending: _Pending | None = None
        self._stop_asked = False
        self._live: BuiltInput | None = None  # the run this page started, and what it has shown so far
        self._live_heading = ("", "")
        self._live_parts: list[Part] = []
        self._live_rows: list[ClassifiedText] = []
        self._live_text = ""
        self._live_step = ""
        self._live_step_number = 0
        self._run_id: int | None = None
        self._shown: TaskRunRecord | None = None
        self._shown_source: str | None = None  # the shown run's document, when it is known
        self.view = TasksView(lambda: RunHistory(store, settings, settings_file, self._is_live_run), staged=True)
        self.begin_building(self._stages(engine_bridge, task_bridge), staged)

    def _stages(self, engine_bridge: EngineBridge, task_bridge: TaskBridge) -> Iterator[None]:
        while not self.view.build_step():
            yield
        self.history, self.output, self.form = self.view.history, self.view.output, self.view.form
        self._plan_timer = QTimer(self, singleShot=True, interval=PLAN_DELAY_MS)
        self._plan_timer.timeout.connect(self._refresh)
        self._connect(engine_bridge, task_bridge)
        self.set_task(self.task)
        self._models_changed()
        self.history.refresh()
        self._refresh()

    def _connect(self, engine_bridge: EngineBridge, task_bridge: TaskBridge) -> None:
        view = self.view
        view.picker.chosen.connect(self.set_task)
        view.model_combo.currentIndexChanged.connect(lambda _i: self._engine_changed())
        self.form.changed.connect(self._changed)
        self.form.fileDropped.connect(self.open_file)
        view.fileDropped.connect(self.open_file)
        view.drop_zone.openRequested.connect(self.choose_file)
        view.options.changed.connect(self._changed)
        view.runRequested.connect(self.run)
        view.cancelRequested.connect(self.cancel)
        self.output.copyRequested.connect(self.copy_result)
        self.output.saveRequested.connect(self.save_result_as)
        self.output.exportRequested.connect(self.export_csv_as)
        self.output.chatRequested.connect(self.open_in_chat)
        self.history.runChosen.connect(self._run_chosen)
        self.history.runDeleted.connect(self._run_deleted)
        self.history.runRestored.connect(self.show_run)
        self.history.failed.connect(self._say)
        self.library_model.modelReset.connect(self._models_changed)
        self.library_model.dataChanged.connect(lambda *_: self._show_plan())  # speed forecasts arrived

        engine_bridge.taskPlanned.connect(self._planned)
        engine_bridge.planFailed.connect(self._plan_failed)
        engine_bridge.modelLoaded.connect(self._model_loaded)
        for signal in (engine_bridge.loadStarted, engine_bridge.modelUnloaded, engine_bridge.workerExited,
                       engine_bridge.engineFailed):
            signal.connect(lambda *_: self._engine_changed())
        task_bridge.runStarted.connect(self._run_started)
        task_bridge.runProgress.connect(self._run_progress)
        task_bridge.runText.connect(self._run_text)
        task_bridge.runPart.connect(self._run_part)
        task_bridge.runEnded.connect(self._run_ended)

    # --- task and model ---

    def set_task(self, task: str) -> None:
        if self._phase is not RunPhase.IDLE:
            self.view.picker.choose(self.task)
            return
        self.task = task
        self.view.picker.choose(task)
        self.view.options.set_task(task)
        self.form.set_task(task)
        self._changed()

    def selected_model(self) -> ModelRecord | None:
        return self.view.selected_model()

    def _models_changed(self) -> None:
        models = self.library_model.items()
        current = self.selected_model()
        loaded = self._loaded_model(models)
        wanted = current.id if current else loaded.id if loaded else self.settings.last_model_id
        self.view.set_models(models, wanted, enabled=bool(models) and self._phase is RunPhase.IDLE)
        self._engine_changed()

    def _loaded_model(self, models: list[ModelRecord] | None = None) -> ModelRecord | None:
        loaded = self.engine.loaded
        if loaded is None:
            return None
        return next((m for m in models or self.library_model.items()
                     if same_model(m.path, loaded.path)), None)

    def _is_loaded(self, record: ModelRecord) -> bool:
        loaded = self.engine.loaded
        return loaded is not None and same_model(record.path, loaded.path)

    def _context_for(self, record: ModelRecord) -> int:
        """The loaded model keeps its context; another is loaded with the default one (capped at its training)."""
        loaded = self.engine.loaded
        if loaded is not None and self._is_loaded(record):
            return loaded.context_length
        wanted = self.settings.generation.context_length
        return min(wanted, record.context_length) if record.context_length else wanted

    def _engine_changed(self) -> None:
        """The loaded model changed (or started loading): mark it in the list, and plan again for its context."""
        self.view.mark_loaded(self._loaded_model())
        record, status = self.selected_model(), self.view.model_status
        if record is None:
            status.setText("")
        elif self.engine.loaded is not None and self._is_loaded(record):
            status.setText(f"Loaded · {self.engine.loaded.context_length:,}-token context")
        elif self.engine.state is EngineState.LOADING:
            status.setText("A model is loading…")
        else:
            status.setText("Loads when you press Run")
        self._update_run_button()
        self._changed()

    # --- input ---

    def choose_file(self) -> None:
        if self._phase is RunPhase.IDLE:
            self.form.choose_file(tables=self.task == "classify")

    def open_file(self, path: Path | str) -> None:
        """What a drop, the Open button and Ctrl+O all do."""
        if self._phase is not RunPhase.IDLE:
            self.form.show_error("Wait for the task to finish (or cancel it) before opening another file.")
            return
        self.form.open_file(Path(path))

    # --- what a run would read, and how ---

    def shutdown(self) -> None:
        """The window is closing: ask the engine nothing more (a plan request would start a new worker)."""
        self._closed = True
        self._plan_timer.stop()
        self.history.stop_timers()

    def _changed(self) -> None:
        """Something the run depends on changed: look again once the person pauses (the line below is greyed
        meanwhile, and an answer to an older question is ignored)."""
        self._plan_request = None
        self.view.set_plan_style(problem=False, stale=True)
        self._plan_timer.start()
        self._update_run_button()  # a file being read, say, stops Run at once

    def _refresh(self, then_run: bool = False) -> None:
        """Work out the run the page would start (parsing pasted text takes a while for a long text, so off the
        GUI thread), then ask the engine how the chosen model would read it."""
        if self._closed:
            return
        self._plan_timer.stop()
        self._asks += 1
        ticket = self._asks
        given = self.form.form_input(self.task, self.view.options.kind(self.task))

        def ready(prepared: BuiltInput | str) -> None:
            if ticket != self._asks or self._closed:
                return  # the person changed something since: a newer answer is on its way
            self._answered = ticket
            self._prepared = prepared
            self._plan, self._plan_error, self._plan_request = None, "", None
            record = self.selected_model()
            if self._phase is not RunPhase.IDLE:
                self._replan = True  # the engine answers after the run; ask again then
            elif isinstance(prepared, BuiltInput) and record is not None:
                try:
                    self._plan_request = self.engine.plan_task(record.path, self._context_for(record), prepared.task)
                except HearthError as error:
                    self._plan_error = str(error)
            self._show_plan()
            self._update_run_button()
            if then_run:
                self.run()

        def failed(error: BaseException) -> None:
            log.error("preparing a task failed", exc_info=error)
            ready("Hearth could not prepare this input because of an unexpected problem. Details are in the log "
                  "file.")

        BackgroundOp(self, build, given).success(ready).failure(failed).run()

    def _fresh(self) -> bool:
        """Whether the prepared run and its plan are of what the page shows now."""
        return not self._plan_timer.isActive() and self._answered == self._asks

    def _planned(self, request_id: int, plan: Plan) -> None:
        if request_id == self._plan_request:
            self._plan, self._plan_error = plan, ""
            self._show_plan()

    def _plan_failed(self, request_id: int, message: str) -> None:
        if request_id == self._plan_request:
            self._plan, self._plan_error = None, message
            self._show_plan()

    def _show_plan(self) -> None:
        prepared, record = self._prepared, self.selected_model()
        if self._phase is not RunPhase.IDLE:
            return
        if not isinstance(prepared, BuiltInput) or record is None:
            why = self.run_blocker()
            self._set_plan_text(why if why != self.form.error else "", problem=False)
            return
        if self._plan_error:
            self._set_plan_text(self._plan_error, problem=True)
            return
        if self._plan is None:
            self._set_plan_text(f"{prepared.whole} · working out how {record.name} reads it…", problem=False)
            return
        from app.hardware.memory_speed import processor_share_used

        busy = processor_share_used()
        words = plan_words(prepared.whole, self._plan, record.name, self.task, self._speed_of(record, busy), busy)
        if record.is_base_model:  # said where the model is chosen and the run planned, as in the chat's model bar
            words += f"\n{BASE_MODEL_TASK_WARNING}"
        self._set_plan_text(words, problem=False)

    def _set_plan_text(self, text: str, *, problem: bool) -> None:
        self.view.set_plan_text(text, problem=problem, stale=not self._fresh())

    def _speed_of(self, record: ModelRecord, busy: float = 0.0) -> tuple[float, float] | None:
        assessment = self.library_model.assessment(record.id)
        speed = assessment.forecast.speed if isinstance(assessment, Assessment) else None
        return estimate_seconds(self._plan, speed, busy) if self._plan is not None and speed is not None else None

    def run_blocker(self) -> str:
        """Why Run cannot be pressed now ("" when it can)."""
        if not self.library_model.items():
            return "Add a model first: open Models to add one from disk, or Discover to download one."
        if self.selected_model() is None:
            return "Choose a model."
        if self.form.reading:
            return f"Reading “{self.form.reading}”…"
        if isinstance(self._prepared, str):
            return self._prepared
        return ""

    def _update_run_button(self) -> None:
        why, button = self.run_blocker(), self.view.run_button
        button.setEnabled(not why and self._phase is RunPhase.IDLE)
        button.setToolTip(why or f"{TASK_BUTTONS[self.task]} with the chosen model (Ctrl+Enter)")

    # --- running ---

    def run(self) -> None:
        if self._phase is not RunPhase.IDLE:
            return
        if not self._fresh():
            self._refresh(then_run=True)  # what is on the page now, not what was prepared before the last edit
            return
        why = self.run_blocker()
        record = self.selected_model()
        if why or record is None or not isinstance(self._prepared, BuiltInput):
            self._update_run_button()
            self._say(why, kind="info")  # Ctrl+Enter with nothing to run: the result on show stays
            return
        prepared = self._prepared
        if self.session.busy:
            self._say("Another task is still running. Wait for it, or cancel it.")
            return
        self._begin(prepared, record)
        if self._is_loaded(record):
            self._start(prepared, record)
        else:
            self._pending = _Pending(prepared, record)
            self._set_phase(RunPhase.LOADING)
            self._progress_text(f"Loading {record.name}…")
            self.loadRequested.emit(record, self._context_for(record))

    def _begin(self, prepared: BuiltInput, record: ModelRecord) -> None:
        self._live, self._run_id, self._stop_asked = prepared, None, False
        self._live_heading = (f"{verb_of(self.task)} {input_words(prepared.source.name)}…",
                              f"{options_words(prepared.task)} · {record.name}")
        self._live_parts, self._live_rows, self._live_text, self._live_step = [], [], "", ""
        self._live_step_number = 0
        self.history.forget_choice()
        self.view.progress.setRange(0, 0)
        self._show_live()

    def _show_live(self) -> None:
        """The run in progress, as far as it has got (also when the person comes back to it from history)."""
        live = self._live
        if live is None:
            return
        self._shown = None
        task = task_name(live.task.kind)
        self.output.begin(task, *self._live_heading, live.source.text if task == "translate" else None,
                          isinstance(live.task.kind, Classify) and live.task.kind.multi)
        for part in self._live_parts:
            self.output.add_part(part)
        for row in self._live_rows:
            self.output.add_row(row)
        self.output.stream(self._live_text, self._live_step)

    def _start(self, prepared: BuiltInput, record: ModelRecord) -> None:
        self._set_phase(RunPhase.STARTING)
        self._progress_text("Waiting for the local server to finish answering another program…"
                            if self.session.engine_taken() else "Starting…")

        def started(run_id: int) -> None:
            if self._phase is RunPhase.STARTING:
                self._run_id = run_id
                self._set_phase(RunPhase.RUNNING)
            if self._stop_asked:
                self.session.stop()

        def failed(error: BaseException) -> None:
            self._failed_to_start(error)

        BackgroundOp(self, self.session.start, prepared.task, prepared.source, model_name=record.name) \
            .success(started).failure(failed).run()

    def _failed_to_start(self, error: BaseException) -> None:
        if not isinstance(error, HearthError):
            log.error("a task could not start", exc_info=error)
            error = HearthError("The task could not start because of an unexpected problem. Details are in the "
                                "log file.")
        self._run_id = None
        self._abandon(str(error))
        self.history.refresh()

    def _model_loaded(self, event: p.Loaded) -> None:
        pending = self._pending
        self._engine_changed()
        if pending is None or self._phase is not RunPhase.LOADING:
            return
        self._pending = None
        if same_model(pending.model.path, event.path):
            self._start(pending.prepared, pending.model)
        else:
            self._abandon("Another model was loaded in the meantime, so the task did not start. Press Run to "
                          "start it with the model chosen here.")

    def _abandon(self, message: str, kind: str = "error") -> None:
        """The run never started: back to the empty result, saying why."""
        self._pending, self._live = None, None
        self._set_phase(RunPhase.IDLE)
        self.output.show_empty(EMPTY_OUTPUT)
        self.output.set_notice(message, kind)

    def pending_dropped(self, reason: str | None) -> None:
        """The window did not load the model (the person declined, it failed, or the engine stopped)."""
        self._engine_changed()
        if self._pending is None:
            return
        self._abandon(f"The task did not start: {reason}" if reason else
                      "The task did not start because the model was not loaded.")

    def cancel(self) -> None:
        """Esc: stop the run, keeping what it has done; before the model has loaded, the run is not started."""
        if self._phase is RunPhase.LOADING:
            self._abandon("Cancelled before the model finished loading; nothing was run.", "info")
        elif self._phase is RunPhase.STARTING:
            self._stop_asked = True
            self._progress_text("Stopping…")
        elif self._phase is RunPhase.RUNNING:
            self.session.stop()
            self._set_phase(RunPhase.STOPPING)
            self._progress_text("Stopping after the current step…")

    def _set_phase(self, phase: RunPhase) -> None:
        self._phase = phase
        self.view.show_phase(phase, has_models=bool(self.library_model.items()))
        if phase is RunPhase.IDLE:
            self._update_run_button()
            if self._replan:
                self._replan = False
                self._changed()

    def _progress_text(self, text: str) -> None:
        self.view.progress_label.setText(text)

    def _mine(self, run_id: int) -> bool:
        """Events of the run this page started (its id may come before the start call answers)."""
        if self._phase in (RunPhase.STARTING, RunPhase.RUNNING, RunPhase.STOPPING) and self._run_id in (None, run_id):
            self._run_id = run_id
            return True
        return False

    def _run_started(self, run_id: int) -> None:
        if self._mine(run_id):
            if self._phase is RunPhase.STARTING:
                self._set_phase(RunPhase.RUNNING)
            self.history.refresh(select=run_id)

    def _run_progress(self, run_id: int, progress: Progress) -> None:
        """A model call started, or read or wrote more: the bar moves within the step as well as between them."""
        if not self._mine(run_id):
            return
        self.view.progress.setRange(0, PROGRESS_STEPS)
        self.view.progress.setValue(round(progress.fraction * PROGRESS_STEPS))
        if self._phase is not RunPhase.STOPPING:
            self._progress_text(step_words(progress))
        if progress.step == self._live_step_number:
            return
        self._live_step_number = progress.step
        self._live_text = ""
        self._live_step = progress.label
        if self._showing_live():
            self.output.stream("", progress.label)

    def _run_text(self, run_id: int, text: str) -> None:
        if self._mine(run_id):
            self._live_text = text
            if self._showing_live():
                self.output.stream(text, self._live_step)

    def _run_part(self, run_id: int, part: Part | None, row: ClassifiedText | None) -> None:
        if not self._mine(run_id):
            return
        if part is not None:
            self._live_parts.append(part)
            self._live_text = ""
        if row is not None:
            self._live_rows.append(row)
        if not self._showing_live():
            return
        if part is not None:
            self.output.add_part(part)
        if row is not None:
            self.output.add_row(row)

    def _showing_live(self) -> bool:
        return self._shown is None

    def _run_ended(self, event: RunEnded) -> None:
        if not self._mine(event.run_id):
            self.history.refresh()
            return
        live, showing = self._live, self._showing_live()
        self._run_id, self._live = None, None
        self._set_phase(RunPhase.IDLE)
        if showing:
            self.show_run(event.record, whole=live.whole if live else None,
                          source_text=live.source.text if live else None)
        self.history.refresh(select=event.run_id if showing else None)

    # --- showing a run ---

    def show_run(self, record: TaskRunRecord, whole: str | None = None, source_text: str | None = None) -> None:
        """A finished run (the one just made, or one chosen in Recent runs), read-only."""
        self._shown = record
        result = result_from_dict(record.result, record.task)
        when = record.created_at.astimezone()
        subtitle = " · ".join(x for x in (run_options(record), record.model_name or "", f"{when:%d %b %Y, %H:%M}")
                              if x)
        multi = bool(record.parameters.get("multi"))
        source = source_text if source_text is not None else record.input_text
        self._shown_source = source
        self.output.show_result(record.task, run_title(record), subtitle, result, source_text=source, multi=multi,
                                metrics=metrics_line(record, result, whole) if result else "",
                                detected=record.task == "translate" and not record.parameters.get("source"))
        self.output.set_notice(*status_notice(record, result))
        self.output.set_chat_allowed(self._phase is RunPhase.IDLE,
                                     "Wait for the task to finish: the chat needs the model.")

    def open_run(self, run_id: int) -> None:
        """A run the history's search found: read, then shown as if chosen in the page's history."""
        BackgroundOp(self, self.store.get_task_run, run_id).success(self._run_chosen).run()  # errors: the window's

    def _run_chosen(self, record: TaskRunRecord) -> None:
        if self._is_live_run(record.id):
            if not self._showing_live():
                self._show_live()
            return
        if self._shown is not None and self._shown.id == record.id and self._shown.status == record.status:
            return
        self.show_run(record)

    def _is_live_run(self, run_id: int) -> bool:
        return run_id == self._run_id and self._phase is not RunPhase.IDLE

    def _run_deleted(self, run_id: int) -> None:
        if self._shown is not None and self._shown.id == run_id:
            self._shown = None
            self.output.show_empty(EMPTY_OUTPUT)

    # --- what to do with a result ---

    @property
    def shown_run(self) -> TaskRunRecord | None:
        """The saved run on show, with a result or not: File → Export… and Print… offer it."""
        return self._shown

    def shown_result(self) -> tuple[TaskRunRecord, TaskResult] | None:
        record, result = self._shown, self.output.result
        if record is None or result is None:
            return None
        return record, result

    def result_text(self) -> str:
        shown = self.shown_result()
        return export.result_text(shown[1]) if shown else ""

    def copy_result(self) -> None:
        text = self.result_text()
        if not text:
            return
        QGuiApplication.clipboard().setText(text)
        button = self.output.copy_button
        button.setText("Copied")
        QTimer.singleShot(1500, button, lambda: button.setText("Copy"))

    def save_result_as(self) -> None:
        shown = self.shown_result()
        if shown is None:
            return
        record, _ = shown
        if record.task == "classify":
            self.export_csv_as()
            return
        name = f"{Path(record.input_name).stem} – {run_title(record).split(' of ')[0].lower()}"
        path, chosen = QFileDialog.getSaveFileName(self.view, "Save the result",
                                                   str(Path(self.form.last_folder) / name), ";;".join(SAVE_FILTERS))
        if not path:
            return
        target = Path(path)
        if target.suffix.lower() not in export.SAVE_SUFFIXES:
            target = target.with_name(target.name + SAVE_FILTERS.get(chosen, ".docx"))
        self.form.last_folder = str(target.parent)
        self.save_result(target)

    def save_result(self, path: Path) -> None:
        """Write the shown result to ``path`` (its suffix picks the format), off the GUI thread."""
        shown = self.shown_result()
        if shown is None:
            return
        record, result = shown
        self._write(lambda: export.save_text(path, export.result_text(result), run_title(record)), path)

    def export_csv_as(self) -> None:
        shown = self.shown_result()
        if shown is None:
            return
        name = f"{Path(shown[0].input_name).stem} – labels.csv"
        path, _ = QFileDialog.getSaveFileName(self.view, "Export the labels", str(Path(self.form.last_folder) / name),
                                              "CSV files (*.csv)")
        if path:
            target = Path(path) if Path(path).suffix.lower() == ".csv" else Path(path + ".csv")
            self.form.last_folder = str(target.parent)
            self.export_csv(target)

    def export_csv(self, path: Path) -> None:
        shown = self.shown_result()
        if shown is None:
            return
        record, result = shown
        labels = [label.get("name", "") for label in record.parameters.get("labels", ()) if isinstance(label, dict)]
        labels = labels or sorted({name for row in result.rows for name in row.confidence})
        self._write(lambda: export.save_csv(path, result.rows, labels), path)

    def _write(self, save: Callable[[], object], path: Path) -> None:
        def saved(_: object) -> None:
            self._say(f"Saved “{path.name}”.", kind="info")

        def failed(error: BaseException) -> None:
            if not isinstance(error, HearthError):
                log.error("saving %s failed", path, exc_info=error)
            self._say(str(error) if isinstance(error, HearthError) else
                      f"Hearth could not save “{path.name}”. Details are in the log file.")

        BackgroundOp(self, save).success(saved).failure(failed).run()

    def open_in_chat(self) -> None:
        """A new conversation that starts with the result and the document (as much of it as the chat's context
        holds beside it: the status bar says when it is cut)."""
        shown = self.shown_result()
        if shown is None or self._phase is not RunPhase.IDLE:
            return
        record, result = shown
        generation, loaded = self.settings.generation, self.engine.loaded
        context = min(generation.context_length, loaded.trained_context_length) if loaded else \
            generation.context_length  # what a new conversation is answered with (ChatPage loads it so)
        document = self._shown_source
        start = export.chat_start(
            record.task, input_words(record.input_name), export.result_text(result), run_options(record),
            document=document, context_length=context, max_tokens=generation.max_tokens,
            system_prompt=generation.system_prompt,
            chars_per_token=len(document) / result.document_tokens if document and result.document_tokens else 4.0)
        if start.note:
            self.statusMessage.emit(start.note, 10_000)
        self.chatRequested.emit(start.message)

    def _say(self, text: str, kind: str = "error") -> None:
        if kind == "info":
            self.statusMessage.emit(text, 6000)
        else:
            self.output.set_notice(text, kind)
