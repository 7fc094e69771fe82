"""The task runner's view of a loaded ``llama_cpp.Llama``: tokenize, stream one completion with exact token
counts, and score labels. Only the engine worker imports this (with ``llama_kv``, the one place besides the
worker that touches llama.cpp objects)."""

from __future__ import annotations

import codecs
import contextlib
import functools
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from app.degenerate import Watch, Watcher
from app.engine.llama_kv import ReuseGuard, common_prefix, truncate, window_holds
from app.engine.sampling import sampler_maker
from app.outcomes import FinishReason
from app.settings import Samplers
from app.tasks.model import Completion, TokenCounts

TOKEN_FLUSH_S = 0.03
READ_AHEAD_CHUNK = 16  # tokens read between checks for a newer command
# Two next messages that share nothing: what their prompts share is what any next prompt starts with.
NEXT_MESSAGES = ("A", "B")


class PromptReads:
    """Counts the prompt tokens llama.cpp really reads, by wrapping ``Llama.eval`` until the first token is
    sampled: the rest of the prompt was reused from the cache of the previous one (``Llama.generate`` keeps the
    prefix they share). llama.cpp's performance counters were tried and do not work: a re-evaluated prompt token
    counts as a generated one."""

    def __init__(self, llm: Any, on_read: Callable[[int, int], None] | None = None) -> None:
        self.llm = llm
        self.read = 0
        self.prompt_done = False
        self.on_read = on_read
        self._eval = llm.eval
        llm.eval = self._counting_eval

    def _counting_eval(self, tokens: Sequence[int]) -> None:
        if self.prompt_done:
            self._eval(tokens)
            return
        if self.on_read is None:
            self.read += len(tokens)
            self._eval(tokens)
            return
        # One batch at a time, as ``Llama.eval`` reads them, telling how far it got after each.
        step = max(int(self.llm.n_batch), 1)
        for start in range(0, len(tokens), step):
            piece = tokens[start:start + step]
            self._eval(piece)
            self.read += len(piece)
            self.on_read(start + len(piece), len(tokens))

    def detach(self) -> None:
        with contextlib.suppress(AttributeError):
            del self.llm.eval


class _StopText:
    """Holds back the end of the text only while it could still become one of the chat format's stop strings
    (its end is the start of one), so the first words are shown as soon as they are generated: a fixed hold
    of the longest stop's length kept the first text back for two or three tokens, each a decode over the
    whole conversation. Most formats stop on a special token instead, which ends the loop before any text."""

    def __init__(self, stops: Sequence[str]) -> None:
        self.stops = [s for s in stops if s]
        self.longest = max((len(s) for s in self.stops), default=0)
        self.text = ""
        self.sent = 0
        self.matched: str | None = None  # the stop string that ended the text

    def add(self, delta: str) -> tuple[str, bool]:
        """The text that is safe to show now, and whether a stop string was reached."""
        start = max(self.sent - self.longest, 0)
        self.text += delta
        found = [(i, stop) for i, stop in ((self.text.find(stop, start), stop) for stop in self.stops) if i >= 0]
        if found:
            at, self.matched = min(found, key=lambda hit: hit[0])
            self.text = self.text[:at]
            return self._release(len(self.text)), True
        return self._release(len(self.text) - self._partial_stop()), False

    def rest(self) -> str:
        return self._release(len(self.text))

    def _partial_stop(self) -> int:
        """How many characters at the end of the text are the start of a stop string."""
        for n in range(min(self.longest - 1, len(self.text)), 0, -1):
            tail = self.text[-n:]
            if any(stop.startswith(tail) for stop in self.stops):
                return n
        return 0

    def _release(self, upto: int) -> str:
        out, self.sent = self.text[self.sent:upto], max(upto, self.sent)
        return out


