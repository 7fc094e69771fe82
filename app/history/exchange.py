"""Hearth's own history file: everything the history shows, as one JSON document that Hearth writes and reads back
exactly (``export_history`` then ``import_history`` into an empty history gives the same records), and that people
and other programs can read.

    {"format": "hearth-history", "version": 2, "exported_at": "2026-12-05T10:00:00+00:00",
     "folders": [{"id": 1, "name": "Work", "system_prompt": …, …}],
     "conversations": [{"id": 1, "title": …, "folder_id": 1, …,
                        "messages": [{"id": 1, "role": "user", "parent_id": null, "off_branch": false, …}]}],
     "task_runs": [{"id": 1, "task": "summarize", …}],
     "comparisons": [{"id": 1, "title": …, …, "entries": [{"id": 1, "model_name": …, …}]}]}

Each record has the fields of its table in ``app.history.models`` (times in ISO 8601 with their offset, settings and
figures as JSON objects); ``id`` is the record's id where it was exported, and links nothing: an import gives new
ids. What is deleted (or waiting for its Undo) is not exported. Two fields link records within the file: a
conversation's ``folder_id`` (a folder of the file's ``folders``) and a message's ``parent_id`` (an earlier message
of its conversation: versions of a message share one, ``app.history.branches``), with ``off_branch`` true for the
messages not on the branch shown. Version 1 (before folders and branches) is read too: its messages follow each
other. A folder whose name the history has already is the same folder.

Reading is strict, since a file may come from anywhere: an unknown format or version, a field missing, of the wrong
type or unknown, two records of a kind with one id, a file over ``MAX_BYTES`` or nested deeper than JSON's own
parser allows each end in a ``HistoryError`` with a sentence, and nothing is imported. Everything is written in one
transaction, so an import is whole or not at all, and never changes what the history had.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import JSON, TypeDecorator, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase, Session

from app.errors import HistoryError
from app.history import branches
from app.history.models import Comparison, ComparisonEntry, Conversation, Folder, Message, TaskRun

FORMAT = "hearth-history"
VERSION = 2
READS = (1, 2)
MAX_BYTES = 512 * 1024 * 1024  # a history file larger than this is refused before it is read
_LINKS = {"conversation_id", "comparison_id"}  # given by the nesting, not by the file
_NOT_EXPORTED = {"id", "deleted_at", *_LINKS}


@dataclass(frozen=True)
class Imported:
    conversations: int
    messages: int
    task_runs: int
    comparisons: int

    def sentence(self) -> str:
        return (f"Imported {self.conversations} conversation{'s' if self.conversations != 1 else ''} "
                f"({self.messages} messages), {self.task_runs} task run{'s' if self.task_runs != 1 else ''} and "
                f"{self.comparisons} comparison{'s' if self.comparisons != 1 else ''}.")


def export_history(session: Session, conversation_ids: Sequence[int] | None = None, *,
                   tasks_and_comparisons: bool = True) -> dict[str, Any]:
    """The history (or the conversations ``conversation_ids``), as Hearth's file holds it."""
    query = select(Conversation).where(Conversation.deleted_at.is_(None)).order_by(Conversation.id)
    if conversation_ids is not None:
        query = query.where(Conversation.id.in_(conversation_ids))
    folders = {row.id: row for row in session.scalars(select(Folder).where(Folder.deleted_at.is_(None)))}
    conversations = []
    for conversation in session.scalars(query):
        every = session.scalars(select(Message).where(Message.conversation_id == conversation.id)
                                .order_by(Message.id)).all()
        gone = {m.id: m.parent_id for m in every if m.deleted_at is not None}
        messages = []
        for message in every:
            if message.deleted_at is None:
                fields = _fields(message)
                while fields["parent_id"] in gone:  # a message deleted alone: the next follows the one before
                    fields["parent_id"] = gone[fields["parent_id"]]
                messages.append(fields)
        fields = _fields(conversation)
        if fields["folder_id"] not in folders:
            fields["folder_id"] = None
        conversations.append({**fields, "messages": messages})
    used = {c["folder_id"] for c in conversations}
    document: dict[str, Any] = {"format": FORMAT, "version": VERSION, "exported_at": datetime.now(UTC).isoformat(),
                                "folders": [_fields(folders[i]) for i in sorted(folders)
                                            if conversation_ids is None or i in used],
                                "conversations": conversations, "task_runs": [], "comparisons": []}
    if tasks_and_comparisons:
        document["task_runs"] = [_fields(run) for run in session.scalars(
            select(TaskRun).where(TaskRun.deleted_at.is_(None)).order_by(TaskRun.id))]
        for comparison in session.scalars(select(Comparison).where(Comparison.deleted_at.is_(None))
                                          .order_by(Comparison.id)):
            entries = session.scalars(select(ComparisonEntry).where(ComparisonEntry.comparison_id == comparison.id)
                                      .order_by(ComparisonEntry.position))
            document["comparisons"].append({**_fields(comparison), "entries": [_fields(e) for e in entries]})
    return document


