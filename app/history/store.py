"""Every read and write of conversations, messages, document-task runs and the model library.

Each method is one short transaction returning frozen records, so any thread may call any method and
keep what it gets back; no session or ORM object ever leaves this module.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import and_, delete, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.errors import HistoryError
from app.history import branches, chatgpt
from app.history.database import Database
from app.history.exchange import Imported, export_history, import_history, read_history_file
from app.history.models import (
    COMPARISON_KINDS,
    ENTRY_STATUSES,
    FINISH_REASONS,
    ROLES,
    TASK_RUN_STATUSES,
    TASKS,
    VERDICTS,
    Base,
    Comparison,
    ComparisonEntry,
    Conversation,
    Folder,
    LibraryModel,
    LoadRecord,
    Message,
    NetworkRequest,
    TaskRun,
    utc_now,
)
from app.history.records import (
    ComparisonRecord,
    ConversationRecord,
    FolderRecord,
    LeaderRow,
    LoadRecordData,
    MessageRecord,
    ModelRecord,
    Page,
    SearchHit,
    SearchQuery,
    TaskRunRecord,
)
from app.history.search import search as search_history
from app.network import Outcome, RequestRecord
from app.outcomes import FinishReason, RunStatus

RowT = TypeVar("RowT", bound=Base)

_clock_lock = threading.Lock()
_last_stamp = datetime.min.replace(tzinfo=utc_now().tzinfo)


def _stamp() -> datetime:
    """Strictly increasing "now", so "newest first" holds even where the system clock is coarse.

    Windows clocks can tick in steps of several milliseconds; two conversations touched within one tick
    would otherwise tie and keep an arbitrary order.
    """
    global _last_stamp
    with _clock_lock:
        now = utc_now()
        if now <= _last_stamp:
            now = _last_stamp + timedelta(microseconds=1)
        _last_stamp = now
        return now


class HistoryStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    # conversations

    def create_conversation(
        self, title: str, settings: dict[str, Any], model_id: int | None = None, model_name: str | None = None,
        folder_id: int | None = None,
    ) -> ConversationRecord:
        """A new conversation; one made in a folder starts with the folder's system prompt and model, where it has
        them."""
        now = _stamp()
        with self._db.session() as session:
            folder = session.get(Folder, folder_id) if folder_id is not None else None
            if folder is not None and folder.deleted_at is None:
                if folder.system_prompt.strip():
                    settings = {**settings, "system_prompt": folder.system_prompt}
                if folder.model_name and model_name is None:
                    model_id, model_name = folder.model_id, folder.model_name
            else:
                folder_id = None
            row = Conversation(
                title=title,
                created_at=now,
                updated_at=now,
                model_id=model_id,
                model_name=model_name,
                system_prompt=str(settings.get("system_prompt") or ""),
                settings=dict(settings),
                folder_id=folder_id,
            )
            session.add(row)
            session.flush()
            return ConversationRecord.of(row)

    def close(self) -> None:
        """Lets go of the database file (a restore puts another in its place)."""
        self._db.close()

    def search(self, query: SearchQuery) -> list[SearchHit]:
        """Conversations, messages, task runs and comparisons that match ``query`` (``app.history.search``)."""
        with self._db.session(write=False) as session:
            return search_history(session, query)

    def export(self, conversation_ids: Sequence[int] | None = None, *,
               tasks_and_comparisons: bool = True) -> dict[str, Any]:
        """Hearth's history file (``app.history.exchange``): everything, or the conversations given."""
        with self._db.session(write=False) as session:
            return export_history(session, conversation_ids, tasks_and_comparisons=tasks_and_comparisons)

    def import_file(self, path: Path) -> Imported:
        """A Hearth history file's records, or a ChatGPT export's conversations (``app.history.chatgpt``), added as
        new ones, all or none."""
        if chatgpt.looks_like_export(path):
            chats = chatgpt.read_export(path)
            with self._db.session() as session:
                return chatgpt.import_export(session, chats)
        data = read_history_file(path)
        with self._db.session() as session:
            return import_history(session, data)

    def model_names(self) -> list[str]:
        """Every model the history names (what wrote a message, ran a task or took part in a comparison), by name:
        the search's choice of model."""
        with self._db.session(write=False) as session:
            names: set[str] = set()
            for column in (Message.model_name, TaskRun.model_name, ComparisonEntry.model_name):
                names.update(n for n in session.scalars(select(column).distinct()) if n)
            return sorted(names, key=str.casefold)

    def list_conversations(self) -> list[ConversationRecord]:
        """Newest activity first; soft-deleted ones are hidden while their Undo is still on offer."""
        with self._db.session(write=False) as session:
            rows = session.scalars(
                select(Conversation)
                .where(Conversation.deleted_at.is_(None))
                .order_by(Conversation.updated_at.desc(), Conversation.id.desc())
            )
            return [ConversationRecord.of(row) for row in rows]

    def conversation_page(self, limit: int, after: ConversationRecord | None = None,
                          folder_id: int | None = None) -> Page[ConversationRecord]:
        """``limit`` conversations in the order of ``list_conversations``, those after ``after`` (the last of the
        page before, as it was then: a conversation touched since has moved to the top, and the next page still
        starts where the last one ended). The first page starts with every pinned conversation (people pin a
        few), newest first, and the pages after it hold the others; ``folder_id``: only those in that folder."""
        base = select(Conversation).where(Conversation.deleted_at.is_(None))
        if folder_id is not None:
            base = base.where(Conversation.folder_id == folder_id)
        order = (Conversation.updated_at.desc(), Conversation.id.desc())
        query = base.where(Conversation.pinned_at.is_(None))
        if after is not None:
            query = query.where(or_(Conversation.updated_at < after.updated_at,
                                    and_(Conversation.updated_at == after.updated_at, Conversation.id < after.id)))
        with self._db.session(write=False) as session:
            pinned = [] if after is not None else \
                [ConversationRecord.of(row) for row in session.scalars(base.where(Conversation.pinned_at.is_not(None))
                                                                       .order_by(*order))]
            records = [ConversationRecord.of(row) for row in session.scalars(query.order_by(*order).limit(limit + 1))]
        return Page(pinned + records[:limit], more=len(records) > limit)

    def has_conversations(self) -> bool:
        with self._db.session(write=False) as session:
            return session.scalar(select(Conversation.id).where(Conversation.deleted_at.is_(None)).limit(1)) is not None

    def get_conversation(self, conversation_id: int) -> ConversationRecord:
        """Soft-deleted conversations are still returned: only a purge makes one missing."""
        with self._db.session(write=False) as session:
            return ConversationRecord.of(_conversation(session, conversation_id))

    def rename_conversation(self, conversation_id: int, title: str) -> None:
        with self._db.session() as session:
            _conversation(session, conversation_id).title = title

    def update_conversation(
        self,
        conversation_id: int,
        *,
        settings: dict[str, Any] | None = None,
        model_id: int | None = None,
        model_name: str | None = None,
    ) -> None:
        with self._db.session() as session:
            row = _conversation(session, conversation_id)
            if settings is not None:
                row.settings = dict(settings)
                row.system_prompt = str(settings.get("system_prompt") or "")
            if model_id is not None:
                row.model_id = model_id
            if model_name is not None:
                row.model_name = model_name

    def touch_conversation(self, conversation_id: int) -> None:
        with self._db.session() as session:
            _conversation(session, conversation_id).updated_at = _stamp()

    def delete_conversation(self, conversation_id: int) -> None:
        """Soft delete, so the UI can offer Undo; ``purge_deleted`` removes it for good later."""
        with self._db.session() as session:
            row = _conversation(session, conversation_id)
            if row.deleted_at is None:
                row.deleted_at = _stamp()

    def restore_conversation(self, conversation_id: int) -> None:
        with self._db.session() as session:
            _conversation(session, conversation_id).deleted_at = None

    def purge_deleted(self, older_than: timedelta = timedelta(0)) -> int:
        """Hard-delete conversations, messages, task runs and comparisons soft-deleted at least ``older_than``
        ago; returns how many."""
        cutoff = utc_now() - older_than
        with self._db.session() as session:
            ids = list(
                session.scalars(
                    select(Conversation.id).where(
                        Conversation.deleted_at.is_not(None), Conversation.deleted_at <= cutoff
                    )
                )
            )
            if ids:
                # The foreign key's ON DELETE CASCADE takes the messages with them.
                session.execute(delete(Conversation).where(Conversation.id.in_(ids)))
            run_ids = list(
                session.scalars(select(TaskRun.id).where(TaskRun.deleted_at.is_not(None), TaskRun.deleted_at <= cutoff))
            )
            if run_ids:
                session.execute(delete(TaskRun).where(TaskRun.id.in_(run_ids)))
            comparison_ids = list(session.scalars(
                select(Comparison.id).where(Comparison.deleted_at.is_not(None), Comparison.deleted_at <= cutoff)))
            if comparison_ids:
                session.execute(delete(Comparison).where(Comparison.id.in_(comparison_ids)))
            purged = session.execute(select(Message.id, Message.parent_id).where(
                Message.deleted_at.is_not(None), Message.deleted_at <= cutoff)).all()
            message_ids = [row.id for row in purged]
            if message_ids:
                branches.reattach_children(session, [(row.id, row.parent_id) for row in purged])
                session.execute(delete(Message).where(Message.id.in_(message_ids)))
            folder_ids = list(session.scalars(
                select(Folder.id).where(Folder.deleted_at.is_not(None), Folder.deleted_at <= cutoff)))
            if folder_ids:
                session.execute(update(Conversation).where(Conversation.folder_id.in_(folder_ids))
                                .values(folder_id=None))
                session.execute(delete(Folder).where(Folder.id.in_(folder_ids)))
            return len(ids) + len(run_ids) + len(comparison_ids) + len(message_ids)

    # folders

    def folders(self) -> list[FolderRecord]:
        """By name, as people sort them; one deleted is left out while its Undo is on offer."""
        with self._db.session(write=False) as session:
            rows = session.scalars(select(Folder).where(Folder.deleted_at.is_(None)))
            return sorted((FolderRecord.of(row) for row in rows), key=lambda f: (f.name.casefold(), f.id))

    def find_folder(self, name: str) -> FolderRecord | None:
        """The folder of that name, in any letter case."""
        wanted = " ".join(name.split()).casefold()
        return next((f for f in self.folders() if f.name.casefold() == wanted), None)

    def create_folder(self, name: str, system_prompt: str = "", model_id: int | None = None,
                      model_name: str | None = None) -> FolderRecord:
        with self._db.session() as session:
            row = Folder(name=_folder_name(session, name), created_at=_stamp(), system_prompt=system_prompt,
                         model_id=model_id, model_name=model_name)
            session.add(row)
            session.flush()
            return FolderRecord.of(row)

    def update_folder(self, folder_id: int, *, name: str | None = None, system_prompt: str | None = None,
                      model_id: int | None = None, model_name: str | None = None, clear_model: bool = False) -> None:
        with self._db.session() as session:
            row = _folder(session, folder_id)
            if name is not None:
                row.name = _folder_name(session, name, folder_id)
            if system_prompt is not None:
                row.system_prompt = system_prompt
            if clear_model:
                row.model_id, row.model_name = None, None
            elif model_name is not None:
                row.model_id, row.model_name = model_id, model_name

    def delete_folder(self, folder_id: int) -> None:
        """Soft delete, so the UI can offer Undo; its conversations stay (in no folder once it is purged)."""
        with self._db.session() as session:
            row = _folder(session, folder_id)
            if row.deleted_at is None:
                row.deleted_at = _stamp()

    def restore_folder(self, folder_id: int) -> None:
        """Undo ``delete_folder``; its name given a number if another folder took it meanwhile."""
        with self._db.session() as session:
            row = _get(session, Folder, folder_id, "That folder no longer exists.")
            name, number = row.name, 1
            while True:
                try:
                    row.name = _folder_name(session, name if number == 1 else f"{name} ({number})", folder_id)
                    break
                except HistoryError:
                    number += 1
            row.deleted_at = None

    def conversation_ids(self, folder_id: int) -> list[int]:
        """The conversations in a folder, oldest first (what exporting the folder writes)."""
        with self._db.session(write=False) as session:
            return list(session.scalars(select(Conversation.id).where(
                Conversation.folder_id == folder_id, Conversation.deleted_at.is_(None)).order_by(Conversation.id)))

    def move_conversation(self, conversation_id: int, folder_id: int | None) -> None:
        """Into a folder, or out of any (``None``)."""
        with self._db.session() as session:
            if folder_id is not None:
                _folder(session, folder_id)
            _conversation(session, conversation_id).folder_id = folder_id

    def pin_conversation(self, conversation_id: int, pinned: bool) -> None:
        """A pinned conversation stays at the top of the list."""
        with self._db.session() as session:
            row = _conversation(session, conversation_id)
            if pinned != (row.pinned_at is not None):
                row.pinned_at = _stamp() if pinned else None

    # messages

    def add_message(
        self,
        conversation_id: int,
        role: str,
        content: str,
        *,
        model_name: str | None = None,
        finish_reason: str | None = None,
        prompt_tokens: int | None = None,
        completion_tokens: int | None = None,
        ttft_s: float | None = None,
        tokens_per_s: float | None = None,
        error: str | None = None,
        context_dropped: int = 0,
        version_of: int | None = None,
    ) -> MessageRecord:
        """A message at the end of the branch shown; with ``version_of``, a new version of that message instead
        (an edited question, an answer regenerated), which becomes the branch shown, the old one kept beside it."""
        if role not in ROLES:
            raise ValueError(f"unknown message role {role!r}")
        _check_finish_reason(finish_reason)
        now = _stamp()
        with self._db.session() as session:
            conversation = _conversation(session, conversation_id)
            conversation.updated_at = now
            if version_of is not None:
                parent_id = _get(session, Message, version_of, "That message no longer exists.").parent_id
            else:
                parent_id = branches.last_shown(session, conversation_id)
            row = Message(
                conversation_id=conversation_id,
                role=role,
                content=content,
                created_at=now,
                model_name=model_name,
                finish_reason=finish_reason,
                prompt_tokens=prompt_tokens,
                completion_tokens=completion_tokens,
                ttft_s=ttft_s,
                tokens_per_s=tokens_per_s,
                error=error,
                context_dropped=context_dropped,
                parent_id=parent_id,
            )
            session.add(row)
            session.flush()
            if version_of is not None:
                branches.show(session, conversation_id, row.id)
            return branches.records(session, [row])[0]

    def update_message(
        self,
        message_id: int,
        *,
        content: str | None = None,
        finish_reason: str | None = None,
        prompt_tokens: int | None = None,
        completion_tokens: int | None = None,
        ttft_s: float | None = None,
        tokens_per_s: float | None = None,
        error: str | None = None,
        context_dropped: int | None = None,
    ) -> None:
        """Change only the fields given; None means "leave as it is", never "clear"."""
        _check_finish_reason(finish_reason)
        given = {
            "content": content,
            "finish_reason": finish_reason,
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "ttft_s": ttft_s,
            "tokens_per_s": tokens_per_s,
            "error": error,
            "context_dropped": context_dropped,
        }
        with self._db.session() as session:
            row = _get(session, Message, message_id, "That message no longer exists.")
            for name, value in given.items():
                if value is not None:
                    setattr(row, name, value)

    def messages(self, conversation_id: int) -> list[MessageRecord]:
        """The branch shown (``app.history.branches``), oldest first, in the order they were added; a deleted
        message is left out while its Undo is on offer. What the model reads is built from these."""
        with self._db.session(write=False) as session:
            rows = session.scalars(_shown(conversation_id).order_by(Message.id)).all()
            return branches.records(session, rows)

    def message_page(self, conversation_id: int, limit: int, before_id: int | None = None) -> Page[MessageRecord]:
        """The last ``limit`` messages before ``before_id`` (of all, without it), oldest first as in ``messages``;
        ``more`` says that older ones are left."""
        query = _shown(conversation_id)
        if before_id is not None:
            query = query.where(Message.id < before_id)
        with self._db.session(write=False) as session:
            rows = session.scalars(query.order_by(Message.id.desc()).limit(limit + 1)).all()
            records = branches.records(session, rows[:limit][::-1])
        return Page(records, more=len(rows) > limit)

    def message_page_from(self, conversation_id: int, message_id: int) -> Page[MessageRecord]:
        """The messages from ``message_id`` to the newest, oldest first (a search result opens its conversation
        there; a version not shown is shown first); ``more`` says that older ones are left."""
        query = _shown(conversation_id)
        with self._db.session() as session:
            if session.scalar(select(Message.off_branch).where(Message.id == message_id,
                                                               Message.conversation_id == conversation_id)):
                branches.show(session, conversation_id, message_id)
            rows = session.scalars(query.where(Message.id >= message_id).order_by(Message.id)).all()
            records = branches.records(session, rows)
            more = session.scalar(query.where(Message.id < message_id).limit(1)) is not None
        return Page(records, more=more)

    def show_version(self, message_id: int, step: int) -> MessageRecord:
        """The version ``step`` places after (before, below 0) this message's, shown with the newest branch below
        it; returns that version. At either end it stays where it is."""
        with self._db.session() as session:
            row = _get(session, Message, message_id, "That message no longer exists.")
            versions = branches.versions_of(session, row.conversation_id, row.parent_id)
            place = versions.index(row.id) if row.id in versions else 0
            chosen = versions[max(0, min(len(versions) - 1, place + step))] if versions else row.id
            branches.show(session, row.conversation_id, chosen)
            return branches.records(session, [_get(session, Message, chosen, "That message no longer exists.")])[0]

    def get_message(self, message_id: int) -> MessageRecord:
        with self._db.session(write=False) as session:
            return branches.records(session, [_get(session, Message, message_id, "That message no longer exists.")])[0]

    def delete_message(self, message_id: int) -> None:
        """Soft delete, so the UI can offer Undo; ``purge_deleted`` removes it for good later. A message with other
        versions goes with the branch below it, and a version beside it is shown; one without goes alone."""
        with self._db.session() as session:
            row = _get(session, Message, message_id, "That message no longer exists.")
            if row.deleted_at is not None:
                return
            stamp = _stamp()
            versions = branches.versions_of(session, row.conversation_id, row.parent_id)
            if len(versions) < 2:
                row.deleted_at = stamp
                return
            doomed = branches.subtree(session, row.conversation_id, row.id)
            session.execute(update(Message).where(Message.id.in_(doomed), Message.deleted_at.is_(None))
                            .values(deleted_at=stamp))
            others = [v for v in versions if v != row.id]
            branches.show(session, row.conversation_id, max((v for v in others if v < row.id), default=others[0]))

    def discard_version(self, message_id: int, instead: int) -> None:
        """A version that never came to be (its answer could not start) gone for good, with what follows it, and
        the version ``instead`` shown again."""
        with self._db.session() as session:
            row = _get(session, Message, message_id, "That message no longer exists.")
            session.execute(delete(Message).where(Message.id.in_(branches.subtree(session, row.conversation_id,
                                                                                   row.id))))
            branches.show(session, row.conversation_id, instead)

    def restore_message(self, message_id: int) -> None:
        """Undo ``delete_message``: the message is back in its place (messages keep the order they were added),
        with the branch deleted with it, shown again."""
        with self._db.session() as session:
            row = _get(session, Message, message_id, "That message no longer exists.")
            stamp, row.deleted_at = row.deleted_at, None
            if stamp is None:
                return
            below = branches.subtree(session, row.conversation_id, row.id)
            session.execute(update(Message).where(Message.id.in_(below), Message.deleted_at == stamp)
                            .values(deleted_at=None))
            if len(branches.versions_of(session, row.conversation_id, row.parent_id)) > 1:
                branches.show(session, row.conversation_id, row.id)

    def reopen_message(self, message_id: int) -> MessageRecord:
        """An answer is being continued: it is unfinished again (no finish reason, no error) until the
        continuation ends, so a crash meanwhile leaves it marked interrupted, as any answer being written."""
        with self._db.session() as session:
            row = _get(session, Message, message_id, "That message no longer exists.")
            row.finish_reason = None
            row.error = None
            session.flush()
            return MessageRecord.of(row)

    def mark_unfinished_as_interrupted(self) -> int:
        """Close off replies that were still streaming when the app last stopped; returns how many."""
        with self._db.session() as session:
            ids = list(
                session.scalars(
                    select(Message.id).where(Message.role == "assistant", Message.finish_reason.is_(None))
                )
            )
            if ids:
                session.execute(update(Message).where(Message.id.in_(ids)).values(finish_reason=FinishReason.INTERRUPTED))
            return len(ids)

    # document-task runs

    def start_task_run(
        self,
        task: str,
        *,
        parameters: dict[str, Any],
        input_name: str,
        input_kind: str,
        input_bytes: int,
        input_sha256: str,
        input_text: str | None,
        model_name: str | None,
        model_path: str | None,
    ) -> int:
        """Record a run as it starts, so one cut short by a crash still shows up (as interrupted) later.

        ``input_text`` is None when the person chose not to keep document text; the name, size and hash
        still say which document it was. Returns the run's id for ``finish_task_run``.
        """
        if task not in TASKS:
            raise ValueError(f"unknown task {task!r}")
        with self._db.session() as session:
            row = TaskRun(
                created_at=_stamp(),
                task=task,
                status=RunStatus.RUNNING,
                parameters=dict(parameters),
                input_name=input_name,
                input_kind=input_kind,
                input_bytes=input_bytes,
                input_sha256=input_sha256,
                input_text=input_text,
                output="",
                result={},
                model_name=model_name,
                model_path=model_path,
                metrics={},
            )
            session.add(row)
            session.flush()
            return row.id

    def finish_task_run(
        self,
        run_id: int,
        *,
        status: str,
        output: str,
        result: dict[str, Any],
        metrics: dict[str, Any],
        error: str | None = None,
    ) -> None:
        """Close a run with its outcome; a cancelled or failed run keeps whatever output it had by then."""
        if status not in TASK_RUN_STATUSES or status == RunStatus.RUNNING:
            raise ValueError(f"a task run cannot finish as {status!r}")
        with self._db.session() as session:
            row = _task_run(session, run_id)
            row.status = status
            row.finished_at = _stamp()
            row.output = output
            row.result = dict(result)
            row.metrics = dict(metrics)
            row.error = error

    def task_runs(self, limit: int = 200, task: str | None = None) -> list[TaskRunRecord]:
        """Newest first, optionally of one task; soft-deleted runs are hidden while their Undo is on offer."""
        if task is not None and task not in TASKS:
            raise ValueError(f"unknown task {task!r}")
        query = (
            select(TaskRun)
            .where(TaskRun.deleted_at.is_(None))
            .order_by(TaskRun.created_at.desc(), TaskRun.id.desc())
            .limit(limit)
        )
        if task is not None:
            query = query.where(TaskRun.task == task)
        with self._db.session(write=False) as session:
            return [TaskRunRecord.of(row) for row in session.scalars(query)]

    def get_task_run(self, run_id: int) -> TaskRunRecord:
        """Soft-deleted runs are still returned: only a purge makes one missing."""
        with self._db.session(write=False) as session:
            return TaskRunRecord.of(_task_run(session, run_id))

    def delete_task_run(self, run_id: int) -> None:
        """Soft delete, so the UI can offer Undo; ``purge_deleted`` removes it for good later."""
        with self._db.session() as session:
            row = _task_run(session, run_id)
            if row.deleted_at is None:
                row.deleted_at = _stamp()

    def restore_task_run(self, run_id: int) -> None:
        with self._db.session() as session:
            _task_run(session, run_id).deleted_at = None

    def mark_unfinished_task_runs_as_interrupted(self) -> int:
        """Close off runs still going when the app last stopped; returns how many.

        ``finished_at`` stays empty: when such a run really stopped is not known, and a made-up time would
        show a wrong duration.
        """
        with self._db.session() as session:
            ids = list(session.scalars(select(TaskRun.id).where(TaskRun.status == RunStatus.RUNNING)))
            if ids:
                session.execute(update(TaskRun).where(TaskRun.id.in_(ids)).values(status=RunStatus.INTERRUPTED))
            return len(ids)

    # comparisons

    def start_comparison(
        self,
        kind: str,
        *,
        title: str,
        settings: dict[str, Any],
        input_name: str,
        input_kind: str,
        input_text: str,
        machine: dict[str, Any],
        models: list[tuple[str, str, int]],
    ) -> ComparisonRecord:
        """Record a comparison as it starts, with one waiting entry per ``(name, path, file size)``."""
        if kind not in COMPARISON_KINDS:
            raise ValueError(f"unknown comparison kind {kind!r}")
        with self._db.session() as session:
            row = Comparison(created_at=_stamp(), kind=kind, status=RunStatus.RUNNING, title=title,
                             settings=dict(settings),
                             input_name=input_name, input_kind=input_kind, input_text=input_text,
                             machine=dict(machine))
            session.add(row)
            session.flush()
            entries = [ComparisonEntry(comparison_id=row.id, position=i, model_name=name, model_path=path,
                                       file_bytes=size, status=RunStatus.WAITING, output="", result={}, metrics={})
                       for i, (name, path, size) in enumerate(models)]
            session.add_all(entries)
            session.flush()
            return ComparisonRecord.of(row, entries)

    def update_entry(
        self,
        comparison_id: int,
        position: int,
        *,
        status: str,
        output: str | None = None,
        result: dict[str, Any] | None = None,
        metrics: dict[str, Any] | None = None,
        error: str | None = None,
    ) -> None:
        """Set one model's state; the output, result and metrics are kept as they were when not given."""
        if status not in ENTRY_STATUSES:
            raise ValueError(f"unknown entry status {status!r}")
        with self._db.session() as session:
            row = session.scalars(select(ComparisonEntry).where(
                ComparisonEntry.comparison_id == comparison_id, ComparisonEntry.position == position)).first()
            if row is None:
                raise HistoryError("This comparison no longer exists.")
            row.status = status
            if output is not None:
                row.output = output
            if result is not None:
                row.result = dict(result)
            if metrics is not None:
                row.metrics = dict(metrics)
            row.error = error

    def finish_comparison(self, comparison_id: int, status: str) -> ComparisonRecord:
        """Close a comparison; entries still waiting or running are closed with the same status."""
        if status not in TASK_RUN_STATUSES or status == RunStatus.RUNNING:
            raise ValueError(f"a comparison cannot finish as {status!r}")
        with self._db.session() as session:
            row = _comparison(session, comparison_id)
            row.status = status
            row.finished_at = _stamp()
            session.execute(update(ComparisonEntry).where(
                ComparisonEntry.comparison_id == comparison_id,
                ComparisonEntry.status.in_((RunStatus.WAITING, RunStatus.RUNNING))).values(
                    status=RunStatus.INTERRUPTED if status == RunStatus.INTERRUPTED else RunStatus.CANCELLED))
            session.flush()
            return _comparison_record(session, row)

    def vote(self, comparison_id: int, verdict: str, winner_position: int | None = None) -> ComparisonRecord:
        """Save (or change) the person's verdict: one winner, a tie, or both (all) bad."""
        if verdict not in VERDICTS:
            raise ValueError(f"unknown verdict {verdict!r}")
        if (verdict == "winner") != (winner_position is not None):
            raise ValueError("a winner is given exactly when the verdict is 'winner'")
        with self._db.session() as session:
            row = _comparison(session, comparison_id)
            if winner_position is not None and winner_position not in {
                    e.position for e in session.scalars(
                        select(ComparisonEntry).where(ComparisonEntry.comparison_id == comparison_id))}:
                raise ValueError(f"comparison {comparison_id} has no model at position {winner_position}")
            row.verdict, row.winner_position, row.voted_at = verdict, winner_position, _stamp()
            session.flush()
            return _comparison_record(session, row)

    def comparisons(self, limit: int = 200, kind: str | None = None) -> list[ComparisonRecord]:
        """Newest first; soft-deleted ones are hidden while their Undo is on offer."""
        query = (select(Comparison).where(Comparison.deleted_at.is_(None))
                 .order_by(Comparison.created_at.desc(), Comparison.id.desc()).limit(limit))
        if kind is not None:
            query = query.where(Comparison.kind == kind)
        with self._db.session(write=False) as session:
            rows = list(session.scalars(query))
            entries: dict[int, list[ComparisonEntry]] = {row.id: [] for row in rows}
            for entry in session.scalars(select(ComparisonEntry).where(
                    ComparisonEntry.comparison_id.in_(list(entries)))):
                entries[entry.comparison_id].append(entry)
            return [ComparisonRecord.of(row, entries[row.id]) for row in rows]

    def get_comparison(self, comparison_id: int) -> ComparisonRecord:
        with self._db.session(write=False) as session:
            return _comparison_record(session, _comparison(session, comparison_id))

    def delete_comparison(self, comparison_id: int) -> None:
        """Soft delete, so the UI can offer Undo; its votes leave the leaderboard at once."""
        with self._db.session() as session:
            row = _comparison(session, comparison_id)
            if row.deleted_at is None:
                row.deleted_at = _stamp()

    def restore_comparison(self, comparison_id: int) -> None:
        with self._db.session() as session:
            _comparison(session, comparison_id).deleted_at = None

    def mark_unfinished_comparisons_as_interrupted(self) -> int:
        with self._db.session() as session:
            ids = list(session.scalars(select(Comparison.id).where(Comparison.status == RunStatus.RUNNING)))
            if ids:
                session.execute(update(Comparison).where(Comparison.id.in_(ids)).values(status=RunStatus.INTERRUPTED))
                session.execute(update(ComparisonEntry).where(
                    ComparisonEntry.comparison_id.in_(ids),
                    ComparisonEntry.status.in_((RunStatus.WAITING, RunStatus.RUNNING))).values(
                        status=RunStatus.INTERRUPTED))
            return len(ids)

    def leaderboard(self, kind: str) -> list[LeaderRow]:
        """Per model (by name), over the voted comparisons of ``kind``: wins, ties, "both bad" and losses,
        with the model's median speed and memory there; most wins (then best win rate) first.

        Counted in Python rather than SQL: a person has at most a few hundred comparisons, and the rules
        (a tie counts for every model in it) read more plainly this way.
        """
        if kind not in COMPARISON_KINDS:
            raise ValueError(f"unknown comparison kind {kind!r}")
        import statistics

        with self._db.session(write=False) as session:
            rows = list(session.scalars(select(Comparison).where(
                Comparison.kind == kind, Comparison.deleted_at.is_(None), Comparison.verdict.is_not(None))))
            by_id = {row.id: row for row in rows}
            entries = list(session.scalars(select(ComparisonEntry).where(
                ComparisonEntry.comparison_id.in_(list(by_id)))))
        tally: dict[str, dict[str, int]] = {}
        speeds: dict[str, list[float]] = {}
        peaks: dict[str, list[int]] = {}
        for entry in entries:
            row = by_id[entry.comparison_id]
            counts = tally.setdefault(entry.model_name, {"voted": 0, "wins": 0, "ties": 0, "both_bad": 0,
                                                         "losses": 0})
            counts["voted"] += 1
            if row.verdict == "tie":
                counts["ties"] += 1
            elif row.verdict == "both_bad":
                counts["both_bad"] += 1
            elif row.winner_position == entry.position:
                counts["wins"] += 1
            else:
                counts["losses"] += 1
            if entry.status == RunStatus.DONE:
                if entry.metrics.get("tokens_per_s"):
                    speeds.setdefault(entry.model_name, []).append(float(entry.metrics["tokens_per_s"]))
                if entry.metrics.get("peak_rss_bytes"):
                    peaks.setdefault(entry.model_name, []).append(int(entry.metrics["peak_rss_bytes"]))
        board = [LeaderRow(model_name=name, **counts,
                           tokens_per_s=statistics.median(speeds[name]) if name in speeds else None,
                           peak_rss_bytes=int(statistics.median(peaks[name])) if name in peaks else None)
                 for name, counts in tally.items()]
        return sorted(board, key=lambda r: (-r.wins, -r.win_rate, -r.ties, r.model_name.lower()))

    # model library

    def add_model(
        self,
        *,
        name: str,
        path: str | Path,
        in_place: bool,
        file_size: int,
        architecture: str,
        parameter_count: int | None = None,
        quantization: str | None = None,
        context_length: int | None = None,
        has_chat_template: bool = False,
        facts: dict[str, Any] | None = None,
    ) -> ModelRecord:
        duplicate = HistoryError(f"{name} is already in the library ({path}).")
        try:
            with self._db.session() as session:
                if session.scalar(select(LibraryModel.id).where(LibraryModel.path == str(path))) is not None:
                    raise duplicate
                row = LibraryModel(
                    name=name,
                    path=str(path),
                    in_place=in_place,
                    file_size=file_size,
                    architecture=architecture,
                    parameter_count=parameter_count,
                    quantization=quantization,
                    context_length=context_length,
                    has_chat_template=has_chat_template,
                    facts=dict(facts or {}),
                    added_at=utc_now(),
                )
                session.add(row)
                session.flush()
                return ModelRecord.of(row)
        except IntegrityError as exc:  # another thread added the same path after the check
            raise duplicate from exc

    def list_models(self) -> list[ModelRecord]:
        """By the name shown, case aside."""
        shown = func.lower(func.coalesce(LibraryModel.given_name, LibraryModel.name))
        with self._db.session(write=False) as session:
            rows = session.scalars(select(LibraryModel).order_by(shown, LibraryModel.id))
            return [ModelRecord.of(row) for row in rows]

    def rename_model(self, model_id: int, given_name: str | None) -> ModelRecord:
        """Show the model as ``given_name`` (``None``: by its default name again), in the library and in the history
        made with it."""
        with self._db.session() as session:
            row = _get(session, LibraryModel, model_id, "That model is not in the library.")
            old = row.given_name or row.name
            row.given_name = given_name
            _rename_history(session, row, old)
            return ModelRecord.of(row)

    def set_default_model_names(self, names: dict[int, str]) -> None:
        """The names Hearth gives these models (by id) now; a model the person renamed keeps their name."""
        with self._db.session() as session:
            for model_id, name in names.items():
                row = session.get(LibraryModel, model_id)
                if row is not None:
                    old = row.given_name or row.name
                    row.name = name
                    _rename_history(session, row, old)

    def get_model(self, model_id: int) -> ModelRecord | None:
        with self._db.session(write=False) as session:
            row = session.get(LibraryModel, model_id)
            return None if row is None else ModelRecord.of(row)

    def find_model_by_path(self, path: str | Path) -> ModelRecord | None:
        with self._db.session(write=False) as session:
            row = session.scalar(select(LibraryModel).where(LibraryModel.path == str(path)))
            return None if row is None else ModelRecord.of(row)

    # --- load records: forecast against measurement ---

    def add_load_record(self, model_path: str | Path, *, plan: dict[str, Any], estimate: dict[str, Any],
                        measured: dict[str, Any]) -> int:
        with self._db.session() as session:
            row = LoadRecord(model_path=str(model_path), created_at=_stamp(), plan=plan, estimate=estimate,
                             measured=measured)
            session.add(row)
            session.flush()
            return row.id

    def set_load_speed(self, record_id: int, tokens_per_s: float, peak_rss_bytes: int | None = None) -> None:
        """An answer given after the load: the fastest speed and the highest peak memory of that load are kept."""
        with self._db.session() as session:
            row = _get(session, LoadRecord, record_id, "That load record is gone.")
            if row.tokens_per_s is None or tokens_per_s > row.tokens_per_s:
                row.tokens_per_s = tokens_per_s
            if peak_rss_bytes is not None and peak_rss_bytes > int(row.measured.get("peak_rss_bytes") or 0):
                row.measured = {**row.measured, "peak_rss_bytes": peak_rss_bytes}

    def load_records(self, model_path: str | Path | None = None, limit: int = 50) -> list[LoadRecordData]:
        """Newest first; for one model, or for every model on this machine."""
        query = select(LoadRecord).order_by(LoadRecord.id.desc()).limit(limit)
        if model_path is not None:
            query = query.where(LoadRecord.model_path == str(model_path))
        with self._db.session(write=False) as session:
            return [LoadRecordData.of(row) for row in session.scalars(query)]

    # --- network requests (the Privacy page) ---

    def add_network_request(self, record: RequestRecord) -> None:
        with self._db.session() as session:
            session.add(NetworkRequest(at=record.at, method=record.method, host=record.host, path=record.path,
                                       purpose=record.purpose, status=record.status, bytes=record.bytes,
                                       outcome=record.outcome.value, incoming=record.incoming))

    def network_requests(self, limit: int = 1000) -> list[RequestRecord]:
        """Newest first."""
        query = select(NetworkRequest).order_by(NetworkRequest.id.desc()).limit(limit)
        with self._db.session(write=False) as session:
            return [RequestRecord(at=r.at, method=r.method, host=r.host, path=r.path, purpose=r.purpose,
                                  status=r.status, bytes=r.bytes, outcome=Outcome(r.outcome), incoming=r.incoming)
                    for r in session.scalars(query)]

    def remove_model(self, model_id: int) -> None:
        """Conversations keep their model_id and model_name, so old chats still say what they used."""
        with self._db.session() as session:
            session.delete(_get(session, LibraryModel, model_id, "That model is not in the library."))


