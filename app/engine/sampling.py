"""The sampler chain of each answer: llama-cpp-python's, narrowed first to the few tokens that can win.

llama-cpp-python puts llama.cpp's penalty sampler first in its chain, over the whole vocabulary: with Hearth's
repeat penalty (1.1, over the last 64 tokens) llama.cpp looks up every token of the vocabulary in the penalty's
table, each time a token is sampled. Measured on SmolLM2-135M (49,152 tokens), that is 160 us of a 210 us
sample; with a 262,144-token vocabulary it is about a millisecond, several percent of a small model's decode.

Penalties that only lower scores (a repeat penalty of at least 1, presence and frequency penalties of at least 0)
lower at most the ``last_n`` tokens they remember. So a token outside the best ``last_n + k`` before them
cannot be among the best ``k`` after them: at least ``k`` unpenalized tokens stay above it. A top-k of
``last_n + k`` in front of the chain leaves the rest of it, and so the answer, as it was, and makes the
penalties' pass cost as little as the tokens kept. The chain is built here, rather than by
``Llama._init_sampler``, only because llama.cpp's chains cannot take a sampler in front once built; anything
the narrowing does not hold for (a grammar, a custom processor, mirostat, raised scores, sampling from the
whole vocabulary) is left to llama-cpp-python's own.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any


def sampler_maker(llm: Any, written: Sequence[int] = ()) -> Callable[..., Any]:
    """A stand-in for ``llm._init_sampler`` (it takes the same arguments). ``written``: tokens the samplers
    start as if they had sampled them: a continued answer's repeat penalties cover the text it continues, so it
    goes on as the answer would have (llama.cpp's penalty samplers remember the tokens they accepted, never the
    prompt's)."""
    own = type(llm)._init_sampler
    last_n = int(llm.last_n_tokens_size)

    def make(**arguments: Any) -> Any:
        sampler = _narrowed(llm, last_n, arguments) if narrowable(arguments) else own(llm, **arguments)
        for token in list(written)[-last_n:]:
            sampler.accept(token)
        return sampler

    return make


def narrowable(arguments: dict[str, Any]) -> bool:
    """Whether the narrowed chain samples exactly what llama-cpp-python's would (see the module's docstring)."""
    temp, top_k = float(arguments.get("temp", 0.8)), int(arguments.get("top_k", 40))
    return (arguments.get("grammar") is None and arguments.get("logits_processor") is None
            and not arguments.get("mirostat_mode") and float(arguments.get("repeat_penalty", 1.0)) >= 1.0
            and float(arguments.get("frequency_penalty", 0.0)) >= 0.0
            and float(arguments.get("presence_penalty", 0.0)) >= 0.0 and (temp == 0.0 or (temp > 0.0 and top_k > 0)))


def _narrowed(llm: Any, last_n: int, arguments: dict[str, Any]) -> Any:
    from llama_cpp import _internals

    internals: Any = _internals  # untyped: its samplers' methods return nothing
    temp, top_k = float(arguments.get("temp", 0.8)), int(arguments.get("top_k", 40))
    sampler = internals.LlamaSampler()
    sampler.add_top_k(last_n + (1 if temp == 0.0 else top_k))
    sampler.add_penalties(n_vocab=llm._n_vocab, penalty_last_n=last_n,
                          penalty_repeat=float(arguments.get("repeat_penalty", 1.0)),
                          penalty_freq=float(arguments.get("frequency_penalty", 0.0)),
                          penalty_present=float(arguments.get("presence_penalty", 0.0)))
    if temp == 0.0:
        sampler.add_greedy()
        return sampler
    sampler.add_top_k(top_k)  # as llama-cpp-python's chain goes on
    sampler.add_typical(float(arguments.get("typical_p", 1.0)), 1)
    sampler.add_top_p(float(arguments.get("top_p", 0.95)), 1)
    sampler.add_min_p(float(arguments.get("min_p", 0.05)), 1)
    sampler.add_temp(temp)
    sampler.add_dist(llm._seed)
    return sampler
