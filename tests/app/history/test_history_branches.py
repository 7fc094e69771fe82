"""Branches of a conversation (an edited question, a regenerated answer: versions side by side, one branch shown)
and folders of conversations, with pins, in the store."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from app.errors import HistoryError
from app.history import HistoryStore, open_database
from app.history.records import SearchQuery


@pytest.fixture
def store(tmp_path: Path) -> HistoryStore:
    return HistoryStore(open_database(tmp_path / "history.sqlite3"))


def _contents(store: HistoryStore, conversation_id: int) -> list[str]:
    return [m.content for m in store.messages(conversation_id)]


def test_an_edit_is_a_new_version_whose_branch_is_shown_and_the_old_one_comes_back(store: HistoryStore) -> None:
    chat = store.create_conversation("C", {}).id
    store.add_message(chat, "user", "Q1")
    store.add_message(chat, "assistant", "A1")
    q2 = store.add_message(chat, "user", "Q2")
    store.add_message(chat, "assistant", "A2")
    store.add_message(chat, "user", "Q3")

    edited = store.add_message(chat, "user", "Q2 edited", version_of=q2.id)
    assert (edited.version, edited.versions, edited.parent_id) == (2, 2, q2.parent_id)
    store.add_message(chat, "assistant", "A2'")
    assert _contents(store, chat) == ["Q1", "A1", "Q2 edited", "A2'"]
    assert [(m.version, m.versions) for m in store.messages(chat)][2] == (2, 2)

    back = store.show_version(edited.id, -1)
    assert back.id == q2.id and (back.version, back.versions) == (1, 2)
    assert _contents(store, chat) == ["Q1", "A1", "Q2", "A2", "Q3"]  # the whole old branch, as it was
    assert store.show_version(q2.id, -1).id == q2.id  # at the first version it stays
    assert store.show_version(q2.id, 1).id == edited.id
    assert _contents(store, chat) == ["Q1", "A1", "Q2 edited", "A2'"]
    page = store.message_page(chat, 2)
    assert [m.content for m in page.items] == ["Q2 edited", "A2'"] and page.more


def test_a_regenerated_answer_keeps_the_first_and_only_the_shown_branch_is_in_the_pages(store: HistoryStore) -> None:
    chat = store.create_conversation("C", {}).id
    store.add_message(chat, "user", "Q")
    first = store.add_message(chat, "assistant", "first")
    second = store.add_message(chat, "assistant", "second", version_of=first.id)
    third = store.add_message(chat, "assistant", "third", version_of=first.id)
    assert (third.version, third.versions) == (3, 3) and _contents(store, chat) == ["Q", "third"]
    assert store.show_version(third.id, -1).id == second.id
    assert _contents(store, chat) == ["Q", "second"]
    found = store.message_page_from(chat, first.id)  # a search found the first: its branch is shown
    assert [m.content for m in found.items] == ["first"] and found.more
    assert _contents(store, chat) == ["Q", "first"]


def test_deleting_a_version_takes_its_branch_shows_another_and_undo_brings_both_back(store: HistoryStore) -> None:
    chat = store.create_conversation("C", {}).id
    q = store.add_message(chat, "user", "Q")
    old = store.add_message(chat, "assistant", "old")
    store.add_message(chat, "user", "follow-up on old")
    new = store.add_message(chat, "assistant", "new", version_of=old.id)
    store.show_version(new.id, -1)
    assert _contents(store, chat) == ["Q", "old", "follow-up on old"]

    store.delete_message(old.id)
    assert _contents(store, chat) == ["Q", "new"]
    assert store.messages(chat)[1].versions == 1
    store.restore_message(old.id)
    assert _contents(store, chat) == ["Q", "old", "follow-up on old"]
    assert store.messages(chat)[1].versions == 2

    store.delete_message(old.id)
    store.purge_deleted()
    assert _contents(store, chat) == ["Q", "new"]
    assert store.add_message(chat, "user", "next").parent_id == new.id
    assert q.parent_id is None


def test_a_message_deleted_alone_stays_a_link_and_purging_it_joins_the_chain(store: HistoryStore) -> None:
    chat = store.create_conversation("C", {}).id
    store.add_message(chat, "user", "Q1")
    a1 = store.add_message(chat, "assistant", "A1")
    q2 = store.add_message(chat, "user", "Q2")
    store.delete_message(q2.id)
    a2 = store.add_message(chat, "assistant", "A2")
    assert _contents(store, chat) == ["Q1", "A1", "A2"] and store.messages(chat)[-1].versions == 1
    store.restore_message(q2.id)
    assert _contents(store, chat) == ["Q1", "A1", "Q2", "A2"]
    store.delete_message(q2.id)
    store.purge_deleted()
    assert store.get_message(a2.id).parent_id == a1.id
    assert _contents(store, chat) == ["Q1", "A1", "A2"]


def test_an_old_history_upgraded_keeps_each_conversation_as_one_branch(tmp_path: Path) -> None:
    import shutil
    import sqlite3
    from contextlib import closing

    path = tmp_path / "old.sqlite3"
    shutil.copyfile(Path(__file__).parents[2] / "data" / "history-0013.sqlite3", path)
    with closing(sqlite3.connect(path)) as db:
        db.execute("INSERT INTO conversations (id, title, created_at, updated_at, system_prompt, settings) "
                   "VALUES (1, 'Old', '2026-01-01 00:00:00', '2026-01-01 00:00:00', '', '{}')")
        for i, role in enumerate(["user", "assistant", "user"], 1):
            db.execute("INSERT INTO messages (id, conversation_id, role, content, created_at, context_dropped) "
                       "VALUES (?, 1, ?, ?, '2026-01-01 00:00:00', 0)", (i * 10, role, f"m{i}"))
        db.commit()
    store = HistoryStore(open_database(path))
    shown = store.messages(1)
    assert [(m.content, m.parent_id, m.versions) for m in shown] == [("m1", None, 1), ("m2", 10, 1), ("m3", 20, 1)]


def test_folders_hold_conversations_start_new_ones_with_their_defaults_and_filter_the_search(
        store: HistoryStore) -> None:
    work = store.create_folder("  Work  stuff ", system_prompt="Answer formally.", model_id=3, model_name="Qwen")
    assert work.name == "Work stuff" and store.find_folder("work STUFF") == work
    with pytest.raises(HistoryError, match="already a folder called"):
        store.create_folder("WORK STUFF")
    with pytest.raises(HistoryError, match="needs a name"):
        store.create_folder("   ")
    inside = store.create_conversation("Report", {"system_prompt": "", "temperature": 0.2}, folder_id=work.id)
    assert inside.folder_id == work.id and inside.system_prompt == "Answer formally."
    assert (inside.model_id, inside.model_name, inside.settings["temperature"]) == (3, "Qwen", 0.2)
    outside = store.create_conversation("Holiday report", {})
    store.add_message(inside.id, "user", "quarterly report draft")
    store.add_message(outside.id, "user", "holiday report ideas")

    assert [c.id for c in store.conversation_page(10, folder_id=work.id).items] == [inside.id]
    everything = SearchQuery("report", folder_id=None)
    assert {h.item for h in store.search(everything)} == {inside.id, outside.id}
    assert {h.item for h in store.search(SearchQuery("report", folder_id=work.id))} == {inside.id}

    store.move_conversation(outside.id, work.id)
    assert len(store.conversation_page(10, folder_id=work.id).items) == 2
    store.move_conversation(outside.id, None)
    store.update_folder(work.id, name="Office", clear_model=True)
    assert [(f.name, f.model_name) for f in store.folders()] == [("Office", None)]

    store.delete_folder(work.id)
    assert store.folders() == [] and store.get_conversation(inside.id).folder_id == work.id
    store.create_folder("office")  # the name taken meanwhile: Undo brings the folder back beside it
    store.restore_folder(work.id)
    assert [f.name for f in store.folders()] == ["office", "Office (2)"]
    store.delete_folder(work.id)
    store.purge_deleted(older_than=timedelta(0))
    assert store.get_conversation(inside.id).folder_id is None  # the chat stays, in no folder
    with pytest.raises(HistoryError):
        store.move_conversation(inside.id, work.id)


def test_pinned_conversations_come_first_on_the_first_page_only(store: HistoryStore) -> None:
    ids = [store.create_conversation(f"C{i}", {}).id for i in range(5)]
    store.pin_conversation(ids[0], True)
    first = store.conversation_page(2)
    assert [c.id for c in first.items] == [ids[0], ids[4], ids[3]] and first.more and first.items[0].pinned
    rest = store.conversation_page(2, after=first.items[-1])
    assert [c.id for c in rest.items] == [ids[2], ids[1]] and not rest.more
    store.pin_conversation(ids[0], False)
    assert [c.id for c in store.conversation_page(10).items] == ids[::-1]


def test_a_version_whose_answer_never_started_is_discarded_and_the_old_one_shown(store: HistoryStore) -> None:
    chat = store.create_conversation("C", {}).id
    question = store.add_message(chat, "user", "Q")
    store.add_message(chat, "assistant", "A")
    edited = store.add_message(chat, "user", "Q edited", version_of=question.id)
    store.add_message(chat, "assistant", "", finish_reason="error", error="no model")
    store.discard_version(edited.id, instead=question.id)
    assert _contents(store, chat) == ["Q", "A"] and store.messages(chat)[0].versions == 1
