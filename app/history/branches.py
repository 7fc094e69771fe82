"""The branches of a conversation: which messages are shown, and which versions each message has.

A conversation is a tree: each message's ``parent_id`` is the message before it, and an edited question or a
regenerated answer is a second child of the same parent (a *version*). One path from the first message to a last
one is shown; its messages have ``off_branch`` false, and every other message true. Keeping the path as a flag
rather than working it out on each read means that the pages of a conversation, the prompt and the search read a
branch the way they read a conversation with none, in id order: a message is always added after its parent.

Hand-written rather than taken from a tree library: SQLite holds the tree, and the one walk needed (up to the
first message, then down by the newest child) is a few lines over one conversation's ``(id, parent_id)`` pairs.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence

from sqlalchemy import ColumnElement, and_, or_, select, update
from sqlalchemy.orm import Session

from app.history.models import Message
from app.history.records import MessageRecord


def show(session: Session, conversation_id: int, message_id: int) -> None:
    """Make the branch through ``message_id`` the one shown: its ancestors, then below it each time the newest
    child still there (a deleted one only where nothing else goes on, so a message deleted alone does not cut the
    conversation short)."""
    rows = session.execute(select(Message.id, Message.parent_id, Message.deleted_at)
                           .where(Message.conversation_id == conversation_id)).all()
    parent_of = {row.id: row.parent_id for row in rows}
    deleted = {row.id for row in rows if row.deleted_at is not None}
    children: dict[int | None, list[int]] = defaultdict(list)
    for row in rows:
        children[row.parent_id].append(row.id)
    path: set[int] = set()
    node: int | None = message_id
    while node is not None and node not in path:
        path.add(node)
        node = parent_of.get(node)
    node = message_id
    while children.get(node):
        kids = children[node]
        live = [kid for kid in kids if kid not in deleted]
        node = max(live or kids)
        path.add(node)
    session.execute(update(Message).where(Message.conversation_id == conversation_id, Message.off_branch.is_(False),
                                          Message.id.not_in(path)).values(off_branch=True))
    session.execute(update(Message).where(Message.id.in_(path), Message.off_branch.is_(True))
                    .values(off_branch=False))


def last_shown(session: Session, conversation_id: int) -> int | None:
    """The newest message of the branch shown, where a message added goes. One deleted alone (its Undo on offer)
    counts: it stays a link of the chain, so its Undo puts it back in its place rather than beside what came
    next."""
    return session.scalar(select(Message.id).where(Message.conversation_id == conversation_id,
                                                   Message.off_branch.is_(False))
                          .order_by(Message.id.desc()).limit(1))


def versions_of(session: Session, conversation_id: int, parent_id: int | None) -> list[int]:
    """The ids of the versions that share ``parent_id`` (not deleted), oldest first."""
    parent = Message.parent_id.is_(None) if parent_id is None else Message.parent_id == parent_id
    return list(session.scalars(select(Message.id).where(Message.conversation_id == conversation_id, parent,
                                                         Message.deleted_at.is_(None)).order_by(Message.id)))


def records(session: Session, rows: Sequence[Message]) -> list[MessageRecord]:
    """``rows`` as records, each with its place among its versions."""
    if not rows:
        return []
    conversation_id = rows[0].conversation_id
    parents = {row.parent_id for row in rows}
    known = [p for p in parents if p is not None]
    condition: ColumnElement[bool] = Message.parent_id.in_(known)
    if None in parents:
        condition = or_(condition, Message.parent_id.is_(None))
    siblings: dict[int | None, list[int]] = defaultdict(list)
    for sibling_id, parent_id in session.execute(
            select(Message.id, Message.parent_id)
            .where(and_(Message.conversation_id == conversation_id, Message.deleted_at.is_(None), condition))
            .order_by(Message.id)):
        siblings[parent_id].append(sibling_id)
    out = []
    for row in rows:
        group = siblings.get(row.parent_id, [])
        version = group.index(row.id) + 1 if row.id in group else 1
        out.append(MessageRecord.of(row, version, max(len(group), 1)))
    return out


def subtree(session: Session, conversation_id: int, message_id: int) -> list[int]:
    """``message_id`` and every message after it on any branch that goes through it."""
    rows = session.execute(select(Message.id, Message.parent_id).where(Message.conversation_id == conversation_id))
    children: dict[int | None, list[int]] = defaultdict(list)
    for row_id, parent_id in rows:
        children[parent_id].append(row_id)
    found, todo = [], [message_id]
    while todo:
        node = todo.pop()
        found.append(node)
        todo.extend(children.get(node, ()))
    return found


def reattach_children(session: Session, purged: Iterable[tuple[int, int | None]]) -> None:
    """Before messages are deleted for good: the messages after them that stay now follow the nearest message
    before them that stays (a message deleted alone leaves the conversation joined up)."""
    parent_of = dict(purged)
    if not parent_of:
        return
    for child_id, parent_id in session.execute(select(Message.id, Message.parent_id)
                                               .where(Message.parent_id.in_(list(parent_of)),
                                                      Message.id.not_in(list(parent_of)))).all():
        new_parent = parent_id
        while new_parent in parent_of:
            new_parent = parent_of[new_parent]
        session.execute(update(Message).where(Message.id == child_id).values(parent_id=new_parent))

