"""The one flow that loads a model: check that it fits, ask first when it is tight, load it with the plan the forecast
was made for, and fall back when it will not load.

Every load goes through here: the chat's Load button and Ctrl+L, a message sent while no model is loaded (or while
the loaded one has another context length than the conversation asks for), "Chat with this model" in the library,
and a task run with a model that is not loaded yet. A chat message sent before its model has loaded waits here
(``hold``) and goes out when the model is ready (``sendReady``); when the model will not load, what waited for it
goes back to the person (``dropped``: the message to its box, a task run to its page). The engine's own events end
a load too: a failure, the worker's exit, or a load the engine starts by itself after a forced stop.

Nothing here waits: the check runs through ``BackgroundOp``, the load in the engine worker.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QMessageBox, QWidget

from app.errors import HearthError
from app.history import ModelRecord
from app.remote.address import is_remote
from ui.qt.background import BackgroundOp

if TYPE_CHECKING:
    from app.engine import protocol as p
    from app.forecast.model_check import Assessment
    from ui.qt.bridge import EngineBridge
    from ui.services import Services


@dataclass(frozen=True)
class PendingSend:
    """A chat message waiting for its model to load."""

    conversation_id: int | None  # None: start a new conversation with it
    text: str


class ModelLoader(QObject):
    checking = Signal(str)  # the model's name: whether it fits is being checked
    loaded = Signal(object)  # p.Loaded: the model is ready
    notLoaded = Signal(str)  # why no model is loaded now, in words for the model bar
    sendReady = Signal(object)  # PendingSend: its model has loaded, send it now
    dropped = Signal(object, object)  # PendingSend or None, the reason or None: the model will not load
    engineStopped = Signal()  # the engine worker ended unexpectedly: nothing is being answered any more
    contextChosen = Signal(int)  # the person chose the context that fits: the conversation takes it
    failed = Signal(object)  # an error, for the window to show
    settingsChanged = Signal()  # the model loaded last changed: it is chosen again at the next start
    statusMessage = Signal(str, int)  # text, milliseconds: for the window's status bar

    def __init__(self, services: Services, bridge: EngineBridge, baseline: Callable[[], int],
                 parent: QWidget) -> None:
        """``baseline``: the engine worker's own size in memory, for the forecast (the library measures it)."""
        super().__init__(parent)
        self._window = parent
        self.services = services
        self._baseline = baseline
        self.loading: ModelRecord | None = None
        self._pending: PendingSend | None = None  # a message waiting for its model to load
        self.closing = False  # the window is closing: the worker's exit is expected
        self._sizing_fell_back = ""  # the dry run moved the load being made to the processor: why
        bridge.modelLoaded.connect(self._model_loaded)
        bridge.engineFailed.connect(self._engine_failed)
        bridge.workerExited.connect(self._worker_exited)

    # --- what waits for a load ---

    @property
    def pending(self) -> PendingSend | None:
        return self._pending

    def hold(self, pending: PendingSend) -> None:
        """``pending`` goes out when the model being loaded is ready (``sendReady``)."""
        self._pending = pending

    def take_pending(self) -> PendingSend | None:
        """The message waiting for the model, no longer waiting (Stop puts it back in the box)."""
        pending, self._pending = self._pending, None
        return pending

    def _drop_pending(self, reason: str | None = None) -> None:
        """The model will not load: what waited for it (a message, a task run) goes back to the person."""
        pending, self._pending = self._pending, None
        self.dropped.emit(pending, reason)

    # --- loading ---

    def load(self, record: ModelRecord, context_length: int, *, for_conversation: bool = False) -> None:
        """Check that ``record`` fits with ``context_length``, ask when it is tight, and load it.
        ``for_conversation``: the current conversation asked for it, and takes a smaller context that fits if the
        person chooses one."""
        services = self.services
        if services.runner.busy or services.tasks.busy:
            busy = "Stop the current answer" if services.runner.busy else "Cancel the running task"
            self._drop_pending(f"{busy} before loading another model.")
            self.failed.emit(HearthError(f"{busy} before loading another model."))
            return
        if is_remote(record.path):  # its server knows its memory: nothing to forecast here
            from app.engine.load_plan import LoadPlan

            self.loading = record
            self.checking.emit(record.name)
            self.services.engine.load(record.path, plan=LoadPlan(context_length=context_length))
            return
        if not Path(record.path).is_file():
            missing = (f"The file of “{record.name}” is no longer at {record.path}. Remove it from the library and "
                       "add it again.")
            self._drop_pending(missing)
            self.failed.emit(HearthError(missing))
            return
        self.loading = record
        settings = services.settings
        settings.last_model_id = record.id
        self.settingsChanged.emit()
        self.checking.emit(record.name)
        machine, threads = services.machine, settings.threads
        gpu_layers = settings.gpu_layers_for(record.path, machine.card)

        def check() -> Assessment:
            from app.forecast.model_check import assess

            return assess(Path(record.path), machine, context_length=context_length, gpu_layers=gpu_layers,
                          threads=threads, exact=True, records=services.store.load_records(),
                          baseline=self._baseline())

        def failed(error: BaseException) -> None:
            self._load_abandoned(str(error) if isinstance(error, HearthError) else None)
            self.failed.emit(error)

        BackgroundOp(self, check).success(lambda a: self._confirm_and_load(record, a, for_conversation)) \
            .failure(failed).run()

    def _confirm_and_load(self, record: ModelRecord, assessment: Assessment, for_conversation: bool) -> None:
        """Load with the plan the forecast was made for; ask first when it will not fit comfortably."""
        from app.forecast.estimate import Verdict

        result = assessment.forecast
        plan = result.plan
        if result.verdict is Verdict.UNSUPPORTED:
            self._load_abandoned(f"{result.verdict.value}. {result.reason}")
            self.failed.emit(HearthError(f"{result.verdict.value}. {result.reason}"))
            return
        if assessment.needs_confirmation:
            box = QMessageBox(QMessageBox.Icon.Warning, result.verdict.value, f"{result.verdict.value}.",
                              parent=self._window)
            box.setInformativeText(result.reason + " Loading it anyway may make this computer very slow until "
                                                   "the model is unloaded.")
            fit = assessment.fitting
            fit_button = box.addButton(f"Load with a {fit.context_length:,}-token context",
                                       QMessageBox.ButtonRole.AcceptRole) if fit else None
            anyway = box.addButton("Load anyway", QMessageBox.ButtonRole.DestructiveRole)
            box.addButton(QMessageBox.StandardButton.Cancel)
            box.exec()
            clicked = box.clickedButton()
            if fit is not None and clicked is fit_button:
                plan = fit
                if for_conversation:
                    self.contextChosen.emit(fit.context_length)
            elif clicked is not anyway:
                self._load_abandoned()
                return
        if self.services.settings.uses_chatml(record.path):  # ChatML, chosen before
            plan = replace(plan, chatml=True)
        self._sizing_fell_back = assessment.gpu_fallback  # the load is on the processor already: said when loaded
        self.services.tracker.expect(record.path, assessment)
        self.services.engine.load(record.path, plan=plan)

    def _load_abandoned(self, reason: str | None = None) -> None:
        self.loading = None
        self.notLoaded.emit("No model loaded")
        self._drop_pending(reason)

    def unload(self) -> None:
        runner, tasks = self.services.runner, self.services.tasks
        if runner.busy or tasks.busy:
            self.failed.emit(HearthError("Stop the current answer before unloading the model." if runner.busy
                                         else "Cancel the running task before unloading the model."))
            return
        self.services.engine.unload()

    # --- the engine's answers ---

    def _model_loaded(self, event: p.Loaded) -> None:
        self.loading = None
        if not event.gpu_fallback and self._sizing_fell_back:
            event = replace(event, gpu_fallback=self._sizing_fell_back)
        self._sizing_fell_back = ""
        if event.gpu_fallback:
            self._fell_back(event.path, event.gpu_fallback)
        self.loaded.emit(event)
        pending, self._pending = self._pending, None
        if pending is not None:
            self.sendReady.emit(pending)

    def _fell_back(self, path: str, sentence: str) -> None:
        """The card could not take the model, which runs on the processor: said, and remembered for this card, so
        that the next load of the model goes to the processor without trying."""
        self.statusMessage.emit(sentence, 12000)
        card = self.services.machine.card
        if card is not None:
            self.services.settings.card_failed(path, card)
            self.settingsChanged.emit()

    def _engine_failed(self, event: p.Failed) -> None:
        from app.engine.protocol import During

        if event.during is During.LOAD:
            self.loading = None
            self.notLoaded.emit("Not loaded")
            self._drop_pending(event.message)
        self.failed.emit(HearthError(event.message))

    def _worker_exited(self, event: p.WorkerExited) -> None:
        if self.closing or event.expected:
            return
        self.loading = None
        self.notLoaded.emit("The engine stopped. Load a model to continue.")
        self._drop_pending(event.message)
        self.engineStopped.emit()
        self.failed.emit(HearthError(event.message))
