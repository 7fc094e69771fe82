"""The engine worker as the API uses it: the model a request names is loaded on demand (after the same forecast
check as the window's), answers are made one at a time with the rest waiting their turn, a client that goes away
stops its answer, and a model no request has used for a while is unloaded.

The engine client reports on its own thread; events are handed to the server's event loop, where the request that
holds the turn reads them. Only that request reads, so one queue per turn is enough.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio

from app.engine import protocol as p
from app.errors import EngineError
from app.history import ModelRecord
from app.server.api_errors import ApiError

log = logging.getLogger(__name__)

LOAD_TIMEOUT_S = 600.0
STOP_WAIT_S = 10.0  # after a stop, how long the next turn waits for the worker to confirm it
OTHERS_POLL_S = 0.05  # how often a request that waits for the window's own work looks again


@dataclass(frozen=True)
class Ask:
    """One answer, as the API asks for it."""

    messages: list[dict[str, str]]
    max_tokens: int
    temperature: float
    top_p: float
    seed: int | None = None
    stop: tuple[str, ...] = ()
    json_object: bool = False
    json_schema: str | None = None
    raw_prompt: str | None = None  # a text to go on from, instead of ``messages``


class ServedEngine:
    """``assess(record)`` is the forecast check a load passes (``app.forecast.model_check.assess``), run off the
    event loop; it returns the plan to load with or raises ``ApiError`` with the reason the model cannot run."""

    def __init__(self, engine: Any, models: Callable[[], list[ModelRecord]], assess: Callable[[ModelRecord], Any],
                 *, max_waiting: int = 8, idle_unload_s: float = 600.0,
                 others_busy: Callable[[], bool] = lambda: False,
                 turns: Callable[[bool], None] = lambda _holding: None,
                 keep: Callable[[Ask, p.Finished, str], None] | None = None) -> None:
        """``others_busy``: the window uses the engine (a chat answering, a task running), so a request waits for
        it to finish; ``turns`` is told when a request takes the engine (True) and gives it back (False), so the
        window can hold its own messages meanwhile and send them after. ``keep`` is given each whole answer, with
        the model's name, off the event loop (``app.server.served_history``)."""
        self.engine, self.models, self.assess = engine, models, assess
        self.keep = keep
        self._serving = ""  # the name of the model the last turn made sure of
        self.max_waiting, self.idle_unload_s = max_waiting, idle_unload_s
        self.others_busy, self.turns = others_busy, turns
        self.waiting = 0
        self._lock: asyncio.Lock | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._events: asyncio.Queue[p.Event] | None = None
        self._last_used = time.monotonic()
        self._idle_timer: asyncio.TimerHandle | None = None
        engine.subscribe(self._on_event)

    def _on_event(self, event: p.Event) -> None:
        loop, events = self._loop, self._events
        if loop is not None and events is not None and not loop.is_closed():
            loop.call_soon_threadsafe(events.put_nowait, event)

    @property
    def busy(self) -> bool:
        """A request holds the engine."""
        return self._lock is not None and self._lock.locked()

    def find(self, name: str) -> ModelRecord:
        """The library model a request names: its id, its name, or its file's name (with or without ".gguf"),
        never a path."""
        models = self.models()
        wanted = name.casefold()
        for record in models:
            file = Path(record.path)
            if wanted in (str(record.id), record.name.casefold(), record.default_name.casefold(),
                          file.name.casefold(), file.stem.casefold()):
                return record
        raise ApiError(404, f"The model “{name}” is not in Hearth's library. GET /v1/models lists the models.",
                       code="model_not_found", param="model")

    @asynccontextmanager
    async def turn(self) -> AsyncIterator[None]:
        """Holds the engine for one request; the others wait, up to ``max_waiting``, beyond which they are told
        to try again later."""
        if self._lock is None:
            self._lock, self._loop = asyncio.Lock(), asyncio.get_running_loop()
        self.check_room()
        self.waiting += 1
        try:
            await self._lock.acquire()
        finally:
            self.waiting -= 1
        self._events = asyncio.Queue()
        self.turns(True)
        try:
            while self.others_busy():  # the window's own answer or task goes first
                await asyncio.sleep(OTHERS_POLL_S)
            yield
        finally:
            self._events = None
            self._last_used = time.monotonic()
            self._lock.release()
            self.turns(False)
            self._schedule_unload()

    def check_room(self) -> None:
        """Raises the 503 that ``turn`` would: asked before a streamed answer's status line is sent."""
        if self.busy and self.waiting >= self.max_waiting:
            raise ApiError(503, "Hearth is answering other requests and its queue is full. Try again shortly.",
                           "server_error", "overloaded", retry_after_s=5)

    async def plan_for(self, record: ModelRecord) -> Any:
        """The plan to load ``record`` with, after the forecast check (which raises the reason it cannot run);
        None when it is loaded already."""
        loaded = self.engine.loaded
        if loaded is not None and Path(loaded.path) == Path(record.path).resolve():
            return None
        return await anyio.to_thread.run_sync(self.assess, record)

    async def ensure_loaded(self, record: ModelRecord, plan: Any = None) -> None:
        self._serving = record.name
        loaded = self.engine.loaded
        if loaded is not None and Path(loaded.path) == Path(record.path).resolve():
            return
        plan = plan or await anyio.to_thread.run_sync(self.assess, record)
        self.engine.load(record.path, plan=plan)
        with anyio.fail_after(LOAD_TIMEOUT_S):
            while True:
                event = await self._next()
                if isinstance(event, p.Loaded):
                    return
                if isinstance(event, p.Failed) and event.during is p.During.LOAD:
                    raise ApiError(500, event.message, "server_error", "model_load_failed")
                if isinstance(event, p.WorkerExited):
                    raise ApiError(503, event.message or "The model engine stopped while loading.", "server_error",
                                   "engine_stopped")

    async def answer(self, ask: Ask) -> AsyncGenerator[p.Token | p.Finished, None]:
        """The answer's tokens, then its ``Finished``. Left early (the client went away), the answer is stopped
        and its end waited for, so the next turn finds the worker free."""
        while True:
            try:
                request_id = self.engine.generate(
                    ask.messages, max_tokens=ask.max_tokens, temperature=ask.temperature, top_p=ask.top_p,
                    seed=ask.seed, watched=False, stop=ask.stop, json_object=ask.json_object,
                    json_schema=ask.json_schema, raw_prompt=ask.raw_prompt)
                break
            except EngineError as error:  # the window started an answer in the same moment: after it
                if not self.others_busy():
                    raise ApiError(503, str(error), "server_error", "engine_busy", retry_after_s=5) from error
                await asyncio.sleep(OTHERS_POLL_S)
        finished = False
        try:
            while True:
                event = await self._next()
                if isinstance(event, p.WorkerExited):
                    finished = True
                    raise ApiError(503, event.message or "The model engine stopped.", "server_error",
                                   "engine_stopped")
                if getattr(event, "request_id", None) != request_id:
                    continue
                if isinstance(event, p.Failed):
                    finished = True
                    raise ApiError(400, event.message, code="generation_failed")
                if isinstance(event, p.Token | p.Finished):
                    finished = isinstance(event, p.Finished)
                    if isinstance(event, p.Finished) and self.keep is not None:
                        asyncio.get_running_loop().run_in_executor(None, self._kept, ask, event, self._serving)
                    yield event
                    if finished:
                        return
        finally:
            if not finished:
                with anyio.CancelScope(shield=True):
                    await self._stop(request_id)

    def _kept(self, ask: Ask, finished: p.Finished, model_name: str) -> None:
        try:
            if self.keep is not None:
                self.keep(ask, finished, model_name)
        except Exception:  # the answer was given; only its copy in the history is missing
            log.exception("could not keep a served answer in the history")

    async def embed(self, texts: list[str]) -> p.Embedded:
        request_id = self.engine.embed(texts)
        while True:
            event = await self._next()
            if isinstance(event, p.WorkerExited):
                raise ApiError(503, event.message or "The model engine stopped.", "server_error", "engine_stopped")
            if isinstance(event, p.Embedded | p.Failed) and event.request_id == request_id:
                if isinstance(event, p.Failed):
                    raise ApiError(400, event.message, code="embedding_failed")
                return event

    async def _stop(self, request_id: int) -> None:
        log.info("answer %d: its client went away; stopping it", request_id)
        self.engine.stop()
        with anyio.move_on_after(STOP_WAIT_S):
            while True:
                event = await self._next()
                if (isinstance(event, p.Finished | p.Failed) and getattr(event, "request_id", None) == request_id) \
                        or isinstance(event, p.WorkerExited | p.Loaded):
                    return

    async def _next(self) -> p.Event:
        assert self._events is not None, "events are read only during a turn"
        return await self._events.get()

    def _schedule_unload(self) -> None:
        if self._idle_timer is not None:
            self._idle_timer.cancel()
        if self._loop is not None and self.idle_unload_s > 0:
            self._idle_timer = self._loop.call_later(self.idle_unload_s, self._unload_if_idle)

    def _unload_if_idle(self) -> None:
        idle = time.monotonic() - self._last_used
        if not self.busy and idle >= self.idle_unload_s - 0.5 \
                and self.engine.loaded is not None:
            log.info("unloading %s: no request for %.0f s", self.engine.loaded.path, idle)
            self.engine.unload()
