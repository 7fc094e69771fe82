"""Long lists are read a page at a time: the conversation list and a conversation's messages."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from app.errors import HistoryError
from app.history import Database, HistoryStore, open_database


@pytest.fixture
def store(tmp_path: Path) -> Iterator[HistoryStore]:
    database: Database = open_database(tmp_path / "history.sqlite3")
    yield HistoryStore(database)
    database.close()


def test_conversations_come_newest_first_a_page_at_a_time_without_gaps_or_repeats(store: HistoryStore) -> None:
    made = [store.create_conversation(f"Chat {n}", {}) for n in range(7)]
    store.delete_conversation(made[2].id)  # waiting for its Undo: not listed
    first = store.conversation_page(3)
    assert [c.title for c in first.items] == ["Chat 6", "Chat 5", "Chat 4"] and first.more
    store.touch_conversation(made[1].id)  # answered meanwhile: it is at the top now, not in a later page again
    second = store.conversation_page(3, after=first.items[-1])
    assert [c.title for c in second.items] == ["Chat 3", "Chat 0"] and not second.more
    assert store.conversation_page(10).items[0].title == "Chat 1"


def test_whether_there_is_any_conversation_is_known_without_reading_them(store: HistoryStore) -> None:
    assert not store.has_conversations()
    conversation = store.create_conversation("Only", {})
    assert store.has_conversations()
    store.delete_conversation(conversation.id)
    assert not store.has_conversations()


def test_messages_come_last_first_a_page_at_a_time_each_page_oldest_first(store: HistoryStore) -> None:
    conversation = store.create_conversation("Long", {})
    made = [store.add_message(conversation.id, "user" if n % 2 == 0 else "assistant", f"message {n}")
            for n in range(8)]
    store.delete_message(made[6].id)
    last = store.message_page(conversation.id, 3)
    assert [m.content for m in last.items] == ["message 4", "message 5", "message 7"] and last.more
    before = store.message_page(conversation.id, 3, before_id=last.items[0].id)
    assert [m.content for m in before.items] == ["message 1", "message 2", "message 3"] and before.more
    first = store.message_page(conversation.id, 3, before_id=before.items[0].id)
    assert [m.content for m in first.items] == ["message 0"] and not first.more
    assert store.get_message(made[6].id).content == "message 6"  # Undo shows it again from its record
    with pytest.raises(HistoryError):
        store.get_message(made[-1].id + 100)
