"""A conversation's round trip through the real engine into the real history database."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.chat import (
    AnswerDelta,
    AnswerFinished,
    AnswerStarted,
    ChatEvent,
    ChatRunner,
    build_messages,
    continuable,
    title_from,
)
from app.engine import EngineClient
from app.errors import ContextTooSmallError, EngineError
from app.history import HistoryStore, MessageRecord, open_database
from app.settings import GenerationSettings

pytestmark = pytest.mark.engine


class Recorder:
    def __init__(self, runner: ChatRunner) -> None:
        self.events: list[ChatEvent] = []
        self.finished = threading.Event()
        self.delta = threading.Event()
        runner.subscribe(self._on)

    def _on(self, event: ChatEvent) -> None:
        self.events.append(event)
        if isinstance(event, AnswerDelta):
            self.delta.set()
        if isinstance(event, AnswerFinished):
            self.finished.set()

    def wait(self) -> MessageRecord:
        assert self.finished.wait(60), "no answer finished"
        self.finished.clear()
        final = self.events[-1]
        assert isinstance(final, AnswerFinished)
        return final.message


@pytest.fixture
def store(tmp_path: Path) -> Iterator[HistoryStore]:
    db = open_database(tmp_path / "history.sqlite3")
    yield HistoryStore(db)
    db.close()


@pytest.fixture
def engine(test_model_path: Path) -> Iterator[EngineClient]:
    client = EngineClient()
    client.start()
    client.load_blocking(test_model_path)
    yield client
    client.shutdown()


def _conversation(store: HistoryStore, **overrides: object) -> int:
    settings = GenerationSettings(seed=11, **overrides)  # type: ignore[arg-type]
    return store.create_conversation("New chat", settings.to_dict()).id


def test_an_answer_is_streamed_and_saved_with_its_metrics(store: HistoryStore, engine: EngineClient) -> None:
    runner = ChatRunner(store, engine)
    recorder = Recorder(runner)
    conversation = _conversation(store, max_tokens=40)
    runner.send(conversation, "Tell me about a dog")
    final = recorder.wait()
    assert any(isinstance(e, AnswerDelta) for e in recorder.events)
    saved = store.messages(conversation)
    assert [m.role for m in saved] == ["user", "assistant"]
    assert saved[0].content == "Tell me about a dog"
    assert saved[1] == final
    assert final.content.strip() and final.finish_reason == "length"
    assert final.completion_tokens == 40 and final.prompt_tokens and final.prompt_tokens > 5
    assert final.ttft_s is not None and final.tokens_per_s and final.tokens_per_s > 0
    assert final.model_name == "stories260K"
    record = store.get_conversation(conversation)
    assert record.title == "Tell me about a dog" and record.model_name == "stories260K"


def test_follow_up_sends_the_whole_conversation(store: HistoryStore, engine: EngineClient) -> None:
    runner = ChatRunner(store, engine)
    recorder = Recorder(runner)
    conversation = _conversation(store, max_tokens=8, system_prompt="Be brief.")
    runner.send(conversation, "First question")
    recorder.wait()
    runner.send(conversation, "Second question")
    second = recorder.wait()
    history = store.messages(conversation)
    assert [m.role for m in history] == ["user", "assistant", "user", "assistant"]
    assert second.prompt_tokens and history[1].prompt_tokens and second.prompt_tokens > history[1].prompt_tokens
    messages = build_messages(GenerationSettings(system_prompt="Be brief."), history)
    assert messages[0] == {"role": "system", "content": "Be brief."} and len(messages) == 5


def test_stop_keeps_the_partial_answer(store: HistoryStore, engine: EngineClient) -> None:
    runner = ChatRunner(store, engine)
    recorder = Recorder(runner)
    conversation = _conversation(store, max_tokens=1800)
    runner.send(conversation, "Go on and on")
    assert recorder.delta.wait(30)
    runner.stop()
    final = recorder.wait()
    assert final.finish_reason == "cancelled"
    assert final.content and final.completion_tokens and final.completion_tokens < 1800
    assert store.messages(conversation)[-1].content == final.content


def test_killed_worker_leaves_the_partial_answer_saved(store: HistoryStore, engine: EngineClient) -> None:
    runner = ChatRunner(store, engine, flush_interval_s=0.0)
    recorder = Recorder(runner)
    conversation = _conversation(store, max_tokens=1800)
    runner.send(conversation, "Go on and on")
    assert recorder.delta.wait(30)
    assert engine.pid is not None
    os.kill(engine.pid, signal.SIGKILL)
    final = recorder.wait()
    assert final.finish_reason == "interrupted"
    assert final.content and final.error and "stopped unexpectedly" in final.error
    assert store.messages(conversation)[-1] == final
    with pytest.raises(EngineError, match="No model is loaded"):
        runner.send(conversation, "Are you there?")


def test_partial_answer_is_flushed_while_streaming(store: HistoryStore, engine: EngineClient) -> None:
    """What a hard kill of the app would leave: the text written so far, then marked interrupted."""
    runner = ChatRunner(store, engine, flush_interval_s=0.0)
    recorder = Recorder(runner)
    conversation = _conversation(store, max_tokens=1800)
    runner.send(conversation, "Go on and on")
    assert recorder.delta.wait(30)
    saved_while_streaming = store.messages(conversation)[-1]
    assert saved_while_streaming.finish_reason is None and saved_while_streaming.content
    runner.close()  # the window closing mid-answer
    assert store.messages(conversation)[-1].finish_reason == "interrupted"
    engine.stop()


def test_regenerate_replaces_the_last_answer(store: HistoryStore, engine: EngineClient) -> None:
    runner = ChatRunner(store, engine)
    recorder = Recorder(runner)
    conversation = _conversation(store, max_tokens=16, temperature=1.0)
    runner.send(conversation, "A story please")
    first = recorder.wait()
    store.update_conversation(conversation, settings=GenerationSettings(seed=99, max_tokens=16).to_dict())
    runner.regenerate(conversation)
    second = recorder.wait()
    history = store.messages(conversation)
    assert [m.role for m in history] == ["user", "assistant"]
    assert history[-1].id == second.id and second.content != first.content
    assert (history[-1].version, history[-1].versions) == (2, 2)
    started = [e for e in recorder.events if isinstance(e, AnswerStarted)][-1]
    assert started.replaced == first.id
    assert runner.show_version(second.id, -1).content == first.content  # the first answer is kept
    assert [m.content for m in store.messages(conversation)][-1] == first.content


def _two_turns(store: HistoryStore, engine: EngineClient) -> tuple[ChatRunner, Recorder, int, int]:
    """A conversation of two turns (about a cat, then a dog), and an empty one with the same settings, answered at
    temperature 0: what a chat that never had the second turn answers is the reference."""
    runner = ChatRunner(store, engine)
    recorder = Recorder(runner)
    settings = {"max_tokens": 16, "temperature": 0.0}
    edited, never = _conversation(store, **settings), _conversation(store, **settings)
    runner.send(edited, "The cat sat on the mat.")
    recorder.wait()
    runner.send(edited, "The dog barked at the moon all night long.")
    recorder.wait()
    return runner, recorder, edited, never


def test_an_edited_question_is_answered_from_its_branch_only(store: HistoryStore, engine: EngineClient) -> None:
    """The answer to an edited question is the one a conversation that only ever had the edited question gets: the
    model reads the branch shown, not the old question or what followed it."""
    runner, recorder, edited, never = _two_turns(store, engine)
    question, = (m for m in store.messages(edited) if m.content.startswith("The dog"))
    runner.edit(edited, question.id, "What happened next?")
    after_edit = recorder.wait()
    started = [e for e in recorder.events if isinstance(e, AnswerStarted)][-1]
    assert started.replaced == question.id and started.user_message is not None
    assert (started.user_message.version, started.user_message.versions) == (2, 2)

    runner.send(never, "The cat sat on the mat.")
    recorder.wait()
    runner.send(never, "What happened next?")
    reference = recorder.wait()
    assert after_edit.content == reference.content and after_edit.prompt_tokens == reference.prompt_tokens
    shown = [m.content for m in store.messages(edited)]
    assert shown[2] == "What happened next?" and len(shown) == 4
    runner.show_version(started.user_message.id, -1)
    assert [m.content for m in store.messages(edited)][2] == question.content
    with pytest.raises(EngineError, match="cannot be empty"):
        runner.edit(edited, question.id, "  ")


def test_an_answer_cut_short_is_continued_in_the_same_message(store: HistoryStore, engine: EngineClient) -> None:
    """Continued at temperature 0, a 12-token answer goes on as the 24-token answer to the same question."""
    runner = ChatRunner(store, engine)
    recorder = Recorder(runner)
    conversation = _conversation(store, max_tokens=12, temperature=0.0)
    runner.send(conversation, "Tell me a story")
    cut = recorder.wait()
    assert cut.finish_reason == "length" and continuable(store.messages(conversation)) == cut
    runner.continue_answer(conversation)
    continued = recorder.wait()
    started = [e for e in recorder.events if isinstance(e, AnswerStarted)][-1]
    assert started.continued and started.user_message is None and started.assistant_message.id == cut.id
    assert continued.id == cut.id and continued.content.startswith(cut.content) and continued.content != cut.content
    assert continued.completion_tokens == 24 and continued.finish_reason == "length"
    assert store.messages(conversation) == [store.messages(conversation)[0], continued]  # saved, one answer

    whole = _conversation(store, max_tokens=24, temperature=0.0)
    runner.send(whole, "Tell me a story")
    assert recorder.wait().content == continued.content
    with pytest.raises(EngineError, match="no answer to continue"):
        runner.continue_answer(_conversation(store))


def test_a_message_too_long_for_the_context_is_refused_before_it_is_saved(
        store: HistoryStore, test_model_path: Path) -> None:
    engine = EngineClient()
    engine.start()
    try:
        engine.load_blocking(test_model_path, context_length=256)
        runner = ChatRunner(store, engine)
        conversation = _conversation(store, max_tokens=16, context_length=256)
        with pytest.raises(ContextTooSmallError, match="too long for the model's context window"):
            runner.send(conversation, "word " * 600)
        assert store.messages(conversation) == [] and store.get_conversation(conversation).title == "New chat"
        assert not runner.busy
    finally:
        engine.shutdown()


def test_a_deleted_message_is_out_of_the_next_answer_and_of_the_cache(
        store: HistoryStore, engine: EngineClient) -> None:
    """After a turn is deleted, the next answer is the one a conversation that never had it gets, though the
    engine's cache of the conversation still held it; Undo brings the turn back."""
    runner, recorder, edited, never = _two_turns(store, engine)
    barked = store.messages(edited)[-1]
    question, = (m for m in store.messages(edited) if m.content.startswith("The dog"))
    runner.delete_message(question.id)
    runner.delete_message(barked.id)
    runner.send(edited, "What happened next?")
    after_delete = recorder.wait()

    runner.send(never, "The cat sat on the mat.")
    recorder.wait()
    runner.send(never, "What happened next?")
    reference = recorder.wait()
    assert after_delete.content == reference.content and after_delete.prompt_tokens == reference.prompt_tokens

    runner.restore_message(question.id)
    runner.restore_message(barked.id)
    assert [m.id for m in store.messages(edited)][2:4] == [question.id, barked.id]


