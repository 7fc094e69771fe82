"""The engine worker process: the only place where llama.cpp runs.

It is started with the ``spawn`` method (the only one that works the same on every platform and inside a
PyInstaller bundle), reads commands from its pipe on a small reader thread, and runs them one at a time on
its main thread. The reader thread handles ``Stop`` at once by marking the request as cancelled; the
generation loop checks that mark after every streamed chunk and closes the stream, so a stop takes effect
within one token. Prompt processing cannot be interrupted from Python; the client covers that case by ending
the process (see ``EngineClient.stop``). ``CountTokens`` is answered on a thread of its own, beside the command
running: counting needs only the tokenizer, which llama.cpp lets any thread use (its server tokenizes beside
decoding too).
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import logging
import os
import queue
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from app.degenerate import Watch
from app.engine import llama_kv
from app.engine import protocol as p
from app.engine.backends import Backends, prepare_llama
from app.engine.completion import LlamaModel, VocabModel, guarded_templates
from app.engine.fitting import count_tokens, drop_oldest_turn, fit_messages
from app.engine.llama_log import capture_llama_log, model_lines, parse_log, send_output_to
from app.engine.load_plan import LoadPlan, Tuning
from app.engine.memory import MemoryCap, peak_rss_bytes, reset_peak
from app.engine.saved_states import StateStore, memory_budget_for
from app.engine.tuning import cpu_has_amx
from app.engine.watchdog import watch_parent
from app.errors import ChatTemplateError, HearthError, InvalidModelError
from app.outcomes import FinishReason

log = logging.getLogger(__name__)

TOKEN_FLUSH_S = 0.03
FALLBACK_CHAT_FORMAT = "chatml"
EMBED_CONTEXT = 512  # tokens of one text an embedding reads (a longer one is cut: the API reports the tokens read)
PROBE_TEXT = ("The old lighthouse keeper climbed the stairs every evening, counting the steps and listening to "
              "the sea, while the town below lit its windows one by one.")
OUT_OF_MEMORY = ("The model engine ran out of the memory Hearth allows it and stopped this request. Try a shorter "
                 "message or a smaller context length.")
OPENING_MOST_TOKENS = 48  # more than this to read after an answer: the template rewrote the conversation


def run_worker(conn: Connection, log_file: str | None = None, states_dir: str | None = None) -> None:
    """Entry point of the worker process. ``states_dir``: where conversations' KV states spill to disk.

    Ctrl+C in a terminal goes to the whole process group: the worker ignores it, and the app (the command line's
    chat) turns it into a Stop, so the answer ends and the model stays loaded."""
    with contextlib.suppress(ValueError, OSError):  # not the main thread (tests)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    _configure_logging(log_file)
    watch_parent()  # the app dies (kill -9, a crash): this process ends within a second, busy or not
    try:
        _Worker(conn, Path(states_dir) if states_dir else None).serve()
    except Exception:
        log.exception("engine worker failed")
        raise


def _configure_logging(log_file: str | None) -> None:
    """With a log file (the window's and the command line's), everything the worker writes goes there: its log,
    and what llama.cpp and the C runtime print on its standard output and error (an abort's message, and the
    backtrace ggml prints through gdb where gdb is installed), which would otherwise land in the terminal of
    ``hearth chat``, in the middle of its answer or of ``--json`` output. Without one (tests), the log goes to
    standard error."""
    handlers: list[logging.Handler] = []
    if log_file:
        with contextlib.suppress(OSError):
            handlers.append(logging.FileHandler(log_file, encoding="utf-8"))
            send_output_to(log_file)
    if not handlers:
        handlers.append(logging.StreamHandler(sys.stderr))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s worker %(levelname)s %(name)s: %(message)s",
                        handlers=handlers, force=True)


@dataclasses.dataclass
class _Drafted:
    """A read-ahead's messages as the app sent them, fitted to the context and formatted: when the message
    sent is that draft, the answer starts without formatting and tokenizing the conversation again."""

    conversation: str
    messages: list[dict[str, str]]
    max_tokens: int
    fitted: list[dict[str, str]]
    formatted: tuple[list[int], list[str]]


class _Worker:
    def __init__(self, conn: Connection, states_dir: Path | None = None) -> None:
        self.conn = conn
        self.commands: queue.Queue[p.Command | None] = queue.Queue()
        self.cancelled: set[int] = set()
        self.parent_gone = threading.Event()
        self.send_lock = threading.Lock()
        self.llm: Any = None
        self.model_path: str | None = None
        self.governor: Any = None  # engine.tuning.ThreadGovernor of the loaded model
        self.vocab: tuple[str, VocabModel] | None = None
        self.states = StateStore(states_dir)
        self.kv_owner: str | None = None  # the conversation the model's KV cache holds now
        self.kv_reusable = 0  # how many of its cached tokens that conversation's next prompt will start with
        self.drafted: _Drafted | None = None  # the last read-ahead, for the message it becomes
        self.counts: queue.Queue[p.CountTokens | None] = queue.Queue()
        self.model_lock = threading.Lock()  # the counting thread's tokenizer is not closed under it
        self.memory_cap = MemoryCap()
        self.backends = Backends(names=(), modules=False)  # what ``serve`` finds loaded
        self.embedder: Any = None  # the loaded model's embedding context, made when first asked for (``_embed``)

    def send(self, event: p.Event) -> None:
        with self.send_lock:
            try:
                self.conn.send(event)
            except (OSError, EOFError):
                self.parent_gone.set()

    def serve(self) -> None:
        backends = self.backends = prepare_llama()
        import llama_cpp

        threading.Thread(target=self._read_commands, name="commands", daemon=True).start()
        threading.Thread(target=self._count_tokens, name="counts", daemon=True).start()
        self.send(p.Ready(pid=os.getpid(), llama_cpp_version=llama_cpp.__version__, rss_bytes=_current_rss(),
                          backends=backends.names, cpu_variant=backends.cpu_variant))
        while True:
            command = self.commands.get()
            if command is None or isinstance(command, p.Shutdown):
                break
            try:
                if isinstance(command, p.Load):
                    self._set_aside_all()
                    self._load(command)
                elif isinstance(command, p.Generate):
                    self._generate(command)
                elif isinstance(command, p.RunTask):
                    self._use_conversation(None)
                    self._run_task(command)
                elif isinstance(command, p.PlanTask):
                    self._plan_task(command)
                elif isinstance(command, p.Forget):
                    self._forget(command.conversation)
                elif isinstance(command, p.ReadAhead):
                    if self.commands.empty():  # else a newer draft, or the message itself, is waiting
                        self._read_ahead(command)
                elif isinstance(command, p.UseChatML):
                    self._use_chatml()
                elif isinstance(command, p.Embed):
                    self._embed(command)
                elif isinstance(command, p.Unload):
                    self._set_aside_all()
                    self._unload()
                    self.send(p.Unloaded(peak_rss_bytes=peak_rss_bytes()))
            except HearthError as error:  # the model file's doing (its chat template): a sentence, no traceback
                log.warning("engine command %r failed: %s", type(command).__name__, error)
                self.send(p.Failed(message=str(error), request_id=_request_id(command), during=p.During.of(command),
                                   chat_template=isinstance(error, ChatTemplateError)))
            except MemoryError:
                log.warning("engine command %r ran out of memory", type(command).__name__, exc_info=True)
                self.send(p.Failed(message=OUT_OF_MEMORY, request_id=_request_id(command),
                                   during=p.During.of(command)))
            except Exception as error:
                log.exception("engine command %r failed", type(command).__name__)
                self.send(p.Failed(message=f"The engine hit an internal error: {error}",
                                   request_id=_request_id(command), during=p.During.of(command)))
        self._set_aside_all()
        self._unload()

    def _read_commands(self) -> None:
        while True:
            try:
                command = self.conn.recv()
            except (EOFError, OSError):
                self.parent_gone.set()
                self.commands.put(None)
                self.counts.put(None)
                return
            if isinstance(command, p.Stop):
                self.cancelled.add(command.request_id)
            elif isinstance(command, p.CountTokens):
                self.counts.put(command)
            else:
                self.commands.put(command)

    def _count_tokens(self) -> None:
        while (command := self.counts.get()) is not None:
            counted = p.TokensCounted(command.request_id, tokens=0, least=0, context_length=0, room=0)
            try:
                with self.model_lock:
                    if self.llm is not None:
                        counted = count_tokens(self.llm, command)
            except Exception:  # the meter shows nothing; the answer's own fitting still decides
                log.exception("counting tokens failed")
            self.send(counted)

    # --- loading ---

    def _load(self, command: p.Load) -> None:
        from app.gguf.facts import read_facts

        self._unload()
        reset_peak()  # the peak reported from now on belongs to this model
        name = Path(command.path).name
        try:
            facts = read_facts(Path(command.path))
        except InvalidModelError as error:
            self.send(p.Failed(message=str(error), during=p.During.LOAD))
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

        fallback = ""
        if plan.gpu_layers and not self.backends.gpus:
            log.warning("layers of %s asked on a graphics card, but llama.cpp has none", name)
            fallback = gpu_fallback(name, "no graphics card driver could be loaded")
            plan = dataclasses.replace(plan, gpu_layers=0)
        while True:
            # The forecast's memory plus a margin, for as long as this model is loaded; not on a graphics card,
            # whose driver maps memory in ways not measured here.
            if plan.memory_forecast > 0 and plan.gpu_layers == 0:
                limit = self.memory_cap.expect(plan.memory_forecast)
                log.info("memory limit for %s: %s", name, f"{limit / 1e9:.2f} GB" if limit else "none")
            else:
                self.memory_cap.lift()
            try:
                with capture_llama_log() as lines:
                    llm = _load_llama(command.path, plan, report)
                break
            except (ValueError, RuntimeError, OSError, MemoryError) as error:
                log.warning("llama.cpp could not load %s: %s\n%s", command.path, error, "".join(lines)[-2000:])
                short = isinstance(error, MemoryError) or "failed to allocate" in "".join(lines)
                if plan.gpu_layers:  # the card could not take it: on the processor, as a card-less computer would
                    fallback = gpu_fallback(name, "it has too little free memory for it" if short
                                            else "its driver failed")
                    plan = dataclasses.replace(plan, gpu_layers=0)
                    self.send(p.LoadProgress(fraction=0.0, stage="Loading on the processor instead…"))
                    continue
                self.send(p.Failed(
                    message=f"Could not load “{name}”: it needs more memory than Hearth expected and allows the "
                            "engine. Try a shorter context length." if short and self.memory_cap.limit is not None
                    else f"Could not load “{name}”. The file may be damaged, or it uses a model type this version "
                         "of llama.cpp does not support.",
                    during=p.During.LOAD))
                return
        has_template = "tokenizer.chat_template" in llm.metadata
        if not has_template or plan.chatml:
            llm.chat_format = FALLBACK_CHAT_FORMAT
        log_text = "".join(lines)
        tuning = self._tune(llm, plan) if plan.tune else None
        if tuning is not None:
            chosen = plan.with_flash_attention(tuning.flash_attention)
            if chosen != plan and (remade := self._remake_context(llm, chosen, log_text)) is not None:
                log_text, plan = remade, chosen
            plan = dataclasses.replace(plan, tune=False) if tuning.busy else dataclasses.replace(
                plan, threads=plan.threads or tuning.threads, batch_threads=plan.batch_threads or tuning.batch_threads,
                tune=False)
        governor = self._govern(llm, plan)
        plan = dataclasses.replace(plan, threads=governor.most, batch_threads=governor.batch_most)
        buffers = parse_log(log_text)
        self.states.memory_budget = memory_budget_for(buffers.kv_total)
        self.llm, self.model_path = llm, command.path
        self.send(p.Loaded(
            path=command.path, context_length=llm.n_ctx(), trained_context_length=trained,
            chat_format=p.CHATML_NO_TEMPLATE if not has_template else p.CHATML_CHOSEN if plan.chatml
            else p.OWN_TEMPLATE,
            has_chat_template=has_template, load_s=time.perf_counter() - started,
            rss_bytes=_current_rss(), plan=plan, buffers=buffers.to_dict(),
            weights_bytes=int(llm._model.size()), tuning=tuning, gpu_fallback=fallback))

    def _use_chatml(self) -> None:
        if self.llm is not None:
            self.llm.chat_format = FALLBACK_CHAT_FORMAT
            self.drafted = None  # formatted with the template just given up

    def _tune(self, llm: Any, plan: LoadPlan) -> Tuning | None:
        """The first load of a model with this plan measures its fastest settings here (``engine/tuning.py``)."""
        from app.engine.tuning import probe

        self.send(p.LoadProgress(fraction=1.0, stage="Measuring the fastest settings for this computer…"))
        try:
            with capture_llama_log():
                return probe(llm.model, llm.tokenize(PROBE_TEXT.encode("utf-8"), add_bos=True), _physical_cores(),
                             context_length=plan.context_length,
                             flash_attention_allowed=plan.flash_attention_optional, on_processor=not plan.gpu_layers,
                             fixed_threads=plan.threads, cancelled=self.parent_gone.is_set)
        except RuntimeError:
            log.warning("the speed probe failed; keeping the planned settings", exc_info=True)
            return None

    def _remake_context(self, llm: Any, plan: LoadPlan, load_log: str) -> str | None:
        """The probe found the other flash-attention setting faster, and llama.cpp fixes it when a context is
        made: the context is made again now, so the first session with a model runs as fast as the next ones
        (a 1B-class model on two cores read a follow-up in a long chat 4x slower with it on). Returns the load's
        log with the new context's lines in place of the old one's, or None where llama.cpp could not make it
        (the memory cap, the forecast's for either setting, should prevent that): the load goes on as planned."""
        self.send(p.LoadProgress(fraction=1.0, stage="Applying the fastest settings…"))
        with capture_llama_log() as lines:
            made = remake_context(llm, flash_attention=plan.flash_attention, ubatch=plan.ubatch)
        if not made:
            log.warning("could not make the context again with flash attention %s:\n%s",
                        "on" if plan.flash_attention else "off", "".join(lines)[-2000:])
            return None
        return model_lines(load_log) + "".join(lines)

    def _govern(self, llm: Any, plan: LoadPlan) -> Any:
        """Start from the planned threads (never more than the physical cores) and let the governor give a
        generation fewer while other programs use the processor."""
        from app.engine.tuning import ThreadGovernor, pace_decodes, set_threads_of

        cores = _physical_cores()
        most = min(plan.threads or cores, cores)
        self.governor = ThreadGovernor(set_threads_of(llm), most=most, physical_cores=cores,
                                       batch_most=plan.batch_threads or most)
        self.governor.apply()
        pace_decodes(llm, self.governor)
        return self.governor

    def _embed(self, command: p.Embed) -> None:
        """A second llama.cpp context on the loaded model's file, made for embeddings the first time one is asked
        for: the chat's context is made without them, and llama.cpp decides that when a context is made. Its
        weights are the same mapped file."""
        if self.llm is None or self.model_path is None:
            self.send(p.Failed(message="No model is loaded. Choose a model first.", request_id=command.request_id))
            return
        if self.embedder is None:
            import llama_cpp

            arch = self.llm.metadata.get("general.architecture", "")
            pooled = f"{arch}.pooling_type" in self.llm.metadata
            self.embedder = llama_here(self.model_path, embedding=True, n_ctx=EMBED_CONTEXT, n_batch=EMBED_CONTEXT,
                                       n_ubatch=EMBED_CONTEXT, n_threads=self.llm.n_threads, verbose=False,
                                       pooling_type=llama_cpp.LLAMA_POOLING_TYPE_UNSPECIFIED if pooled
                                       else llama_cpp.LLAMA_POOLING_TYPE_MEAN)
        vectors, tokens = self.embedder.embed(command.texts, truncate=True, return_count=True)
        self.send(p.Embedded(request_id=command.request_id, vectors=[list(map(float, v)) for v in vectors],
                             tokens=int(tokens)))

    def _unload(self) -> None:
        self.drafted = None
        if self.embedder is not None:
            self.embedder.close()
            self.embedder = None
        if self.governor is not None:
            self.governor.close()
            self.governor = None
        if self.llm is not None:
            with self.model_lock:
                self.llm.close()
                self.llm = None
            self.model_path = None
            gc.collect()
        self.memory_cap.lift()

    # --- tasks ---

    def _run_task(self, command: p.RunTask) -> None:
        from app.tasks.orchestration import TaskRun

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
            self.send(p.Failed(message=str(error), request_id=request_id, during=p.During.TASK,
                               chat_template=isinstance(error, ChatTemplateError)))
            return
        finally:
            self.cancelled.discard(request_id)
        self.send(p.TaskFinished(request_id, result, run.final_metrics(peak_rss_bytes())))

    def _stopping(self, request_id: int) -> bool:
        return request_id in self.cancelled or self.parent_gone.is_set()

    def _plan_task(self, command: p.PlanTask) -> None:
        from app.tasks.orchestration import plan_task

        loaded = self.llm is not None and self.model_path == command.path and \
            self.llm.n_ctx() == command.context_length
        try:
            if loaded:
                plan = plan_task(LlamaModel(self.llm, lambda: False), command.task)
            else:
                vocab = self._vocab_model(command.path, command.context_length)
                plan = plan_task(vocab, command.task)
        except HearthError as error:
            self.send(p.Failed(message=str(error), request_id=command.request_id, during=p.During.PLAN))
            return
        except (ValueError, RuntimeError, OSError) as error:
            log.warning("cannot plan a task for %s: %s", command.path, error)
            self.send(p.Failed(message=f"Could not read the tokenizer of “{Path(command.path).name}”.",
                               request_id=command.request_id, during=p.During.PLAN))
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
            self.vocab = None
        from app.gguf.facts import read_facts

        read_facts(Path(path))  # a header llama.cpp would hang on (200,000 keys) is refused in a sentence first
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
        self._use_conversation(command.conversation)
        if command.raw_prompt is not None:
            self._complete_raw(command)
            return
        drafted, self.drafted = self.drafted, None
        formatted: tuple[list[int], list[str]] | None = None
        messages: list[dict[str, str]] | None
        if drafted is not None and drafted.conversation == command.conversation and not command.prefill and \
                drafted.max_tokens == command.max_tokens and drafted.messages == command.messages:
            messages, formatted = drafted.fitted, drafted.formatted  # read ahead: fitted and tokenized already
        elif command.prefill:  # the answer's start is fitted with the rest, then given to the model as its own
            fitted = fit_messages(self.llm, [*command.messages, {"role": "assistant", "content": command.prefill}],
                                   command.max_tokens)
            messages = fitted[:-1] if fitted is not None and len(fitted) >= 2 and fitted[-2]["role"] == "user" \
                else None
        else:
            messages = fit_messages(self.llm, command.messages, command.max_tokens)
        while True:
            if messages is None:
                self.send(p.Failed(
                    message="Your message is too long for this model's context window. Shorten it, or "
                            "raise the context length in the conversation settings.",
                    request_id=command.request_id))
                return
            dropped = len(command.messages) - len(messages)
            try:
                self._stream(command, messages, dropped, formatted)
                return
            except ValueError as error:
                if "context window" not in str(error):
                    raise
                messages, formatted = drop_oldest_turn(messages), None

    def _complete_raw(self, command: p.Generate) -> None:
        """Goes on from ``raw_prompt`` as it is: no chat format, and nothing left out to make it fit."""
        assert self.llm is not None and command.raw_prompt is not None
        tokens = list(self.llm.tokenize(command.raw_prompt.encode("utf-8"), add_bos=True, special=True))
        if len(tokens) >= int(self.llm.n_ctx()):
            self.send(p.Failed(message=f"The prompt is {len(tokens):,} tokens, longer than the model's "
                                       f"{int(self.llm.n_ctx()):,}-token context window.",
                               request_id=command.request_id))
            return
        self._stream(command, [], 0, (tokens, []))

    def _stream(self, command: p.Generate, messages: list[dict[str, str]], dropped: int,
                formatted: tuple[list[int], list[str]] | None) -> None:
        request_id = command.request_id
        trim_told = False

        def on_text(text: str) -> None:
            nonlocal trim_told
            if dropped and not trim_told:
                self.send(p.ContextTrimmed(request_id=request_id, dropped_messages=dropped))
                trim_told = True
            self.send(p.Token(request_id=request_id, text=text))

        try:
            grammar = _answer_grammar(command)
        except Exception as error:  # llama-cpp-python's converter raises what the schema's fault makes it raise
            log.info("answer %d: no grammar for its JSON schema: %r", request_id, error)
            self.send(p.Failed(message=f"The JSON schema cannot be used: {error}", request_id=request_id))
            return
        model = LlamaModel(self.llm, lambda: self._stopping(request_id))
        self.kv_reusable = 0  # until this answer is complete, nothing cached is known to be worth keeping
        try:
            # Watched for loops only: in a conversation, copying the person's text back (a correction) or
            # numbering on (more sections) may be what was asked for.
            done = model.complete(messages, max_tokens=command.max_tokens, temperature=command.temperature,
                                  top_p=command.top_p, seed=command.seed, on_text=on_text, formatted=formatted,
                                  samplers=command.samplers, prefill=command.prefill,
                                  watch=Watch() if command.watched else None, grammar=grammar, stop=command.stop)
        finally:
            self.cancelled.discard(request_id)
        self.kv_reusable = model.reusable_tokens if command.conversation is not None else 0
        log.info("conversation %s: read %d of %d prompt tokens", command.conversation, model.prompt_read,
                 done.prompt_tokens)
        if dropped and not trim_told:
            self.send(p.ContextTrimmed(request_id=request_id, dropped_messages=dropped))
        completion = done.completion_tokens
        metrics = p.GenerationMetrics(
            prompt_tokens=done.prompt_tokens, completion_tokens=completion, ttft_s=done.ttft_s,
            tokens_per_s=(completion - 1) / done.generating_s if completion > 1 and done.generating_s > 0 else None,
            total_s=done.total_s, peak_rss_bytes=peak_rss_bytes(),
            threads=self.governor.threads if self.governor is not None else None,
            cached_prompt_tokens=max(done.prompt_tokens - model.prompt_read, 0))
        if done.degeneration is not None:
            log.info("answer %d stopped: %s", request_id, done.degeneration.sentence)
        self.send(p.Finished(request_id=request_id, finish_reason=done.finish_reason, text=done.text,
                             metrics=metrics, degeneration=done.degeneration, stop_sequence=done.stop_sequence))
        if command.conversation is None:
            return
        try:  # the cost of a failure here is speed later, never this answer
            if not command.prefill and command.raw_prompt is None and \
                    done.finish_reason in (FinishReason.STOP, FinishReason.LENGTH):
                self._open_next_turn(model, command.conversation, messages, done.text, command.max_tokens)
            if self.llm is not None and self.commands.empty():
                self.states.prepare_spare(llama_kv.state_size(self.llm))  # to set it aside in, should one switch
        except Exception:
            log.exception("could not prepare conversation %s's next turn", command.conversation)

    def _open_next_turn(self, model: LlamaModel, conversation: str, messages: list[dict[str, str]],
                        answer: str, max_tokens: int) -> None:
        """While the person reads the answer, read what the conversation's next prompt starts with whatever
        they write (``LlamaModel.next_turn_opening``): a follow-up pasted and sent at once then reads only
        itself, as the same message does in a new conversation.

        Read whole even when a command waits: it is a few tokens that a follow-up reads anyway, and
        llama.cpp's results depend on how a conversation is split into batches, so the split must not depend
        on when the next command came. An opening the template writes differently from the cache (a reasoning
        model's earlier thinking left out, say), or whose next answer would not fit without leaving out the
        oldest turns (``max_tokens``: this answer's room), is left for the next prompt."""
        llm = self.llm
        if llm is None:
            return
        try:
            opening = model.next_turn_opening(messages, answer)
        except ChatTemplateError:
            return
        shared = llama_kv.common_prefix(llm.input_ids[:llm.n_tokens], opening) if llm.n_tokens else 0
        keep = min(shared, len(opening) - 1)
        if len(opening) - shared > OPENING_MOST_TOKENS or len(opening) + max_tokens >= int(llm.n_ctx()) or \
                keep <= 0 or not llama_kv.window_holds(llm, keep):
            return
        reusable = self.kv_reusable
        self.kv_reusable = 0  # while the cache changes: an error half-way must not keep a mix
        read, cached, _total = model.read_ahead(opening, interrupted=lambda: False)
        self.kv_reusable = cached if read else min(reusable, cached)
        log.info("conversation %s: read the next turn's opening, %d tokens, %d cached", conversation, read, cached)
        self.send(p.TurnOpened(conversation=conversation, read=read, cached=cached))

    def _read_ahead(self, command: p.ReadAhead) -> None:
        """Read a draft into its conversation's cache while the person types (``protocol.ReadAhead``). What the
        cache is known to share with the conversation's next prompt stays what the last answer left: the draft
        may still change, and a sliding-window cache is cut back to that when set aside."""
        llm = self.llm
        if llm is None:
            return
        self._use_conversation(command.conversation)
        messages = fit_messages(llm, command.messages, command.max_tokens)
        if messages is None:
            return
        model = LlamaModel(llm, lambda: False)
        try:
            formatted = model.formatted(messages)
        except ChatTemplateError:
            return  # the message, when sent, says so
        self.drafted = _Drafted(command.conversation, command.messages, command.max_tokens, messages, formatted)
        reusable = self.kv_reusable
        self.kv_reusable = 0  # while the cache changes: an error half-way must not keep a mix
        read, cached, total = model.read_ahead(formatted[0], interrupted=lambda: not self.commands.empty())
        self.kv_reusable = min(reusable, cached)
        log.info("conversation %s: read ahead %d tokens, %d of %d cached", command.conversation, read, cached, total)
        self.send(p.ReadAheadDone(conversation=command.conversation, read=read, cached=cached, prompt_tokens=total))

    # --- conversations' KV caches (app/engine/saved_states.py) ---

    def _use_conversation(self, conversation: str | None) -> None:
        """Make the model's KV cache hold ``conversation`` before its prompt is read: set aside the one it
        holds, and bring this one's back from memory or disk. With ``None`` (a task, a one-off prompt) the
        current one is only set aside, as the prompt is about to overwrite the cache.

        Without a saved state the cache is left as it is: a prompt shares whatever prefix it shares with it
        (a system prompt, say), and the rest is read.
        """
        llm = self.llm
        if llm is None or self.model_path is None:
            return
        self.states.use_identity(llama_kv.identity(llm, self.model_path))
        if conversation is not None and conversation == self.kv_owner:
            return
        try:
            self._set_aside()
        except Exception:  # the cost is speed later, never this answer
            log.exception("could not set aside the cache of conversation %s", self.kv_owner)
        self.kv_owner, self.kv_reusable = conversation, 0
        saved = self.states.take(conversation) if conversation is not None else None
        if saved is not None:
            started = time.perf_counter()
            try:
                restored = llama_kv.restore(llm, saved)
            except Exception:
                log.exception("could not restore the cache of conversation %s", conversation)
                llama_kv.clear(llm)
                restored = False
            self.kv_reusable = llm.n_tokens
            log.info("conversation %s: %s its cache (%d tokens) from %s in %.0f ms", conversation,
                     "restored" if restored else "could not restore", llm.n_tokens,
                     "disk" if saved.from_disk else "memory", (time.perf_counter() - started) * 1000)

    def _set_aside(self, *, to_disk: bool = False) -> None:
        """Save the cache of the conversation it holds: the part its next prompt will share, in memory
        within the budget, else (or with ``to_disk``) in a file. A failure here only costs speed later."""
        owner, self.kv_owner = self.kv_owner, None
        llm = self.llm
        if owner is None or llm is None or self.kv_reusable <= 0 or llm.n_tokens == 0:
            return
        started = time.perf_counter()
        if llama_kv.window_limited(llm):
            # A restored sliding-window cache can continue from its end only (llama_kv.window_holds), so it
            # must end where the next prompt will depart from it. Elsewhere the whole cache is kept, and
            # llama-cpp-python finds what the next prompt shares.
            llama_kv.truncate(llm, min(self.kv_reusable, llm.n_tokens))
        size = llama_kv.state_size(llm)
        spare = self.states.spare_for(size) if not to_disk else None
        into, headroom = spare if spare is not None else (None, 0)
        data = llama_kv.capture(llm, size, into) if not to_disk and self.states.reserve(size + headroom) else None
        if data is not None:
            self.states.keep(owner, llama_kv.cached_tokens(llm), data, headroom=headroom)
        else:
            self.states.write(owner, lambda path: llama_kv.save_file(llm, path), size)
        log.info("conversation %s: set aside its cache (%d tokens, %.1f MB) %s in %.0f ms", owner, llm.n_tokens,
                 size / 1e6, "in memory" if data is not None else "on disk" if self.states.folder else "nowhere",
                 (time.perf_counter() - started) * 1000)

    def _set_aside_all(self) -> None:
        """The model is about to go (another load, an unload, the end): its conversations go to disk, or
        nowhere without a folder (memory is not held for a model that is not loaded)."""
        if self.llm is None:
            return
        try:
            self.states.spill()  # first, so that the live conversation is the most recent file
            self._set_aside(to_disk=True)
        except Exception:
            log.exception("could not set aside the conversations' caches")

    def _forget(self, conversation: str) -> None:
        """The conversation was deleted: its saved states go, and so do its tokens in the model's cache."""
        self.states.forget(conversation)
        if self.kv_owner == conversation:
            self.kv_owner = None
            if self.llm is not None:
                llama_kv.clear(self.llm)


def _request_id(command: p.Command) -> int | None:
    return command.request_id if isinstance(command, p.Generate | p.RunTask | p.PlanTask | p.Embed) else None


def _answer_grammar(command: p.Generate) -> str | None:
    """The llama.cpp grammar that holds an answer to JSON, where the command asks for JSON."""
    if command.json_schema is not None:
        from llama_cpp.llama_grammar import json_schema_to_gbnf

        return str(json_schema_to_gbnf(command.json_schema))
    if command.json_object:
        from llama_cpp.llama_grammar import JSON_GBNF

        return str(JSON_GBNF)
    return None


def gpu_fallback(name: str, why: str) -> str:
    """The sentence for a model that was to run (partly) on the graphics card and runs on the processor."""
    return f"The graphics card could not run “{name}” ({why}), so it runs on the processor instead."


def _load_llama(path: str, plan: LoadPlan, report: Callable[[float], None]) -> Any:
    from llama_cpp import Llama

    with _model_params(report, extra_buffers=plan.extra_buffers), _context_params(max_outputs=plan.max_outputs), \
            guarded_templates():
        llm = Llama(model_path=path, **plan.llama_kwargs(), verbose=False)
    _shrink_logits_array(llm)
    return llm


def remake_context(llm: Any, *, flash_attention: bool, ubatch: int) -> bool:
    """Replace ``llm``'s llama.cpp context with one like it but for flash attention (and the micro-batch, which
    goes with it: ``LoadPlan.with_flash_attention``), the weights staying loaded
    (a context takes a fraction of a second to make, a load seconds). The old one is freed first, so two caches are
    never held at once; if the new one cannot be made, one as before is made again and ``False`` returned.
    llama-cpp-python has no call for this: it makes its context once, in ``Llama.__init__``, from
    ``context_params``, so those and ``_ctx`` are set here as it sets them."""
    import llama_cpp
    from llama_cpp import _internals

    params = llm.context_params
    before = params.flash_attn_type, params.n_ubatch
    llm._ctx.close()
    llm.n_tokens = 0
    params.flash_attn_type = (llama_cpp.LLAMA_FLASH_ATTN_TYPE_ENABLED if flash_attention
                              else llama_cpp.LLAMA_FLASH_ATTN_TYPE_DISABLED)
    params.n_ubatch = min(ubatch, params.n_batch)
    try:
        context = _internals.LlamaContext(model=llm._model, params=params, verbose=llm.verbose)
        made = True
    except ValueError:
        params.flash_attn_type, params.n_ubatch = before
        context = _internals.LlamaContext(model=llm._model, params=params, verbose=llm.verbose)
        made = False
    llm._ctx = context
    llm._stack.callback(context.close)
    return made


def llama_here(path: str, **options: Any) -> Any:
    """``llama_cpp.Llama(path, **options)`` made as the worker makes one: without llama.cpp's extra weight layouts
    where AMX would crash them (``LoadPlan.extra_buffers``). For the code that runs llama.cpp in its own process
    (tests, benchmarks) rather than through the worker."""
    from llama_cpp import Llama

    with _model_params(lambda _fraction: None, extra_buffers=not cpu_has_amx()):
        return Llama(model_path=path, **options)


def _shrink_logits_array(llm: Any) -> None:
    """llama-cpp-python allocates an ``n_batch`` x vocabulary array of logits (512 MiB for a 262k vocabulary)
    that it writes only with ``logits_all``, which Hearth never sets: sampling reads llama.cpp's own buffer. It
    is never resident, but Windows counts it against the commit limit and a state snapshot copies it, so one
    row is kept (the shape the binding's state functions slice to)."""
    import numpy as np

    llm.scores = np.zeros((1, llm.n_vocab()), dtype=np.single)


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


@contextlib.contextmanager
def _context_params(*, max_outputs: int) -> Iterator[None]:
    """Set ``n_outputs_max``, which ``Llama(...)`` has no argument for, the way ``_model_params`` sets the
    model's: llama-cpp-python builds its context parameters from ``llama_context_default_params()``."""
    import llama_cpp.llama_cpp as native

    original = native.llama_context_default_params

    def params_with_outputs() -> Any:
        params = original()
        params.n_outputs_max = max_outputs
        return params

    native.llama_context_default_params = params_with_outputs
    try:
        yield
    finally:
        native.llama_context_default_params = original


def _physical_cores() -> int:
    import psutil

    return int(psutil.cpu_count(logical=False) or psutil.cpu_count() or 1)


def _current_rss() -> int:
    import psutil

    return int(psutil.Process().memory_info().rss)
