"""What a task asks of a model, and what one call gives back: the seam between the task orchestration
(``app.tasks.orchestration``) and whatever runs the model. The engine worker implements ``Model`` over
``llama_cpp.Llama`` (``app.engine.completion``), a remote server implements it too (``app.remote.task_model``),
and the tasks do not change."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from app.degenerate import Degeneration, Watch
from app.outcomes import FinishReason


@dataclass(frozen=True)
class Completion:
    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: FinishReason  # STOP, LENGTH, CANCELLED or DEGENERATE
    generating_s: float  # from the first token to the last
    ttft_s: float | None = None
    total_s: float = 0.0
    degeneration: Degeneration | None = None  # why it was stopped, with DEGENERATE
    stop_sequence: str | None = None  # which of the caller's ``stop`` texts ended it, if one did


TokenCounts = Callable[[int, int, int], None]
"""Called as a call goes: prompt tokens read, of how many, and tokens written so far."""


class Model(Protocol):
    @property
    def n_ctx(self) -> int: ...

    def tokenize(self, text: str) -> list[int]: ...

    def detokenize(self, tokens: list[int]) -> str: ...

    def complete(self, messages: list[dict[str, str]], *, max_tokens: int, temperature: float, seed: int | None,
                 grammar: str | None = None, on_text: Callable[[str], None] | None = None,
                 watch: Watch | None = None, on_tokens: TokenCounts | None = None) -> Completion:
        """One answer. ``watch``: stop it, as ``DEGENERATE``, when ``app.degenerate`` finds it has stopped saying
        anything (None: not watched)."""
        ...

    def label_logprobs(self, labels: Sequence[str]) -> list[float] | None:
        """Log-probability of each label as the answer to the prompt of the last ``complete`` call; None where the
        model cannot score answers (a remote server): the labels are then read from the answer."""
        ...
