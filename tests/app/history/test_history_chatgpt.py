"""ChatGPT's data export imported into a real history: the whole tree of each conversation with the branch ChatGPT
showed still shown, tool and hidden nodes skipped, and hostile files ending in a sentence with nothing imported."""

from __future__ import annotations

import json
import os
import re
import sqlite3
import zipfile
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from app.errors import HistoryError
from app.history import HistoryStore, chatgpt, open_database

T0 = 1733390000.0


def node(key: str, parent: str | None, children: list[str], role: str | None = None, text: str = "", *,
         content_type: str = "text", parts: list[Any] | None = None, **message: Any) -> dict[str, Any]:
    body = None if role is None else {
        "id": key, "author": {"role": role, "name": None, "metadata": {}}, "create_time": T0 + len(key),
        "content": {"content_type": content_type, "parts": parts if parts is not None else [text]},
        "status": "finished_successfully", "recipient": "all", "metadata": {}, **message}
    return {"id": key, "message": body, "parent": parent, "children": children}


def conversation(title: Any, nodes: list[dict[str, Any]], current: str, **fields: Any) -> dict[str, Any]:
    return {"title": title, "create_time": T0, "update_time": T0 + 100, "mapping": {n["id"]: n for n in nodes},
            "current_node": current, "conversation_id": f"id-{title}", "id": f"id-{title}", **fields}


def bread() -> dict[str, Any]:
    """A question edited after its first answer (two branches, the second shown), a web search on the second
    (the assistant's call to the tool, the tool's output), the model's hidden thoughts, and a null-message root."""
    return conversation("Bread 🍞", [
        node("root", None, ["sys"]),
        node("sys", "root", ["u1", "u1b"], "system", ""),
        node("u1", "sys", ["a1"], "user", "How long does dough rise?"),
        node("a1", "u1", [], "assistant", "About two hours.", metadata={"model_slug": "gpt-4o"}),
        node("u1b", "sys", ["think"], "user", "How long does dough rise overnight? ¿Y en la nevera?"),
        node("think", "u1b", ["call"], "assistant", content_type="thoughts", parts=[{"summary": "…"}]),
        node("call", "think", ["tool"], "assistant", "search('dough overnight')", content_type="code",
             recipient="browser"),
        node("tool", "call", ["a2"], "tool", "Results: 12 to 16 hours in the fridge."),
        node("a2", "tool", [], "assistant", "Overnight, in the fridge: 12–16 hours. 🍞",
             metadata={"model_slug": "gpt-4o-mini"}),
    ], current="a2")


def export() -> list[dict[str, Any]]:
    return [
        bread(),
        conversation("日本語のチャット", [
            node("r", None, ["u"]),
            node("u", "r", ["ab"], "user", content_type="multimodal_text",
                 parts=[{"content_type": "image_asset_pointer", "asset_pointer": "file-service://x"}, "これは何？"]),
            node("ab", "u", [], "assistant", "パンです。", metadata={"model_slug": "gpt-4o"}),
        ], current="ab"),
        conversation("Only a hidden note", [
            node("r", None, ["h"]),
            node("h", "r", [], "user", "Call me Sam.", content_type="user_editable_context",
                 metadata={"is_visually_hidden_from_conversation": True}),
        ], current="h"),
    ]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[HistoryStore]:
    store = HistoryStore(open_database(tmp_path / "data" / "history.sqlite3"))
    kept = store.create_conversation("Already here", {})
    store.add_message(kept.id, "user", "An older chat")
    yield store
    store.close()


def write(path: Path, data: Any) -> Path:
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return path


def rows(path: Path, conversation_title: str) -> list[tuple[Any, ...]]:
    with closing(sqlite3.connect(path)) as db:
        return db.execute(
            "SELECT m.id, m.role, m.content, m.parent_id, m.off_branch, m.model_name, m.finish_reason FROM messages m "
            "JOIN conversations c ON c.id = m.conversation_id WHERE c.title = ? ORDER BY m.id",
            (conversation_title,)).fetchall()