def _rename_history(session: Session, row: LibraryModel, old: str) -> None:
    """History made with a model says the name it is shown by now, so a renamed model is one model in every list
    (a comparison's leaderboard counts by name). Runs and comparisons name the model's file, conversations its
    library id; a message names only the model, so those of its conversations that carry the old name follow."""
    new = row.given_name or row.name
    if new == old:
        return
    session.flush()
    session.execute(update(TaskRun).where(TaskRun.model_path == row.path).values(model_name=new))
    session.execute(update(ComparisonEntry).where(ComparisonEntry.model_path == row.path).values(model_name=new))
    conversations = select(Conversation.id).where(Conversation.model_id == row.id)
    session.execute(update(Message).where(Message.conversation_id.in_(conversations), Message.model_name == old)
                    .values(model_name=new))
    session.execute(update(Conversation).where(Conversation.model_id == row.id).values(model_name=new))


def _get(session: Session, kind: type[RowT], row_id: int, missing: str) -> RowT:
    row = session.get(kind, row_id)
    if row is None:
        raise HistoryError(missing)
    return row


def _conversation(session: Session, conversation_id: int) -> Conversation:
    return _get(session, Conversation, conversation_id, "That conversation no longer exists.")


def _folder(session: Session, folder_id: int) -> Folder:
    row = _get(session, Folder, folder_id, "That folder no longer exists.")
    if row.deleted_at is not None:
        raise HistoryError("That folder was deleted.")
    return row


