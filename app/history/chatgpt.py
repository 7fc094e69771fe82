"""Chats brought over from ChatGPT: its data export (``conversations.json``, or the .zip ChatGPT sends, which holds
it), added to the history as Hearth's own conversations.

The export is a list of conversations, each a tree of nodes::

    [{"title": "Bread", "create_time": 1733390000.5, "update_time": 1733390100.0, "current_node": "c",
      "mapping": {"a": {"id": "a", "message": null, "parent": null, "children": ["b"]},
                  "b": {"id": "b", "parent": "a", "children": ["c"],
                        "message": {"author": {"role": "user"}, "create_time": 1733390000.5,
                                    "content": {"content_type": "text", "parts": ["How long does dough rise?"]}}},
                  "c": {…, "message": {"author": {"role": "assistant"}, "metadata": {"model_slug": "gpt-4o"}, …}}}}]

A node is a message, or nothing (the root); an edited question or a regenerated answer starts a branch, and
``current_node`` ends the branch ChatGPT showed. The people's and the assistant's text messages come over, and a
system message that says something; a tool's output, a call to a tool, a hidden message (custom instructions, the
model's own notes) or one without text (an image alone) does not, and what follows it hangs from the nearest message
that does. The whole tree comes over as Hearth keeps branches (``app.history.branches``): each message's
``parent_id`` is that nearest message, the messages are added parents first, and those off the branch ChatGPT
showed are ``off_branch``, so the conversation opens as it was left.

Reading is as strict as for Hearth's own file (``app.history.exchange``), since a file may come from anywhere: a file
over ``MAX_BYTES`` (in the .zip too, whatever its directory claims), JSON nested deeper than the parser allows, a
record with one key twice (two messages with one id), two conversations with one id, a branch that loops or leads to
a message that is not there, or a field of the wrong type, each end in a ``HistoryError`` with a sentence and nothing
is imported. The conversations are written in one transaction, as new ones beside those the history has.
"""

from __future__ import annotations

import json
import math
import zipfile
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.errors import HistoryError
from app.history.exchange import MAX_BYTES, Imported
from app.history.models import Conversation, Message
from app.words import plural

MEMBER = "conversations.json"  # the export's file of conversations, in the .zip
UNTITLED = "A chat from ChatGPT"
_ZIP_MAGIC = b"PK\x03\x04"
_ROLES = {"user", "assistant", "system"}
_TEXT = {"text", "multimodal_text"}  # the second also holds images and files, which are left out
_LAST_SECOND = datetime(9999, 12, 31, tzinfo=UTC).timestamp()


@dataclass(frozen=True)
class ImportedChats(Imported):
    """What an import from ChatGPT added, and what it left out."""

    empty: int = 0  # conversations without a text message to import

    def sentence(self) -> str:
        words = (f"Imported {plural(self.conversations, 'conversation')} "
                 f"({plural(self.messages, 'message')}) from ChatGPT.")
        if self.empty:
            words += (f" {plural(self.empty, 'conversation')} without a text message "
                      f"{'was' if self.empty == 1 else 'were'} left out.")
        return words


def looks_like_export(path: Path) -> bool:
    """Whether ``path`` is a ChatGPT export rather than Hearth's own file: a .zip, or JSON that is a list (Hearth's
    file is an object). Reads the first bytes only; an unreadable file is left to the reader to explain."""
    try:
        with path.open("rb") as file:
            head = file.read(4096)
    except OSError:
        return False
    if head.startswith(_ZIP_MAGIC):
        return True
    return head.removeprefix(b"\xef\xbb\xbf").lstrip(b" \t\r\n").startswith(b"[")