def test_a_chatgpt_export_comes_over_with_its_branches(store: HistoryStore, tmp_path: Path) -> None:
    imported = store.import_file(write(tmp_path / "conversations.json", export()))
    assert imported.sentence() == ("Imported 2 conversations (6 messages) from ChatGPT. 1 conversation without a "
                                   "text message was left out.")
    assert {c.title for c in store.list_conversations()} == {"Already here", "Bread 🍞", "日本語のチャット"}

    database = tmp_path / "data" / "history.sqlite3"
    (u1, *_), (a1, *_), (u1b, *_), (a2, *_) = found = rows(database, "Bread 🍞")
    assert [row[1:] for row in found] == [
        ("user", "How long does dough rise?", None, 1, None, None),
        ("assistant", "About two hours.", u1, 1, "gpt-4o", "stop"),
        ("user", "How long does dough rise overnight? ¿Y en la nevera?", None, 0, None, None),
        ("assistant", "Overnight, in the fridge: 12–16 hours. 🍞", u1b, 0, "gpt-4o-mini", "stop"),
    ]  # the tool's call, its output and the thoughts skipped: the answer follows the question it answers
    bread_chat = next(c for c in store.list_conversations() if c.title == "Bread 🍞")
    assert [m.content for m in store.messages(bread_chat.id)] == [
        "How long does dough rise overnight? ¿Y en la nevera?", "Overnight, in the fridge: 12–16 hours. 🍞"]
    assert bread_chat.model_name == "gpt-4o-mini" and bread_chat.created_at.timestamp() == T0
    assert [row[2] for row in rows(database, "日本語のチャット")] == ["これは何？", "パンです。"]
    assert a1 < u1b < a2


def test_chatgpts_zip_is_read_and_hearth_history_import_finds_the_format(tmp_path: Path) -> None:
    from app.paths import Paths

    from tests.helpers.command import hearth

    home = tmp_path / "home"
    HistoryStore(open_database(Paths.under(home).ensure().database)).close()
    archive = tmp_path / "chatgpt-export.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zipped:
        zipped.writestr("chat.html", "<html></html>")
        zipped.writestr("conversations.json", json.dumps(export()))
    result = hearth(home, "history", "import", str(archive))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Imported 2 conversations (6 messages) from ChatGPT.")


def test_a_lone_surrogate_becomes_a_replacement_character(store: HistoryStore, tmp_path: Path) -> None:
    path = tmp_path / "conversations.json"
    text = json.dumps([conversation("Odd", [node("r", None, ["u"]), node("u", "r", [], "user", "half \ud800 pair")],
                                    current="u")])
    path.write_text(text, encoding="ascii")  # json.dumps wrote the surrogate as \ud800
    store.import_file(path)
    assert [row[2] for row in rows(tmp_path / "data" / "history.sqlite3", "Odd")] == ["half ? pair"]


def looped() -> list[Any]:
    return [conversation("Loop", [node("a", "b", ["b"], "user", "a"), node("b", "a", ["a"], "assistant", "b")],
                         current="a")]


def off_branch_loop() -> list[Any]:
    return [conversation("Loop", [node("r", None, ["u"]), node("u", "r", [], "user", "hi"),
                                  node("x", "y", [], "user", "x"), node("y", "x", [], "user", "y")], current="u")]


HOSTILE: dict[str, tuple[Any, str]] = {
    "an object, not a list": ({"conversations": []}, "not a Hearth history file"),  # read as Hearth's, refused there
    "not records": ([1, 2], "Conversation 1 of the export is not a record"),
    "no mapping": ([{"title": "x"}], "has no “mapping”"),
    "no current node": ([conversation("x", [node("r", None, [])], current="gone")], "“current_node”"),
    "a parent not in it": ([conversation("x", [node("u", "nowhere", [], "user", "hi")], current="u")],
                           "follows a message that is not in the export"),
    "a parent that is a list": ([conversation("x", [node("u", None, [], "user", "hi") | {"parent": []}],
                                              current="u")], "follows a message that is not in the export"),
    "a loop": (looped(), "follow each other in a circle"),
    "a loop off the branch": (off_branch_loop(), "follow each other in a circle"),
    "a time that is not one": ([conversation("x", [node("r", None, [])], current="r", create_time="yesterday")],
                               "is not a time"),
    "a time far away": ([conversation("x", [node("r", None, [])], current="r", update_time=1e300)], "is not a time"),
    "parts not a list": ([conversation("x", [node("u", None, [], "user", parts=None) | {"message": {
        "author": {"role": "user"}, "content": {"content_type": "text", "parts": "hi"}}}], current="u")],
        "are not a list"),
    "two conversations, one id": ([bread(), bread()], "Two conversations in the export have the id “id-Bread 🍞”"),
    "a good one, then a bad one": ([bread(), {"title": "bad", "mapping": []}], "has no “mapping”"),
    "a node's id not its key": ([conversation("x", [node("r", None, [])], current="r")
                                 | {"mapping": {"r": node("other", None, [])}}], "says its id is “other”"),
}


