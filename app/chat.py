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
from app.errors import EngineError
from app.events import Listeners
from app.history import HistoryStore, MessageRecord
from app.outcomes import FinishReason
from app.settings import GenerationSettings

TITLE_LENGTH = 48


@dataclass(frozen=True)
class AnswerStarted:
    conversation_id: int
    user_message: MessageRecord | None  # None when regenerating
    assistant_message: MessageRecord


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


ChatEvent = AnswerStarted | AnswerDelta | ContextNotice | AnswerFinished


@dataclass
class _Streaming:
    conversation_id: int
    message_id: int
    request_id: int = -1
    parts: list[str] = field(default_factory=list)
    last_flush: float = field(default_factory=time.monotonic)
    dropped: int = 0


def conversation_key(conversation_id: int) -> str:
    """How the engine names a conversation whose KV cache it keeps (``protocol.Generate.conversation``)."""
    return f"chat-{conversation_id}"


def title_from(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= TITLE_LENGTH else line[: TITLE_LENGTH - 1].rstrip() + "…"


def build_messages(settings: GenerationSettings, history: list[MessageRecord]) -> list[dict[str, str]]:
    messages = [{"role": "system", "content": settings.system_prompt}] if settings.system_prompt.strip() else []
    messages += [{"role": m.role, "content": m.content} for m in history
                 if m.role in ("user", "assistant") and m.content and m.finish_reason != FinishReason.ERROR]
    return messages


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
        text = text.strip()
        if not text:
            return
        claim = self._claim(conversation_id)
        try:
            conversation = self.store.get_conversation(conversation_id)
            if not self.store.messages(conversation_id):
                self.store.rename_conversation(conversation_id, title_from(text))
            user = self.store.add_message(conversation_id, "user", text)
            self._start_answer(claim, GenerationSettings.from_dict(conversation.settings), user)
        except BaseException:
            self._release(claim)
            raise

    def regenerate(self, conversation_id: int) -> None:
        """Answer the last user message again, replacing the answer after it."""
        claim = self._claim(conversation_id)
        try:
            history = self.store.messages(conversation_id)
            last_user = next((m for m in reversed(history) if m.role == "user"), None)
            if last_user is None:
                raise EngineError("There is no question to answer again yet.")
            later = [m for m in history if m.id > last_user.id]
            if later:
                self.store.delete_messages_from(later[0].id)
            conversation = self.store.get_conversation(conversation_id)
            self._start_answer(claim, GenerationSettings.from_dict(conversation.settings), None)
        except BaseException:
            self._release(claim)
            raise

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
        messages = build_messages(settings, self.store.messages(conversation_id))
        messages.append({"role": "user", "content": draft})
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
            self.store.update_message(streaming.message_id, content="".join(streaming.parts),
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
        model_name = record.name if record else Path(loaded.path).stem
        messages = build_messages(settings, self.store.messages(conversation_id))
        assistant = self.store.add_message(conversation_id, "assistant", "", model_name=model_name)
        self.store.update_conversation(conversation_id, model_id=record.id if record else None,
                                       model_name=model_name)
        with self._lock:
            claim.message_id = assistant.id
            try:
                claim.request_id = self.engine.generate(
                    messages, max_tokens=settings.max_tokens, temperature=settings.temperature,
                    top_p=settings.top_p, seed=settings.seed, conversation=conversation_key(conversation_id),
                    samplers=settings.samplers())
            except Exception as error:
                self.store.update_message(assistant.id, finish_reason=FinishReason.ERROR, error=str(error))
                raise
        self._emit(AnswerStarted(conversation_id, user, assistant))

    # --- engine events (on the engine's reader thread) ---

    def _on_engine_event(self, event: p.Event) -> None:
        with self._lock:
            streaming = self._streaming
            if streaming is None:
                return
            if isinstance(event, p.Token) and event.request_id == streaming.request_id:
                streaming.parts.append(event.text)
                text = "".join(streaming.parts)
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
                self.store.update_message(
                    streaming.message_id, content=event.text or "".join(streaming.parts),
                    finish_reason=event.finish_reason, prompt_tokens=m.prompt_tokens or None,
                    completion_tokens=m.completion_tokens, ttft_s=m.ttft_s, tokens_per_s=m.tokens_per_s,
                    context_dropped=streaming.dropped)
                delta = self._finish(streaming)
            elif isinstance(event, p.Failed) and event.request_id == streaming.request_id:
                self.store.update_message(streaming.message_id, content="".join(streaming.parts),
                                          finish_reason=FinishReason.ERROR, error=event.message)
                delta = self._finish(streaming)
            elif isinstance(event, p.WorkerExited) and streaming.message_id < 0:
                self._streaming = None  # the worker died before this answer began; the caller gets the error
                return
            elif isinstance(event, p.WorkerExited):
                self.store.update_message(streaming.message_id, content="".join(streaming.parts),
                                          finish_reason=FinishReason.INTERRUPTED, error=event.message or None)
                delta = self._finish(streaming)
            else:
                return
        self._emit(delta)

    def _finish(self, streaming: _Streaming) -> ChatEvent:
        self._streaming = None
        final = next(m for m in self.store.messages(streaming.conversation_id) if m.id == streaming.message_id)
        return AnswerFinished(streaming.conversation_id, final)
