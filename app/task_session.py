"""The app's side of a task run: start it on the engine, relay its events, and save it in history.

It sits above ``app.tasks`` (what a task is and how it runs over any ``Model``, inside the engine worker),
the engine and history, as the chat runner (``app.chat``) does for conversations: ``app.tasks`` never
imports the engine, so the engine can host the task orchestration without a cycle between the two.

Like the chat runner, this listens on the engine's reader thread, so a run is saved whatever the window
does: the row is written as ``running`` when the run starts and finished as ``done``, ``cancelled`` (with
the parts done so far), ``failed`` or ``interrupted`` (the worker died). Listeners (the Qt bridge, the CLI)
get ``TaskEvent``s on that same thread.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from app.engine import protocol as p
from app.engine.client import EngineClient
from app.errors import EngineError, WorkerCrashedError
from app.events import Listeners
from app.history import HistoryStore, TaskRunRecord
from app.outcomes import RunStatus
from app.tasks.inputs import Source
from app.tasks.spec import ClassifiedText, Metrics, Part, Progress, TaskInput, TaskResult, task_name

TAKEN_POLL_S = 0.05  # how often a run waiting for the engine looks again


@dataclass(frozen=True)
class RunStarted:
    run_id: int


@dataclass(frozen=True)
class RunProgress:
    """A model call started (a new ``progress.step``), or the one running read or wrote more."""

    run_id: int
    progress: Progress


@dataclass(frozen=True)
class RunText:
    """The text of the model call now running, so far (a new call starts from "")."""

    run_id: int
    text: str


@dataclass(frozen=True)
class RunPart:
    run_id: int
    part: Part | None
    row: ClassifiedText | None


@dataclass(frozen=True)
class RunEnded:
    run_id: int
    record: TaskRunRecord
    result: TaskResult | None  # None when the run failed or the worker died
    metrics: Metrics | None


TaskEvent = RunStarted | RunProgress | RunText | RunPart | RunEnded


@dataclass
class _Running:
    run_id: int
    task: TaskInput
    request_id: int = -1
    step: int = 0
    step_text: list[str] = field(default_factory=list)
    parts: list[Part] = field(default_factory=list)
    rows: list[ClassifiedText] = field(default_factory=list)


class TaskSession:
    def __init__(self, store: HistoryStore, engine: EngineClient,
                 save_text: Callable[[], bool] = lambda: True) -> None:
        self.store = store
        self.engine = engine
        self.save_text = save_text
        self._lock = threading.RLock()
        self._running: _Running | None = None
        self._listeners: Listeners[TaskEvent] = Listeners()
        # Another user of the engine holds it (the local server answering a request): a run waits for it to finish.
        self.engine_taken: Callable[[], bool] = lambda: False
        engine.subscribe(self._on_engine_event)

    def subscribe(self, listener: Callable[[TaskEvent], None]) -> Callable[[], None]:
        return self._listeners.subscribe(listener)

    def _emit(self, event: TaskEvent) -> None:
        self._listeners.emit(event)

    @property
    def busy(self) -> bool:
        return self._running is not None

    # --- actions (they touch the database: call them off the GUI thread) ---

    def start(self, task: TaskInput, source: Source, *, model_name: str | None = None) -> int:
        """Save the run as ``running`` and send it to the loaded model, once no one else holds the engine; returns
        the history id."""
        while self.engine_taken():
            time.sleep(TAKEN_POLL_S)
        with self._lock:
            if self._running is not None or self.engine.state.value == "generating":
                raise EngineError("The model is still busy. Stop it first.")
            loaded = self.engine.loaded
            if loaded is None:
                raise EngineError("No model is loaded. Choose a model first.")
            run_id = self.store.start_task_run(
                task_name(task.kind), parameters=parameters_of(task), input_name=source.name,
                input_kind=source.kind, input_bytes=source.size_bytes, input_sha256=source.sha256,
                input_text=source.text if self.save_text() else None, model_name=model_name,
                model_path=loaded.path)
            running = self._running = _Running(run_id, task)
            try:
                running.request_id = self.engine.run_task(task)
            except Exception as error:
                self._running = None
                self.store.finish_task_run(run_id, status=RunStatus.FAILED, output="", result={}, metrics={},
                                           error=str(error))
                raise
        self._emit(RunStarted(run_id))
        return run_id

    def stop(self) -> None:
        if self._running is not None:
            self.engine.stop()

    def close(self) -> None:
        """The app is going away: save the run as interrupted with what it has."""
        with self._lock:
            running, self._running = self._running, None
        if running is not None:
            self._save_partial(running, RunStatus.INTERRUPTED, "Hearth was closed during the run.")

    # --- engine events (on the engine's reader thread) ---

    def _on_engine_event(self, event: p.Event) -> None:
        with self._lock:
            running = self._running
            if running is None:
                return
            mine = getattr(event, "request_id", None) == running.request_id
            out: TaskEvent
            if isinstance(event, p.TaskProgress) and mine:
                if event.progress.step != running.step:
                    running.step = event.progress.step
                    running.step_text.clear()
                out = RunProgress(running.run_id, event.progress)
            elif isinstance(event, p.Token) and mine:
                running.step_text.append(event.text)
                out = RunText(running.run_id, "".join(running.step_text))
            elif isinstance(event, p.TaskPartDone) and mine:
                if event.part is not None:
                    running.parts.append(event.part)
                if event.row is not None:
                    running.rows.append(event.row)
                out = RunPart(running.run_id, event.part, event.row)
            elif isinstance(event, p.TaskFinished) and mine:
                self._running = None
                self.store.finish_task_run(
                    running.run_id,
                    status=RunStatus.DONE if event.result.finish_reason == RunStatus.DONE else RunStatus.CANCELLED,
                    output=event.result.text, result=event.result.to_dict(),
                    metrics=metrics_of(event.result, event.metrics))
                out = RunEnded(running.run_id, self.store.get_task_run(running.run_id), event.result, event.metrics)
            elif isinstance(event, p.Finished) and mine:  # a forced stop: the worker was restarted
                self._running = None
                out = self._save_partial(running, RunStatus.CANCELLED, None)
            elif isinstance(event, p.Failed) and mine:
                self._running = None
                out = self._save_partial(running, RunStatus.FAILED, event.message)
            elif isinstance(event, p.WorkerExited):
                self._running = None
                out = self._save_partial(running, RunStatus.INTERRUPTED, event.message or "The model engine stopped.")
            else:
                return
        self._emit(out)

    def _save_partial(self, running: _Running, status: str, error: str | None) -> RunEnded:
        result = TaskResult(task=task_name(running.task.kind), text="\n\n".join(p.output for p in running.parts),
                            finish_reason=RunStatus.CANCELLED, parts=tuple(running.parts), rows=tuple(running.rows))
        self.store.finish_task_run(running.run_id, status=status, output=result.text, result=result.to_dict(),
                                   metrics={}, error=error)
        return RunEnded(running.run_id, self.store.get_task_run(running.run_id),
                        result if status == RunStatus.CANCELLED else None, None)

    # --- blocking (CLI, tests, benchmarks; never the GUI thread) ---

    def run_blocking(self, task: TaskInput, source: Source, *, model_name: str | None = None,
                     on_event: Callable[[TaskEvent], None] | None = None, timeout: float = 24 * 3600) -> RunEnded:
        events: queue.Queue[TaskEvent] = queue.Queue()
        unsubscribe = self.subscribe(events.put)
        try:
            run_id = self.start(task, source, model_name=model_name)
            while True:
                try:
                    event = events.get(timeout=timeout)
                except queue.Empty:
                    raise EngineError("The model engine did not answer in time.") from None
                if on_event is not None:
                    on_event(event)
                if isinstance(event, RunEnded) and event.run_id == run_id:
                    if event.record.status == RunStatus.FAILED:
                        raise EngineError(event.record.error or "The task failed.")
                    if event.record.status == RunStatus.INTERRUPTED:
                        raise WorkerCrashedError(event.record.error or "The model engine stopped.")
                    return event
        finally:
            unsubscribe()


def parameters_of(task: TaskInput) -> dict[str, Any]:
    """The run's settings as history keeps them."""
    import dataclasses

    kind = dataclasses.asdict(task.kind)
    return {**kind, "temperature": task.temperature, "seed": task.seed, "title": task.title,
            "max_output_tokens": task.max_output_tokens}


def metrics_of(result: TaskResult, metrics: Metrics) -> dict[str, Any]:
    return {**metrics.to_dict(), "model_tokens_processed": result.model_tokens_processed,
            "document_tokens": result.document_tokens, "covered_tokens": result.covered_tokens,
            "chunks": result.chunks, "levels": result.levels}
