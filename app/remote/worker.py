"""A model on another computer, answered as the engine worker answers: the engine client sends it the same
commands (``app.engine.protocol``) and reads the same events, so the chat, the tasks and the comparisons use a
remote model exactly as a local one, and the client's stop, state and reload rules hold for both.

``RemoteWorker.start`` gives the pair the client keeps for a worker process: something with a process's
``pid``, ``is_alive``, ``join``, ``terminate``, ``kill`` and ``exitcode``, and a connection with ``send`` and
``recv``. Commands run one at a time on the worker's thread; ``Stop`` is marked at once (the stream ends after the
next piece) and ``CountTokens`` is answered on a thread of its own, as in the process.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass
from typing import Any

from app.engine import protocol as p
from app.engine.fitting import count_tokens, fit_messages
from app.errors import HearthError
from app.remote import address
from app.remote.computers import DEFAULT_CONTEXT, Computers
from app.remote.server import RemoteError, RemoteServer
from app.remote.task_model import RemoteTaskModel

log = logging.getLogger(__name__)

_END = object()


@dataclass
class _Loaded:
    address: address.RemoteAddress
    server: RemoteServer
    model: RemoteTaskModel


class _TokenizerLike:
    """What ``app.engine.fitting`` asks of llama.cpp's model, over the remote model's tokens."""

    def __init__(self, model: RemoteTaskModel) -> None:
        self._model = model

    def tokenize(self, text: bytes, add_bos: bool = False, special: bool = True) -> list[int]:
        return self._model.tokenize(text.decode("utf-8", errors="replace"))

    def n_ctx(self) -> int:
        return self._model.n_ctx


class RemoteProcess:
    """The worker's stand-in for a process, for the engine client."""

    pid: int | None = None

    def __init__(self, worker: RemoteWorker) -> None:
        self._worker = worker

    def is_alive(self) -> bool:
        return self._worker.thread.is_alive()

    def join(self, timeout: float | None = None) -> None:
        self._worker.thread.join(timeout)

    def terminate(self) -> None:
        self._worker.end()

    kill = terminate

    @property
    def exitcode(self) -> int | None:
        return None if self.is_alive() else 0


class RemoteConnection:
    def __init__(self, worker: RemoteWorker) -> None:
        self._worker = worker

    def send(self, command: p.Command) -> None:
        self._worker.take(command)

    def recv(self) -> p.Event:
        event = self._worker.events.get()
        if event is _END:
            raise EOFError
        return event  # type: ignore[no-any-return]

    def close(self) -> None:
        self._worker.end()


