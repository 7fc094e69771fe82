"""The history schema as ORM classes.

These classes describe the newest schema; the migrations in ``migrations/versions`` are what actually
build it on disk, so a change here always comes with a new revision there (a test compares the two).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    CheckConstraint,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    MetaData,
    Text,
    TypeDecorator,
    false,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from app.outcomes import FinishReason, RunStatus

ROLES = ("system", "user", "assistant")
FINISH_REASONS = tuple(FinishReason)
TASKS = ("summarize", "translate", "classify")
TASK_RUN_STATUSES = tuple(s for s in RunStatus if s is not RunStatus.WAITING)
COMPARISON_KINDS = ("chat", *TASKS)
ENTRY_STATUSES = tuple(RunStatus)
VERDICTS = ("winner", "tie", "both_bad")

# Named constraints let Alembic's batch mode find and drop them when SQLite tables are rebuilt.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utc_now() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """SQLite has no time zones, so store naive UTC and hand back aware UTC.

    Callers then never compare a naive value with an aware one, and stored text sorts by time.
    """

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("history timestamps must be timezone-aware")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UTCDateTime(),
        dict[str, Any]: JSON(),
        float: Float(),  # SQLAlchemy 2.1 would pick Double; keep what the migrations create
    }


class Folder(Base):
    """A folder (project) of conversations: new chats in it start with its system prompt and model."""

    __tablename__ = "folders"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
    system_prompt: Mapped[str] = mapped_column(Text, default="")
    model_id: Mapped[int | None]  # no foreign key, as for conversations
    model_name: Mapped[str | None] = mapped_column(Text)
    deleted_at: Mapped[datetime | None]


class Conversation(Base):
    __tablename__ = "conversations"
    __table_args__ = (Index("ix_conversations_recent", "updated_at", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
    updated_at: Mapped[datetime] = mapped_column(default=utc_now)
    # No foreign key: removing a model from the library must not touch the chats made with it.
    model_id: Mapped[int | None]
    model_name: Mapped[str | None] = mapped_column(Text)
    system_prompt: Mapped[str] = mapped_column(Text, default="")
    settings: Mapped[dict[str, Any]] = mapped_column(default=dict)
    deleted_at: Mapped[datetime | None]
    # No foreign key (migration 0014 says why); a folder deleted for good leaves its conversations in none.
    folder_id: Mapped[int | None] = mapped_column(index=True)
    pinned_at: Mapped[datetime | None]


class Message(Base):
    __tablename__ = "messages"
    __table_args__ = (
        # A start looks for answers left unfinished and for messages deleted: these few, not every message.
        Index("ix_messages_unfinished", "id", sqlite_where=text("finish_reason IS NULL")),
        Index("ix_messages_deleted", "deleted_at", sqlite_where=text("deleted_at IS NOT NULL")),
        CheckConstraint("role IN ('system', 'user', 'assistant')", name="role"),
        CheckConstraint(
            "finish_reason IS NULL"
            " OR finish_reason IN ('stop', 'length', 'cancelled', 'interrupted', 'error', 'degenerate')",
            name="finish_reason",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    conversation_id: Mapped[int] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE"), index=True
    )
    role: Mapped[str] = mapped_column(Text)
    content: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
    model_name: Mapped[str | None] = mapped_column(Text)
    prompt_tokens: Mapped[int | None]
    completion_tokens: Mapped[int | None]
    ttft_s: Mapped[float | None]
    tokens_per_s: Mapped[float | None]
    finish_reason: Mapped[str | None] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text)
    context_dropped: Mapped[int] = mapped_column(default=0, server_default="0")
    deleted_at: Mapped[datetime | None]
    # The message before this one on its branch (versions of a message share it); no foreign key, as above.
    parent_id: Mapped[int | None] = mapped_column(index=True)
    off_branch: Mapped[bool] = mapped_column(default=False, server_default=false())  # not on the branch shown


class LibraryModel(Base):
    __tablename__ = "models"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(Text)  # the name Hearth gives it (``app.library.display_name``)
    given_name: Mapped[str | None] = mapped_column(Text)  # the person's, when they renamed it
    path: Mapped[str] = mapped_column(Text, unique=True)
    in_place: Mapped[bool]
    file_size: Mapped[int]
    architecture: Mapped[str] = mapped_column(Text)
    parameter_count: Mapped[int | None]
    quantization: Mapped[str | None] = mapped_column(Text)
    context_length: Mapped[int | None]
    has_chat_template: Mapped[bool]
    facts: Mapped[dict[str, Any]] = mapped_column(default=dict)
    added_at: Mapped[datetime] = mapped_column(default=utc_now)


class LoadRecord(Base):
    """One load: the forecast's figures beside llama.cpp's and the worker's measured ones."""

    __tablename__ = "load_records"

    id: Mapped[int] = mapped_column(primary_key=True)
    model_path: Mapped[str] = mapped_column(Text, index=True)
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
    plan: Mapped[dict[str, Any]] = mapped_column(default=dict)
    estimate: Mapped[dict[str, Any]] = mapped_column(default=dict)
    measured: Mapped[dict[str, Any]] = mapped_column(default=dict)
    tokens_per_s: Mapped[float | None]


