"""What a task run is asked to do, and what it gives back: plain picklable dataclasses that travel over the
engine pipe and are saved in history as JSON."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from app.outcomes import RunStatus

LANGUAGES = (
    "English", "Spanish", "French", "German", "Italian", "Portuguese", "Dutch", "Polish", "Swedish", "Danish",
    "Norwegian", "Finnish", "Czech", "Greek", "Turkish", "Russian", "Ukrainian", "Arabic", "Hebrew", "Hindi",
    "Chinese", "Japanese", "Korean", "Vietnamese", "Indonesian",
)


@dataclass(frozen=True)
class Passage:
    """One paragraph of the input and where it is, so results can point back to it."""

    text: str
    page: int | None = None
    heading: str | None = None


@dataclass(frozen=True)
class Summarize:
    length: str = "points"  # "short", "points" or "detailed"
    focus: str = ""


@dataclass(frozen=True)
class Translate:
    target: str
    source: str | None = None  # None: detected


@dataclass(frozen=True)
class Label:
    name: str
    description: str = ""


@dataclass(frozen=True)
class Classify:
    labels: tuple[Label, ...]
    multi: bool = False


TaskKind = Summarize | Translate | Classify


def task_name(kind: TaskKind) -> str:
    return {Summarize: "summarize", Translate: "translate", Classify: "classify"}[type(kind)]


@dataclass(frozen=True)
class TaskInput:
    """``passages`` is the document (summarize, translate) or the texts to classify, one per passage."""

    kind: TaskKind
    passages: tuple[Passage, ...]
    title: str = "the document"
    max_output_tokens: int | None = None  # per model call; None: chosen from the context window
    temperature: float = 0.2
    seed: int | None = None


@dataclass(frozen=True)
class Part:
    """One chunk of the document and what the model made of it."""

    index: int  # 1-based
    location: str
    first_passage: int
    last_passage: int
    tokens: int
    output: str = ""
    degeneration: str = ""  # an ``app.degenerate.Degeneration``: the model was stopped, and ``output`` is not used


@dataclass(frozen=True)
class KeyPoint:
    text: str
    part: int  # index of the Part it came from
    location: str


@dataclass(frozen=True)
class ClassifiedText:
    input: str
    labels: tuple[str, ...]
    confidence: dict[str, float]  # every label, summing to 1
    truncated: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"input": self.input, "labels": list(self.labels), "confidence": self.confidence,
                "truncated": self.truncated}


@dataclass(frozen=True)
class TaskResult:
    task: str
    text: str
    finish_reason: RunStatus  # DONE or CANCELLED
    parts: tuple[Part, ...] = ()
    points: tuple[KeyPoint, ...] = ()
    rows: tuple[ClassifiedText, ...] = ()
    document_tokens: int = 0
    covered_tokens: int = 0  # the document tokens whose part was read before the run ended
    chunks: int = 0
    levels: int = 0
    model_tokens_processed: int = 0  # every prompt token the model read, instructions included
    generated_tokens: int = 0
    source_language: str | None = None
    # The summary itself (or a step that combines the parts' summaries) was stopped as degenerate: ``text`` is not
    # a summary (what the model wrote before it was stopped, or the parts' summaries).
    degeneration: str = ""
    note: str = ""  # how the result was made, where people should know (labels read from answers, not held to them)

    @property
    def wrong_parts(self) -> tuple[Part, ...]:
        """The parts whose output was stopped as degenerate (``app.degenerate``) and left out of the result."""
        return tuple(part for part in self.parts if part.degeneration)

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["rows"] = [row.to_dict() for row in self.rows]
        return data


@dataclass(frozen=True)
class Plan:
    """How a document will be read by one model: the answer to "can it do this in one pass?"."""

    document_tokens: int
    chunks: int
    context_length: int
    chunk_budget: int
    model_calls: int  # expected, reduce steps included
    prompt_tokens: int  # expected tokens read, instructions included
    output_tokens: int  # expected tokens written (an upper bound)

    @property
    def one_pass(self) -> bool:
        return self.chunks <= 1


# Generating one token costs about as much time as reading this many prompt tokens on a CPU (a batch of prompt
# tokens is one matrix product; each generated token is one of its own): it weighs the two in a step's progress.
WRITE_COST = 10


@dataclass(frozen=True)
class Progress:
    """Sent when a model call starts, then as it reads its prompt and writes its answer."""

    step: int  # 1-based, the model call now running
    total: int  # expected calls; may grow when a summary needs another level
    stage: str  # "map", "combine", "final", "translate", "detect", "classify"
    label: str  # for people: "Reading part 3 of 12 (pages 5–7)"
    read: int = 0  # prompt tokens of this call read so far
    to_read: int = 0  # of how many (those not already in the model's cache)
    written: int = 0  # tokens written so far
    to_write: int = 0  # at most

    @property
    def within(self) -> float:
        """How far this call has got, 0 to 1, a written token weighing ``WRITE_COST`` read ones. Writing often
        ends before its allowance: the next step then starts from where this one got to."""
        whole = self.to_read + WRITE_COST * self.to_write
        return min((self.read + WRITE_COST * self.written) / whole, 1.0) if whole else 0.0

    @property
    def fraction(self) -> float:
        """How far the whole run has got, 0 to 1."""
        return min((self.step - 1 + self.within) / max(self.total, 1), 1.0)


@dataclass(frozen=True)
class Metrics:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_s: float = 0.0
    tokens_per_s: float | None = None
    peak_rss_bytes: int = 0
    calls: int = 0
    ttft_s: float | None = None  # from the run's start to its first generated token

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


LENGTH_WORDS = {"short": "One paragraph", "points": "Key points", "detailed": "Detailed"}
