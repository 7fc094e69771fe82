"""Turns engine and chat events, which arrive on the engine client's reader thread, into Qt signals.

The callbacks only emit ``_relay``; its receiver is a slot of this object, which lives on the GUI thread,
so Qt queues the call there (a bare lambda could run on the emitting thread instead). The typed signals
below are then emitted on the GUI thread.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal, Slot

from app import chat
from app.chat import ChatRunner
from app.downloads import DownloadManager
from app.engine import EngineClient
from app.engine import protocol as p


class EngineBridge(QObject):
    _relay = Signal(object)

    workerReady = Signal(object)  # p.Ready
    loadStarted = Signal(object)  # p.LoadStarted
    loadProgress = Signal(float)
    modelLoaded = Signal(object)  # p.Loaded
    modelUnloaded = Signal()
    engineFailed = Signal(object)  # p.Failed not tied to a chat answer
    workerExited = Signal(object)  # p.WorkerExited
    answerStarted = Signal(object)  # chat.AnswerStarted
    answerDelta = Signal(int, int, str)  # conversation id, message id, text so far
    contextNotice = Signal(object)  # chat.ContextNotice
    answerFinished = Signal(object)  # chat.AnswerFinished

    def __init__(self, engine: EngineClient, runner: ChatRunner, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._relay.connect(self._dispatch)
        engine.subscribe(self._relay.emit)
        runner.subscribe(self._relay.emit)

    @Slot(object)
    def _dispatch(self, event: object) -> None:
        if isinstance(event, p.Ready):
            self.workerReady.emit(event)
        elif isinstance(event, p.LoadStarted):
            self.loadStarted.emit(event)
        elif isinstance(event, p.LoadProgress):
            self.loadProgress.emit(event.fraction)
        elif isinstance(event, p.Loaded):
            self.modelLoaded.emit(event)
        elif isinstance(event, p.Unloaded):
            self.modelUnloaded.emit()
        elif isinstance(event, p.Failed) and event.request_id is None:
            self.engineFailed.emit(event)
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


class DownloadBridge(QObject):
    """Download events arrive on the download threads; re-emitted here on the GUI thread."""

    _relay = Signal(object)
    jobChanged = Signal(object)  # downloads.JobChanged

    def __init__(self, manager: DownloadManager, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._relay.connect(self._dispatch)
        manager.subscribe(self._relay.emit)

    @Slot(object)
    def _dispatch(self, event: object) -> None:
        self.jobChanged.emit(event)