def read_history_file(path: Path) -> dict[str, Any]:
    """The document in ``path``, checked for size and JSON; its contents are checked by ``import_history``."""
    try:
        size = path.stat().st_size
    except OSError as error:
        raise HistoryError(f"Could not read “{path.name}”: {error.strerror or error}.") from error
    if size > MAX_BYTES:
        raise HistoryError(f"“{path.name}” is {size / 1024**3:.1f} GB, more than a history file Hearth reads "
                           f"({MAX_BYTES // 1024**2} MB). Nothing was imported.")
    try:
        data = json.loads(path.read_bytes())
    except RecursionError as error:
        raise HistoryError(f"“{path.name}” is nested too deeply to be a history file. Nothing was imported.") \
            from error
    except (ValueError, OSError) as error:
        raise HistoryError(f"“{path.name}” is not a JSON file Hearth can read ({error}). Nothing was imported.") \
            from error
    if not isinstance(data, dict):
        raise HistoryError(f"“{path.name}” is not a Hearth history file. Nothing was imported.")
    return data


def import_history(session: Session, data: dict[str, Any]) -> Imported:
    """Adds the file's records as new ones (checked first, in full); raises ``HistoryError`` and adds nothing when
    anything in it is wrong."""
    if data.get("format") != FORMAT:
        raise HistoryError("This is not a Hearth history file (it does not say “format”: “hearth-history”). "
                           "Nothing was imported.")
    if data.get("version") not in READS:
        raise HistoryError(f"This history file is version {data.get('version')!r}; this Hearth reads versions "
                           f"{' and '.join(str(v) for v in READS)}. Nothing was imported.")
    folders = _records(data, "folders", Folder)
    conversations = _records(data, "conversations", Conversation, children=("messages", Message))
    task_runs = _records(data, "task_runs", TaskRun)
    comparisons = _records(data, "comparisons", Comparison, children=("entries", ComparisonEntry))
    folder_ids = _folders(session, folders)
    for index, (fields, nested) in enumerate(conversations, 1):
        _link(fields, nested, folder_ids, index)
    try:
        _add(session, conversations, Conversation, (Message, "conversation_id"))
        _add(session, task_runs, TaskRun, None)
        _add(session, comparisons, Comparison, (ComparisonEntry, "comparison_id"))
        session.flush()
    except IntegrityError as error:
        raise HistoryError(f"A record in the file breaks a rule of the history ({error.orig}). Nothing was "
                           "imported.") from error
    messages = sum(len(children) for _fields, children in conversations)
    return Imported(len(conversations), messages, len(task_runs), len(comparisons))


def _folders(session: Session, folders: list[tuple[dict[str, Any], list[dict[str, Any]]]]) -> dict[Any, int]:
    """The file's folders in the history (the one of the same name where there is one): the file's id of each to
    the history's."""
    existing = {row.name.casefold(): row.id for row in session.scalars(select(Folder).where(
        Folder.deleted_at.is_(None)))}
    out: dict[Any, int] = {}
    for fields, _ in folders:
        file_id = fields.pop("file_id")
        name = " ".join(str(fields["name"]).split())
        if not name:
            raise HistoryError("A folder in the file has no name. Nothing was imported.")
        if name.casefold() not in existing:
            row = Folder(**{**fields, "name": name})
            session.add(row)
            session.flush()
            existing[name.casefold()] = row.id
        out[file_id] = existing[name.casefold()]
    return out


def _link(fields: dict[str, Any], messages: list[dict[str, Any]], folder_ids: dict[Any, int], index: int) -> None:
    """A conversation's links within the file checked, and put as they will be: its folder the history's, each
    message's parent one of the messages before it (version 1: the message before)."""
    folder = fields.get("folder_id")
    if folder is not None:
        if folder not in folder_ids:
            raise HistoryError(f"Conversation {index} is in a folder the file does not have. Nothing was imported.")
        fields["folder_id"] = folder_ids[folder]
    before: list[Any] = []
    for place, message in enumerate(messages, 1):
        file_id = message["file_id"]
        if "parent_id" not in message:
            message["parent_id"] = before[-1] if before else None
        elif message["parent_id"] is not None and message["parent_id"] not in before:
            raise HistoryError(f"Message {place} of conversation {index} follows a message that is not before it "
                               "in the file. Nothing was imported.")
        before.append(file_id)