class NetworkRequest(Base):
    """One attempt to reach the network (never its content), or one request another program made to the local
    server (``incoming``): shown on the Privacy page. ``outcome`` is an ``app.network.Outcome`` value; ``status``
    is 0 when nothing answered."""

    __tablename__ = "network_requests"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime]
    method: Mapped[str] = mapped_column(Text)
    host: Mapped[str] = mapped_column(Text)
    path: Mapped[str] = mapped_column(Text)
    purpose: Mapped[str] = mapped_column(Text)
    status: Mapped[int]
    bytes: Mapped[int]
    outcome: Mapped[str] = mapped_column(Text, default="answered", server_default="answered")
    incoming: Mapped[bool] = mapped_column(default=False, server_default=false())  # to the local server


class TaskRun(Base):
    """One Summarize, Translate or Classify run on a document: what went in, what came out, and how it ran.

    The input is identified by name, size and SHA-256 of its text, so a run stays recognisable even when
    the person chose not to keep the text itself (``input_text`` is then NULL).
    """

    __tablename__ = "task_runs"
    __table_args__ = (
        CheckConstraint("task IN ('summarize', 'translate', 'classify')", name="task"),
        CheckConstraint(
            "status IN ('running', 'done', 'cancelled', 'failed', 'interrupted')",
            name="status",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[datetime] = mapped_column(default=utc_now, index=True)
    finished_at: Mapped[datetime | None]
    task: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(Text)
    parameters: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # No CHECK on the kind: a new document format must not need a migration.
    input_name: Mapped[str] = mapped_column(Text)
    input_kind: Mapped[str] = mapped_column(Text)
    input_bytes: Mapped[int]
    input_sha256: Mapped[str] = mapped_column(Text)
    input_text: Mapped[str | None] = mapped_column(Text)
    output: Mapped[str] = mapped_column(Text, default="")
    result: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # No foreign key, as for conversations: removing a model must not touch the runs made with it.
    model_name: Mapped[str | None] = mapped_column(Text)
    model_path: Mapped[str | None] = mapped_column(Text)
    metrics: Mapped[dict[str, Any]] = mapped_column(default=dict)
    error: Mapped[str | None] = mapped_column(Text)
    deleted_at: Mapped[datetime | None]


class Comparison(Base):
    """One input given to 2–4 models, with the verdict the person gave.

    The input text is always kept (unlike a task run's, which follows "save document text"): running the
    same input again on other models later is what a comparison is for. ``settings`` holds the sampling,
    the task's parameters, blind mode and the column order shown; ``machine`` the hardware summary at run
    time, for the report.
    """

    __tablename__ = "comparisons"
    __table_args__ = (
        CheckConstraint("kind IN ('chat', 'summarize', 'translate', 'classify')", name="kind"),
        CheckConstraint("status IN ('running', 'done', 'cancelled', 'failed', 'interrupted')", name="status"),
        CheckConstraint("verdict IS NULL OR verdict IN ('winner', 'tie', 'both_bad')", name="verdict"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[datetime] = mapped_column(default=utc_now, index=True)
    finished_at: Mapped[datetime | None]
    kind: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(Text)
    title: Mapped[str] = mapped_column(Text)
    settings: Mapped[dict[str, Any]] = mapped_column(default=dict)
    input_name: Mapped[str] = mapped_column(Text)
    input_kind: Mapped[str] = mapped_column(Text)
    input_text: Mapped[str] = mapped_column(Text)
    machine: Mapped[dict[str, Any]] = mapped_column(default=dict)
    verdict: Mapped[str | None] = mapped_column(Text)
    winner_position: Mapped[int | None]
    voted_at: Mapped[datetime | None]
    deleted_at: Mapped[datetime | None]


class ComparisonEntry(Base):
    """One model's side of a comparison: its output and how it ran (load time, speed, memory)."""

    __tablename__ = "comparison_entries"
    __table_args__ = (
        CheckConstraint(
            "status IN ('waiting', 'running', 'done', 'cancelled', 'failed', 'interrupted')", name="status"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    comparison_id: Mapped[int] = mapped_column(ForeignKey("comparisons.id", ondelete="CASCADE"), index=True)
    position: Mapped[int]
    # No foreign key to the library, as for conversations: removing a model keeps its comparisons.
    model_name: Mapped[str] = mapped_column(Text)
    model_path: Mapped[str] = mapped_column(Text)
    file_bytes: Mapped[int]
    status: Mapped[str] = mapped_column(Text)
    output: Mapped[str] = mapped_column(Text, default="")
    result: Mapped[dict[str, Any]] = mapped_column(default=dict)
    metrics: Mapped[dict[str, Any]] = mapped_column(default=dict)
    error: Mapped[str | None] = mapped_column(Text)