class RemoteWorker:
    def __init__(self, computers: Computers) -> None:
        self.computers = computers
        self.events: queue.Queue[Any] = queue.Queue()
        self.commands: queue.Queue[p.Command | None] = queue.Queue()
        self.counts: queue.Queue[p.CountTokens | None] = queue.Queue()
        self.cancelled: set[int] = set()
        self.ending = threading.Event()
        self.loaded: _Loaded | None = None
        self.thread = threading.Thread(target=self._serve, name="remote-engine", daemon=True)

    @classmethod
    def start(cls, computers: Computers) -> tuple[RemoteProcess, RemoteConnection]:
        worker = cls(computers)
        worker.thread.start()
        threading.Thread(target=worker._count_tokens, name="remote-counts", daemon=True).start()
        return RemoteProcess(worker), RemoteConnection(worker)

    def take(self, command: p.Command) -> None:
        if self.ending.is_set():
            raise OSError("the remote engine has ended")
        if isinstance(command, p.Stop):
            self.cancelled.add(command.request_id)
        elif isinstance(command, p.CountTokens):
            self.counts.put(command)
        elif isinstance(command, p.Shutdown):
            self.end()
        else:
            self.commands.put(command)

    def end(self) -> None:
        """Ends the thread; a stream being read is cut at once (its connection closed under it)."""
        self.ending.set()
        self.commands.put(None)
        self.counts.put(None)
        loaded = self.loaded
        if loaded is not None:
            loaded.server.close()

    def _send(self, event: p.Event) -> None:
        self.events.put(event)

    def _stopping(self, request_id: int) -> bool:
        return request_id in self.cancelled or self.ending.is_set()

    def _serve(self) -> None:
        self._send(p.Ready(pid=0, llama_cpp_version="", remote="another computer"))
        try:
            while (command := self.commands.get()) is not None and not self.ending.is_set():
                try:
                    self._run(command)
                except HearthError as error:
                    log.info("remote command %s failed: %s", type(command).__name__, error)
                    self._send(p.Failed(message=str(error), request_id=_request_id(command),
                                        during=p.During.of(command)))
                except Exception as error:
                    log.exception("remote command %s failed", type(command).__name__)
                    self._send(p.Failed(message=f"Hearth hit an internal error using the remote model: {error}",
                                        request_id=_request_id(command), during=p.During.of(command)))
        finally:
            self._close()
            self.events.put(_END)

    def _run(self, command: p.Command) -> None:
        if isinstance(command, p.Load):
            self._load(command)
        elif isinstance(command, p.Generate):
            self._generate(command)
        elif isinstance(command, p.RunTask):
            self._run_task(command)
        elif isinstance(command, p.PlanTask):
            self._plan_task(command)
        elif isinstance(command, p.Embed):
            raise RemoteError("Embeddings are made with models on this computer only.")
        elif isinstance(command, p.Unload):
            self._close()
            self._send(p.Unloaded(peak_rss_bytes=0))
        # Forget, ReadAhead and UseChatML concern a local model's cache and template: nothing to do here.

    def _close(self) -> None:
        if self.loaded is not None:
            self.loaded.server.close()
            self.loaded = None

    def _load(self, command: p.Load) -> None:
        started = time.perf_counter()
        self._close()
        where, server, context = open_model(self.computers, command.path)
        model = RemoteTaskModel(server, where.model, context)
        self.loaded = _Loaded(where, server, model)
        name = self.computers.find(where.base_url)
        self._send(p.Loaded(path=command.path, context_length=context, trained_context_length=context,
                            chat_format=p.SERVER_TEMPLATE, has_chat_template=True,
                            load_s=time.perf_counter() - started, rss_bytes=0, plan=command.plan,
                            remote=name.name if name else where.host))

    def _model(self, request_id: int) -> RemoteTaskModel:
        if self.loaded is None:
            raise RemoteError("No model is loaded. Choose a model first.")
        model = self.loaded.model
        model.cancelled = lambda: self._stopping(request_id)
        return model

    def _generate(self, command: p.Generate) -> None:
        request_id = command.request_id
        try:
            model = self._model(request_id)
            if command.raw_prompt is not None or command.prefill:
                raise RemoteError("A model on another computer cannot go on from a given text; ask it again instead.")
            messages = fit_messages(_TokenizerLike(model), command.messages, command.max_tokens)
            if messages is None:
                raise RemoteError("Your message is too long for this model's context window. Shorten it.")
            dropped = len(command.messages) - len(messages)
            if dropped:
                self._send(p.ContextTrimmed(request_id=request_id, dropped_messages=dropped))
            started = time.perf_counter()
            answer = model.server.chat(
                model.model, messages, max_tokens=command.max_tokens, temperature=command.temperature,
                top_p=command.top_p, seed=command.seed, stop=list(command.stop) or None,
                on_text=lambda text: self._send(p.Token(request_id=request_id, text=text)),
                cancelled=lambda: self._stopping(request_id))
        finally:
            self.cancelled.discard(request_id)
        metrics = p.GenerationMetrics(prompt_tokens=answer.prompt_tokens, completion_tokens=answer.completion_tokens,
                                      ttft_s=answer.ttft_s, tokens_per_s=answer.tokens_per_s,
                                      total_s=time.perf_counter() - started)
        if answer.error:
            log.info("answer %d cut off: %s", request_id, answer.error)
        self._send(p.Finished(request_id=request_id, finish_reason=answer.finish_reason, text=answer.text,
                              metrics=metrics, error=answer.error))

    def _run_task(self, command: p.RunTask) -> None:
        from app.tasks.orchestration import TaskRun

        request_id = command.request_id
        try:
            model = self._model(request_id)
            run = TaskRun(model, command.task, cancelled=lambda: self._stopping(request_id),
                          on_progress=lambda progress: self._send(p.TaskProgress(request_id, progress)),
                          on_text=lambda text: self._send(p.Token(request_id, text)),
                          on_part=lambda part: self._send(p.TaskPartDone(request_id, part=part)),
                          on_row=lambda row: self._send(p.TaskPartDone(request_id, row=row)))
            result = run.run()
        finally:
            self.cancelled.discard(request_id)
        self._send(p.TaskFinished(request_id, result, run.final_metrics(0)))

    def _plan_task(self, command: p.PlanTask) -> None:
        from app.tasks.orchestration import plan_task

        loaded = self.loaded
        if loaded is not None and str(loaded.address) == command.path:
            self._send(p.TaskPlanned(command.request_id, plan_task(loaded.model, command.task)))
        else:
            self._send(plan_remote(self.computers, command))

    def _count_tokens(self) -> None:
        while (command := self.counts.get()) is not None:
            counted = p.TokensCounted(command.request_id, tokens=0, least=0, context_length=0, room=0)
            loaded = self.loaded
            try:
                if loaded is not None:
                    counted = count_tokens(_TokenizerLike(loaded.model), command)
            except Exception:  # the meter shows nothing; the answer's own fitting still decides
                log.info("counting tokens on the remote server failed", exc_info=True)
            self._send(counted)


