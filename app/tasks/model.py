"""What a task asks of a model, and what one call gives back: the seam between the task orchestration
(``app.tasks.orchestration``) and whatever runs the model. The engine worker implements ``Model`` over
``llama_cpp.Llama`` (``app.engine.completion``); another engine (a remote one, a test double) would implement
the same protocol, and the tasks would not change."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from app.outcomes import FinishReason


@dataclass(frozen=True)
class Completion:
    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: FinishReason  # STOP, LENGTH or CANCELLED
    generating_s: float  # from the first token to the last
    ttft_s: float | None = None
    total_s: float = 0.0


class Model(Protocol):
    @property
    def n_ctx(self) -> int: ...

    def tokenize(self, text: str) -> list[int]: ...

    def detokenize(self, tokens: list[int]) -> str: ...

    def complete(self, messages: list[dict[str, str]], *, max_tokens: int, temperature: float, seed: int | None,
                 grammar: str | None = None, on_text: Callable[[str], None] | None = None) -> Completion: ...

    def label_logprobs(self, labels: Sequence[str]) -> list[float]:
        """Log-probability of each label as the answer to the prompt of the last ``complete`` call."""
        ...
