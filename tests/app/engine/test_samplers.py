"""The samplers reach llama.cpp: the default repeat penalty breaks the loop a small model falls into at temperature 0
("Section 4: The Future of Romance, Section 5: The Future of Fantasy, Section 6: …" without it)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.engine import EngineClient
from app.settings import Samplers

pytestmark = pytest.mark.engine

LOOP = [{"role": "user", "content": "Write the list: Section 1, Section 2, Section 3, and go on."}]


@pytest.fixture(scope="module")
def engine(real_model_path: Path) -> Iterator[EngineClient]:
    client = EngineClient()
    client.start()
    client.load_blocking(real_model_path, context_length=1024)
    yield client
    client.shutdown()


def _most_repeated(text: str) -> int:
    words = text.split()
    return max(Counter(zip(words, words[1:], words[2:], strict=False)).values(), default=0)


def test_the_default_repeat_penalty_breaks_a_loop(engine: EngineClient) -> None:
    plain = engine.chat_blocking(LOOP, max_tokens=160, temperature=0.0, seed=1,
                                 samplers=Samplers(repeat_penalty=1.0))
    penalized = engine.chat_blocking(LOOP, max_tokens=160, temperature=0.0, seed=1)  # the defaults: 1.1
    assert penalized.text != plain.text
    assert _most_repeated(penalized.text) < _most_repeated(plain.text), (plain.text, penalized.text)


def test_an_answer_that_loops_is_stopped_and_says_why(engine: EngineClient) -> None:
    """Without the repeat penalty the model writes "Section 9: The Future of Science Fiction" on and on; the
    worker stops it as it streams (app/degenerate.py), well before its length limit, with the reason."""
    from app.degenerate import Degeneration
    from app.outcomes import FinishReason

    streamed: list[str] = []
    looped = engine.chat_blocking(LOOP, max_tokens=400, temperature=0.0, seed=1, on_token=streamed.append,
                                  samplers=Samplers(repeat_penalty=1.0))
    assert looped.finish_reason is FinishReason.DEGENERATE and looped.degeneration is Degeneration.REPEATING
    assert looped.metrics.completion_tokens < 200 and looped.text == "".join(streamed)
    assert looped.text.count("The Future of") >= 8
    fine = engine.chat_blocking([{"role": "user", "content": "What is the capital of France?"}], max_tokens=60,
                                temperature=0.0, seed=1)
    assert fine.finish_reason in (FinishReason.STOP, FinishReason.LENGTH) and fine.degeneration is None