def test_turns_of_one_role_in_a_row_are_joined() -> None:
    def message(role: str, content: str, finish: str | None = None) -> MessageRecord:
        return MessageRecord(id=0, conversation_id=1, role=role, content=content, created_at=None,  # type: ignore[arg-type]
                             model_name=None, prompt_tokens=None, completion_tokens=None, ttft_s=None,
                             tokens_per_s=None, finish_reason=finish, error=None,  # type: ignore[arg-type]
                             context_dropped=0)

    history = [message("user", "One"), message("assistant", "failed", "error"), message("user", "Two"),
               message("assistant", "A"), message("assistant", "B")]
    assert build_messages(GenerationSettings(system_prompt="Sys"), history, "Three") == [
        {"role": "system", "content": "Sys"}, {"role": "user", "content": "One\n\nTwo"},
        {"role": "assistant", "content": "A\n\nB"}, {"role": "user", "content": "Three"}]


def test_trimmed_context_is_recorded(store: HistoryStore, test_model_path: Path) -> None:
    engine = EngineClient()
    engine.start()
    try:
        engine.load_blocking(test_model_path, context_length=256)
        runner = ChatRunner(store, engine)
        recorder = Recorder(runner)
        conversation = _conversation(store, max_tokens=32, context_length=256)
        long = "The little red bird sang a song about the river and the old oak tree. " * 3
        for i in range(6):
            store.add_message(conversation, "user", f"{i} {long}")
            store.add_message(conversation, "assistant", long, finish_reason="stop")
        runner.send(conversation, "What happened next?")
        final = recorder.wait()
        assert final.finish_reason == "length" and final.context_dropped >= 2
    finally:
        engine.shutdown()


