"""The messages between the app and the engine worker: the whole protocol, in one module.

Every message is a small picklable dataclass sent over a ``multiprocessing`` pipe. Commands go to the
worker; events come back. The worker never sees Qt and the app never sees llama.cpp, so a model file that
makes llama.cpp abort ends only the worker: the client turns the closed pipe into ``WorkerExited``.

Order of events for one generation: zero or more ``ContextTrimmed``, then ``Token`` deltas (coalesced, at
most one per ~30 ms after the first, so the pipe never slows generation), then exactly one ``Finished`` or
``Failed`` with the same ``request_id``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from app.degenerate import Degeneration
from app.engine.load_plan import LoadPlan, Tuning
from app.outcomes import FinishReason
from app.settings import Samplers
from app.tasks.spec import ClassifiedText, Metrics, Part, Plan, Progress, TaskInput, TaskResult

# --- commands (app -> worker) ---


@dataclass(frozen=True)
class Load:
    path: str
    plan: LoadPlan = field(default_factory=LoadPlan)


@dataclass(frozen=True)
class Generate:
    """Answer ``messages``. ``conversation`` names the conversation they continue: the worker keeps that
    conversation's KV cache (in the model, then set aside in memory or on disk while others run), so the next
    turn reads only its new tokens. ``None`` for one-off prompts."""

    request_id: int
    messages: list[dict[str, str]]
    max_tokens: int = 512
    temperature: float = 0.7
    top_p: float = 0.95
    seed: int | None = None
    conversation: str | None = None
    samplers: Samplers = field(default_factory=Samplers)
    prefill: str = ""  # the start of the answer, already written (Continue): the model goes on from its end
    watched: bool = True  # stopped (``FinishReason.DEGENERATE``) when it loops (``app.degenerate``)
    stop: tuple[str, ...] = ()  # more texts that end the answer, besides the chat format's own (not returned)
    # The answer is JSON (a llama.cpp grammar holds it to that): any object, or one valid for this JSON schema.
    json_object: bool = False
    json_schema: str | None = None  # the schema, as JSON text
    # A text to go on from, as it is, instead of ``messages`` in the chat format (an API client's completion).
    raw_prompt: str | None = None


@dataclass(frozen=True)
class RunTask:
    """Summarize, translate or classify with the loaded model. Events: ``TaskProgress`` when each model call
    starts and as it reads and writes (a few times a second), ``Token`` for streamed text, ``TaskPartDone`` per
    finished part or row, then one ``TaskFinished`` (also after a stop, with the partial result) or ``Failed``."""

    request_id: int
    task: TaskInput


@dataclass(frozen=True)
class PlanTask:
    """How a task would run on the model at ``path`` with ``context_length``: answered by ``TaskPlanned`` or
    ``Failed``. Uses the loaded model's tokenizer when it is that model, else reads only the vocabulary."""

    request_id: int
    path: str
    context_length: int
    task: TaskInput


@dataclass(frozen=True)
class Stop:
    """Ends that generation after the token being computed; answered by ``Finished('cancelled')``."""

    request_id: int


@dataclass(frozen=True)
class Forget:
    """Delete what the worker keeps of a conversation's KV cache, in memory and on disk (the conversation was
    deleted). No answer."""

    conversation: str


@dataclass(frozen=True)
class ReadAhead:
    """Read a prompt that is still being written (a chat message as it is typed) into the conversation's KV
    cache, so that only what changes before it is sent is read then: ``messages`` end with the draft, the
    rest is what ``Generate`` would get. The worker drops it for a newer command, and stops reading when one
    arrives. Answered by ``ReadAheadDone`` (nothing to wait for: it only tells the tests and the benchmark)."""

    conversation: str
    messages: list[dict[str, str]]
    max_tokens: int = 512


