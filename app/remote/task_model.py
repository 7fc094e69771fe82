"""``app.tasks.model.Model`` over a model on another computer, so that summarize, translate and classify run
through it unchanged: the orchestration runs here, each model call is one streamed request there.

What a remote server cannot do is said rather than faked: without its tokenizer the parts are sized with an
estimate (``EstimatedTokens``) on a share of the context; and without log-probabilities of the labels
(``label_logprobs`` gives None) a classification is read from the answer itself.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from app.degenerate import Watch, Watcher
from app.outcomes import FinishReason
from app.remote.server import RemoteError, RemoteServer
from app.remote.tokens import ESTIMATE_CONTEXT_SHARE, EstimatedTokens, ServerTokens
from app.tasks.model import Completion, TokenCounts


class RemoteTaskModel:
    def __init__(self, server: RemoteServer, model: str, context_length: int,
                 cancelled: Callable[[], bool] = lambda: False) -> None:
        self.server, self.model = server, model
        self.cancelled = cancelled
        served = ServerTokens(server, model)
        self.estimated = not served.available()
        self._tokens: ServerTokens | EstimatedTokens = EstimatedTokens() if self.estimated else served
        self._n_ctx = int(context_length * ESTIMATE_CONTEXT_SHARE) if self.estimated else context_length
        self.error = ""  # the last answer was cut off: why (its text is kept)

    @property
    def n_ctx(self) -> int:
        return self._n_ctx

    def tokenize(self, text: str) -> list[int]:
        tokens = self._tokens.tokenize(text)
        if tokens is None:
            raise RemoteError(f"{self.server.host} stopped counting tokens for “{self.model}”.")
        return tokens

    def detokenize(self, tokens: list[int]) -> str:
        try:
            return self._tokens.detokenize(tokens)
        except ValueError as error:
            raise RemoteError(f"{self.server.host} stopped counting tokens for “{self.model}”.") from error

    def complete(self, messages: list[dict[str, str]], *, max_tokens: int, temperature: float, seed: int | None,
                 grammar: str | None = None, on_text: Callable[[str], None] | None = None,
                 watch: Watch | None = None, on_tokens: TokenCounts | None = None) -> Completion:
        """One streamed answer. The prompt's tokens are not known before the server's ``usage`` comes, so
        progress says only what is written (in pieces of text: the server's tokens arrive several at a time)."""
        watcher = Watcher(watch) if watch is not None else None
        written = 0

        def heard(text: str) -> None:
            nonlocal written
            written += 1
            if watcher is not None:
                watcher.add(text)
            if on_text is not None:
                on_text(text)
            if on_tokens is not None:
                on_tokens(0, 0, written)

        started = time.perf_counter()
        answer = self.server.chat(self.model, messages, max_tokens=max_tokens, temperature=temperature, seed=seed,
                                  grammar=grammar, on_text=heard,
                                  cancelled=lambda: self.cancelled() or (watcher is not None and
                                                                         watcher.found is not None))
        self.error = answer.error
        reason = answer.finish_reason
        if watcher is not None and (watcher.found is not None or
                                    (reason in (FinishReason.STOP, FinishReason.LENGTH) and watcher.finish())):
            reason = FinishReason.DEGENERATE
        elif answer.error:
            raise RemoteError(answer.error)
        total = time.perf_counter() - started
        ttft = answer.ttft_s
        return Completion(text=answer.text, prompt_tokens=answer.prompt_tokens,
                          completion_tokens=answer.completion_tokens or written, finish_reason=reason,
                          generating_s=total - ttft if ttft is not None else 0.0, ttft_s=ttft, total_s=total,
                          degeneration=watcher.found if watcher is not None else None)

    def label_logprobs(self, labels: Sequence[str]) -> list[float] | None:
        """None: an OpenAI-compatible server does not score given answers, so the labels are read from the text."""
        return None
