"""The engine worker process: the only place where llama.cpp runs.

It is started with the ``spawn`` method (the only one that works the same on every platform and inside a
PyInstaller bundle), reads commands from its pipe on a small reader thread, and runs them one at a time on
its main thread. The reader thread handles ``Stop`` at once by marking the request as cancelled; the
generation loop checks that mark after every streamed chunk and closes the stream, so a stop takes effect
within one token. Prompt processing cannot be interrupted from Python; the client covers that
case by ending the process (see ``EngineClient.stop``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import logging
import os
import queue
import sys
import threading
import time
from collections.abc import Callable, Iterator
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from app.engine import protocol as p
from app.engine.completion import LlamaModel, VocabModel
from app.engine.memory import peak_rss_bytes, reset_peak
from app.errors import InvalidModelError
from app.llama_log import capture_llama_log, parse_log
from app.load_plan import LoadPlan, cpu_has_amx

log = logging.getLogger(__name__)

TOKEN_FLUSH_S = 0.03
FALLBACK_CHAT_FORMAT = "chatml"


def run_worker(conn: Connection, log_file: str | None = None) -> None:
    """Entry point of the worker process."""
    _configure_logging(log_file)
    try:
        _Worker(conn).serve()
    except Exception:
        log.exception("engine worker failed")
        raise


def _configure_logging(log_file: str | None) -> None:
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_file:
        with contextlib.suppress(OSError):
            handlers.append(logging.FileHandler(log_file, encoding="utf-8"))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s worker %(levelname)s %(name)s: %(message)s",
                        handlers=handlers, force=True)


class _Worker:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.commands: queue.Queue[p.Command | None] = queue.Queue()
        self.cancelled: set[int] = set()
        self.parent_gone = threading.Event()
        self.send_lock = threading.Lock()
        self.llm: Any = None
        self.model_path: str | None = None
        self.vocab: tuple[str, VocabModel] | None = None

    def send(self, event: p.Event) -> None:
        with self.send_lock:
            try:
                self.conn.send(event)
            except (OSError, EOFError):
                self.parent_gone.set()

    def serve(self) -> None:
        import llama_cpp

        threading.Thread(target=self._read_commands, name="commands", daemon=True).start()
        self.send(p.Ready(pid=os.getpid(), llama_cpp_version=llama_cpp.__version__, rss_bytes=_current_rss()))
        while True:
            command = self.commands.get()
            if command is None or isinstance(command, p.Shutdown):
                break
            try:
                if isinstance(command, p.Load):
                    self._load(command)
                elif isinstance(command, p.Generate):
                    self._generate(command)
                elif isinstance(command, p.RunTask):
                    self._run_task(command)
                elif isinstance(command, p.PlanTask):
                    self._plan_task(command)
                elif isinstance(command, p.Unload):
                    self._unload()
                    self.send(p.Unloaded(peak_rss_bytes=peak_rss_bytes()))
            except Exception as error:
                log.exception("engine command %r failed", type(command).__name__)
                request_id = command.request_id if isinstance(command, p.Generate | p.RunTask | p.PlanTask) else None
                self.send(p.Failed(message=f"The engine hit an internal error: {error}",
                                   request_id=request_id, during=type(command).__name__.lower()))
        self._unload()

    def _read_commands(self) -> None:
        while True:
            try:
                command = self.conn.recv()
            except (EOFError, OSError):
                self.parent_gone.set()
                self.commands.put(None)
                return
            if isinstance(command, p.Stop):
                self.cancelled.add(command.request_id)
            else:
                self.commands.put(command)

    # --- loading ---

    def _load(self, command: p.Load) -> None:
        from app.gguf_facts import read_facts

        self._unload()
        reset_peak()  # the peak reported from now on belongs to this model
        name = Path(command.path).name
        try:
            facts = read_facts(Path(command.path))
        except InvalidModelError as error:
            self.send(p.Failed(message=str(error), during="load"))
            return
        trained = facts.context_length or command.plan.context_length
        plan = dataclasses.replace(command.plan, context_length=max(64, min(command.plan.context_length, trained)),
                                   extra_buffers=command.plan.extra_buffers and not cpu_has_amx())
        started = time.perf_counter()
        last_reported = -1.0

        def report(fraction: float) -> None:
            nonlocal last_reported
            if fraction - last_reported >= 0.02 or fraction >= 1.0:
                last_reported = fraction
                self.send(p.LoadProgress(fraction=min(max(fraction, 0.0), 1.0)))

        try:
            with capture_llama_log() as lines:
                llm = _load_llama(command.path, plan, report)
        except (ValueError, RuntimeError, OSError) as error:
            log.warning("llama.cpp could not load %s: %s", command.path, error)
            self.send(p.Failed(
                message=f"Could not load “{name}”. The file may be damaged, or it uses a model type "
                        "this version of llama.cpp does not support.",
                during="load"))
            return
        has_template = "tokenizer.chat_template" in llm.metadata
        if not has_template:
            llm.chat_format = FALLBACK_CHAT_FORMAT
        self.llm, self.model_path = llm, command.path
        self.send(p.Loaded(
            path=command.path, context_length=llm.n_ctx(), trained_context_length=trained,
            chat_format="the model's own template" if has_template else "ChatML (the file has no template)",
            has_chat_template=has_template, load_s=time.perf_counter() - started,
            rss_bytes=_current_rss(), plan=plan, buffers=parse_log("".join(lines)).to_dict(),
            weights_bytes=int(llm._model.size())))

    def _unload(self) -> None:
        if self.llm is not None:
            self.llm.close()
            self.llm = None
            self.model_path = None
            gc.collect()

    # --- tasks ---

    def _run_task(self, command: p.RunTask) -> None:
        from app.errors import HearthError
        from app.tasks.runner import TaskRun

        request_id = command.request_id
        if self.llm is None:
            self.send(p.Failed(message="No model is loaded. Choose a model first.", request_id=request_id))
            return
        run = TaskRun(
            LlamaModel(self.llm, lambda: self._stopping(request_id)), command.task,
            cancelled=lambda: self._stopping(request_id),
            on_progress=lambda progress: self.send(p.TaskProgress(request_id, progress)),
            on_text=lambda text: self.send(p.Token(request_id, text)),
            on_part=lambda part: self.send(p.TaskPartDone(request_id, part=part)),
            on_row=lambda row: self.send(p.TaskPartDone(request_id, row=row)))
        try:
            result = run.run()
        except HearthError as error:
            self.send(p.Failed(message=str(error), request_id=request_id, during="task"))
            return
        finally:
            self.cancelled.discard(request_id)
        self.send(p.TaskFinished(request_id, result, run.final_metrics(peak_rss_bytes())))

    def _stopping(self, request_id: int) -> bool:
        return request_id in self.cancelled or self.parent_gone.is_set()

    def _plan_task(self, command: p.PlanTask) -> None:
        from app.errors import HearthError
        from app.tasks.runner import plan_task

        loaded = self.llm is not None and self.model_path == command.path and \
            self.llm.n_ctx() == command.context_length
        try:
            if loaded:
                plan = plan_task(LlamaModel(self.llm, lambda: False), command.task)
            else:
                vocab = self._vocab_model(command.path, command.context_length)
                plan = plan_task(vocab, command.task)
        except HearthError as error:
            self.send(p.Failed(message=str(error), request_id=command.request_id, during="plan"))
            return
        except (ValueError, RuntimeError, OSError) as error:
            log.warning("cannot plan a task for %s: %s", command.path, error)
            self.send(p.Failed(message=f"Could not read the tokenizer of “{Path(command.path).name}”.",
                               request_id=command.request_id, during="plan"))
            return
        self.send(p.TaskPlanned(command.request_id, plan))

    def _vocab_model(self, path: str, context_length: int) -> VocabModel:
        """One vocabulary kept at a time: planning is asked again and again while a person edits a task."""
        cached = self.vocab
        if cached is not None and cached[0] == path:
            cached[1]._n_ctx = context_length
            return cached[1]
        if cached is not None:
            cached[1].close()
        with capture_llama_log():
            model = VocabModel(path, context_length)
        self.vocab = (path, model)
        return model

    # --- generation ---

    def _generate(self, command: p.Generate) -> None:
        if self.llm is None:
            self.send(p.Failed(message="No model is loaded. Choose a model first.",
                               request_id=command.request_id))
            return
        messages = _fit_messages(self.llm, command.messages, command.max_tokens)
        while True:
            if messages is None:
                self.send(p.Failed(
                    message="Your message is too long for this model's context window. Shorten it, or "
                            "raise the context length in the conversation settings.",
                    request_id=command.request_id))
                return
            dropped = len(command.messages) - len(messages)
            try:
                self._stream(command, messages, dropped)
                return
            except ValueError as error:
                if "context window" not in str(error):
                    raise
                messages = _drop_oldest_turn(messages)

    def _stream(self, command: p.Generate, messages: list[dict[str, str]], dropped: int) -> None:
        request_id = command.request_id
        trim_told = False

        def on_text(text: str) -> None:
            nonlocal trim_told
            if dropped and not trim_told:
                self.send(p.ContextTrimmed(request_id=request_id, dropped_messages=dropped))
                trim_told = True
            self.send(p.Token(request_id=request_id, text=text))

        model = LlamaModel(self.llm, lambda: self._stopping(request_id))
        try:
            done = model.complete(messages, max_tokens=command.max_tokens, temperature=command.temperature,
                                  top_p=command.top_p, seed=command.seed, on_text=on_text)
        finally:
            self.cancelled.discard(request_id)
        if dropped and not trim_told:
            self.send(p.ContextTrimmed(request_id=request_id, dropped_messages=dropped))
        completion = done.completion_tokens
        metrics = p.GenerationMetrics(
            prompt_tokens=done.prompt_tokens, completion_tokens=completion, ttft_s=done.ttft_s,
            tokens_per_s=(completion - 1) / done.generating_s if completion > 1 and done.generating_s > 0 else None,
            total_s=done.total_s, peak_rss_bytes=peak_rss_bytes())
        self.send(p.Finished(request_id=request_id, finish_reason=done.finish_reason, text=done.text,
                             metrics=metrics))


def _load_llama(path: str, plan: LoadPlan, report: Callable[[float], None]) -> Any:
    from llama_cpp import Llama

    with _model_params(report, extra_buffers=plan.extra_buffers):
        return Llama(model_path=path, **plan.llama_kwargs(), verbose=False)


@contextlib.contextmanager
def _model_params(report: Callable[[float], None], *, extra_buffers: bool) -> Iterator[None]:
    """Set the model parameters ``Llama(...)`` has no arguments for: the load progress callback (routed to
    ``report``) and ``use_extra_bufts``, for the length of one load.

    llama-cpp-python builds its model parameters inside ``Llama.__init__`` from
    ``llama_model_default_params()``, so this swaps in a version of that function that also sets them (the
    worker loads one model at a time on one thread, so nothing else sees the swap).
    """
    import llama_cpp.llama_cpp as native

    original = native.llama_model_default_params

    def on_progress(fraction: float, _data: Any) -> bool:
        report(float(fraction))
        return True

    callback = native.llama_progress_callback(on_progress)

    def params_with_progress() -> Any:
        params = original()
        params.progress_callback = callback
        params.use_extra_bufts = extra_buffers
        return params

    native.llama_model_default_params = params_with_progress
    try:
        yield
    finally:
        native.llama_model_default_params = original


def _token_estimate(llm: Any, messages: list[dict[str, str]]) -> int:
    """Tokens the formatted prompt will take: each message's text plus a margin for the template."""
    total = 16
    for message in messages:
        total += len(llm.tokenize(message["content"].encode("utf-8"), add_bos=False, special=True)) + 8
    return total


def _fit_messages(llm: Any, messages: list[dict[str, str]], max_tokens: int) -> list[dict[str, str]] | None:
    """Drop the oldest turns (never the system prompt or the newest message) until the prompt fits.

    Room is kept for the answer: ``max_tokens``, but at most half the window, so a long conversation with
    a large answer budget still gets answered.
    """
    limit = llm.n_ctx() - min(max_tokens, llm.n_ctx() // 2)
    fitted: list[dict[str, str]] | None = list(messages)
    while fitted is not None and _token_estimate(llm, fitted) > limit:
        fitted = _drop_oldest_turn(fitted)
    return fitted


def _drop_oldest_turn(messages: list[dict[str, str]]) -> list[dict[str, str]] | None:
    """Remove the oldest user turn and the replies to it, keeping the conversation starting with a user."""
    head = messages[:1] if messages and messages[0]["role"] == "system" else []
    rest = messages[len(head):]
    if len(rest) <= 1:
        return None
    rest = rest[1:]
    while len(rest) > 1 and rest[0]["role"] != "user":
        rest = rest[1:]
    return head + rest


def _current_rss() -> int:
    import psutil

    return int(psutil.Process().memory_info().rss)