def open_model(computers: Computers, path: str) -> tuple[address.RemoteAddress, RemoteServer, int]:
    """The server of ``path`` and the model's context, for a computer the person added (and only then)."""
    try:
        where = address.parse(path)
    except ValueError as error:
        raise RemoteError("That model is not on a computer Hearth knows.") from error
    computer = computers.find(where.base_url)
    if computer is None:
        raise RemoteError(f"{where.host} is no longer among the computers Hearth may use. Add it again under "
                          "Models → Other computers… to use its models.")
    server = RemoteServer(computer.base_url, computers.key(computer.base_url))
    try:
        listed = {model.id: model for model in server.models()}
        if where.model not in listed:
            raise RemoteError(f"{computer.name} has no model called “{where.model}” any more.")
        context = server.context_length(where.model) or computer.context_length or DEFAULT_CONTEXT
    except BaseException:
        server.close()
        raise
    return where, server, context


def plan_remote(computers: Computers, command: p.PlanTask) -> p.Event:
    """``PlanTask`` for a model on another computer, answered beside whatever the engine runs (planning asks the
    server's tokenizer only)."""
    from app.tasks.orchestration import plan_task

    try:
        where, server, context = open_model(computers, command.path)
        try:
            return p.TaskPlanned(command.request_id, plan_task(RemoteTaskModel(server, where.model, context),
                                                               command.task))
        finally:
            server.close()
    except HearthError as error:
        return p.Failed(message=str(error), request_id=command.request_id, during=p.During.PLAN)
    except Exception as error:
        log.exception("planning a task on a remote model failed")
        return p.Failed(message=f"Could not plan the task on the remote model: {error}",
                        request_id=command.request_id, during=p.During.PLAN)


def _request_id(command: p.Command) -> int | None:
    return command.request_id if isinstance(command, p.Generate | p.RunTask | p.PlanTask | p.Embed) else None


class RemoteWorkers:
    """The engine client's ``Elsewhere``: workers for the models of the computers the person added."""

    def __init__(self, computers: Computers) -> None:
        self.computers = computers

    def handles(self, path: str) -> bool:
        return address.is_remote(path)

    def start(self) -> tuple[RemoteProcess, RemoteConnection]:
        return RemoteWorker.start(self.computers)

    def plan(self, command: p.PlanTask) -> p.Event:
        return plan_remote(self.computers, command)