def titles(store: HistoryStore) -> list[str]:
    return [c.title for c in store.list_conversations()]


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_a_hostile_export_ends_in_a_sentence_and_imports_nothing(store: HistoryStore, tmp_path: Path,
                                                                   case: str) -> None:
    data, words = HOSTILE[case]
    with pytest.raises(HistoryError, match=words) as raised:
        store.import_file(write(tmp_path / "conversations.json", data))
    assert str(raised.value).endswith("Nothing was imported."), str(raised.value)
    assert titles(store) == ["Already here"]


def hostile_file(tmp_path: Path, case: str) -> Path:
    path = tmp_path / "conversations.json"
    if case == "a key twice":  # json would keep the second node silently
        one = json.dumps(node("n1", None, [], "user", "first"))
        path.write_text(f'[{{"title": "x", "current_node": "n1", "mapping": {{"n1": {one}, "n1": {one}}}}}]',
                        encoding="utf-8")
    elif case == "nested deeply":
        path.write_text("[" * 200_000 + "]" * 200_000, encoding="utf-8")
    elif case == "1 GB":
        with path.open("wb") as file:
            file.write(b"[")
            file.truncate(1024**3 + 1)  # sparse: the test does not write a gigabyte
    elif case == "not JSON":
        path.write_text('[{"title": "x", ', encoding="utf-8")
    elif case == "not UTF-8":
        path.write_bytes(b'[{"title": "\xff\xfe"}]')
    elif case == "a broken zip":
        path = tmp_path / "export.zip"
        path.write_bytes(b"PK\x03\x04" + os.urandom(200))
    elif case == "a zip without it":
        path = tmp_path / "export.zip"
        with zipfile.ZipFile(path, "w") as zipped:
            zipped.writestr("chat.html", "<html></html>")
    return path


HOSTILE_FILES = {"a key twice": "the key “n1” twice", "nested deeply": "nested too deeply",
                 "1 GB": "is 1.0 GB, more than Hearth reads", "not JSON": "is not a JSON file",
                 "not UTF-8": "is not a JSON file", "a broken zip": "is not a .zip file Hearth can open",
                 "a zip without it": "holds no “conversations.json”"}


@pytest.mark.parametrize("case", sorted(HOSTILE_FILES))
def test_a_hostile_export_file_ends_in_a_sentence_and_imports_nothing(store: HistoryStore, tmp_path: Path,
                                                                        case: str) -> None:
    with pytest.raises(HistoryError, match=HOSTILE_FILES[case]) as raised:
        store.import_file(hostile_file(tmp_path, case))
    assert str(raised.value).endswith("Nothing was imported."), str(raised.value)
    assert titles(store) == ["Already here"]


def test_a_zip_that_unpacks_to_more_than_the_limit_is_refused_unread(store: HistoryStore, tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(chatgpt, "MAX_BYTES", 10_000)
    path = tmp_path / "export.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zipped:
        zipped.writestr("conversations.json", "[" + " " * 50_000 + "]")  # small packed, large unpacked
    assert path.stat().st_size < 10_000
    with pytest.raises(HistoryError, match=re.escape("“conversations.json” in “export.zip” is 0.0 GB, more than")):
        store.import_file(path)
    assert titles(store) == ["Already here"]


def test_a_role_or_kind_of_content_that_is_not_a_word_is_left_out(store: HistoryStore, tmp_path: Path) -> None:
    odd = conversation("Odd", [node("r", None, ["u"]), node("u", "r", ["a"], "user", "hi") | {"message": {
        "author": {"role": ["user"]}, "content": {"content_type": "text", "parts": ["hi"]}}},
        node("a", "u", [], "assistant", "hello") | {"message": {
            "author": {"role": "assistant"}, "content": {"content_type": {"t": 1}, "parts": ["hello"]}}}],
        current="a")
    said = store.import_file(write(tmp_path / "conversations.json", [odd, bread()]))
    assert "Imported 1 conversation" in said.sentence()
    assert sorted(titles(store)) == ["Already here", "Bread 🍞"]