def test_sending_without_a_model_is_a_clear_error(store: HistoryStore) -> None:
    runner = ChatRunner(store, EngineClient())
    with pytest.raises(EngineError, match="No model is loaded"):
        runner.send(_conversation(store), "Hello")


def test_titles_are_short_single_lines() -> None:
    assert title_from("  Hello\n  world ") == "Hello world"
    long = title_from("word " * 40)
    assert len(long) <= 48 and long.endswith("…")


def test_after_a_hard_kill_the_next_start_finds_the_partial_answer(tmp_path: Path, test_model_path: Path) -> None:
    """The app dies without closing anything (as with kill -9): what was flushed survives, and the next
    start marks it interrupted."""
    from app.paths import Paths
    from ui.main import build_services

    paths = Paths.under(tmp_path / "home").ensure()
    first = build_services(paths)
    first.engine.start()
    first.engine.load_blocking(test_model_path)
    first.runner.flush_interval_s = 0.0
    recorder = Recorder(first.runner)
    conversation = first.store.create_conversation("Chat", GenerationSettings(max_tokens=1800).to_dict()).id
    first.runner.send(conversation, "Go on and on")
    assert recorder.delta.wait(30)
    assert first.engine.pid is not None
    os.kill(first.engine.pid, signal.SIGSTOP)  # nothing more arrives; the app "dies" here without closing
    flushed = first.store.messages(conversation)[-1]
    assert flushed.finish_reason is None and flushed.content

    second = build_services(paths)
    survivor = second.store.messages(conversation)[-1]
    assert survivor.finish_reason == "interrupted" and survivor.content.startswith(flushed.content)
    os.kill(first.engine.pid, signal.SIGKILL)