def _folder_name(session: Session, name: str, folder_id: int | None = None) -> str:
    """``name`` tidied, and checked to be one no other folder has (in any letter case): the command line names
    folders by name."""
    name = " ".join(name.split())
    if not name:
        raise HistoryError("A folder needs a name.")
    taken = session.scalars(select(Folder.name).where(Folder.deleted_at.is_(None), Folder.id != (folder_id or -1)))
    if any(other.casefold() == name.casefold() for other in taken):
        raise HistoryError(f"There is already a folder called “{name}”.")
    return name


def _shown(conversation_id: int) -> Any:
    """The messages of a conversation that show: on the branch shown, not deleted."""
    return select(Message).where(Message.conversation_id == conversation_id, Message.off_branch.is_(False),
                                 Message.deleted_at.is_(None))


def _task_run(session: Session, run_id: int) -> TaskRun:
    return _get(session, TaskRun, run_id, "That task run no longer exists.")


def _comparison(session: Session, comparison_id: int) -> Comparison:
    return _get(session, Comparison, comparison_id, "This comparison no longer exists.")


def _comparison_record(session: Session, row: Comparison) -> ComparisonRecord:
    entries = list(session.scalars(select(ComparisonEntry).where(ComparisonEntry.comparison_id == row.id)))
    return ComparisonRecord.of(row, entries)


def _check_finish_reason(finish_reason: str | None) -> None:
    if finish_reason is not None and finish_reason not in FINISH_REASONS:
        raise ValueError(f"unknown finish reason {finish_reason!r}")