def read_export(path: Path) -> list[Any]:
    """The conversations of the export at ``path`` (``conversations.json`` or ChatGPT's .zip), parsed; their
    contents are checked by ``import_export``."""
    name = f"“{path.name}”"
    try:
        size = path.stat().st_size
        with path.open("rb") as file:
            zipped = file.read(4).startswith(_ZIP_MAGIC)
    except OSError as error:
        raise HistoryError(f"Could not read {name}: {error.strerror or error}. Nothing was imported.") from error
    _within_limit(size, name)
    raw = _from_zip(path) if zipped else path.read_bytes()
    if zipped:
        name = f"“{MEMBER}” in {name}"
    try:
        data = json.loads(raw, object_pairs_hook=_once_each)
    except _Repeated as error:
        raise HistoryError(f"{name} has a record with the key “{error.key}” twice, so it is not a ChatGPT export "
                           "Hearth can trust. Nothing was imported.") from error
    except RecursionError as error:
        raise HistoryError(f"{name} is nested too deeply to be a ChatGPT export. Nothing was imported.") from error
    except ValueError as error:
        raise HistoryError(f"{name} is not a JSON file Hearth can read ({error}). Nothing was imported.") from error
    if not isinstance(data, list):
        raise HistoryError(f"{name} is not a ChatGPT export (its conversations are not a list). Nothing was "
                           "imported.")
    return data


def import_export(session: Session, data: list[Any]) -> ImportedChats:
    """Adds the export's conversations as new ones (all checked first); raises ``HistoryError`` and adds nothing
    when anything in it is wrong."""
    chats = [_conversation(item, index) for index, item in enumerate(data, 1)]
    ids = [chat.source_id for chat in chats if chat.source_id is not None]
    if len(ids) != len(set(ids)):
        repeated = next(i for i in ids if ids.count(i) > 1)
        raise HistoryError(f"Two conversations in the export have the id “{repeated}”. Nothing was imported.")
    kept = [chat for chat in chats if chat.messages]
    try:
        for chat in kept:
            row = Conversation(title=chat.title, created_at=chat.created_at, updated_at=chat.updated_at,
                               model_name=chat.model_name, system_prompt="", settings={})
            session.add(row)
            session.flush()
            rows = [Message(conversation_id=row.id, role=m.role, content=m.content, created_at=m.created_at,
                            model_name=m.model_name, finish_reason="stop" if m.role == "assistant" else None,
                            off_branch=m.off_branch) for m in chat.messages]
            session.add_all(rows)
            session.flush()  # the ids, in the order added: each parent's is lower than its children's
            for added, message in zip(rows, chat.messages, strict=True):
                added.parent_id = None if message.parent is None else rows[message.parent].id
        session.flush()
    except IntegrityError as error:
        raise HistoryError(f"A conversation in the export breaks a rule of the history ({error.orig}). Nothing was "
                           "imported.") from error
    return ImportedChats(conversations=len(kept), messages=sum(len(chat.messages) for chat in kept), task_runs=0,
                         comparisons=0, empty=len(chats) - len(kept))


# --- reading ----------------------------------------------------------------------------------------------------