def _add(session: Session, records: list[tuple[dict[str, Any], list[dict[str, Any]]]], model: Any,
         children: tuple[Any, str] | None) -> None:
    """Each record as a new row, then its children linked to it by ``children``' column (and, for messages, to
    the message before them on their branch: the ids are known once a conversation's messages are written, in one
    batch, in the file's order, so each parent's is lower than its children's)."""
    for fields, nested in records:
        row = model(**fields)
        session.add(row)
        if children is not None and nested:
            session.flush()
            child_model, link = children
            file_ids = [child.pop("file_id", None) for child in nested]
            parents = [child.pop("parent_id", None) if child_model is Message else None for child in nested]
            added = [child_model(**{link: row.id}, **child) for child in nested]
            session.add_all(added)
            session.flush()
            new_ids = {file_id: item.id for file_id, item in zip(file_ids, added, strict=True)}
            for item, parent in zip(added, parents, strict=True):
                if parent is not None:
                    item.parent_id = new_ids[parent]
            if child_model is Message:  # one branch shown, whatever the file says: the model reads only that
                session.flush()
                shown = [item.id for item in added if not item.off_branch] or [added[-1].id]
                branches.show(session, row.id, max(shown))


def _fields(row: DeclarativeBase) -> dict[str, Any]:
    out: dict[str, Any] = {"id": getattr(row, "id")}  # noqa: B009 - every exported table has one
    for column in row.__table__.columns:
        if column.key in _NOT_EXPORTED:
            continue
        value = getattr(row, column.key)
        out[column.key] = value.isoformat() if isinstance(value, datetime) else value
    return out


def _records(data: dict[str, Any], key: str, model: type[DeclarativeBase],
             children: tuple[str, type[DeclarativeBase]] | None = None
             ) -> list[tuple[dict[str, Any], list[dict[str, Any]]]]:
    items = data.get(key, [])
    if not isinstance(items, list):
        raise HistoryError(f"“{key}” in the file is not a list. Nothing was imported.")
    seen: set[Any] = set()
    records = []
    for index, item in enumerate(items, 1):
        if not isinstance(item, dict):
            raise HistoryError(f"Item {index} of “{key}” is not a record. Nothing was imported.")
        if not isinstance(item.get("id"), int | str) or isinstance(item.get("id"), bool):
            raise HistoryError(f"Item {index} of “{key}” has no id (a number or a text). Nothing was imported.")
        if item.get("id") in seen:
            raise HistoryError(f"Two records of “{key}” have the id {item.get('id')!r}. Nothing was imported.")
        seen.add(item.get("id"))
        nested: list[dict[str, Any]] = []
        if children is not None:
            child_key, child_model = children
            nested = [fields for fields, _ in _records(item, child_key, child_model)]
        fields = _checked(item, model, f"{key} item {index}", skip={children[0]} if children else set())
        if model in (Message, Folder):  # linked to within the file by this id
            fields["file_id"] = item["id"]
        records.append((fields, nested))
    return records


def _checked(item: dict[str, Any], model: type[DeclarativeBase], where: str, skip: set[str]) -> dict[str, Any]:
    columns = {c.key: c for c in model.__table__.columns if c.key not in _NOT_EXPORTED}
    unknown = set(item) - set(columns) - skip - {"id"}
    if unknown:
        raise HistoryError(f"{where.capitalize()} has fields a history record does not have: "
                           f"{', '.join(sorted(unknown))}. Nothing was imported.")
    fields: dict[str, Any] = {}
    for name, column in columns.items():
        if name not in item:
            if column.nullable or column.default is not None or column.server_default is not None:
                continue
            raise HistoryError(f"{where.capitalize()} has no “{name}”. Nothing was imported.")
        fields[name] = _value(item[name], column, f"“{name}” of {where}")
    return fields


def _value(value: Any, column: Any, where: str) -> Any:
    if value is None:
        if column.nullable:
            return None
        raise HistoryError(f"{where.capitalize()} is empty. Nothing was imported.")
    if isinstance(column.type, JSON):
        if isinstance(value, dict | list):
            return value
        raise HistoryError(f"{where.capitalize()} is not an object. Nothing was imported.")
    kind: Any = column.type.impl.python_type if isinstance(column.type, TypeDecorator) else column.type.python_type
    if kind is datetime:
        try:
            parsed = datetime.fromisoformat(value) if isinstance(value, str) else None
        except ValueError:
            parsed = None
        if parsed is None or parsed.tzinfo is None:
            raise HistoryError(f"{where.capitalize()} is not a time with its offset. Nothing was imported.")
        return parsed
    if kind is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if kind is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if kind in (str, bool) and isinstance(value, kind):
        return value
    raise HistoryError(f"{where.capitalize()} is not {_kind_words(kind)}. Nothing was imported.")


def _kind_words(kind: type) -> str:
    return {str: "text", int: "a whole number", float: "a number", bool: "true or false"}.get(
        kind, kind.__name__)
