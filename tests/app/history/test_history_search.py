"""Finding things in the history: the full-text index that migration 0013 keeps in step by triggers, and the
queries people type (prefixes, phrases, accents, Chinese / Japanese / Korean text, filters)."""

from __future__ import annotations

import shutil
import sqlite3
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from app.history import HistoryStore, open_database
from app.history.records import MARK_END, MARK_START, HitKind, SearchHit, SearchQuery
from app.history.search import fts_query

DATA = Path(__file__).resolve().parents[2] / "data"


@pytest.fixture
def store(tmp_path: Path) -> HistoryStore:
    return HistoryStore(open_database(tmp_path / "history.sqlite3"))


def _found(store: HistoryStore, text: str, **options: object) -> list[SearchHit]:
    return store.search(SearchQuery(text, **options))  # type: ignore[arg-type]


def test_words_prefixes_phrases_and_accents(store: HistoryStore) -> None:
    trip = store.create_conversation("Trip to Paris", {})
    store.add_message(trip.id, "user", "Où est le café près de la gare?")
    answer = store.add_message(trip.id, "assistant", "It is near the old railway station, by the river.",
                               model_name="Qwen")
    other = store.create_conversation("Recipes", {})
    store.add_message(other.id, "user", "How long do I bake bread?")

    hits = _found(store, "cafe")  # accents and case set aside
    assert [(h.kind, h.item, h.title) for h in hits] == [(HitKind.MESSAGE, trip.id, "Trip to Paris")]
    assert f"{MARK_START}café{MARK_END}" in hits[0].snippet
    (rail,) = _found(store, "rail")  # the start of a word finds it
    assert rail.part == answer.id and rail.model == "Qwen" and rail.at == answer.created_at
    assert [h.part for h in _found(store, '"old railway"')] == [answer.id]  # a phrase, as it is written
    assert _found(store, '"railway old"') == []
    assert _found(store, "railway bread") == []  # every word must be there
    assert [(h.kind, h.item) for h in _found(store, "paris")] == [(HitKind.CONVERSATION, trip.id)]
    for odd in ('"', "AND", "*", "NEAR(", "bread)", "-x"):  # FTS5's own syntax, typed as text: no error
        _found(store, odd)


def test_the_index_follows_edits_deletions_and_undo(store: HistoryStore, tmp_path: Path) -> None:
    chat = store.create_conversation("Notes", {})
    message = store.add_message(chat.id, "assistant", "The first draft")
    store.update_message(message.id, content="The final wording")  # an answer streams in like this
    assert _found(store, "draft") == [] and len(_found(store, "wording")) == 1
    store.delete_message(message.id)
    assert _found(store, "wording") == []  # deleted, with its Undo on offer
    store.restore_message(message.id)
    assert len(_found(store, "wording")) == 1
    store.delete_conversation(chat.id)
    assert _found(store, "wording") == []
    cjk = store.create_conversation("メモ", {})
    kept = store.add_message(cjk.id, "user", "東京の天気")
    store.update_message(kept.id, content="大阪の天気")  # from one CJK text to another, then to none
    store.update_message(kept.id, content="The weather")
    store.purge_deleted()
    assert _found(store, "東京") == _found(store, "大阪") == [] and len(_found(store, "weather")) == 1
    with closing(sqlite3.connect(tmp_path / "history.sqlite3")) as db:
        tables = [name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE sql LIKE "
                                                  "'CREATE VIRTUAL TABLE%'")]
        assert len(tables) == 10
        for name in tables:  # FTS5 compares the index with the rows it indexes: the triggers kept them in step
            whole = 0 if name.startswith("search_cjk_") else 1  # those index some rows only: checked within
            db.execute(f"INSERT INTO {name}({name}, rank) VALUES ('integrity-check', {whole})")


def test_a_match_deep_inside_a_long_message_shows_around_it(store: HistoryStore) -> None:
    chat = store.create_conversation("Long", {})
    filler = " ".join(f"word{i}" for i in range(5000))
    store.add_message(chat.id, "assistant", f"{filler} the lighthouse keeper {filler}")
    (hit,) = _found(store, "lighthouse")
    assert f"{MARK_START}lighthouse{MARK_END}" in hit.snippet and len(hit.snippet) < 300


def test_chinese_japanese_and_korean_are_found_inside_their_runs(store: HistoryStore) -> None:
    chat = store.create_conversation("旅行", {})
    store.add_message(chat.id, "user", "東京タワーに行きました。とても高かったです。")
    store.add_message(chat.id, "user", "서울에서 맛있는 음식을 먹었어요")
    assert len(_found(store, "東京タワー")) == 1  # inside a run of characters: trigrams
    assert len(_found(store, "とても高")) == 1
    assert len(_found(store, "음식을")) == 1
    (short,) = _found(store, "東京")  # two characters: looked for as they are
    assert f"{MARK_START}東京{MARK_END}" in short.snippet
    assert [h.kind for h in _found(store, "旅行")] == [HitKind.CONVERSATION]
    assert _found(store, "大阪") == []


