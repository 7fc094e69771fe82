"""Hearth's history file: exported and imported back exactly, and a bad or hostile file refused in a sentence with
nothing imported and the history as it was."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from app.errors import HistoryError
from app.history import HistoryStore, open_database
from app.history.exchange import FORMAT, MAX_BYTES


@pytest.fixture
def store(tmp_path: Path) -> HistoryStore:
    return HistoryStore(open_database(tmp_path / "history.sqlite3"))


def _filled(store: HistoryStore) -> None:
    travel = store.create_folder("Travel", system_prompt="Answer as a guide.", model_name="Qwen")
    chat = store.create_conversation("Trip to Paris", {"system_prompt": "Be brief.", "temperature": 0.3},
                                     model_name="Qwen", folder_id=travel.id)
    store.pin_conversation(chat.id, True)
    question = store.add_message(chat.id, "user", "Où est le café?")
    first = store.add_message(chat.id, "assistant", "Near the station.", model_name="Qwen", finish_reason="stop",
                              prompt_tokens=12, completion_tokens=5, ttft_s=0.25, tokens_per_s=31.5)
    store.add_message(chat.id, "assistant", "By the river.", model_name="Qwen", finish_reason="stop",
                      version_of=first.id)
    store.show_version(first.id, 0)  # the first answer shown again, the second kept beside it
    gone = store.add_message(chat.id, "user", "deleted, with its Undo on offer")
    store.delete_message(gone.id)
    assert question.parent_id is None
    store.create_conversation("Empty", {})
    run = store.start_task_run("summarize", parameters={"length": "short"}, input_name="lease.pdf", input_kind="pdf",
                               input_bytes=10, input_sha256="ab", input_text="The text", model_name="Gemma",
                               model_path=None)
    store.finish_task_run(run, status="done", output="A summary.", result={"text": "A summary."},
                          metrics={"total_s": 1.5})


def _without_ids(document: dict[str, Any]) -> dict[str, Any]:
    """The document as records compare: ids are where they were exported, and the export's own time; the links
    within it (a message's parent, a conversation's folder) as places and names."""
    folders = {f["id"]: f["name"] for f in document.get("folders", [])}
    for conversation in document["conversations"]:
        conversation["folder_id"] = folders.get(conversation["folder_id"])
        places = {m["id"]: i for i, m in enumerate(conversation["messages"])}
        for message in conversation["messages"]:
            message["parent_id"] = places.get(message["parent_id"])

    def strip(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if k not in ("id", "exported_at")}
        if isinstance(value, list):
            return [strip(v) for v in value]
        return value

    return strip(document)  # type: ignore[no-any-return]


def test_export_then_import_into_an_empty_history_gives_the_same_records(store: HistoryStore,
                                                                         tmp_path: Path) -> None:
    _filled(store)
    exported = store.export()
    assert exported["format"] == FORMAT and exported["version"] == 2
    assert [len(c["messages"]) for c in exported["conversations"]] == [3, 0]  # the deleted message stays out
    assert [m["off_branch"] for m in exported["conversations"][0]["messages"]] == [False, False, True]
    path = tmp_path / "history.json"
    path.write_text(json.dumps(exported), encoding="utf-8")
    other = HistoryStore(open_database(tmp_path / "other.sqlite3"))
    imported = other.import_file(path)
    assert imported.sentence() == "Imported 2 conversations (3 messages), 1 task run and 0 comparisons."
    again = other.export()
    assert _without_ids(again) == _without_ids(exported)
    trip = next(c for c in other.list_conversations() if c.title == "Trip to Paris")
    shown = other.messages(trip.id)
    assert [m.content for m in shown] == ["Où est le café?", "Near the station."]
    assert (shown[1].tokens_per_s, shown[1].version, shown[1].versions) == (31.5, 1, 2)
    assert trip.pinned and [(f.id, f.system_prompt) for f in other.folders()] == [(trip.folder_id,
                                                                                  "Answer as a guide.")]


def test_a_version_1_file_reads_as_one_branch_and_a_folder_of_the_same_name_is_shared(
        store: HistoryStore, tmp_path: Path) -> None:
    _filled(store)
    old = store.export()
    old["version"] = 1
    del old["folders"]
    for conversation in old["conversations"]:
        del conversation["folder_id"], conversation["pinned_at"]
        for message in conversation["messages"]:
            del message["parent_id"], message["off_branch"]
    path = tmp_path / "old.json"
    path.write_text(json.dumps(old), encoding="utf-8")
    store.import_file(path)
    imported = max((c for c in store.list_conversations() if c.title == "Trip to Paris"), key=lambda c: c.id)
    assert imported.folder_id is None
    assert [m.content for m in store.messages(imported.id)] == ["Où est le café?", "Near the station.", "By the river."]
    document = store.export()
    path.write_text(json.dumps(document), encoding="utf-8")
    store.import_file(path)
    assert [f.name for f in store.folders()] == ["Travel"]


@pytest.mark.parametrize(("change", "said"), [
    (lambda d: d.update(format="chatgpt"), "This is not a Hearth history file"),
    (lambda d: d.update(version=99), "this Hearth reads versions 1 and 2"),
    (lambda d: d["conversations"][0]["messages"][0].update(parent_id=12345), "follows a message that is not before"),
    (lambda d: d["conversations"][0].update(folder_id=999), "in a folder the file does not have"),
    (lambda d: d["conversations"][0]["messages"][1].update(id=[1]), "has no id"),
    (lambda d: d["conversations"][0].update(title=7), "“title” of conversations item 1 is not text"),
    (lambda d: d["conversations"][0]["messages"][0].update(role="hacker"), "breaks a rule of the history"),
    (lambda d: d["conversations"][0]["messages"][0].pop("content"), "has no “content”"),
    (lambda d: d["conversations"][0].update(created_at="yesterday"), "is not a time with its offset"),
    (lambda d: d["conversations"][0].update(sql="DROP TABLE messages"), "fields a history record does not have: sql"),
    (lambda d: d["conversations"][1].update(id=d["conversations"][0]["id"]), "have the id"),
    (lambda d: d.update(task_runs={"not": "a list"}), "“task_runs” in the file is not a list"),
])
def test_a_bad_file_is_refused_whole_and_the_history_is_untouched(store: HistoryStore, tmp_path: Path,
                                                                    change: Any, said: str) -> None:
    _filled(store)
    document = store.export()
    change(document)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    before = store.export()
    with pytest.raises(HistoryError, match=said) as refused:
        store.import_file(path)
    assert str(refused.value).endswith("Nothing was imported.")
    assert _without_ids(store.export()) == _without_ids(before)


def test_a_huge_deep_or_broken_file_is_refused_before_it_is_read(store: HistoryStore, tmp_path: Path) -> None:
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 200_000 + "]" * 200_000)
    with pytest.raises(HistoryError, match=r"nested too deeply|not a JSON file"):
        store.import_file(deep)
    huge = tmp_path / "huge.json"
    with huge.open("wb") as handle:  # sparse: a size without the bytes
        handle.truncate(MAX_BYTES + 1)
    with pytest.raises(HistoryError, match=r"more than a history file Hearth reads \(512 MB\)"):
        store.import_file(huge)
    broken = tmp_path / "broken.json"
    broken.write_text('{"format": "hearth-history", ')
    with pytest.raises(HistoryError, match="is not a JSON file Hearth can read"):
        store.import_file(broken)
    assert store.list_conversations() == []


def test_a_file_showing_two_versions_at_once_imports_with_one_branch_shown(store: HistoryStore,
                                                                          tmp_path: Path) -> None:
    _filled(store)
    document = store.export()
    for message in document["conversations"][0]["messages"]:
        message["off_branch"] = False  # hand-edited: both answers "shown"
    path = tmp_path / "edited.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    other = HistoryStore(open_database(tmp_path / "other.sqlite3"))
    other.import_file(path)
    trip = next(c for c in other.list_conversations() if c.title == "Trip to Paris")
    assert [m.content for m in other.messages(trip.id)] == ["Où est le café?", "By the river."]
