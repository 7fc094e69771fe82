"""One conversation's round trip: history in, answer streamed out and saved as it arrives.

The runner listens to the engine on the engine's reader thread, so saving the answer never depends on the
window: the partial answer is written at least every ``flush_interval_s``, and a stop, a crash of the
worker or closing the app leaves a saved message marked ``cancelled`` or ``interrupted``. Listeners (the Qt
bridge) get ``ChatEvent``s on that same thread.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from app.engine import protocol as p
from app.engine.client import EngineClient
from app.errors import ContextTooSmallError, EngineError
from app.events import Listeners
from app.history import HistoryStore, MessageRecord
from app.outcomes import CONTINUABLE, FinishReason
from app.remote.address import parse
from app.settings import GenerationSettings
from app.words import too_long_for_context

TITLE_LENGTH = 48


@dataclass(frozen=True)
class AnswerStarted:
    conversation_id: int
    user_message: MessageRecord | None  # None when regenerating or continuing
    assistant_message: MessageRecord
    continued: bool = False  # the assistant message is an earlier answer, continued from its end
    replaced: int | None = None  # a new version of this message (and the rest after it) is being written


@dataclass(frozen=True)
class AnswerDelta:
    conversation_id: int
    message_id: int
    text: str  # the answer so far


@dataclass(frozen=True)
class ContextNotice:
    conversation_id: int
    message_id: int
    dropped_messages: int


@dataclass(frozen=True)
class AnswerFinished:
    conversation_id: int
    message: MessageRecord
    error: str = ""  # a continuation that failed: the answer is kept as it was, and this says why


ChatEvent = AnswerStarted | AnswerDelta | ContextNotice | AnswerFinished


@dataclass
class _Streaming:
    conversation_id: int
    message_id: int
    request_id: int = -1
    parts: list[str] = field(default_factory=list)
    last_flush: float = field(default_factory=time.monotonic)
    dropped: int = 0
    continued: MessageRecord | None = None  # the answer being continued, as it was
    replaces: int | None = None  # the message whose new version is being written (an edit, a regeneration)

    @property
    def text(self) -> str:
        return (self.continued.content if self.continued else "") + "".join(self.parts)


def conversation_key(conversation_id: int) -> str:
    """How the engine names a conversation whose KV cache it keeps (``protocol.Generate.conversation``)."""
    return f"chat-{conversation_id}"


def title_from(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= TITLE_LENGTH else line[: TITLE_LENGTH - 1].rstrip() + "…"


def build_messages(settings: GenerationSettings, history: list[MessageRecord],
                   draft: str | None = None) -> list[dict[str, str]]:
    """The prompt's messages: the system prompt, the conversation (failed answers left out) and the message being
    written. Two turns of one role in a row (a message deleted between them, an answer that failed) are joined:
    many chat templates refuse anything but user and assistant taking turns."""
    turns = [(m.role, m.content) for m in history
             if m.role in ("user", "assistant") and m.content and m.finish_reason != FinishReason.ERROR]
    if draft:
        turns.append(("user", draft))
    messages = [{"role": "system", "content": settings.system_prompt}] if settings.system_prompt.strip() else []
    for role, content in turns:
        if len(messages) > 0 and messages[-1]["role"] == role:
            messages[-1] = {"role": role, "content": f"{messages[-1]['content']}\n\n{content}"}
        else:
            messages.append({"role": role, "content": content})
    return messages


def continuable(history: list[MessageRecord]) -> MessageRecord | None:
    """The conversation's last answer, when it was cut short and can be continued from its end."""
    last = history[-1] if history else None
    if last is None or last.role != "assistant" or not last.content or last.finish_reason not in CONTINUABLE:
        return None
    return last