@dataclass(frozen=True)
class CountTokens:
    """How much of the context ``messages`` take (the chat's context meter, and the check before a message is
    saved). Counted beside whatever the worker is doing, an answer included, with the tokenizer alone, the way
    the worker fits a conversation into its context; ``context_length`` 0 is the loaded one. Answered by
    ``TokensCounted``."""

    request_id: int
    messages: list[dict[str, str]]
    max_tokens: int = 512
    context_length: int = 0


@dataclass(frozen=True)
class UseChatML:
    """Write the loaded model's prompts in ChatML from now on instead of its own chat template, which failed
    (``Failed.chat_template``). No answer; the client keeps the choice for the reloads it makes itself."""


@dataclass(frozen=True)
class Embed:
    """The loaded model's embedding of each text (an API client's ``/v1/embeddings``): one vector each, pooled as the
    model's file says, else averaged over its tokens. Answered by ``Embedded`` or ``Failed``."""

    request_id: int
    texts: list[str]


@dataclass(frozen=True)
class Unload:
    pass


@dataclass(frozen=True)
class Shutdown:
    pass


Command = (Load | Generate | RunTask | PlanTask | Stop | Forget | ReadAhead | CountTokens | UseChatML | Embed
           | Unload | Shutdown)

# --- events (worker -> app) ---


class During(StrEnum):
    """What the worker was doing when a command failed."""

    LOAD = "load"
    GENERATE = "generate"
    TASK = "task"
    PLAN = "plan"
    READ_AHEAD = "read ahead"
    FORGET = "forget"
    UNLOAD = "unload"

    @classmethod
    def of(cls, command: Command) -> During:
        return _DURING[type(command)]


@dataclass(frozen=True)
class Ready:
    pid: int
    llama_cpp_version: str
    rss_bytes: int = 0  # the worker before any model: the baseline of every memory forecast
    backends: tuple[str, ...] = ()  # what llama.cpp loaded: "CPU", "Vulkan"; the CPU code chosen beside it
    cpu_variant: str | None = None
    remote: str = ""  # the computer whose server answers in place of a worker (``app.remote.worker``)


@dataclass(frozen=True)
class LoadStarted:
    """Made by the client when a load is sent, including the reload after a forced stop."""

    path: str
    plan: LoadPlan


@dataclass(frozen=True)
class LoadProgress:
    fraction: float
    stage: str = ""  # for people, when the load does more than read the file ("Measuring the fastest settings…")


# ``Loaded.chat_format``: how the prompts are written, for people.
OWN_TEMPLATE = "the model's own template"
CHATML_NO_TEMPLATE = "ChatML (the file has no template)"
CHATML_CHOSEN = "ChatML (chosen instead of the model's template)"
SERVER_TEMPLATE = "the server's"


@dataclass(frozen=True)
class Loaded:
    path: str
    context_length: int
    trained_context_length: int
    chat_format: str
    has_chat_template: bool
    load_s: float
    rss_bytes: int
    plan: LoadPlan = field(default_factory=LoadPlan)  # what was really used (the context capped, for one)
    buffers: dict[str, Any] = field(default_factory=dict)  # llama.cpp's own sizes: BufferReport.to_dict()
    weights_bytes: int = 0  # llama_model_size: the bytes of every weight tensor
    tuning: Tuning | None = None  # measured after this load, when its plan asked (``LoadPlan.tune``)
    # Layers were to go on the graphics card, which could not take them: why, and that the processor runs it.
    gpu_fallback: str = ""
    remote: str = ""  # the computer the model runs on, where it is not this one


@dataclass(frozen=True)
class Token:
    request_id: int
    text: str


@dataclass(frozen=True)
class ContextTrimmed:
    """The oldest turns were left out so the conversation fits the context window."""

    request_id: int
    dropped_messages: int


@dataclass(frozen=True)
class GenerationMetrics:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    ttft_s: float | None = None
    tokens_per_s: float | None = None
    total_s: float = 0.0
    peak_rss_bytes: int = 0
    threads: int | None = None  # llama.cpp's threads at the end: fewer than tuned while other programs were busy
    cached_prompt_tokens: int = 0  # of ``prompt_tokens``, those reused from the KV cache rather than read

    def to_dict(self) -> dict[str, Any]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "ttft_s": self.ttft_s,
            "tokens_per_s": self.tokens_per_s,
            "total_s": self.total_s,
            "peak_rss_bytes": self.peak_rss_bytes,
            "threads": self.threads,
            "cached_prompt_tokens": self.cached_prompt_tokens,
        }


