"""The app's side of the engine: starts the worker process and turns its pipe into events.

A model that is not a file here (one on another computer) is answered by the ``Elsewhere`` the client is given
(``app.remote.worker.RemoteWorkers``), which takes the same commands and gives the same events: loading one ends
the local worker, and loading a local model ends it.

Nothing here blocks the caller except the ``*_blocking`` helpers meant for the CLI, tests and benchmarks.
Events are delivered to subscribers on the client's reader thread; the Qt bridge re-emits them as signals
on the GUI thread. If the worker dies, subscribers get ``WorkerExited`` and a new worker can be started.
"""

from __future__ import annotations

import dataclasses
import enum
import itertools
import logging
import multiprocessing
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from app.engine import protocol as p
from app.engine.load_plan import LoadPlan
from app.engine.saved_states import remove_files
from app.engine.watchdog import end_stale_workers, register_worker, unregister_worker
from app.engine.worker import gpu_fallback, run_worker
from app.errors import ChatTemplateError, EngineError, ModelLoadError, WorkerCrashedError
from app.events import Listeners
from app.outcomes import FinishReason
from app.settings import Samplers
from app.tasks.spec import TaskInput

log = logging.getLogger(__name__)

Listener = Callable[[p.Event], None]


class Elsewhere(Protocol):
    """Workers for models that are not files on this computer: the engine client starts one in place of its worker
    process when such a model is loaded (``app.remote.worker.RemoteWorkers``)."""

    def handles(self, path: str) -> bool:
        """``path`` names a model this answers for."""
        ...

    def start(self) -> tuple[Any, Any]:
        """A worker, as the process and the connection the client keeps for its own worker."""
        ...

    def plan(self, command: p.PlanTask) -> p.Event:
        """``PlanTask`` for one of its models, answered beside whatever the engine runs."""
        ...


class EngineState(enum.Enum):
    STOPPED = "stopped"
    STARTING = "starting"
    IDLE = "idle"  # running, no model loaded
    LOADING = "loading"
    READY = "ready"
    GENERATING = "generating"


@dataclass
class _Active:
    request_id: int
    text: list[str]


