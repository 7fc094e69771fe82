"""Reading ahead while a message is typed: the worker reads the draft into the conversation's cache, so that
sending it reads only what changed since, and the answer is the one it would have been. Real llama.cpp and a
real model; token counts and answers, never timings."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from app.chat import ChatRunner, conversation_key
from app.engine import EngineClient
from app.engine import protocol as p
from app.engine.client import EventWaiter
from app.history import HistoryStore, open_database
from app.settings import GenerationSettings

pytestmark = pytest.mark.engine

HISTORY = [
    {"role": "user", "content": "My cat is called Pepper and she likes to sleep on the windowsill in the sun."},
    {"role": "assistant", "content": "Pepper sounds lovely. Cats do love a warm windowsill."},
]
QUESTION = "What is my cat called, and where does she like to sleep?"


@pytest.fixture(scope="module")
def engine(real_model_path: Path) -> Iterator[EngineClient]:
    client = EngineClient()
    client.start()
    client.load_blocking(real_model_path, context_length=2048)
    yield client
    client.shutdown()


def _read_ahead(engine: EngineClient, conversation: str, messages: list[dict[str, str]]) -> p.ReadAheadDone:
    with EventWaiter(engine) as waiter:
        assert engine.read_ahead(messages, conversation=conversation, max_tokens=32)
        event = waiter.wait_for((p.ReadAheadDone,), 120)
    assert isinstance(event, p.ReadAheadDone) and event.conversation == conversation
    return event


def _answer(engine: EngineClient, conversation: str | None, messages: list[dict[str, str]]) -> p.Finished:
    return engine.chat_blocking(messages, max_tokens=32, temperature=0.0, seed=5, conversation=conversation)


def _read(finished: p.Finished) -> int:
    return finished.metrics.prompt_tokens - finished.metrics.cached_prompt_tokens


def test_a_message_read_ahead_is_answered_at_once_with_the_same_answer(engine: EngineClient) -> None:
    messages = [*HISTORY, {"role": "user", "content": QUESTION}]
    baseline = _answer(engine, None, messages)
    _answer(engine, "other", [{"role": "user", "content": "Hello there."}])  # the cache now holds another prompt

    done = _read_ahead(engine, "pepper", messages)
    assert done.cached == done.prompt_tokens == baseline.metrics.prompt_tokens
    assert 0 < done.read < done.prompt_tokens  # the system prompt the other conversation began with was kept
    answered = _answer(engine, "pepper", messages)
    assert _read(answered) == 0  # the first token is sampled from the logits the read-ahead left
    assert answered.text == baseline.text
    assert answered.metrics.completion_tokens == baseline.metrics.completion_tokens


def test_a_draft_that_grew_before_it_was_sent_reads_only_the_change(engine: EngineClient) -> None:
    draft = [*HISTORY, {"role": "user", "content": "What is my cat called, and where"}]
    first = _read_ahead(engine, "grows", draft)
    again = _read_ahead(engine, "grows", draft)  # nothing new: nothing read
    assert first.read > 0 and first.cached == first.prompt_tokens
    assert again.read == 0 and again.cached == again.prompt_tokens

    messages = [*HISTORY, {"role": "user", "content": QUESTION}]
    answered = _answer(engine, "grows", messages)
    assert 0 < _read(answered) < answered.metrics.prompt_tokens // 2
    assert answered.text == _answer(engine, None, messages).text


def test_a_message_sent_while_its_draft_is_read_gets_the_right_answer(engine: EngineClient) -> None:
    """The read-ahead gives way to the message: whatever part of the draft was read is kept only as far as
    the message shares it."""
    long_draft = [*HISTORY, {"role": "user", "content": "Tell me about cats. " * 60}]
    messages = [*HISTORY, {"role": "user", "content": QUESTION}]
    baseline = _answer(engine, None, messages)
    for pause in (0.0, 0.03, 0.1, 0.3):  # the message comes before, during or after the draft's reading
        assert engine.read_ahead(long_draft, conversation="race", max_tokens=32)
        time.sleep(pause)
        answered = _answer(engine, "race", messages)
        assert answered.text == baseline.text
        _answer(engine, None, [{"role": "user", "content": "Hello."}])


def test_nothing_is_read_ahead_while_an_answer_runs_or_without_a_model(engine: EngineClient) -> None:
    with EventWaiter(engine) as waiter:
        request = engine.generate([{"role": "user", "content": "Count to ten."}], max_tokens=24, temperature=0.0)
        assert not engine.read_ahead([{"role": "user", "content": "x"}], conversation="busy")
        while not (isinstance(event := waiter.wait_for((p.Finished,), 120), p.Finished)
                   and event.request_id == request):
            pass
    idle = EngineClient()
    assert not idle.read_ahead([{"role": "user", "content": "x"}], conversation="none")


def test_the_chat_runner_reads_ahead_the_conversation_with_its_draft(engine: EngineClient, tmp_path: Path) -> None:
    store = HistoryStore(open_database(tmp_path / "history.sqlite3"))
    runner = ChatRunner(store, engine)
    settings = GenerationSettings(max_tokens=32, temperature=0.0, seed=5)
    conversation = store.create_conversation("Pepper", settings.to_dict())
    assert not runner.read_ahead(conversation.id, "   ")
    with EventWaiter(engine) as waiter:
        assert runner.read_ahead(conversation.id, QUESTION)
        done = waiter.wait_for((p.ReadAheadDone,), 120)
    assert isinstance(done, p.ReadAheadDone) and done.conversation == conversation_key(conversation.id)
    assert done.read > 0 and done.cached == done.prompt_tokens


@pytest.mark.gui
def test_the_composer_reports_its_draft_once_typing_pauses(qtbot: QtBot) -> None:
    from ui.chat.chat_view import ChatView

    view = ChatView()
    qtbot.addWidget(view)
    with qtbot.assertNotEmitted(view.draftChanged, wait=300):
        qtbot.keyClicks(view.composer, "no conversation yet")  # a new chat has nothing to read ahead into
    view.show_conversation(1, [])
    drafts: list[str] = []
    view.draftChanged.connect(drafts.append)
    with qtbot.waitSignal(view.draftChanged, timeout=5000):
        qtbot.keyClicks(view.composer, " and now one")
    assert drafts == ["no conversation yet and now one"]  # a burst of keys is one draft
    view.set_busy(True)
    with qtbot.assertNotEmitted(view.draftChanged, wait=300):
        qtbot.keyClicks(view.composer, "!")


def test_after_an_answer_the_next_turn_opens_so_a_pasted_follow_up_reads_only_itself(engine: EngineClient) -> None:
    """The answer's end as the template closes it and the next turn's header are read after the answer, before
    any follow-up exists; a follow-up then reads its own text and the template's header for the answer only,
    and is answered as it would be without."""
    messages = [*HISTORY, {"role": "user", "content": QUESTION}]
    with EventWaiter(engine) as waiter:
        first = _answer(engine, "opened", messages)
        opened = waiter.wait_for((p.TurnOpened,), 120)
    assert isinstance(opened, p.TurnOpened) and opened.conversation == "opened"
    assert opened.read > 0 and opened.cached > first.metrics.prompt_tokens + first.metrics.completion_tokens - 2

    follow_up = "How old is she?"
    asked = [*messages, {"role": "assistant", "content": first.text}, {"role": "user", "content": follow_up}]
    answered = _answer(engine, "opened", asked)
    assert answered.metrics.cached_prompt_tokens == opened.cached
    # What is left is the follow-up and the header of its answer: what the same message reads as the first one
    # of a conversation whose system prompt is cached.
    _answer(engine, "fresh", [{"role": "user", "content": "Hello."}])
    alone = _answer(engine, "alone", [{"role": "user", "content": follow_up}])
    assert _read(answered) == _read(alone)
    assert answered.text == _answer(engine, None, asked).text


def test_no_opening_is_read_after_an_answer_outside_a_conversation(engine: EngineClient) -> None:
    with EventWaiter(engine) as waiter:
        _answer(engine, None, [{"role": "user", "content": QUESTION}])
        _answer(engine, "after", [{"role": "user", "content": "Hello."}])  # its own opening comes after its answer
        opened = waiter.wait_for((p.TurnOpened,), 120)
    assert isinstance(opened, p.TurnOpened) and opened.conversation == "after"
