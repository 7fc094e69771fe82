"""The samplers reach llama.cpp: the default repeat penalty breaks the loop a small model falls into at temperature 0
("Section 4: The Future of Romance, Section 5: The Future of Fantasy, Section 6: …" without it)."""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

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


def _tokens_with(llm: Any, make: Any, prompt: list[int], count: int, **arguments: Any) -> list[int]:
    llm.set_seed(7)
    llm.reset()
    llm._init_sampler = make
    written: list[int] = []
    try:
        for token in llm.generate(prompt, **arguments):
            written.append(token)
            if len(written) == count:
                break
    finally:
        del llm._init_sampler
    return written


@pytest.mark.parametrize("arguments", [
    {"temp": 0.0, "top_k": 40, "repeat_penalty": 1.3, "frequency_penalty": 0.2, "presence_penalty": 0.3},
    {"temp": 0.9, "top_k": 40, "top_p": 0.95, "min_p": 0.05, "repeat_penalty": 1.3},
], ids=["greedy", "sampled"])
def test_the_narrowed_chain_writes_what_llama_cpp_pythons_own_writes(real_model_path: Path,
                                                                      arguments: dict[str, Any]) -> None:
    """Penalties over a real 49,152-token vocabulary, strong enough to change the answer: the chain that keeps
    only the tokens that can win (``engine/sampling.py``) writes the same tokens, greedy and sampled."""
    from app.engine.sampling import narrowable, sampler_maker
    from app.engine.worker import llama_here

    llm = llama_here(str(real_model_path), n_ctx=512, verbose=False)
    prompt = llm.tokenize(b"List the numbers from one to fifty in words, separated by commas:", add_bos=True)
    assert narrowable(arguments)
    own = _tokens_with(llm, functools.partial(type(llm)._init_sampler, llm), prompt, 96, **arguments)
    narrowed = _tokens_with(llm, sampler_maker(llm), prompt, 96, **arguments)
    unpenalized = _tokens_with(llm, sampler_maker(llm), prompt, 96, **{
        **arguments, "repeat_penalty": 1.0, "frequency_penalty": 0.0, "presence_penalty": 0.0})
    assert len(own) == 96 and narrowed == own
    assert unpenalized != own  # the penalties were at work


def test_the_chain_is_llama_cpp_pythons_own_where_narrowing_would_change_it() -> None:
    from app.engine.sampling import narrowable

    assert narrowable({"temp": 0.7, "top_k": 40, "repeat_penalty": 1.1})
    assert not narrowable({"temp": 0.7, "top_k": 40, "repeat_penalty": 0.9})  # raises the repeated tokens
    assert not narrowable({"temp": 0.7, "top_k": 40, "presence_penalty": -0.5})
    assert not narrowable({"temp": 0.7, "top_k": 0})  # samples from the whole vocabulary
    assert not narrowable({"temp": -1.0, "top_k": 40})
    assert not narrowable({"temp": 0.0, "grammar": object()})  # a grammar may refuse every token kept
