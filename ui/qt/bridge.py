"""Turns the core's events, which arrive on other threads (the engine client's reader, the download and
comparison threads), into Qt signals on the GUI thread.

Each bridge is a ``Relay``: the core's listener only emits ``_relay``; its receiver is a slot of the bridge,
which lives on the GUI thread, so Qt queues the call there (a bare lambda could run on the emitting thread
instead). ``dispatch`` then emits the bridge's typed signals on the GUI thread, in the order the events
happened. A bridge stops listening when it is destroyed: the core's objects may outlive the window (tests), and an event
that is being relayed then is let finish first (``guarded_emit``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, Signal, Slot

from app import chat
from app import task_session as tasks
from app.chat import ChatRunner
from app.compare import runner as compare
from app.compare.runner import Comparer
from app.engine import EngineClient
from app.engine import protocol as p
from app.hub.downloads import DownloadManager
from app.task_session import TaskSession
from ui.qt.cross_thread import guarded_emit

Subscribe = Callable[[Callable[[Any], None]], Callable[[], None]]


class Relay(QObject):
    _relay = Signal(object)

    def __init__(self, *sources: Subscribe, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._relay.connect(self._dispatch)
        relay = guarded_emit(self, self._relay.emit)
        unsubscribes = [subscribe(relay) for subscribe in sources]

        def stop_listening(*_: object) -> None:
            for unsubscribe in unsubscribes:
                unsubscribe()

        self.destroyed.connect(stop_listening)

    @Slot(object)
    def _dispatch(self, event: object) -> None:
        self.dispatch(event)

    def dispatch(self, event: object) -> None:
        raise NotImplementedError


class EngineBridge(Relay):

    workerReady = Signal(object)  # p.Ready
    loadStarted = Signal(object)  # p.LoadStarted
    loadProgress = Signal(float)
    loadStage = Signal(str)  # what a load is doing beyond reading the file, for people
    modelLoaded = Signal(object)  # p.Loaded
    modelUnloaded = Signal()
    engineFailed = Signal(object)  # p.Failed not tied to a chat answer
    workerExited = Signal(object)  # p.WorkerExited
    answerStarted = Signal(object)  # chat.AnswerStarted
    answerDelta = Signal(int, int, str)  # conversation id, message id, text so far
    contextNotice = Signal(object)  # chat.ContextNotice
    answerFinished = Signal(object)  # chat.AnswerFinished
    taskPlanned = Signal(int, object)  # request id, tasks.spec.Plan
    planFailed = Signal(int, str)  # request id, message for people
    tokensCounted = Signal(object)  # p.TokensCounted

    def __init__(self, engine: EngineClient, runner: ChatRunner, parent: QObject | None = None) -> None:
        super().__init__(engine.subscribe, runner.subscribe, parent=parent)

    def dispatch(self, event: object) -> None:
        if isinstance(event, p.Ready):
            self.workerReady.emit(event)
        elif isinstance(event, p.LoadStarted):
            self.loadStarted.emit(event)
        elif isinstance(event, p.LoadProgress):
            self.loadProgress.emit(event.fraction)
            if event.stage:
                self.loadStage.emit(event.stage)
        elif isinstance(event, p.Loaded):
            self.modelLoaded.emit(event)
        elif isinstance(event, p.Unloaded):
            self.modelUnloaded.emit()
        elif isinstance(event, p.Failed) and event.request_id is None:
            self.engineFailed.emit(event)
        elif isinstance(event, p.TaskPlanned):
            self.taskPlanned.emit(event.request_id, event.plan)
        elif isinstance(event, p.TokensCounted):
            self.tokensCounted.emit(event)
        elif isinstance(event, p.Failed) and event.during is p.During.PLAN:
            self.planFailed.emit(event.request_id, event.message)
        elif isinstance(event, p.WorkerExited):
            self.workerExited.emit(event)
        elif isinstance(event, chat.AnswerStarted):
            self.answerStarted.emit(event)
        elif isinstance(event, chat.AnswerDelta):
            self.answerDelta.emit(event.conversation_id, event.message_id, event.text)
        elif isinstance(event, chat.ContextNotice):
            self.contextNotice.emit(event)
        elif isinstance(event, chat.AnswerFinished):
            self.answerFinished.emit(event)


class DownloadBridge(Relay):
    """Download events arrive on the download threads."""

    jobChanged = Signal(object)  # downloads.JobChanged

    def __init__(self, manager: DownloadManager, parent: QObject | None = None) -> None:
        super().__init__(manager.subscribe, parent=parent)

    def dispatch(self, event: object) -> None:
        self.jobChanged.emit(event)


class TaskBridge(Relay):
    """Task run events arrive on the engine's reader thread (the session relays them)."""

    runStarted = Signal(int)  # run id
    runProgress = Signal(int, object)  # run id, tasks.spec.Progress
    runText = Signal(int, str)  # run id, the text of the model call now running, so far
    runPart = Signal(int, object, object)  # run id, Part or None, ClassifiedText or None
    runEnded = Signal(object)  # task_session.RunEnded

    def __init__(self, session: TaskSession, parent: QObject | None = None) -> None:
        super().__init__(session.subscribe, parent=parent)

    def dispatch(self, event: object) -> None:
        if isinstance(event, tasks.RunStarted):
            self.runStarted.emit(event.run_id)
        elif isinstance(event, tasks.RunProgress):
            self.runProgress.emit(event.run_id, event.progress)
        elif isinstance(event, tasks.RunText):
            self.runText.emit(event.run_id, event.text)
        elif isinstance(event, tasks.RunPart):
            self.runPart.emit(event.run_id, event.part, event.row)
        elif isinstance(event, tasks.RunEnded):
            self.runEnded.emit(event)


class CompareBridge(Relay):
    """Comparison events arrive on the comparer's threads (one per model)."""

    compareStarted = Signal(object, object)  # ComparisonRecord, groups (lists of positions run together)
    entryChanged = Signal(int, int, str, str)  # comparison id, position, status, detail for people
    entryText = Signal(int, int, str)  # comparison id, position, the text of the current model call so far
    entryEnded = Signal(int, object)  # comparison id, EntryRecord
    compareEnded = Signal(object)  # ComparisonRecord, final

    def __init__(self, comparer: Comparer, parent: QObject | None = None) -> None:
        super().__init__(comparer.subscribe, parent=parent)

    def dispatch(self, event: object) -> None:
        if isinstance(event, compare.CompareStarted):
            self.compareStarted.emit(event.record, event.groups)
        elif isinstance(event, compare.EntryChanged):
            self.entryChanged.emit(event.comparison_id, event.position, event.status, event.detail)
        elif isinstance(event, compare.EntryText):
            self.entryText.emit(event.comparison_id, event.position, event.text)
        elif isinstance(event, compare.EntryEnded):
            self.entryEnded.emit(event.comparison_id, event.entry)
        elif isinstance(event, compare.CompareEnded):
            self.compareEnded.emit(event.record)