class ChatRunner:
    def __init__(self, store: HistoryStore, engine: EngineClient, flush_interval_s: float = 0.5) -> None:
        self.store = store
        self.engine = engine
        self.flush_interval_s = flush_interval_s
        self._lock = threading.RLock()
        self._streaming: _Streaming | None = None
        self._listeners: Listeners[ChatEvent] = Listeners()
        engine.subscribe(self._on_engine_event)

    def subscribe(self, listener: Callable[[ChatEvent], None]) -> Callable[[], None]:
        return self._listeners.subscribe(listener)

    def _emit(self, event: ChatEvent) -> None:
        self._listeners.emit(event)

    @property
    def busy(self) -> bool:
        return self._streaming is not None

    def streaming_conversation(self) -> int | None:
        streaming = self._streaming
        return streaming.conversation_id if streaming else None

    # --- actions (they touch the database: call them off the GUI thread) ---

    def send(self, conversation_id: int, text: str) -> None:
        """Save ``text`` and answer it. A message the model could not read (too long for its context even with
        every older turn left out) is refused before it is saved (``ContextTooSmallError``)."""
        text = text.strip()
        if not text:
            return
        claim = self._claim(conversation_id)
        try:
            conversation = self.store.get_conversation(conversation_id)
            settings = GenerationSettings.from_dict(conversation.settings)
            history = self.store.messages(conversation_id)
            self._check_fits(settings, history, text)
            if not history:
                self.store.rename_conversation(conversation_id, title_from(text))
            user = self.store.add_message(conversation_id, "user", text)
            self._start_answer(claim, settings, user)
        except BaseException:
            self._release(claim)
            raise

    def _check_fits(self, settings: GenerationSettings, history: list[MessageRecord], text: str) -> None:
        settings = settings.validated()
        counted = self.engine.count_tokens_blocking(build_messages(settings, history, text),
                                                    max_tokens=settings.max_tokens)
        if counted is not None and not counted.fits:
            raise ContextTooSmallError(too_long_for_context(counted.least, counted.room))

    def count(self, conversation_id: int | None, draft: str, settings: GenerationSettings) -> int | None:
        """Ask the engine how much of the context the conversation and ``draft`` take, for the context meter;
        the answer is ``TokensCounted`` with the returned request id (``None``: no model to count with).
        ``settings``: the conversation's, with the context length it would be answered with."""
        settings = settings.validated()
        history = self.store.messages(conversation_id) if conversation_id is not None else []
        return self.engine.count_tokens(build_messages(settings, history, draft.strip() or None),
                                        max_tokens=settings.max_tokens, context_length=settings.context_length)

    def continue_answer(self, conversation_id: int) -> None:
        """Go on with the last answer from where it was cut short (``continuable``), appending to it."""
        claim = self._claim(conversation_id)
        try:
            history = self.store.messages(conversation_id)
            last = continuable(history)
            if last is None:
                raise EngineError("There is no answer to continue: only one that was stopped or cut short can be.")
            conversation = self.store.get_conversation(conversation_id)
            claim.continued = last
            self._start_answer(claim, GenerationSettings.from_dict(conversation.settings), None)
        except BaseException:
            self._release(claim)
            raise

    def delete_message(self, message_id: int) -> None:
        """Delete one message (softly: ``restore_message`` is its Undo). The next prompt is built without it, and
        the engine reuses its cache of the conversation only up to where that prompt departs from it."""
        streaming = self._streaming
        if streaming is not None and streaming.message_id == message_id:
            raise EngineError("This answer is still being written. Stop it first.")
        message = self.store.get_message(message_id) if streaming is not None else None
        if streaming is not None and message is not None and message.versions > 1 \
                and streaming.conversation_id == message.conversation_id:
            # Deleting a version takes what follows it, which may be the answer being written.
            raise EngineError("An answer is being written in this conversation. Stop it first, or wait for it.")
        self.store.delete_message(message_id)

    def restore_message(self, message_id: int) -> None:
        self.store.restore_message(message_id)

    def regenerate(self, conversation_id: int) -> None:
        """Answer the last user message again: a new version of the answer after it, the old one kept beside it
        (``app.history.branches``)."""
        claim = self._claim(conversation_id)
        try:
            history = self.store.messages(conversation_id)
            last_user = next((m for m in reversed(history) if m.role == "user"), None)
            if last_user is None:
                raise EngineError("There is no question to answer again yet.")
            later = [m for m in history if m.id > last_user.id]
            claim.replaces = later[0].id if later else None
            conversation = self.store.get_conversation(conversation_id)
            self._start_answer(claim, GenerationSettings.from_dict(conversation.settings), None)
        except BaseException:
            self._release(claim)
            raise

    def edit(self, conversation_id: int, message_id: int, text: str) -> None:
        """Send ``text`` as a new version of the question ``message_id`` and answer it; the old question and what
        followed it stay as the other branch. The model reads only the branch shown: what came before the
        question, and the new text."""
        text = text.strip()
        if not text:
            raise EngineError("An edited message cannot be empty. Delete it instead.")
        claim = self._claim(conversation_id)
        try:
            original = self.store.get_message(message_id)
            if original.role != "user" or original.conversation_id != conversation_id:
                raise EngineError("Only your own messages can be edited.")
            conversation = self.store.get_conversation(conversation_id)
            settings = GenerationSettings.from_dict(conversation.settings)
            self._check_fits(settings, [m for m in self.store.messages(conversation_id) if m.id < message_id], text)
            user = self.store.add_message(conversation_id, "user", text, version_of=message_id)
            claim.replaces = message_id
            try:
                self._start_answer(claim, settings, user)
            except BaseException:
                self.store.discard_version(user.id, instead=message_id)  # the question stays as it was
                raise
        except BaseException:
            self._release(claim)
            raise

    def show_version(self, message_id: int, step: int) -> MessageRecord:
        """Show the version ``step`` away from this message's (‹ and ›), with the branch that follows it."""
        streaming = self._streaming
        message = self.store.get_message(message_id)
        if streaming is not None and streaming.conversation_id == message.conversation_id:
            raise EngineError("An answer is being written in this conversation. Stop it first, or wait for it.")
        return self.store.show_version(message_id, step)

    def read_ahead(self, conversation_id: int, draft: str) -> bool:
        """Give the model a head start on a message still being typed: the worker reads the conversation with
        the draft as its next message into its cache, so sending it reads only what changed since (often
        nothing). Without it, a follow-up in a long conversation waits for the whole new turn to be read over
        every earlier token: with a 135M model at 3,000 tokens that is 2.8 times the wait of the same message in
        a new chat, and no setting of llama.cpp brings it near the same (measured in
        ``benchmarks/turn_latency.py``). ``False`` when there is nothing to do: no model, an answer running."""
        draft = draft.strip()
        if not draft or self.busy or self.engine.loaded is None:
            return False
        settings = GenerationSettings.from_dict(self.store.get_conversation(conversation_id).settings).validated()
        messages = build_messages(settings, self.store.messages(conversation_id), draft)
        return self.engine.read_ahead(messages, conversation=conversation_key(conversation_id),
                                      max_tokens=settings.max_tokens)

    def stop(self) -> None:
        self.engine.stop()

    def delete_conversation(self, conversation_id: int) -> None:
        """Delete a conversation (softly: Undo can restore it) and, for good, the engine's saved cache of it;
        a restored conversation is read again on its next turn."""
        self.store.delete_conversation(conversation_id)
        self.engine.forget(conversation_key(conversation_id))

    def close(self) -> None:
        """Save whatever is being streamed as interrupted; the app is going away."""
        with self._lock:
            streaming, self._streaming = self._streaming, None
        if streaming is not None and streaming.message_id >= 0:
            self.store.update_message(streaming.message_id, content=streaming.text,
                                      finish_reason=FinishReason.INTERRUPTED)

    def _claim(self, conversation_id: int) -> _Streaming:
        """Take the one answer slot before touching the database, so two quick requests cannot both start."""
        with self._lock:
            if self._streaming is not None:
                raise EngineError("The model is still answering. Stop it first.")
            if self.engine.loaded is None:
                raise EngineError("No model is loaded. Choose a model from the library first.")
            self._streaming = _Streaming(conversation_id, message_id=-1)
            return self._streaming

    def _release(self, claim: _Streaming) -> None:
        with self._lock:
            if self._streaming is claim and claim.request_id < 0:
                self._streaming = None

    def _start_answer(self, claim: _Streaming, settings: GenerationSettings, user: MessageRecord | None) -> None:
        settings = settings.validated()
        loaded = self.engine.loaded
        if loaded is None:
            raise EngineError("No model is loaded. Choose a model from the library first.")
        conversation_id = claim.conversation_id
        record = self.store.find_model_by_path(loaded.path)  # read each time: the person may have renamed it
        model_name = record.name if record else \
            f"{parse(loaded.path).short_model} on {loaded.remote}" if loaded.remote else Path(loaded.path).stem
        continued = claim.continued
        if continued is not None:
            messages = build_messages(settings, [m for m in self.store.messages(conversation_id)
                                                 if m.id < continued.id])
            assistant = self.store.reopen_message(continued.id)
        else:
            version_of = claim.replaces if user is None else None  # an edit's new question is the new branch
            assistant = self.store.add_message(conversation_id, "assistant", "", model_name=model_name,
                                               version_of=version_of)
            messages = build_messages(settings, [m for m in self.store.messages(conversation_id)
                                                 if m.id != assistant.id])
        self.store.update_conversation(conversation_id, model_id=record.id if record else None,
                                       model_name=model_name)
        with self._lock:
            claim.message_id = assistant.id
            try:
                claim.request_id = self.engine.generate(
                    messages, max_tokens=settings.max_tokens, temperature=settings.temperature,
                    top_p=settings.top_p, seed=settings.seed, conversation=conversation_key(conversation_id),
                    samplers=settings.samplers(), prefill=continued.content if continued else "")
            except Exception as error:
                if continued is not None:
                    self.store.update_message(assistant.id, finish_reason=continued.finish_reason)
                else:
                    self.store.update_message(assistant.id, finish_reason=FinishReason.ERROR, error=str(error))
                raise
        self._emit(AnswerStarted(conversation_id, user, assistant, continued=continued is not None,
                                 replaced=claim.replaces))

    # --- engine events (on the engine's reader thread) ---

    def _on_engine_event(self, event: p.Event) -> None:
        with self._lock:
            streaming = self._streaming
            if streaming is None:
                return
            if isinstance(event, p.Token) and event.request_id == streaming.request_id:
                streaming.parts.append(event.text)
                text = streaming.text
                now = time.monotonic()
                if now - streaming.last_flush >= self.flush_interval_s:
                    self.store.update_message(streaming.message_id, content=text)
                    streaming.last_flush = now
                delta: ChatEvent = AnswerDelta(streaming.conversation_id, streaming.message_id, text)
            elif isinstance(event, p.ContextTrimmed) and event.request_id == streaming.request_id:
                streaming.dropped = event.dropped_messages
                delta = ContextNotice(streaming.conversation_id, streaming.message_id, event.dropped_messages)
            elif isinstance(event, p.Finished) and event.request_id == streaming.request_id:
                m = event.metrics
                if event.text:
                    streaming.parts = [event.text]
                before = (streaming.continued.completion_tokens or 0) if streaming.continued else 0
                self.store.update_message(
                    streaming.message_id, content=streaming.text,
                    finish_reason=FinishReason.INTERRUPTED if event.error else event.finish_reason,
                    prompt_tokens=m.prompt_tokens or None, error=event.error or None,
                    completion_tokens=before + m.completion_tokens, ttft_s=m.ttft_s, tokens_per_s=m.tokens_per_s,
                    context_dropped=streaming.dropped)
                delta = self._finish(streaming, error=event.error)
            elif isinstance(event, p.Failed) and event.request_id == streaming.request_id and streaming.continued:
                # The answer stays as it was (with what the continuation added): a failed continuation must not
                # turn it into a failed answer, which the next prompt would leave out.
                self.store.update_message(streaming.message_id, content=streaming.text,
                                          finish_reason=streaming.continued.finish_reason)
                delta = self._finish(streaming, error=event.message)
            elif isinstance(event, p.Failed) and event.request_id == streaming.request_id:
                self.store.update_message(streaming.message_id, content=streaming.text,
                                          finish_reason=FinishReason.ERROR, error=event.message)
                delta = self._finish(streaming)
            elif isinstance(event, p.WorkerExited) and streaming.message_id < 0:
                self._streaming = None  # the worker died before this answer began; the caller gets the error
                return
            elif isinstance(event, p.WorkerExited):
                self.store.update_message(streaming.message_id, content=streaming.text,
                                          finish_reason=FinishReason.INTERRUPTED, error=event.message or None)
                delta = self._finish(streaming)
            else:
                return
        self._emit(delta)

    def _finish(self, streaming: _Streaming, error: str = "") -> ChatEvent:
        self._streaming = None
        final = self.store.get_message(streaming.message_id)
        return AnswerFinished(streaming.conversation_id, final, error)
