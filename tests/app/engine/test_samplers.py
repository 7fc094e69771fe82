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