class LlamaModel:
    """Implements ``app.tasks.model.Model`` over a loaded model. ``cancelled`` is polled after every
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
                 top_p: float = 0.95, formatted: tuple[list[int], list[str]] | None = None,
                 samplers: Samplers | None = None, prefill: str = "", watch: Watch | None = None,
                 on_tokens: TokenCounts | None = None, stop: Sequence[str] = ()) -> Completion:
        """Stream one answer, passing coalesced text to ``on_text`` (at most one call per ~30 ms after the
        first, so the pipe never slows generation). A prompt that does not fit raises ``ValueError`` before
        any text.

        The messages are formatted by llama-cpp-python's own chat handler (``formatted``), but the tokens are
        driven here, one ``Llama.generate`` step each, with the sampling ``create_chat_completion`` uses. Its
        own loop decodes every token of the answer again for each new one (quadratic: 5-7% of the speed at 600
        tokens, more the longer the answer), checks ``max_tokens`` only when a token completes some text (a
        model whose tokens never do wrote until the context was full and llama.cpp failed), and counts nothing.
        ``formatted``: what ``formatted(messages)`` gave earlier (a read-ahead of the same messages), so a long
        conversation is not formatted and tokenized again. ``prefill``: the answer's start, already written (the
        messages end with the question it answers): the model goes on from its end, and only the new text is
        returned. ``watch``: the answer is fed to an ``app.degenerate.Watcher`` as it is written, and stopped
        (``DEGENERATE``) when it finds it looping.
        ``on_tokens``: told the prompt tokens read (after each batch) and the tokens written (after each).
        ``stop``: texts that end the answer besides the chat format's own (an API client's ``stop``).
        """
        import random

        import llama_cpp
        from llama_cpp.llama_grammar import LlamaGrammar

        llm = self.llm
        prompt, stops = formatted or self.formatted(messages)
        written_before = self._tokens_after(prompt[-1], prefill) if prefill else []
        prompt = [*prompt, *written_before]
        n_ctx = int(llm.n_ctx())
        if len(prompt) >= n_ctx:
            raise ValueError(f"Requested tokens ({len(prompt)}) exceed context window of {n_ctx}")
        limit = min(max_tokens if max_tokens > 0 else n_ctx, n_ctx - len(prompt))
        llm.set_seed(seed if seed is not None else random.randrange(2**32))
        vocab = llama_cpp.llama_model_get_vocab(llm.model)
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        stop_text = _StopText([*stops, *(text for text in stop if text)])
        watcher = Watcher(watch) if watch is not None else None
        to_read = 0

        def on_read(read: int, of: int) -> None:
            nonlocal to_read
            to_read = of
            if on_tokens is not None:
                on_tokens(read, of, 0)

        reads, guard = PromptReads(llm, on_read if on_tokens is not None else None), ReuseGuard(llm)
        parts: list[str] = []
        pending: list[str] = []
        first_at: float | None = None
        last_sent = 0.0
        finish_reason, written, stopped = FinishReason.LENGTH, 0, False
        started = time.perf_counter()
        s = samplers or Samplers()
        held = LlamaGrammar.from_string(grammar, verbose=False) if grammar else None
        llm._init_sampler = sampler_maker(llm, written_before)  # for this answer only
        tokens = llm.generate(prompt, top_k=s.top_k, top_p=top_p, min_p=s.min_p, typical_p=1.0, temp=temperature,
                              repeat_penalty=s.repeat_penalty, presence_penalty=s.presence_penalty,
                              frequency_penalty=s.frequency_penalty, grammar=held)
        try:
            for token in tokens:
                reads.prompt_done = True
                if self.cancelled():
                    finish_reason = FinishReason.CANCELLED
                    break
                if llama_cpp.llama_vocab_is_eog(vocab, token):
                    finish_reason = FinishReason.STOP
                    break
                written += 1
                if on_tokens is not None:
                    on_tokens(to_read, to_read, written)
                delta, stopped = stop_text.add(decoder.decode(llm.detokenize([token])))
                if delta:
                    now = time.perf_counter()
                    first_at = first_at or now
                    parts.append(delta)
                    pending.append(delta)
                    if on_text is not None and (now - last_sent >= TOKEN_FLUSH_S or len(parts) == 1):
                        on_text("".join(pending))
                        pending.clear()
                        last_sent = now
                    if watcher is not None and watcher.add(delta) is not None:
                        finish_reason = FinishReason.DEGENERATE
                        break
                if stopped:
                    finish_reason = FinishReason.STOP
                    break
                if written >= limit:
                    break
        finally:
            tokens.close()
            guard.detach()
            reads.detach()
            del llm._init_sampler
        ended = time.perf_counter()
        tail = "" if stopped or finish_reason == FinishReason.DEGENERATE else \
            stop_text.add(decoder.decode(b"", final=True))[0] + stop_text.rest()
        if tail:
            first_at = first_at or ended
            parts.append(tail)
            pending.append(tail)
        if pending and on_text is not None:
            on_text("".join(pending))
        if watcher is not None and finish_reason in (FinishReason.STOP, FinishReason.LENGTH) and watcher.finish():
            finish_reason = FinishReason.DEGENERATE
        self._prompt = list(prompt)
        self.prompt_read = reads.read
        self.reusable_tokens = self._reusable(len(prompt), "".join(parts))
        return Completion(text="".join(parts), prompt_tokens=len(prompt), completion_tokens=written,
                          finish_reason=finish_reason, generating_s=ended - first_at if first_at is not None else 0.0,
                          ttft_s=first_at - started if first_at is not None else None, total_s=ended - started,
                          degeneration=watcher.found if watcher is not None else None,
                          stop_sequence=stop_text.matched if stopped and stop_text.matched in stop else None)

    def read_ahead(self, prompt: list[int], interrupted: Callable[[], bool]) -> tuple[int, int, int]:
        """Read a draft prompt (from ``formatted``) into the cache, so that ``complete`` on the same messages
        reads nothing and samples at once (``Llama.generate`` keeps a whole cached prompt whose logits came from
        a live decode), and on messages that differ only at the end reads only from where they differ. Read in
        small chunks, stopping as soon as ``interrupted()`` (a newer command waits): what was read is kept.

        Returns the tokens read now, the prompt tokens the cache holds after it, and the prompt's length.
        """
        llm = self.llm
        shared = common_prefix(llm.input_ids[:llm.n_tokens], prompt) if llm.n_tokens else 0
        if not prompt or len(prompt) >= int(llm.n_ctx()) or \
                (shared == len(prompt) == llm.n_tokens and not llm._requires_eval):
            return 0, shared, len(prompt)  # too long to answer (the answer says so), or nothing left to read
        keep = min(shared, len(prompt) - 1)  # the last token is decoded again, for its logits
        if keep > 0 and not window_holds(llm, keep):
            keep = 0
        if not truncate(llm, keep):
            return 0, shared, len(prompt)  # a cache that cannot drop a tail: the answer will read it all
        read = 0
        while keep + read < len(prompt) and not interrupted():
            chunk = prompt[keep + read:keep + read + READ_AHEAD_CHUNK]
            llm.eval(chunk)
            read += len(chunk)
        return read, keep + read, len(prompt)

    def next_turn_opening(self, messages: list[dict[str, str]], answer: str) -> list[int]:
        """The tokens the prompt after ``answer`` to ``messages`` starts with, whatever the next message says:
        the template's own closing of the answer and header of the next turn, and anything else it writes
        between turns, found as what the prompts of two different next messages share rather than assumed."""
        turn = [*messages, {"role": "assistant", "content": answer}]
        first, second = (self.formatted([*turn, {"role": "user", "content": text}])[0] for text in NEXT_MESSAGES)
        return first[:common_prefix(first, second)]

    def formatted(self, messages: list[dict[str, str]]) -> tuple[list[int], list[str]]:
        """The prompt's tokens and the stop strings, exactly as ``create_chat_completion`` makes them (the
        model's own template or the chat format chosen for it): its handler is run with the completion call it
        ends in replaced by one that only keeps its arguments."""
        llm = self.llm
        kept: dict[str, Any] = {}

        def keep(**arguments: Any) -> Iterator[Any]:
            kept.update(arguments)
            return iter(())

        llm.create_completion = keep
        try:
            for _chunk in llm.create_chat_completion(messages=messages, stream=True):
                pass
        finally:
            del llm.create_completion
        prompt = kept.get("prompt")
        if not isinstance(prompt, list):
            prompt = llm.tokenize(str(prompt or "").encode("utf-8"), add_bos=True, special=True)
        stop = kept.get("stop") or []
        return [int(t) for t in prompt], [stop] if isinstance(stop, str) else [str(s) for s in stop]

    def _reusable(self, prompt_tokens: int, text: str) -> int:
        """The prompt, and the answer's tokens as far as they match how its text tokenizes within the next
        prompt (after the prompt's last token, as it will be)."""
        if not prompt_tokens:
            return 0
        llm = self.llm
        answer = self._tokens_after(int(llm.input_ids[prompt_tokens - 1]), text)
        return prompt_tokens + common_prefix(llm.input_ids[prompt_tokens:llm.n_tokens], answer)

    def _tokens_after(self, lead_token: int, text: str) -> list[int]:
        """``text``'s tokens as they follow ``lead_token`` in a prompt: alone, a SentencePiece tokenizer would
        give its start a space, and the context decides merges at the boundary."""
        llm = self.llm
        lead = llm.detokenize([lead_token], special=True)
        lead_tokens = llm.tokenize(lead, add_bos=False, special=True)
        tokens = llm.tokenize(lead + text.encode("utf-8"), add_bos=False, special=True)
        if tokens[:len(lead_tokens)] == lead_tokens:
            return [int(t) for t in tokens[len(lead_tokens):]]
        return [int(t) for t in llm.tokenize(text.encode("utf-8"), add_bos=False, special=True)]

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

        with guarded_templates():
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


@contextlib.contextmanager
def guarded_templates() -> Iterator[None]:
    """While a ``Llama`` is made, compile the chat templates in its file as ``chat_template.BudgetedTemplate``s:
    llama-cpp-python builds a ``Jinja2ChatFormatter`` for each template in ``Llama.__init__`` (even for a
    vocabulary-only model), and its sandbox has no limit on work or size, so a hostile template could hang or eat
    the worker while it compiles (Jinja folds constant expressions then) and at every message. The swap is the
    one of ``worker._model_params``: the worker makes one model at a time on one thread."""
    import llama_cpp.llama_chat_format as formats

    original = formats.Jinja2ChatFormatter
    formats.Jinja2ChatFormatter = _guarded_formatter()  # type: ignore[misc,assignment]
    try:
        yield
    finally:
        formats.Jinja2ChatFormatter = original  # type: ignore[misc]


@functools.cache
def _guarded_formatter() -> type:
    """llama-cpp-python's formatter with a ``BudgetedTemplate`` as its compiled template: the formatter's own
    ``__call__`` (the variables it passes, the stop token, the stopping criteria) is kept as it is."""
    import jinja2.ext
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    from app.engine.chat_template import BudgetedTemplate

    class GuardedChatFormatter(Jinja2ChatFormatter):
        def __init__(self, template: str, eos_token: str, bos_token: str, add_generation_prompt: bool = True,
                     stop_token_ids: list[int] | None = None) -> None:
            self.template = template
            self.eos_token = eos_token
            self.bos_token = bos_token
            self.add_generation_prompt = add_generation_prompt
            self.stop_token_ids = set(stop_token_ids) if stop_token_ids is not None else None
            self._environment = BudgetedTemplate(  # type: ignore[assignment]
                template, extensions=(Jinja2ChatFormatter.IgnoreGenerationTags, jinja2.ext.loopcontrols),
                filters={"tojson": self.tojson})

    return GuardedChatFormatter