@dataclass(frozen=True)
class Finished:
    request_id: int
    finish_reason: FinishReason  # STOP, LENGTH, CANCELLED or DEGENERATE
    text: str
    metrics: GenerationMetrics = field(default_factory=GenerationMetrics)
    degeneration: Degeneration | None = None  # with DEGENERATE: what the answer was doing when it was stopped
    stop_sequence: str | None = None  # which of ``Generate.stop`` ended it, if one did
    error: str = ""  # the answer was cut off (a remote server's connection dropped): why; ``text`` is what came


@dataclass(frozen=True)
class TaskProgress:
    request_id: int
    progress: Progress


@dataclass(frozen=True)
class TaskPartDone:
    request_id: int
    part: Part | None = None
    row: ClassifiedText | None = None


@dataclass(frozen=True)
class TaskFinished:
    request_id: int
    result: TaskResult
    metrics: Metrics


@dataclass(frozen=True)
class TaskPlanned:
    request_id: int
    plan: Plan


@dataclass(frozen=True)
class Failed:
    """A command failed. ``request_id`` is set when it was a generation, a task or a plan; ``message`` is for
    people; ``during`` says which command, so that the client knows what state the engine is left in."""

    message: str
    request_id: int | None = None
    during: During = During.GENERATE
    chat_template: bool = False  # the model's own chat template failed: ChatML can be offered (``UseChatML``)


@dataclass(frozen=True)
class ReadAheadDone:
    """``read`` of the prompt's ``prompt_tokens`` were read now; the cache holds ``cached`` of them (all, unless
    the read-ahead was cut short by another command or skipped)."""

    conversation: str
    read: int
    cached: int
    prompt_tokens: int


@dataclass(frozen=True)
class TurnOpened:
    """After an answer in ``conversation``, while the person reads it, the worker read ``read`` tokens of what
    its next prompt starts with whatever they write (the answer's end as the template closes it, the next
    turn's header); the cache holds ``cached`` of them. Nothing to wait for: it only tells the tests and the
    benchmark."""

    conversation: str
    read: int
    cached: int


@dataclass(frozen=True)
class TokensCounted:
    """The prompt takes ``tokens`` of ``context_length`` (0: no model was loaded, nothing was counted); ``room``
    of them may hold it, the rest is kept for the answer. Beyond ``room`` the oldest turns are left out, down to
    ``least``: the system prompt and the last message, which must fit, or the answer is refused."""

    request_id: int
    tokens: int
    least: int
    context_length: int
    room: int

    @property
    def fits(self) -> bool:
        return self.least <= self.room


@dataclass(frozen=True)
class Unloaded:
    peak_rss_bytes: int


@dataclass(frozen=True)
class WorkerExited:
    """Made by the client, not the worker: the worker process is gone."""

    exitcode: int | None
    expected: bool
    message: str


_DURING: dict[type, During] = {
    Load: During.LOAD, Generate: During.GENERATE, RunTask: During.TASK, PlanTask: During.PLAN,
    ReadAhead: During.READ_AHEAD, Forget: During.FORGET, UseChatML: During.GENERATE, Unload: During.UNLOAD,
}

@dataclass(frozen=True)
class Embedded:
    request_id: int
    vectors: list[list[float]]
    tokens: int  # read from the texts, in all (each text at most one batch: the rest is left out)


Event = (
    Ready | LoadStarted | LoadProgress | Loaded | Token | ContextTrimmed | Finished | Failed | Unloaded | WorkerExited
    | TaskProgress | TaskPartDone | TaskFinished | TaskPlanned | ReadAheadDone | TurnOpened | TokensCounted
    | Embedded
)