class _Repeated(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _once_each(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """JSON's object, refusing a key given twice: ``json`` would keep the last silently, and two nodes with one id
    would make another conversation than the one the file shows."""
    record = dict(pairs)
    if len(record) != len(pairs):
        seen: set[str] = set()
        for key, _value in pairs:
            if key in seen:
                raise _Repeated(key)
            seen.add(key)
    return record


def _within_limit(size: int, name: str) -> None:
    if size > MAX_BYTES:
        raise HistoryError(f"{name} is {size / 1024**3:.1f} GB, more than Hearth reads in one import "
                           f"({MAX_BYTES // 1024**2} MB). Nothing was imported.")


def _from_zip(path: Path) -> bytes:
    """``conversations.json`` out of ChatGPT's .zip, read no further than ``MAX_BYTES`` whatever the .zip's
    directory says of its size (a .zip can claim a small file and unpack to gigabytes)."""
    name = f"“{path.name}”"
    try:
        with zipfile.ZipFile(path) as archive:
            members = [info for info in archive.infolist()
                       if not info.is_dir() and PurePosixPath(info.filename).name == MEMBER]
            if not members:
                raise HistoryError(f"{name} holds no “{MEMBER}”, so it is not a ChatGPT export. Nothing was "
                                   "imported.")
            member = min(members, key=lambda info: (info.filename.count("/"), info.filename))
            _within_limit(member.file_size, f"“{MEMBER}” in {name}")
            with archive.open(member) as stream:
                raw = stream.read(MAX_BYTES + 1)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, RuntimeError, OSError, EOFError,
            ValueError) as error:
        raise HistoryError(f"{name} is not a .zip file Hearth can open ({error}). Nothing was imported.") from error
    _within_limit(len(raw), f"“{MEMBER}” in {name}")
    return raw


# --- checking -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Message:
    role: str
    content: str
    created_at: datetime
    model_name: str | None
    parent: int | None = None  # the place of the message before it in its conversation's list
    off_branch: bool = False


@dataclass(frozen=True)
class _Chat:
    source_id: str | None
    title: str
    created_at: datetime
    updated_at: datetime
    model_name: str | None
    messages: list[_Message]  # parents first


def _conversation(item: Any, index: int) -> _Chat:
    where = f"Conversation {index} of the export"
    if not isinstance(item, dict):
        raise HistoryError(f"{where} is not a record. Nothing was imported.")
    mapping = item.get("mapping")
    if not isinstance(mapping, dict):
        raise HistoryError(f"{where} has no “mapping” of its messages. Nothing was imported.")
    title = _text(item.get("title"), f"the title of {where.lower()}")
    source_id = item.get("conversation_id", item.get("id"))
    if source_id is not None and not isinstance(source_id, str):
        raise HistoryError(f"The id of {where.lower()} is not text. Nothing was imported.")
    created = _time(item.get("create_time"), f"the “create_time” of {where.lower()}")
    updated = _time(item.get("update_time"), f"the “update_time” of {where.lower()}")
    for key, node in mapping.items():
        _check_node(key, node, mapping, where)
    current = item.get("current_node")
    if not isinstance(current, str) or current not in mapping:
        raise HistoryError(f"{where} does not say which of its messages ChatGPT showed last (its “current_node”). "
                           "Nothing was imported.")
    parsed = {key: _message(node.get("message"), f"message “{key}” of {where.lower()}", created or updated)
              for key, node in mapping.items()}
    shown = set(_branch(current, mapping, where))
    messages: list[_Message] = []
    place: dict[str, int] = {}
    for key, kept_parent in _tree(mapping, parsed, where):
        message = parsed[key]
        assert message is not None
        place[key] = len(messages)
        messages.append(replace(message, parent=None if kept_parent is None else place[kept_parent],
                                off_branch=key not in shown))
    fallback = datetime.now(UTC)
    created_at = created or min((m.created_at for m in messages), default=fallback)
    model = next((m.model_name for m in reversed(messages) if m.model_name and not m.off_branch), None)
    default_model = item.get("default_model_slug")
    return _Chat(source_id=source_id, title=title.strip() or UNTITLED, created_at=created_at,
                 updated_at=max([updated or created_at, *(m.created_at for m in messages)]),
                 model_name=model or (_clean(default_model) if isinstance(default_model, str) else None),
                 messages=messages)


def _check_node(key: str, node: Any, mapping: dict[str, Any], where: str) -> None:
    if not isinstance(node, dict):
        raise HistoryError(f"Node “{key}” of {where.lower()} is not a record. Nothing was imported.")
    if node.get("id", key) != key:
        raise HistoryError(f"Node “{key}” of {where.lower()} says its id is “{node.get('id')}”. Nothing was "
                           "imported.")
    parent = node.get("parent")
    if parent is not None and (not isinstance(parent, str) or parent not in mapping):
        raise HistoryError(f"Message “{key}” of {where.lower()} follows a message that is not in the export. "
                           "Nothing was imported.")
    children = node.get("children", [])
    if not isinstance(children, list) or not all(isinstance(child, str) for child in children):
        raise HistoryError(f"The “children” of node “{key}” of {where.lower()} are not a list of ids. Nothing was "
                           "imported.")


def _tree(mapping: dict[str, Any], parsed: dict[str, _Message | None], where: str) -> list[tuple[str, str | None]]:
    """The nodes that hold a message to import, parents first (depth first, siblings in the file's order), each
    with the nearest such node above it (None at the top). A node the walk from the roots never reaches is on a
    loop of parents."""
    children: dict[str | None, list[str]] = {}
    for key, node in mapping.items():
        children.setdefault(node.get("parent"), []).append(key)
    order: list[tuple[str, str | None]] = []
    reached = 0
    todo: list[tuple[str, str | None]] = [(key, None) for key in reversed(children.get(None, []))]
    while todo:
        key, above = todo.pop()
        reached += 1
        if parsed[key] is not None:
            order.append((key, above))
            above = key
        todo.extend((child, above) for child in reversed(children.get(key, [])))
    if reached != len(mapping):
        raise HistoryError(f"The messages of {where.lower()} follow each other in a circle. Nothing was imported.")
    return order


def _branch(last: str, mapping: dict[str, Any], where: str) -> list[str]:
    """The ids from the root to ``last``, following each node's parent."""
    path: list[str] = []
    seen: set[str] = set()
    node: str | None = last
    while node is not None:
        if node in seen:
            raise HistoryError(f"The messages of {where.lower()} follow each other in a circle. Nothing was "
                               "imported.")
        seen.add(node)
        path.append(node)
        node = mapping[node].get("parent")
    return path[::-1]


def _message(message: Any, where: str, fallback: datetime | None) -> _Message | None:
    """The node's message as Hearth keeps it, or None for what is not imported (no message, a tool's, a hidden one,
    one without text)."""
    if message is None:
        return None
    if not isinstance(message, dict):
        raise HistoryError(f"The content of {where} is not a record. Nothing was imported.")
    author, content = message.get("author"), message.get("content")
    metadata = message.get("metadata") or {}
    if not isinstance(author, dict) or not isinstance(content, dict) or not isinstance(metadata, dict):
        raise HistoryError(f"{where.capitalize()} has no author or content. Nothing was imported.")
    role = author.get("role")
    if not isinstance(role, str) or role not in _ROLES or metadata.get("is_visually_hidden_from_conversation") is True:
        return None
    if message.get("recipient", "all") != "all":  # the assistant calling a tool
        return None
    if not isinstance(content.get("content_type"), str) or content.get("content_type") not in _TEXT:
        return None
    parts = content.get("parts")
    if not isinstance(parts, list):
        raise HistoryError(f"The “parts” of {where} are not a list. Nothing was imported.")
    text = _clean("\n\n".join(part for part in parts if isinstance(part, str))).strip()
    if not text:
        return None
    slug = metadata.get("model_slug")
    created = _time(message.get("create_time"), f"the “create_time” of {where}")
    return _Message(role=str(role), content=text, created_at=created or fallback or datetime.now(UTC),
                    model_name=_clean(slug) if isinstance(slug, str) and role == "assistant" else None)


def _text(value: Any, where: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise HistoryError(f"{where.capitalize()} is not text. Nothing was imported.")
    return _clean(value)


def _clean(text: str) -> str:
    """The text as SQLite can store it: JSON may carry half of a surrogate pair (``"\\ud800"``), which no UTF-8
    encodes; it becomes a replacement character rather than a failed import."""
    return text.encode("utf-8", "replace").decode("utf-8")


def _time(value: Any, where: str) -> datetime | None:
    """ChatGPT's times are seconds since 1970 (with a fraction), or null."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) \
            or not 0 <= value < _LAST_SECOND:
        raise HistoryError(f"{where.capitalize()} is not a time. Nothing was imported.")
    return datetime.fromtimestamp(value, UTC)
