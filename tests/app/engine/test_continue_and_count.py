"""An answer continued from where it was cut short, and the token count the chat's context meter shows, with the
real llama.cpp and the real test model."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.engine import EngineClient
from app.engine import protocol as p
from app.engine.client import EventWaiter

pytestmark = pytest.mark.engine

PROMPT = [{"role": "user", "content": "Once upon a time"}]


def test_a_continued_answer_goes_on_as_the_whole_answer_would(loaded_engine: EngineClient) -> None:
    """Greedy decoding with the default samplers (a repeat penalty among them): the answer cut at 20 tokens and
    continued for 40 more is the answer of 60, and the continuation reads only what the cache lacks."""
    whole = loaded_engine.chat_blocking(PROMPT, max_tokens=60, temperature=0.0, seed=1)
    cut = loaded_engine.chat_blocking(PROMPT, max_tokens=20, temperature=0.0, seed=1)
    rest = loaded_engine.chat_blocking(PROMPT, max_tokens=40, temperature=0.0, seed=1, prefill=cut.text)
    assert whole.metrics.completion_tokens == 60 and cut.metrics.completion_tokens == 20
    assert cut.text + rest.text == whole.text
    assert rest.metrics.prompt_tokens == cut.metrics.prompt_tokens + cut.metrics.completion_tokens
    assert rest.metrics.cached_prompt_tokens >= cut.metrics.prompt_tokens


def test_tokens_are_counted_while_an_answer_is_written(loaded_engine: EngineClient) -> None:
    with EventWaiter(loaded_engine) as waiter:
        request = loaded_engine.generate(PROMPT, max_tokens=1800, seed=5)
        waiter.wait_for((p.Token,), 30)
        counting = loaded_engine.count_tokens(PROMPT, max_tokens=100)
        event = waiter.wait_for((p.TokensCounted, p.Finished), 30)
        assert isinstance(event, p.TokensCounted), "the count waited for the answer"
        assert event.request_id == counting and event.context_length == 2048 and event.room == 1948
        assert 16 < event.tokens == event.least and event.fits
        loaded_engine.stop()
        finished = waiter.wait_for((p.Finished,), 30)
    assert isinstance(finished, p.Finished) and finished.request_id == request


def test_the_count_says_what_the_engine_would_refuse(engine: EngineClient, test_model_path: Path) -> None:
    assert engine.count_tokens(PROMPT) is None  # no model: nothing to count with
    engine.load_blocking(test_model_path, context_length=256)
    system = {"role": "system", "content": "Be kind."}
    turn = "Tell me about the little red bird who lived in the old oak tree by the river. " * 2
    long_chat = [system]
    for i in range(12):
        long_chat += [{"role": "user", "content": f"{i}: {turn}"}, {"role": "assistant", "content": turn}]
    long_chat.append({"role": "user", "content": "And then?"})

    counted = engine.count_tokens_blocking(long_chat, max_tokens=32)
    assert counted is not None and counted.room == 224
    assert counted.tokens > counted.room and counted.fits  # the oldest turns are left out, and it is answered
    assert engine.chat_blocking(long_chat, max_tokens=32).finish_reason in ("length", "stop")

    too_long = [system, {"role": "user", "content": "word " * 600}]
    counted = engine.count_tokens_blocking(too_long, max_tokens=16)
    assert counted is not None and not counted.fits and counted.least > counted.room
    with pytest.raises(Exception, match="too long for this model's context window"):
        engine.chat_blocking(too_long, max_tokens=16)

    wider = engine.count_tokens_blocking(too_long, max_tokens=16, context_length=2048)
    assert wider is not None and wider.fits and wider.context_length == 2048  # as a reload would have it