def test_tasks_and_comparisons_are_found_and_filters_narrow(store: HistoryStore) -> None:
    run = store.start_task_run("summarize", parameters={}, input_name="lease.pdf", input_kind="pdf", input_bytes=10,
                               input_sha256="", input_text=None, model_name="Gemma", model_path=None)
    store.finish_task_run(run, status="done", output="The tenant pays the heating.", result={}, metrics={})
    old = store.create_conversation("Heating", {})
    store.add_message(old.id, "assistant", "Turn the heating down at night.", model_name="Qwen")
    assert {h.kind for h in _found(store, "heating")} == {HitKind.TASK, HitKind.MESSAGE, HitKind.CONVERSATION}
    assert [h.kind for h in _found(store, "heating", kinds=frozenset({HitKind.TASK}))] == [HitKind.TASK]
    assert [h.title for h in _found(store, "lease")] == ["lease.pdf"]
    assert {h.kind for h in _found(store, "heating", model="Qwen")} == {HitKind.MESSAGE}
    tomorrow = datetime.now(UTC) + timedelta(days=1)
    assert _found(store, "heating", since=tomorrow) == []
    assert len(_found(store, "heating", until=tomorrow)) == 3


def test_newest_first_and_a_limit_per_kind(store: HistoryStore) -> None:
    chat = store.create_conversation("Many", {})
    ids = [store.add_message(chat.id, "user", f"apple number {i}").id for i in range(30)]
    hits = _found(store, "apple", limit=10)
    assert [h.part for h in hits] == ids[::-1][:10]


def test_an_old_history_is_indexed_by_the_upgrade(tmp_path: Path) -> None:
    copy = tmp_path / "history.sqlite3"
    shutil.copyfile(DATA / "history-0012.sqlite3", copy)
    with closing(sqlite3.connect(copy)) as db:  # a conversation written by the schema before search
        db.execute("INSERT INTO conversations (id, title, created_at, updated_at, system_prompt, settings) "
                   "VALUES (1, 'Garden', '2026-01-01 10:00:00', '2026-01-01 10:00:00', '', '{}')")
        db.execute("INSERT INTO messages (id, conversation_id, role, content, created_at) "
                   "VALUES (1, 1, 'user', 'When do tulips flower?', '2026-01-01 10:00:00')")
        db.commit()
    store = HistoryStore(open_database(copy))
    assert [(h.kind, h.part) for h in _found(store, "tulip")] == [(HitKind.MESSAGE, 1)]


def test_what_is_typed_never_reaches_fts5_as_syntax() -> None:
    assert fts_query('rail "old station" x"y') == '"rail"* AND "old station" AND "x""y"*'
    assert fts_query("   ") is None and fts_query('""') is None


def test_hearth_history_search(tmp_path: Path) -> None:
    import json

    from app.paths import Paths

    from tests.helpers.command import hearth

    home = tmp_path / "home"
    store = HistoryStore(open_database(Paths.under(home).ensure().database))
    chat = store.create_conversation("Trip to Paris", {})
    store.add_message(chat.id, "assistant", "Take the train to the old railway station.", model_name="Qwen")
    printed = hearth(home, "history", "search", "rail")
    assert printed.returncode == 0, printed.stderr
    assert "Trip to Paris — conversation 1, message 1" in printed.stdout and "[railway]" in printed.stdout
    as_json = json.loads(hearth(home, "history", "search", "railway", "--json", "--kind", "message").stdout)
    assert [(m["kind"], m["id"], m["model"]) for m in as_json["matches"]] == [("message", chat.id, "Qwen")]
    nothing = hearth(home, "history", "search", "bread")
    assert nothing.stdout == "Nothing in the history matches “bread”.\n"
    bad = hearth(home, "history", "search", "x", "--since", "yesterday")
    assert bad.returncode == 2 and "is not a date like 2026-12-31" in bad.stderr


def test_hearth_history_export_and_import(tmp_path: Path) -> None:
    from app.paths import Paths

    from tests.helpers.command import hearth

    home, other = tmp_path / "home", tmp_path / "other"
    store = HistoryStore(open_database(Paths.under(home).ensure().database))
    chat = store.create_conversation("Trip to Paris", {}, model_name="Qwen")
    store.add_message(chat.id, "user", "Where is the station?")
    store.add_message(chat.id, "assistant", "**Near** the river.", model_name="Qwen")
    written = hearth(home, "history", "export", "-o", str(tmp_path / "all.json"))
    assert written.returncode == 0 and written.stdout.startswith("Wrote 1 conversation, 0 task runs and 0 comparisons")
    markdown = hearth(home, "history", "export", "--conversation", str(chat.id), "--format", "md",
                      "-o", str(tmp_path / "chat.md"))
    assert markdown.returncode == 0, markdown.stderr
    text = (tmp_path / "chat.md").read_text(encoding="utf-8")
    assert text.startswith("# Trip to Paris\n") and "## You\n\nWhere is the station?" in text
    assert "## Qwen\n\n**Near** the river." in text
    missing = hearth(home, "history", "export", "--conversation", "99", "-o", str(tmp_path / "x.json"))
    assert missing.returncode == 1 and missing.stderr == "hearth: No conversation with the id 99 (see `hearth " \
                                                         "history search`).\n"
    imported = hearth(other, "history", "import", str(tmp_path / "all.json"))
    assert imported.stdout == "Imported 1 conversation (2 messages), 0 task runs and 0 comparisons.\n"
    bad = tmp_path / "bad.json"
    bad.write_text('{"format": "something else"}', encoding="utf-8")
    refused = hearth(other, "history", "import", str(bad))
    assert refused.returncode == 1 and "Nothing was imported." in refused.stderr
