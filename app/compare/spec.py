"""What a comparison is asked to do: the models, the one input, and the sampling every model shares."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.tasks.spec import Classify, Label, Passage, Summarize, TaskInput, Translate, task_name

MIN_MODELS, MAX_MODELS = 2, 4
KINDS = ("chat", "summarize", "translate", "classify")
KIND_WORDS = {"chat": "Chat prompt", "summarize": "Summarize", "translate": "Translate", "classify": "Classify"}


@dataclass(frozen=True)
class Contender:
    name: str
    path: Path | str  # a model file, or a model on another computer (``app.remote.address``)
    file_bytes: int


@dataclass(frozen=True)
class Sampling:
    """The same for every model. ``deterministic`` means temperature 0: each model gives its single most
    likely answer, the fairest way to compare; otherwise the shared seed keeps a re-run repeatable."""

    temperature: float = 0.7
    top_p: float = 0.95
    max_tokens: int = 512
    seed: int = 0
    deterministic: bool = False

    @property
    def effective_temperature(self) -> float:
        return 0.0 if self.deterministic else self.temperature


@dataclass(frozen=True)
class CompareInput:
    """A chat prompt (``task`` None) or a document task; ``text`` is what history keeps to run it again."""

    name: str  # "Prompt", or the document's file name
    input_kind: str  # "prompt", "pasted", "pdf", "docx", ...
    text: str
    task: TaskInput | None = None

    @property
    def kind(self) -> str:
        return "chat" if self.task is None else task_name(self.task.kind)

    @classmethod
    def prompt(cls, text: str) -> CompareInput:
        return cls(name="Prompt", input_kind="prompt", text=text)


@dataclass(frozen=True)
class CompareRequest:
    contenders: tuple[Contender, ...]
    input: CompareInput
    sampling: Sampling = field(default_factory=Sampling)
    blind: bool = False
    # Each model alone, one after another (the default): models run at the same time share the processor, so no
    # speed is the model's own (68-74% of it for two small models on 2 cores, though the pair ended 26% sooner:
    # benchmarks/compare_schedule.py). Fair figures are what a comparison is for.
    one_at_a_time: bool = True
    context_length: int = 4096
    system_prompt: str = ""

    def __post_init__(self) -> None:
        if not MIN_MODELS <= len(self.contenders) <= MAX_MODELS:
            raise ValueError(f"a comparison takes {MIN_MODELS} to {MAX_MODELS} models")

    @property
    def title(self) -> str:
        text = " ".join(self.input.text.split())
        if self.input.task is None:
            return text[:80] + ("…" if len(text) > 80 else "")
        return f"{KIND_WORDS[self.input.kind]}: {self.input.name}"

    def settings(self, shown_order: list[int]) -> dict[str, Any]:
        """What history keeps to show the comparison again and to re-run it on the same input."""
        data: dict[str, Any] = {**dataclasses.asdict(self.sampling), "blind": self.blind,
                                "one_at_a_time": self.one_at_a_time, "context_length": self.context_length,
                                "system_prompt": self.system_prompt, "shown_order": shown_order}
        task = self.input.task
        if task is not None:
            data["task"] = dataclasses.asdict(task.kind)
            data["title"] = task.title
            data["passages"] = [[p.text, p.page, p.heading] for p in task.passages]
        return data


def input_of(kind: str, input_name: str, input_kind: str, text: str, settings: dict[str, Any]) -> CompareInput:
    """The input of a saved comparison, rebuilt to run it again (with its pages and headings)."""
    if kind == "chat":
        return CompareInput(name=input_name, input_kind=input_kind, text=text)
    passages = tuple(Passage(str(t), page, heading) for t, page, heading in settings.get("passages", [])) or (
        Passage(text),)
    spec = settings.get("task", {})
    task_kind: Summarize | Translate | Classify
    if kind == "summarize":
        task_kind = Summarize(spec.get("length", "points"), spec.get("focus", ""))
    elif kind == "translate":
        task_kind = Translate(spec["target"], spec.get("source"))
    else:
        task_kind = Classify(tuple(Label(**label) for label in spec["labels"]), bool(spec.get("multi")))
    task = TaskInput(task_kind, passages, title=settings.get("title", "the document"))
    return CompareInput(name=input_name, input_kind=input_kind, text=text, task=task)


def sampling_of(settings: dict[str, Any]) -> Sampling:
    names = {f.name for f in dataclasses.fields(Sampling)}
    return Sampling(**{k: v for k, v in settings.items() if k in names})