class EngineClient:
    """Owns one worker process at a time.

    Args:
        log_file: where the worker appends its log lines (the app's log file).
        stop_grace_s: how long a stop may take before the worker is ended and restarted; a stop normally
            lands within one token, but llama.cpp cannot be interrupted while it reads a long prompt.
        states_dir: where the worker keeps conversations' KV states on disk (``Paths.kv_states_dir``);
            without it they are kept in the worker's memory only.
        registry_dir: where the workers started are recorded (``Paths.engines_dir``), so that a start ends a
            worker left behind by an app that died (``engine/watchdog.py``); without it, nothing is recorded.
    """

    def __init__(self, log_file: Path | None = None, stop_grace_s: float = 1.5,
                 states_dir: Path | None = None, registry_dir: Path | None = None,
                 elsewhere: Elsewhere | None = None) -> None:
        self._elsewhere = elsewhere
        self._remote = False  # the next worker started answers from another computer (``app.remote.worker``)
        self._log_file = str(log_file) if log_file else None
        self._states_dir = states_dir
        self._registry_dir = registry_dir
        self._stop_grace_s = stop_grace_s
        self._listeners: Listeners[p.Event] = Listeners()
        self._lock = threading.RLock()
        self._send_lock = threading.Lock()
        self._process: Any = None
        self._conn: Any = None
        self._reader: threading.Thread | None = None
        self._ids = itertools.count(1)
        self._active: _Active | None = None
        self._expected_exit = False
        self._last_load: p.Load | None = None
        self._fallback = ""  # a worker crashed loading on the graphics card: the sentence for the load that follows
        self.state = EngineState.STOPPED
        self.loaded: p.Loaded | None = None

    # --- subscription ---

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        return self._listeners.subscribe(listener)

    def _emit(self, event: p.Event) -> None:
        self._listeners.emit(event)

    # --- process ---

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.is_alive()

    def start(self) -> None:
        with self._lock:
            if self.running:
                return
            self._expected_exit = False
            if self.state is EngineState.STOPPED:
                self.state = EngineState.STARTING
            if self._remote:
                assert self._elsewhere is not None
                process, conn = self._elsewhere.start()
            else:
                process, conn = self._start_process()
            self._process, self._conn = process, conn
            self._reader = threading.Thread(target=self._read_events, args=(process, conn), name="engine-events",
                                            daemon=True)
            self._reader.start()

    def _start_process(self) -> tuple[Any, Any]:
        if self._registry_dir is not None:
            end_stale_workers(self._registry_dir)
        context = multiprocessing.get_context("spawn")
        parent, child = context.Pipe(duplex=True)
        states_dir = str(self._states_dir) if self._states_dir else None
        process = context.Process(target=run_worker, args=(child, self._log_file, states_dir),
                                  name="hearth-engine", daemon=True)
        process.start()
        child.close()
        if self._registry_dir is not None and process.pid is not None:
            register_worker(self._registry_dir, process.pid)
        return process, parent

    def _use_remote(self, remote: bool) -> None:
        """The worker that answers from now on: a model on another computer or on this one. The other kind, if it
        runs, is shut down first (one model at a time, as ever)."""
        with self._lock:
            process = self._process
            self._remote = remote
            if process is None or self._is_remote(process) == remote:
                return
        self.shutdown()

    @staticmethod
    def _is_remote(process: Any) -> bool:
        return process is not None and process.pid is None

    def _send(self, command: p.Command) -> None:
        if not self.running:
            self.start()
        with self._send_lock:
            try:
                self._conn.send(command)
            except (OSError, EOFError) as error:
                raise WorkerCrashedError("The model engine is not running. Try again.") from error

    def _read_events(self, process: Any, conn: Any) -> None:
        while True:
            try:
                event = conn.recv()
            except (EOFError, OSError):
                break
            self._emit(self._track(event))
        process.join(timeout=5)
        code = process.exitcode
        for _ in range(20):  # another thread may be reaping it right now (a forced stop)
            if code is not None or process.is_alive():
                break
            time.sleep(0.05)
            code = process.exitcode
        if self._registry_dir is not None and process.pid is not None and not process.is_alive():
            unregister_worker(self._registry_dir, process.pid)
        with self._lock:
            if process is not self._process:
                return  # an older worker we already replaced
            expected = self._expected_exit
            crashed_loading = self._last_load if not expected and self.state is EngineState.LOADING else None
            self._process = self._conn = None
            self.state, self.loaded, self._active = EngineState.STOPPED, None, None
        if crashed_loading is not None and crashed_loading.plan.gpu_layers != 0:
            # A graphics driver that takes the worker down with it: the processor, as for a load that fails.
            log.error("engine worker exited with code %s while loading %s with layers on the graphics card; "
                      "loading it on the processor", code, crashed_loading.path)
            self._fallback = gpu_fallback(Path(crashed_loading.path).name, "its driver stopped the engine")
            self.load(crashed_loading.path, plan=dataclasses.replace(crashed_loading.plan, gpu_layers=0))
            return
        message = "" if expected else (
            f"The model engine stopped unexpectedly (exit code {code}). The model file may be damaged or "
            "too large for this computer. Your conversation is saved; load a model to continue.")
        if not expected:
            log.error("engine worker exited unexpectedly with code %s", code)
        self._emit(p.WorkerExited(exitcode=code, expected=expected, message=message))

    def _track(self, event: p.Event) -> p.Event:
        """The client's state after ``event``; returns the event to pass on (the load that follows a crash on the
        graphics card says why it runs on the processor)."""
        with self._lock:
            if isinstance(event, p.Ready):
                if self.state is EngineState.STARTING:
                    self.state = EngineState.IDLE
            elif isinstance(event, p.Loaded):
                self.state, self.loaded = EngineState.READY, event
                if self._fallback:  # said once, with the load it led to
                    event = self.loaded = dataclasses.replace(event, gpu_fallback=event.gpu_fallback or self._fallback)
                    self._fallback = ""
                # A reload after a forced stop takes the settings this load ended with (tuned, not probed again).
                self._last_load = p.Load(path=event.path, plan=event.plan)
            elif isinstance(event, p.Token) and self._active and self._active.request_id == event.request_id:
                self._active.text.append(event.text)
            elif isinstance(event, p.Finished | p.Failed | p.TaskFinished):
                if event.request_id is not None and self._active and \
                        self._active.request_id == event.request_id:
                    self._active = None
                if isinstance(event, p.Failed) and event.during is p.During.PLAN:
                    return event
                if isinstance(event, p.Failed) and event.during is p.During.LOAD:
                    self.state, self.loaded = EngineState.IDLE, None
                else:
                    self.state = EngineState.READY if self.loaded else EngineState.IDLE
            elif isinstance(event, p.Unloaded):
                self.state, self.loaded = EngineState.IDLE, None
        return event

    # --- commands ---

    def load(self, path: Path | str, *, context_length: int = 4096, threads: int | None = None,
             gpu_layers: int = 0, plan: LoadPlan | None = None) -> None:
        """Load with ``plan`` (decided by the forecast), or a CPU plan built from the simple arguments."""
        plan = plan or LoadPlan(context_length=context_length, threads=threads, gpu_layers=gpu_layers)
        remote = self._elsewhere is not None and self._elsewhere.handles(str(path))
        self._use_remote(remote)
        command = p.Load(path=str(path) if remote else str(Path(path).resolve()), plan=plan)
        with self._lock:
            self._last_load = command
            self.state, self.loaded = EngineState.LOADING, None
        self._emit(p.LoadStarted(path=command.path, plan=plan))
        self._send(command)

    def generate(self, messages: list[dict[str, str]], *, max_tokens: int = 512, temperature: float = 0.7,
                 top_p: float = 0.95, seed: int | None = None, conversation: str | None = None,
                 samplers: Samplers | None = None, prefill: str = "", watched: bool = True,
                 stop: tuple[str, ...] = (), json_object: bool = False, json_schema: str | None = None,
                 raw_prompt: str | None = None) -> int:
        """Answer ``messages``; ``conversation`` names the conversation they continue, so that the worker keeps
        its KV cache for the next turn; ``prefill`` is the start of the answer, to go on from
        (``protocol.Generate``). ``watched``: stopped when it loops. ``stop``, ``json_object``, ``json_schema``,
        ``raw_prompt``: as an API client asks (``protocol.Generate``)."""
        with self._lock:
            if self._active is not None:
                raise EngineError("The model is still answering. Stop it first.")
            request_id = next(self._ids)
            self._active = _Active(request_id, [])
            self.state = EngineState.GENERATING
        self._send(p.Generate(request_id=request_id, messages=messages, max_tokens=max_tokens,
                              temperature=temperature, top_p=top_p, seed=seed, conversation=conversation,
                              samplers=samplers or Samplers(), prefill=prefill, watched=watched, stop=stop,
                              json_object=json_object, json_schema=json_schema, raw_prompt=raw_prompt))
        return request_id

    def embed(self, texts: list[str]) -> int:
        """Ask for the loaded model's embedding of each text (``protocol.Embed``); answered by ``Embedded`` (or
        ``Failed``) with the returned request id."""
        request_id = next(self._ids)
        self._send(p.Embed(request_id=request_id, texts=list(texts)))
        return request_id

    def count_tokens(self, messages: list[dict[str, str]], *, max_tokens: int = 512,
                     context_length: int = 0) -> int | None:
        """Ask how much of the context ``messages`` take (``protocol.CountTokens``), answered by
        ``TokensCounted`` with the returned request id, also while an answer is written; ``None``, and nothing
        sent, while no model is loaded."""
        with self._lock:
            conn = self._conn if self.running and self.loaded is not None else None
            request_id = next(self._ids)
        if conn is None:
            return None
        try:
            with self._send_lock:
                conn.send(p.CountTokens(request_id, messages, max_tokens=max_tokens, context_length=context_length))
        except (OSError, EOFError):
            return None
        return request_id

    def read_ahead(self, messages: list[dict[str, str]], *, conversation: str, max_tokens: int = 512) -> bool:
        """Have the idle worker read a draft prompt into ``conversation``'s cache (``protocol.ReadAhead``);
        ``False``, and nothing sent, while it loads or answers or no model is loaded: a read-ahead is only
        ever a head start."""
        with self._lock:
            conn = self._conn if self.running and self.state is EngineState.READY and self._active is None \
                else None
        if conn is None:
            return False
        try:
            with self._send_lock:
                conn.send(p.ReadAhead(conversation=conversation, messages=messages, max_tokens=max_tokens))
        except (OSError, EOFError):
            return False
        return True

    def forget(self, conversation: str) -> None:
        """Delete what is kept of a conversation's KV cache: the worker does it in order with its other
        commands (it may be writing that file right now); with no worker running, it is done here."""
        with self._lock:
            conn = self._conn if self.running else None
        if conn is not None:
            try:
                with self._send_lock:
                    conn.send(p.Forget(conversation))
                return
            except (OSError, EOFError):
                pass
        if self._states_dir is not None:
            remove_files(self._states_dir, conversation)

    def run_task(self, task: TaskInput) -> int:
        """Start a summarize / translate / classify run on the loaded model; ``stop`` ends it, keeping what
        it has done (see ``protocol.RunTask`` for its events)."""
        with self._lock:
            if self._active is not None:
                raise EngineError("The model is still busy. Stop it first.")
            request_id = next(self._ids)
            self._active = _Active(request_id, [])
            self.state = EngineState.GENERATING
        self._send(p.RunTask(request_id=request_id, task=task))
        return request_id

    def plan_task(self, path: Path | str, context_length: int, task: TaskInput) -> int:
        """Ask how ``task`` would run on the model at ``path``; answered by ``TaskPlanned`` or ``Failed``
        with the returned request id. It waits behind a running answer, as every engine command does."""
        request_id = next(self._ids)
        elsewhere = self._elsewhere
        if elsewhere is not None and elsewhere.handles(str(path)):  # asked there, beside whatever runs here
            command = p.PlanTask(request_id=request_id, path=str(path), context_length=context_length, task=task)
            threading.Thread(target=lambda: self._emit(elsewhere.plan(command)), daemon=True,
                             name="remote-plan").start()
            return request_id
        self._send(p.PlanTask(request_id=request_id, path=str(Path(path).resolve()),
                              context_length=context_length, task=task))
        return request_id

    def stop(self) -> None:
        """Stop the current answer; if the worker does not confirm in time, end and restart it."""
        with self._lock:
            active = self._active
        if active is None:
            return
        self._send(p.Stop(request_id=active.request_id))
        timer = threading.Timer(self._stop_grace_s, self._force_stop, args=(active,))
        timer.daemon = True
        timer.start()

    def _force_stop(self, active: _Active) -> None:
        with self._lock:
            if self._active is not active:
                return
            log.warning("engine did not stop in %.1fs; restarting it", self._stop_grace_s)
            self._active = None
            reload = self._last_load if self.loaded else None
            self._end_process()
            # Forget it here: its reader thread may reap it first, and then ``is_alive()`` on this side cannot
            # tell (two threads must not wait for one process), so ``start`` would think it still runs.
            self._process = self._conn = None
            self.state, self.loaded = EngineState.STOPPED, None
        self._emit(p.Finished(request_id=active.request_id, finish_reason=FinishReason.CANCELLED,
                              text="".join(active.text)))
        self.start()
        if reload is not None:
            self.load(reload.path, plan=reload.plan)

    def use_chatml(self) -> None:
        """Write the loaded model's prompts in ChatML instead of its own chat template, which failed (an answer
        ended in ``Failed.chat_template``), until another model is loaded; a reload after a forced stop keeps it."""
        with self._lock:
            loaded = self.loaded
            if loaded is None:
                raise EngineError("No model is loaded. Choose a model first.")
            plan = dataclasses.replace(loaded.plan, chatml=True)
            self.loaded = dataclasses.replace(loaded, chat_format=p.CHATML_CHOSEN, plan=plan)
            self._last_load = p.Load(path=loaded.path, plan=plan)
        self._send(p.UseChatML())

    def unload(self) -> None:
        if self.running:
            self._send(p.Unload())

    def shutdown(self, timeout: float = 5.0) -> None:
        """Stop, let the worker close the model, and wait for it; end it only if it does not exit."""
        with self._lock:
            process = self._process
            if process is None:
                return
            self._expected_exit = True
            active = self._active
        try:
            if active is not None:
                self._conn.send(p.Stop(request_id=active.request_id))
            self._conn.send(p.Shutdown())
        except (OSError, EOFError):
            pass
        # The reader thread reaps the process and reports the exit; waiting on it (not on the process, which
        # two threads must not wait for at once) means the state is final when this returns.
        reader = self._reader if self._reader is not threading.current_thread() else None
        if reader is not None:
            reader.join(timeout)
        else:
            process.join(timeout)
        if process.is_alive():
            log.warning("engine worker did not exit in %.1fs; terminating it", timeout)
            with self._lock:
                self._end_process()
            if reader is not None:
                reader.join(timeout)

    def _end_process(self) -> None:
        process = self._process
        if process is None:
            return
        self._expected_exit = True
        process.terminate()
        process.join(2)
        if process.is_alive():
            process.kill()
            process.join(2)

    # --- blocking helpers (CLI, tests, benchmarks; never the GUI thread) ---

    def load_blocking(self, path: Path | str, *, timeout: float = 600, **options: Any) -> p.Loaded:
        with EventWaiter(self) as waiter:
            self.load(path, **options)
            deadline = time.monotonic() + timeout
            event = waiter.wait_for((p.Loaded, p.Failed, p.WorkerExited), timeout)
            while isinstance(event, p.WorkerExited) and event.expected:  # the other kind of worker, ended for this
                event = waiter.wait_for((p.Loaded, p.Failed, p.WorkerExited), max(deadline - time.monotonic(), 0))
        if isinstance(event, p.Failed):
            raise ModelLoadError(event.message)
        if isinstance(event, p.WorkerExited):
            raise WorkerCrashedError(event.message or "The model engine stopped while loading.")
        assert isinstance(event, p.Loaded)
        return event

    def count_tokens_blocking(self, messages: list[dict[str, str]], *, max_tokens: int = 512,
                              context_length: int = 0, timeout: float = 30) -> p.TokensCounted | None:
        """``count_tokens``, waited for; ``None`` when nothing could be counted (no model, no worker)."""
        with EventWaiter(self) as waiter:
            request_id = self.count_tokens(messages, max_tokens=max_tokens, context_length=context_length)
            if request_id is None:
                return None
            deadline = time.monotonic() + timeout
            while True:
                try:
                    event = waiter.wait_for((p.TokensCounted, p.WorkerExited), max(deadline - time.monotonic(), 0))
                except EngineError:
                    return None
                if isinstance(event, p.WorkerExited):
                    return None
                if isinstance(event, p.TokensCounted) and event.request_id == request_id:
                    return event if event.context_length else None

    def chat_blocking(self, messages: list[dict[str, str]], *, on_token: Callable[[str], None] | None = None,
                      on_trimmed: Callable[[int], None] | None = None, timeout: float = 3600,
                      **options: Any) -> p.Finished:
        with EventWaiter(self) as waiter:
            request_id = self.generate(messages, **options)
            deadline = time.monotonic() + timeout
            while True:
                event = waiter.wait_for((p.Token, p.ContextTrimmed, p.Finished, p.Failed, p.WorkerExited),
                                        max(deadline - time.monotonic(), 0))
                if isinstance(event, p.Token) and event.request_id == request_id:
                    if on_token:
                        on_token(event.text)
                elif isinstance(event, p.ContextTrimmed) and event.request_id == request_id:
                    if on_trimmed:
                        on_trimmed(event.dropped_messages)
                elif isinstance(event, p.Finished) and event.request_id == request_id:
                    return event
                elif isinstance(event, p.Failed) and event.request_id in (request_id, None):
                    raise (ChatTemplateError if event.chat_template else EngineError)(event.message)
                elif isinstance(event, p.WorkerExited):
                    raise WorkerCrashedError(event.message or "The model engine stopped.")


class EventWaiter:
    """Collects a client's events in a queue so synchronous code can wait for one kind."""

    def __init__(self, client: EngineClient) -> None:
        self._client = client
        self._queue: queue.Queue[p.Event] = queue.Queue()
        self._unsubscribe: Callable[[], None] | None = None

    def __enter__(self) -> EventWaiter:
        self._unsubscribe = self._client.subscribe(self._queue.put)
        return self

    def __exit__(self, *_exc: object) -> None:
        if self._unsubscribe:
            self._unsubscribe()

    def wait_for(self, kinds: tuple[type, ...], timeout: float) -> p.Event:
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise EngineError("The model engine did not answer in time.")
            try:
                event = self._queue.get(timeout=remaining)
            except queue.Empty:
                continue
            if isinstance(event, kinds):
                return event
