"""Plain, frozen copies of database rows.

Callers hold these on other threads long after the session that read them is gone, which ORM objects
do not survive (they expire or lazy-load); these never touch the database again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from app.gguf.kind import looks_like_base_model
from app.outcomes import FinishReason, RunStatus

if TYPE_CHECKING:  # the rows are only read here; importing the ORM would cost every reader of records SQLAlchemy
    from app.history.models import (
        Comparison,
        ComparisonEntry,
        Conversation,
        Folder,
        LibraryModel,
        LoadRecord,
        Message,
        TaskRun,
    )

T = TypeVar("T")


@dataclass(frozen=True)
class Page(Generic[T]):
    """A stretch of a long list (a history can hold tens of thousands of conversations, a conversation thousands of
    messages), read a page at a time so that nobody waits for the whole: ``more`` says that the list goes on."""

    items: list[T]
    more: bool


@dataclass(frozen=True)
class ConversationRecord:
    id: int
    title: str
    created_at: datetime
    updated_at: datetime
    model_id: int | None
    model_name: str | None
    system_prompt: str
    settings: dict[str, Any]
    folder_id: int | None = None
    pinned_at: datetime | None = None

    @classmethod
    def of(cls, row: Conversation) -> ConversationRecord:
        return cls(
            id=row.id,
            title=row.title,
            created_at=row.created_at,
            updated_at=row.updated_at,
            model_id=row.model_id,
            model_name=row.model_name,
            system_prompt=row.system_prompt,
            settings=dict(row.settings),
            folder_id=row.folder_id,
            pinned_at=row.pinned_at,
        )

    @property
    def pinned(self) -> bool:
        return self.pinned_at is not None


@dataclass(frozen=True)
class FolderRecord:
    """A folder of conversations; ``system_prompt`` and ``model_name`` are what a new chat in it starts with."""

    id: int
    name: str
    created_at: datetime
    system_prompt: str
    model_id: int | None
    model_name: str | None

    @classmethod
    def of(cls, row: Folder) -> FolderRecord:
        return cls(id=row.id, name=row.name, created_at=row.created_at, system_prompt=row.system_prompt,
                   model_id=row.model_id, model_name=row.model_name)


@dataclass(frozen=True)
class MessageRecord:
    id: int
    conversation_id: int
    role: str
    content: str
    created_at: datetime
    model_name: str | None
    prompt_tokens: int | None
    completion_tokens: int | None
    ttft_s: float | None
    tokens_per_s: float | None
    finish_reason: FinishReason | None
    error: str | None
    context_dropped: int
    parent_id: int | None = None
    version: int = 1  # this message's place among its versions (an edit, a regeneration), from 1
    versions: int = 1

    @classmethod
    def of(cls, row: Message, version: int = 1, versions: int = 1) -> MessageRecord:
        return cls(
            id=row.id,
            conversation_id=row.conversation_id,
            role=row.role,
            content=row.content,
            created_at=row.created_at,
            model_name=row.model_name,
            prompt_tokens=row.prompt_tokens,
            completion_tokens=row.completion_tokens,
            ttft_s=row.ttft_s,
            tokens_per_s=row.tokens_per_s,
            finish_reason=FinishReason(row.finish_reason) if row.finish_reason else None,
            error=row.error,
            context_dropped=row.context_dropped,
            parent_id=row.parent_id,
            version=version,
            versions=versions,
        )


@dataclass(frozen=True)
class ModelRecord:
    """A library model. ``name`` is what every surface shows: the person's name for it if they gave one, else
    ``default_name``, the one Hearth gives it."""

    id: int
    default_name: str
    given_name: str | None
    path: str
    in_place: bool
    file_size: int
    architecture: str
    parameter_count: int | None
    quantization: str | None
    context_length: int | None
    has_chat_template: bool
    facts: dict[str, Any]
    added_at: datetime

    @classmethod
    def of(cls, row: LibraryModel) -> ModelRecord:
        return cls(
            id=row.id,
            default_name=row.name,
            given_name=row.given_name,
            path=row.path,
            in_place=row.in_place,
            file_size=row.file_size,
            architecture=row.architecture,
            parameter_count=row.parameter_count,
            quantization=row.quantization,
            context_length=row.context_length,
            has_chat_template=row.has_chat_template,
            facts=dict(row.facts),
            added_at=row.added_at,
        )

    @property
    def name(self) -> str:
        return self.given_name or self.default_name

    @property
    def is_base_model(self) -> bool:
        """Pretrained only (``app.gguf.kind``), from what the library kept of its header and its file name."""
        return looks_like_base_model(
            has_chat_template=self.has_chat_template,
            names=(str(self.facts.get("name") or ""), str(self.facts.get("finetune") or ""), Path(self.path).name))


@dataclass(frozen=True)
class LoadRecordData:
    id: int
    model_path: str
    created_at: datetime
    plan: dict[str, Any]
    estimate: dict[str, Any]
    measured: dict[str, Any]
    tokens_per_s: float | None

    @classmethod
    def of(cls, row: LoadRecord) -> LoadRecordData:
        return cls(id=row.id, model_path=row.model_path, created_at=row.created_at, plan=dict(row.plan),
                   estimate=dict(row.estimate), measured=dict(row.measured), tokens_per_s=row.tokens_per_s)


@dataclass(frozen=True)
class TaskRunRecord:
    id: int
    created_at: datetime
    finished_at: datetime | None
    task: str
    status: RunStatus
    parameters: dict[str, Any]
    input_name: str
    input_kind: str
    input_bytes: int
    input_sha256: str
    input_text: str | None  # None when the person turned "save document text" off
    output: str
    result: dict[str, Any]
    model_name: str | None
    model_path: str | None
    metrics: dict[str, Any]
    error: str | None
    deleted_at: datetime | None

    @classmethod
    def of(cls, row: TaskRun) -> TaskRunRecord:
        return cls(
            id=row.id,
            created_at=row.created_at,
            finished_at=row.finished_at,
            task=row.task,
            status=RunStatus(row.status),
            parameters=dict(row.parameters),
            input_name=row.input_name,
            input_kind=row.input_kind,
            input_bytes=row.input_bytes,
            input_sha256=row.input_sha256,
            input_text=row.input_text,
            output=row.output,
            result=dict(row.result),
            model_name=row.model_name,
            model_path=row.model_path,
            metrics=dict(row.metrics),
            error=row.error,
            deleted_at=row.deleted_at,
        )


@dataclass(frozen=True)
class EntryRecord:
    id: int
    position: int  # the order the models were chosen in
    model_name: str
    model_path: str
    file_bytes: int
    status: RunStatus
    output: str
    result: dict[str, Any]
    metrics: dict[str, Any]  # load_s, ttft_s, tokens_per_s, output_tokens, peak_rss_bytes, estimate_bytes, ...
    error: str | None

    @classmethod
    def of(cls, row: ComparisonEntry) -> EntryRecord:
        return cls(id=row.id, position=row.position, model_name=row.model_name, model_path=row.model_path,
                   file_bytes=row.file_bytes, status=RunStatus(row.status), output=row.output, result=dict(row.result),
                   metrics=dict(row.metrics), error=row.error)


@dataclass(frozen=True)
class ComparisonRecord:
    id: int
    created_at: datetime
    finished_at: datetime | None
    kind: str  # "chat", "summarize", "translate" or "classify"
    status: RunStatus
    title: str
    settings: dict[str, Any]
    input_name: str
    input_kind: str
    input_text: str
    machine: dict[str, Any]
    verdict: str | None  # None until the person votes; "winner", "tie" or "both_bad"
    winner_position: int | None
    voted_at: datetime | None
    entries: tuple[EntryRecord, ...]  # by position
    deleted_at: datetime | None

    @property
    def blind(self) -> bool:
        return bool(self.settings.get("blind"))

    @property
    def names_hidden(self) -> bool:
        """Blind comparisons hide which model wrote what until the vote."""
        return self.blind and self.verdict is None

    @property
    def shown_order(self) -> list[int]:
        """Positions in the order the columns are shown (shuffled in blind mode)."""
        order = self.settings.get("shown_order")
        positions = [entry.position for entry in self.entries]
        if isinstance(order, list) and sorted(order) == sorted(positions):
            return [int(position) for position in order]
        return positions

    @classmethod
    def of(cls, row: Comparison, entries: list[ComparisonEntry]) -> ComparisonRecord:
        return cls(id=row.id, created_at=row.created_at, finished_at=row.finished_at, kind=row.kind,
                   status=RunStatus(row.status), title=row.title, settings=dict(row.settings),
                   input_name=row.input_name,
                   input_kind=row.input_kind, input_text=row.input_text, machine=dict(row.machine),
                   verdict=row.verdict, winner_position=row.winner_position, voted_at=row.voted_at,
                   entries=tuple(EntryRecord.of(e) for e in sorted(entries, key=lambda e: e.position)),
                   deleted_at=row.deleted_at)


@dataclass(frozen=True)
class LeaderRow:
    """How one model fared in the comparisons the person voted on, for one kind of input."""

    model_name: str
    voted: int  # comparisons with a verdict this model took part in
    wins: int
    ties: int
    both_bad: int
    losses: int
    tokens_per_s: float | None  # median over its finished entries of this kind
    peak_rss_bytes: int | None

    @property
    def win_rate(self) -> float:
        return self.wins / self.voted if self.voted else 0.0


# --- search (``app.history.search``) ---

MARK_START, MARK_END = "\x02", "\x03"  # around each match in a snippet; the caller shows them as it likes


class HitKind(StrEnum):
    CONVERSATION = "conversation"  # its title
    MESSAGE = "message"
    TASK = "task"  # a task run's input name or output
    COMPARISON = "comparison"  # its title or input
    ENTRY = "entry"  # one model's output in a comparison


@dataclass(frozen=True)
class SearchHit:
    kind: HitKind
    item: int  # the conversation, task run or comparison to open
    part: int | None  # the message or comparison entry within it, where the match is in one
    title: str  # of the conversation, task run (its input's name) or comparison
    snippet: str  # the matching text around the match, each match between MARK_START and MARK_END
    at: datetime
    model: str | None


@dataclass(frozen=True)
class SearchQuery:
    text: str
    kinds: frozenset[HitKind] = frozenset(HitKind)
    model: str | None = None  # only what this model wrote (or the conversation, run or comparison it took part in)
    since: datetime | None = None
    until: datetime | None = None
    limit: int = 50  # per kind
    folder_id: int | None = None  # only the conversations in this folder (and their messages); not runs, comparisons
