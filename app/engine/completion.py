"""The task runner's view of a loaded ``llama_cpp.Llama``: tokenize, stream one completion with exact token
counts, and score labels. Only the engine worker imports this (with ``llama_kv``, the one place besides the
worker that touches llama.cpp objects)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from app.engine.llama_kv import ReuseGuard, common_prefix
from app.tasks.runner import Completion

TOKEN_FLUSH_S = 0.03


class TokenCounter:
    """Counts a generation's prompt and sampled tokens exactly, by wrapping ``Llama.sample`` for its length.

    A logits processor could count too, but it makes llama-cpp-python copy every logit through Python on
    each token; this costs one Python call per token (well under 0.5% of a token's time, measured by
    ``benchmarks/engine_overhead.py``). llama.cpp's performance counters were tried and do not work: a
    re-evaluated prompt token counts as a generated one.

    It counts the prompt tokens llama.cpp really read (``read``) too, by wrapping ``Llama.eval``: the rest of
    the prompt was reused from the cache of the previous prompt (``Llama.generate`` keeps the prefix they share).

    It also holds the answer to ``limit`` tokens: llama-cpp-python checks ``max_tokens`` only when a token
    completes some text, so a model whose tokens never make valid UTF-8 (seen with random weights; a broken
    model could do the same) would otherwise write until the context is full and llama.cpp fails.
    """

    def __init__(self, llm: Any, cancelled: Callable[[], bool] = lambda: False, limit: int | None = None) -> None:
        self.llm = llm
        self.cancelled = cancelled
        self.limit = limit
        self.prompt = 0
        self.read = 0
        self.sampled = 0
        self.stopped = False
        self.capped = False
        self._sample = llm.sample
        self._eval = llm.eval
        llm.sample = self._counting_sample
        llm.eval = self._counting_eval

    def _counting_eval(self, tokens: Sequence[int]) -> None:
        if self.sampled == 0:
            self.read += len(tokens)
        self._eval(tokens)

    def _counting_sample(self, *args: Any, **kwargs: Any) -> Any:
        if self.sampled == 0:
            self.prompt = int(self.llm.n_tokens)
        self.sampled += 1
        if self.cancelled():
            # Ending with end-of-text stops even a model whose tokens never make a streamed chunk (bytes of
            # an unfinished character are held back), where the check between chunks is never reached.
            self.stopped = True
            return self.llm.token_eos()
        if self.limit is not None and self.sampled > self.limit:
            self.capped = True
            return self.llm.token_eos()
        return self._sample(*args, **kwargs)

    def detach(self) -> None:
        for name in ("sample", "eval"):
            with contextlib.suppress(AttributeError):
                delattr(self.llm, name)


class LlamaModel:
    """Implements ``app.tasks.runner.Model`` over a loaded model. ``cancelled`` is polled after every
    streamed chunk, as in a chat answer."""

    def __init__(self, llm: Any, cancelled: Callable[[], bool]) -> None:
        self.llm = llm
        self.cancelled = cancelled
        self._prompt: list[int] = []
        # After ``complete``: prompt tokens read (the rest came from the cache), and how many of the tokens
        # now cached the next turn's prompt will start with (the prompt and the answer as its text
        # tokenizes, which is how the chat template writes it into the next prompt).
        self.prompt_read = 0
        self.reusable_tokens = 0

    @property
    def n_ctx(self) -> int:
        return int(self.llm.n_ctx())

    def tokenize(self, text: str) -> list[int]:
        return list(self.llm.tokenize(text.encode("utf-8"), add_bos=False, special=False))

    def detokenize(self, tokens: list[int]) -> str:
        return str(self.llm.detokenize(tokens).decode("utf-8", errors="replace"))

    def complete(self, messages: list[dict[str, str]], *, max_tokens: int, temperature: float, seed: int | None,
                 grammar: str | None = None, on_text: Callable[[str], None] | None = None,
                 top_p: float = 0.95) -> Completion:
        """Stream one answer, passing coalesced text to ``on_text`` (at most one call per ~30 ms after the
        first, so the pipe never slows generation). A prompt that does not fit raises ``ValueError`` before
        any text.

        Token counts come from ``TokenCounter``: the stream reports none, and its chunks do not map one to
        one onto tokens (text is held back while it could still become a stop sequence or a multi-byte
        character, and then llama-cpp-python may sample past ``max_tokens``).
        """
        from llama_cpp import LlamaGrammar

        counter = TokenCounter(self.llm, self.cancelled, limit=max_tokens)
        guard = ReuseGuard(self.llm)
        try:
            started = time.perf_counter()
            stream = self.llm.create_chat_completion(
                messages=messages, stream=True, max_tokens=max_tokens, temperature=temperature, top_p=top_p, seed=seed,
                grammar=LlamaGrammar.from_string(grammar, verbose=False) if grammar else None)
            parts: list[str] = []
            pending: list[str] = []
            first_at: float | None = None
            last_sent = 0.0
            finish_reason = "length"
            cancelled = False
            iterator: Iterator[Any] = iter(stream)
            for chunk in iterator:
                if self.cancelled():
                    cancelled = True
                    close = getattr(iterator, "close", None)
                    if close is not None:
                        close()
                    break
                choice = chunk["choices"][0]
                delta = choice["delta"].get("content")
                if delta:
                    now = time.perf_counter()
                    first_at = first_at or now
                    parts.append(delta)
                    pending.append(delta)
                    if on_text is not None and (now - last_sent >= TOKEN_FLUSH_S or len(parts) == 1):
                        on_text("".join(pending))
                        pending.clear()
                        last_sent = now
                if choice.get("finish_reason"):
                    finish_reason = choice["finish_reason"]
            ended = time.perf_counter()
            cancelled = cancelled or counter.stopped
            if pending and on_text is not None:
                on_text("".join(pending))
            self._prompt = [int(t) for t in self.llm.input_ids[:counter.prompt]] if counter.prompt else []
            self.prompt_read = counter.read
            self.reusable_tokens = self._reusable(counter.prompt, "".join(parts))
            ended_by_us = counter.stopped or counter.capped
            completion = counter.sampled - (1 if ended_by_us or (finish_reason == "stop" and not cancelled) else 0)
            finish_reason = "length" if counter.capped else finish_reason
            return Completion(text="".join(parts), prompt_tokens=counter.prompt, completion_tokens=max(completion, 0),
                              finish_reason="cancelled" if cancelled else finish_reason,
                              generating_s=ended - first_at if first_at is not None else 0.0,
                              ttft_s=first_at - started if first_at is not None else None, total_s=ended - started)
        finally:
            guard.detach()
            counter.detach()

    def _reusable(self, prompt_tokens: int, text: str) -> int:
        """The prompt, and the answer's tokens as far as they match how its text tokenizes within the next
        prompt. The text is tokenized after the prompt's last token, as it will be: alone, a SentencePiece
        tokenizer would give its start a space, and the context decides merges at the boundary."""
        if not prompt_tokens:
            return 0
        llm = self.llm
        lead = llm.detokenize([int(llm.input_ids[prompt_tokens - 1])], special=True)
        lead_tokens = llm.tokenize(lead, add_bos=False, special=True)
        answer = llm.tokenize(lead + text.encode("utf-8"), add_bos=False, special=True)
        if answer[:len(lead_tokens)] == lead_tokens:
            answer = answer[len(lead_tokens):]
        else:
            answer = llm.tokenize(text.encode("utf-8"), add_bos=False, special=True)
        return prompt_tokens + common_prefix(llm.input_ids[prompt_tokens:llm.n_tokens], answer)

    def label_logprobs(self, labels: Sequence[str]) -> list[float]:
        """Score each label token by token after the last prompt, reusing its cached keys and values: the
        prompt is not read again, each label costs one small decode per token."""
        import llama_cpp

        prompt = self._prompt
        if not prompt:
            raise RuntimeError("label_logprobs needs a completion first")
        llm = self.llm
        n_vocab = llm.n_vocab()

        def logits() -> Any:
            pointer = llama_cpp.llama_get_logits_ith(llm.ctx, -1)
            values = np.ctypeslib.as_array(pointer, shape=(n_vocab,)).astype(np.float64)
            top = values.max()
            return values - top - np.log(np.exp(values - top).sum())

        llm.n_tokens = len(prompt) - 1
        llm.eval(prompt[-1:])
        after_prompt = logits()
        scores: list[float] = []
        for label in labels:
            tokens = self.tokenize(label)
            llm.n_tokens = len(prompt)
            total, current = 0.0, after_prompt
            for position, token in enumerate(tokens):
                total += float(current[token])
                if position + 1 < len(tokens):
                    llm.eval([token])
                    current = logits()
            scores.append(total)
        llm.n_tokens = len(prompt)
        return scores


class VocabModel:
    """Token counts for a model that is not loaded: llama.cpp's tokenizer from the vocabulary alone, with the
    context length the model would be loaded with. It answers ``plan_task`` only."""

    def __init__(self, path: str, n_ctx: int) -> None:
        from llama_cpp import Llama

        self.llm = Llama(model_path=path, vocab_only=True, verbose=False)
        self._n_ctx = n_ctx

    @property
    def n_ctx(self) -> int:
        return self._n_ctx

    def tokenize(self, text: str) -> list[int]:
        return list(self.llm.tokenize(text.encode("utf-8"), add_bos=False, special=False))

    def detokenize(self, tokens: list[int]) -> str:
        return str(self.llm.detokenize(tokens).decode("utf-8", errors="replace"))

    def complete(self, *_args: Any, **_kwargs: Any) -> Completion:
        raise RuntimeError("a vocabulary-only model cannot generate")

    def label_logprobs(self, labels: Sequence[str]) -> list[float]:
        raise RuntimeError("a vocabulary-only model cannot generate")

    def close(self) -> None:
        self.llm.close()
