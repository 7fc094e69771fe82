"""The history package against real SQLite files: schema, upgrades, backups and every store operation."""

from __future__ import annotations

import dataclasses
import shutil
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import closing
from datetime import UTC, timedelta
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.exc import IntegrityError

from app.errors import HistoryError
from app.history import Database, HistoryStore, TaskRunRecord, open_database
from app.history import database as database_module
from app.history.backups import BackupKind, check, keep_up
from app.history.backups import backups as list_backups
from app.history.database import head_revision, in_orm
from app.history.models import Base, TaskRun
from app.settings import GenerationSettings

from tests.helpers import DATA


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "history.sqlite3"


@pytest.fixture
def db(db_path: Path) -> Iterator[Database]:
    database = open_database(db_path)
    yield database
    database.close()


@pytest.fixture
def store(db: Database) -> HistoryStore:
    return HistoryStore(db)


def sql(path: Path, query: str) -> list[tuple[object, ...]]:
    with closing(sqlite3.connect(path)) as conn:
        return conn.execute(query).fetchall()


def backups(path: Path) -> list[Path]:
    """The copies kept before upgrades, among the backups beside the database (``app.history.backups``)."""
    found = [b.path for b in list_backups(path.parent / "backups") if b.kind is BackupKind.BEFORE_UPGRADE]
    assert all(check(copy) == "" for copy in found), "a backup is kept only once it passes the integrity check"
    return found


def add_model(store: HistoryStore, name: str, path: str) -> int:
    return store.add_model(
        name=name, path=path, in_place=True, file_size=123, architecture="llama", facts={"n": 1}
    ).id


SHA = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"


def start_run(store: HistoryStore, task: str = "summarize", *, name: str = "report.pdf",
              text: str | None = "The text.") -> int:
    return store.start_task_run(
        task, parameters={"length": "short"}, input_name=name, input_kind="pdf", input_bytes=1234,
        input_sha256=SHA, input_text=text, model_name="Tiny", model_path="/models/tiny.gguf",
    )


# opening and migrating


def test_fresh_database_is_migrated_to_head_without_a_backup(db: Database, db_path: Path) -> None:
    tables = {row[0] for row in sql(db_path, "SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"conversations", "messages", "models", "alembic_version"} <= tables
    assert sql(db_path, "SELECT version_num FROM alembic_version") == [(head_revision(),)]
    assert backups(db_path) == []


def test_connections_use_wal_foreign_keys_and_normal_sync(db: Database) -> None:
    with db.engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar_one() == "wal"
        assert conn.execute(text("PRAGMA foreign_keys")).scalar_one() == 1
        assert conn.execute(text("PRAGMA synchronous")).scalar_one() == 1  # NORMAL
        assert conn.execute(text("PRAGMA busy_timeout")).scalar_one() > 0


def test_orm_models_match_the_migrations(db: Database) -> None:
    with db.engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn, opts={"include_name": in_orm}), Base.metadata) == []


def test_check_constraints_match_the_migrations(db: Database) -> None:
    """Autogenerate's comparison skips CHECK constraints, so compare their names and text here."""
    from_models = create_engine("sqlite://")
    try:
        Base.metadata.create_all(from_models)
        migrated, declared = inspect(db.engine), inspect(from_models)
        for table in Base.metadata.sorted_tables:
            checks = [
                sorted((c["name"], c["sqltext"]) for c in side.get_check_constraints(table.name))
                for side in (migrated, declared)
            ]
            assert checks[0] == checks[1], table.name
    finally:
        from_models.dispose()


def test_data_survives_closing_and_reopening(db_path: Path) -> None:
    first = open_database(db_path)
    store = HistoryStore(first)
    conversation = store.create_conversation("Kept", GenerationSettings().to_dict())
    store.add_message(conversation.id, "user", "hello")
    first.close()

    second = open_database(db_path)
    try:
        again = HistoryStore(second)
        assert [c.title for c in again.list_conversations()] == ["Kept"]
        assert [m.content for m in again.messages(conversation.id)] == ["hello"]
        assert backups(db_path) == []
    finally:
        second.close()


def test_unversioned_database_is_backed_up_then_upgraded(db_path: Path) -> None:
    db_path.parent.mkdir(parents=True)
    with closing(sqlite3.connect(db_path)) as conn:
        conn.execute("CREATE TABLE notes (body TEXT)")
        conn.execute("INSERT INTO notes VALUES ('old')")
        conn.commit()

    open_database(db_path).close()

    [backup] = backups(db_path)
    assert backup.name.startswith("history-before-upgrade-")
    assert sql(backup, "SELECT body FROM notes") == [("old",)]
    assert "alembic_version" not in {r[0] for r in sql(backup, "SELECT name FROM sqlite_master")}
    assert sql(db_path, "SELECT version_num FROM alembic_version") == [(head_revision(),)]


def test_older_revision_is_backed_up_and_batch_upgrade_keeps_messages(
    db_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = open_database(db_path)
    store = HistoryStore(db)
    conversation = store.create_conversation("Before", {})
    store.add_message(conversation.id, "user", "still here")
    db.close()

    # A second revision that rebuilds the parent table: with foreign keys on, SQLite would cascade the
    # table drop into messages, so this proves migrations run with them off.
    head = head_revision()
    migrations = tmp_path / "migrations"
    shutil.copytree(database_module.MIGRATIONS_DIR, migrations, ignore=shutil.ignore_patterns("__pycache__"))
    (migrations / "versions" / "9999_test.py").write_text(
        f'import sqlalchemy as sa\nfrom alembic import op\n\nrevision = "9999"\ndown_revision = "{head}"\n\n\n'
        "def upgrade():\n"
        '    with op.batch_alter_table("conversations", recreate="always") as batch:\n'
        '        batch.add_column(sa.Column("pinned", sa.Boolean(), nullable=True))\n'
    )
    monkeypatch.setattr(database_module, "MIGRATIONS_DIR", migrations)

    open_database(db_path).close()

    [backup] = backups(db_path)
    assert backup.name.startswith("history-before-upgrade-")
    assert sql(backup, "SELECT version_num FROM alembic_version") == [(head,)]
    assert sql(db_path, "SELECT version_num FROM alembic_version") == [("9999",)]
    assert sql(db_path, "SELECT title, pinned FROM conversations") == [("Before", None)]
    assert sql(db_path, "SELECT content FROM messages") == [("still here",)]
    assert sql(db_path, "PRAGMA foreign_key_list(messages)")[0][6] == "CASCADE"


def test_failed_upgrade_raises_and_names_the_backup(db_path: Path) -> None:
    db_path.parent.mkdir(parents=True)
    with closing(sqlite3.connect(db_path)) as conn:
        conn.execute("CREATE TABLE conversations (id INTEGER PRIMARY KEY)")

    with pytest.raises(HistoryError) as error:
        open_database(db_path)

    [backup] = backups(db_path)
    assert str(backup) in str(error.value)
    assert "alembic_version" not in {r[0] for r in sql(db_path, "SELECT name FROM sqlite_master")}


def test_newer_revision_is_refused_and_left_alone(db_path: Path) -> None:
    open_database(db_path).close()
    with closing(sqlite3.connect(db_path)) as conn:
        conn.execute("UPDATE alembic_version SET version_num = '9999_from_the_future'")
        conn.commit()

    with pytest.raises(HistoryError, match="newer version of Hearth"):
        open_database(db_path)
    assert backups(db_path) == []
    assert sql(db_path, "SELECT version_num FROM alembic_version") == [("9999_from_the_future",)]


def test_a_file_that_is_not_a_database_is_refused(db_path: Path) -> None:
    db_path.parent.mkdir(parents=True)
    db_path.write_bytes(b"this is a text file, not SQLite\n" * 200)

    with pytest.raises(HistoryError, match="not a database"):
        open_database(db_path)


def test_an_empty_file_is_treated_as_new(db_path: Path) -> None:
    db_path.parent.mkdir(parents=True)
    db_path.touch()
    open_database(db_path).close()
    assert backups(db_path) == []
    assert sql(db_path, "SELECT version_num FROM alembic_version") == [(head_revision(),)]


@pytest.mark.parametrize("shipped", sorted(DATA.glob("history-*.sqlite3")), ids=lambda p: p.name)
def test_every_shipped_schema_opens_and_works(shipped: Path, tmp_path: Path) -> None:
    copy = tmp_path / shipped.name
    shutil.copyfile(shipped, copy)
    db = open_database(copy)
    try:
        store = HistoryStore(db)
        conversation = store.create_conversation("Upgraded", GenerationSettings().to_dict())
        store.add_message(conversation.id, "user", "works")
        add_model(store, "M", "/m.gguf")
        run = start_run(store)
        store.finish_task_run(run, status="done", output="Short.", result={}, metrics={})
        assert [m.content for m in store.messages(conversation.id)] == ["works"]
        assert [r.output for r in store.task_runs()] == ["Short."]
        assert sql(copy, "SELECT version_num FROM alembic_version") == [(head_revision(),)]
    finally:
        db.close()


def test_an_old_history_is_backed_up_among_the_backups_before_it_is_upgraded_and_kept(tmp_path: Path) -> None:
    from app.paths import Paths

    paths = Paths.under(tmp_path / "home").ensure()
    shutil.copyfile(DATA / "history-0005.sqlite3", paths.database)
    open_database(paths.database, paths.backups_dir).close()
    [made] = list_backups(paths.backups_dir)
    assert made.kind is BackupKind.BEFORE_UPGRADE and made.path.parent == paths.backups_dir
    assert check(made.path) == ""
    assert sql(made.path, "SELECT version_num FROM alembic_version") == [("0005",)]
    assert sql(paths.database, "SELECT version_num FROM alembic_version") == [(head_revision(),)]
    start = made.made_at
    for day in range(1, 40):  # weeks of daily and weekly copies, each kept to its number
        keep_up(paths.database, paths.backups_dir, start + timedelta(days=day))
    assert made.path in [b.path for b in list_backups(paths.backups_dir)]


def test_a_schema_database_is_checked_in_for_the_head_revision() -> None:
    assert (DATA / f"history-{head_revision()}.sqlite3").is_file()


# conversations


def test_create_conversation_copies_settings_and_system_prompt(store: HistoryStore) -> None:
    settings = GenerationSettings(system_prompt="Be brief.").to_dict()
    record = store.create_conversation("Chat", settings, model_id=7, model_name="Tiny")

    assert record.system_prompt == "Be brief."
    assert record.settings == settings
    assert (record.model_id, record.model_name) == (7, "Tiny")
    assert record.created_at.tzinfo is UTC
    assert store.get_conversation(record.id) == record
    with pytest.raises(dataclasses.FrozenInstanceError):
        record.title = "x"  # type: ignore[misc]


def test_conversations_are_listed_newest_first(store: HistoryStore) -> None:
    a, b, c = (store.create_conversation(t, {}).id for t in "abc")
    assert [r.id for r in store.list_conversations()] == [c, b, a]

    store.touch_conversation(a)
    assert [r.id for r in store.list_conversations()] == [a, c, b]

    store.add_message(b, "user", "hi")
    assert [r.id for r in store.list_conversations()] == [b, a, c]


def test_rename_and_update_conversation(store: HistoryStore) -> None:
    conversation = store.create_conversation("Old", {"system_prompt": "one"})
    store.rename_conversation(conversation.id, "New")
    store.update_conversation(conversation.id, settings={"system_prompt": "two", "temperature": 0.1})
    store.update_conversation(conversation.id, model_id=3, model_name="Other")

    updated = store.get_conversation(conversation.id)
    assert updated.title == "New"
    assert updated.system_prompt == "two"
    assert updated.settings == {"system_prompt": "two", "temperature": 0.1}
    assert (updated.model_id, updated.model_name) == (3, "Other")


def test_missing_conversation_raises_history_error(store: HistoryStore) -> None:
    with pytest.raises(HistoryError):
        store.get_conversation(404)
    with pytest.raises(HistoryError):
        store.add_message(404, "user", "hi")


def test_soft_delete_restore_and_purge_with_cascade(store: HistoryStore, db_path: Path) -> None:
    keep = store.create_conversation("Keep", {})
    gone = store.create_conversation("Gone", {})
    store.add_message(keep.id, "user", "k")
    store.add_message(gone.id, "user", "g1")
    store.add_message(gone.id, "assistant", "g2", finish_reason="stop")

    store.delete_conversation(gone.id)
    assert [c.id for c in store.list_conversations()] == [keep.id]
    store.restore_conversation(gone.id)
    assert {c.id for c in store.list_conversations()} == {keep.id, gone.id}

    store.delete_conversation(gone.id)
    assert store.purge_deleted(older_than=timedelta(hours=1)) == 0
    assert store.purge_deleted() == 1
    assert [c.id for c in store.list_conversations()] == [keep.id]
    assert sql(db_path, "SELECT content FROM messages") == [("k",)]
    with pytest.raises(HistoryError):
        store.restore_conversation(gone.id)


# messages


def test_messages_are_oldest_first_with_defaults(store: HistoryStore) -> None:
    conversation = store.create_conversation("C", {})
    first = store.add_message(conversation.id, "user", "question")
    second = store.add_message(conversation.id, "assistant", "", model_name="Tiny")

    assert store.messages(conversation.id) == [first, second]
    assert second.finish_reason is None
    assert second.context_dropped == 0
    assert second.model_name == "Tiny"


def test_one_message_is_deleted_softly_restored_in_its_place_and_purged(store: HistoryStore, db_path: Path) -> None:
    conversation = store.create_conversation("C", {})
    question = store.add_message(conversation.id, "user", "question")
    answer = store.add_message(conversation.id, "assistant", "answer", finish_reason="stop")
    follow_up = store.add_message(conversation.id, "user", "follow-up")

    store.delete_message(answer.id)
    assert [m.id for m in store.messages(conversation.id)] == [question.id, follow_up.id]
    later = store.add_message(conversation.id, "assistant", "later", finish_reason="stop")
    store.restore_message(answer.id)
    assert [m.id for m in store.messages(conversation.id)] == [question.id, answer.id, follow_up.id, later.id]

    store.delete_message(question.id)
    assert store.purge_deleted(older_than=timedelta(hours=1)) == 0
    assert store.purge_deleted() == 1
    assert sql(db_path, "SELECT content FROM messages ORDER BY id") == [("answer",), ("follow-up",), ("later",)]
    with pytest.raises(HistoryError):
        store.restore_message(question.id)


def test_a_continued_answer_is_unfinished_again(store: HistoryStore) -> None:
    conversation = store.create_conversation("C", {})
    answer = store.add_message(conversation.id, "assistant", "Once", finish_reason="cancelled", error="x")
    reopened = store.reopen_message(answer.id)
    assert reopened.finish_reason is None and reopened.error is None and reopened.content == "Once"
    assert store.mark_unfinished_as_interrupted() == 1


def test_update_message_changes_only_given_fields(store: HistoryStore) -> None:
    conversation = store.create_conversation("C", {})
    message = store.add_message(conversation.id, "assistant", "Hel", model_name="Tiny")

    store.update_message(message.id, content="Hello")
    store.update_message(message.id, finish_reason="stop", completion_tokens=5, ttft_s=0.25)
    store.update_message(message.id, tokens_per_s=20.0, prompt_tokens=12, context_dropped=2)

    [updated] = store.messages(conversation.id)
    assert dataclasses.asdict(updated) == dataclasses.asdict(message) | {
        "content": "Hello",
        "finish_reason": "stop",
        "prompt_tokens": 12,
        "completion_tokens": 5,
        "ttft_s": 0.25,
        "tokens_per_s": 20.0,
        "context_dropped": 2,
    }
    store.update_message(message.id, finish_reason="error", error="The model stopped responding.")
    assert store.messages(conversation.id)[0].error == "The model stopped responding."
    with pytest.raises(HistoryError):
        store.update_message(10_000, content="x")


def test_mark_unfinished_as_interrupted(store: HistoryStore) -> None:
    conversation = store.create_conversation("C", {})
    user = store.add_message(conversation.id, "user", "q")
    done = store.add_message(conversation.id, "assistant", "a", finish_reason="stop")
    streaming = store.add_message(conversation.id, "assistant", "half")

    assert store.mark_unfinished_as_interrupted() == 1
    reasons = {m.id: m.finish_reason for m in store.messages(conversation.id)}
    assert reasons == {user.id: None, done.id: "stop", streaming.id: "interrupted"}
    assert store.mark_unfinished_as_interrupted() == 0


def test_unknown_role_or_finish_reason_is_a_bug(store: HistoryStore) -> None:
    conversation = store.create_conversation("C", {})
    with pytest.raises(ValueError):
        store.add_message(conversation.id, "robot", "x")
    with pytest.raises(ValueError):
        store.add_message(conversation.id, "assistant", "x", finish_reason="bored")


def test_concurrent_writers_all_persist(store: HistoryStore) -> None:
    conversations = [store.create_conversation(f"T{i}", {}).id for i in range(4)]
    start = threading.Barrier(len(conversations))
    failures: list[BaseException] = []

    def write(conversation_id: int) -> None:
        try:
            start.wait()
            for n in range(25):
                message = store.add_message(conversation_id, "assistant", "")
                store.update_message(message.id, content=f"reply {n}", finish_reason="stop")
                store.touch_conversation(conversations[0])
        except BaseException as exc:  # reported below, on the test's own thread
            failures.append(exc)

    threads = [threading.Thread(target=write, args=(cid,)) for cid in conversations]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert failures == []
    for conversation_id in conversations:
        messages = store.messages(conversation_id)
        assert [m.content for m in messages] == [f"reply {n}" for n in range(25)]
        assert {m.finish_reason for m in messages} == {"stop"}


# document-task runs


def test_a_task_run_starts_as_running_with_its_input(store: HistoryStore) -> None:
    run_id = start_run(store, "translate")
    record = store.get_task_run(run_id)

    assert isinstance(record, TaskRunRecord)
    assert (record.task, record.status, record.output, record.result, record.metrics) == (
        "translate", "running", "", {}, {}
    )
    assert (record.input_name, record.input_kind, record.input_bytes, record.input_sha256, record.input_text) == (
        "report.pdf", "pdf", 1234, SHA, "The text."
    )
    assert (record.model_name, record.model_path) == ("Tiny", "/models/tiny.gguf")
    assert record.parameters == {"length": "short"}
    assert record.created_at.tzinfo is UTC
    assert record.finished_at is None and record.error is None and record.deleted_at is None
    with pytest.raises(dataclasses.FrozenInstanceError):
        record.status = "done"  # type: ignore[misc]


def test_finish_task_run_keeps_structured_results_and_metrics(store: HistoryStore) -> None:
    run_id = start_run(store, "classify")
    result = {
        "rows": [{"text": "Grüße aus Köln", "labels": ["greeting"], "scores": {"greeting": 0.93}},
                 {"text": "日本語の文", "labels": [], "scores": {}}],
        "multi": True,
        "parts": [{"page": 3, "start": 0, "end": 120, "summary": None}],
    }
    metrics = {"prompt_tokens": 812, "completion_tokens": 40, "total_s": 3.25, "tokens_per_s": 12.5,
               "peak_rss_bytes": 2**33, "chunks": 2, "levels": 1}

    store.finish_task_run(run_id, status="done", output="greeting\n-", result=result, metrics=metrics)

    record = store.get_task_run(run_id)
    assert (record.status, record.output, record.result, record.metrics, record.error) == (
        "done", "greeting\n-", result, metrics, None
    )
    assert record.finished_at is not None and record.finished_at.tzinfo is UTC
    assert record.finished_at >= record.created_at


def test_a_failed_run_keeps_its_error_and_partial_output(store: HistoryStore) -> None:
    run_id = start_run(store)
    store.finish_task_run(run_id, status="failed", output="Half a sum", result={"parts": []},
                          metrics={"total_s": 1.0}, error="The model stopped responding.")
    record = store.get_task_run(run_id)
    assert (record.status, record.output, record.error) == ("failed", "Half a sum", "The model stopped responding.")


def test_document_text_is_not_kept_when_it_is_not_saved(store: HistoryStore, db_path: Path) -> None:
    run_id = start_run(store, name="Pasted text", text=None)
    record = store.get_task_run(run_id)
    assert record.input_text is None
    assert (record.input_name, record.input_sha256, record.input_bytes) == ("Pasted text", SHA, 1234)
    assert sql(db_path, "SELECT input_text FROM task_runs") == [(None,)]


def test_task_runs_are_listed_newest_first_by_task_and_limit(store: HistoryStore) -> None:
    first = start_run(store, "summarize")
    second = start_run(store, "translate")
    third = start_run(store, "summarize")

    assert [r.id for r in store.task_runs()] == [third, second, first]
    assert [r.id for r in store.task_runs(task="summarize")] == [third, first]
    assert [r.id for r in store.task_runs(task="classify")] == []
    assert [r.id for r in store.task_runs(limit=2)] == [third, second]
    with pytest.raises(ValueError):
        store.task_runs(task="poem")


def test_task_run_soft_delete_restore_and_purge(store: HistoryStore) -> None:
    keep = start_run(store)
    gone = start_run(store)
    conversation = store.create_conversation("Gone too", {})

    store.delete_task_run(gone)
    assert [r.id for r in store.task_runs()] == [keep]
    assert store.get_task_run(gone).deleted_at is not None  # still there for Undo
    store.restore_task_run(gone)
    assert [r.id for r in store.task_runs()] == [gone, keep]

    store.delete_task_run(gone)
    store.delete_conversation(conversation.id)
    assert store.purge_deleted(older_than=timedelta(hours=1)) == 0
    assert store.purge_deleted() == 2
    assert [r.id for r in store.task_runs()] == [keep]
    with pytest.raises(HistoryError):
        store.get_task_run(gone)
    with pytest.raises(HistoryError):
        store.restore_task_run(gone)
    with pytest.raises(HistoryError):
        store.delete_task_run(gone)


def test_mark_unfinished_task_runs_as_interrupted(store: HistoryStore) -> None:
    done = start_run(store)
    store.finish_task_run(done, status="done", output="ok", result={}, metrics={})
    cancelled = start_run(store)
    store.finish_task_run(cancelled, status="cancelled", output="", result={}, metrics={})
    running = start_run(store)

    assert store.mark_unfinished_task_runs_as_interrupted() == 1
    statuses = {r.id: r.status for r in store.task_runs()}
    assert statuses == {done: "done", cancelled: "cancelled", running: "interrupted"}
    assert store.get_task_run(running).finished_at is None  # when it really stopped is not known
    assert store.mark_unfinished_task_runs_as_interrupted() == 0


def test_unknown_task_or_status_is_a_bug(store: HistoryStore) -> None:
    with pytest.raises(ValueError):
        start_run(store, "poem")
    run_id = start_run(store)
    for status in ("running", "bored"):
        with pytest.raises(ValueError):
            store.finish_task_run(run_id, status=status, output="", result={}, metrics={})
    with pytest.raises(HistoryError):
        store.finish_task_run(404, status="done", output="", result={}, metrics={})
    assert store.get_task_run(run_id).status == "running"


def test_the_database_itself_rejects_a_bad_task_or_status(db: Database, store: HistoryStore) -> None:
    """The CHECK constraints hold even for writes that skip the store's own checks."""
    with pytest.raises(IntegrityError, match="ck_task_runs_task"), db.session() as session:
        session.add(TaskRun(task="poem", status="running", input_name="x", input_kind="txt", input_bytes=0,
                            input_sha256=SHA))
    run_id = start_run(store)
    with pytest.raises(IntegrityError, match="ck_task_runs_status"), db.session() as session:
        session.execute(text("UPDATE task_runs SET status = 'bored' WHERE id = :id"), {"id": run_id})
    assert store.get_task_run(run_id).status == "running"


def test_removing_a_model_leaves_its_task_runs_alone(store: HistoryStore) -> None:
    model_id = add_model(store, "Tiny", "/models/tiny.gguf")
    run_id = start_run(store)
    store.remove_model(model_id)
    record = store.get_task_run(run_id)
    assert (record.model_name, record.model_path) == ("Tiny", "/models/tiny.gguf")


# model library


def test_model_library_add_list_find_and_remove(store: HistoryStore) -> None:
    zeta = add_model(store, "Zeta", "/models/zeta.gguf")
    record = store.add_model(
        name="Alpha",
        path=Path("/models/alpha.gguf"),
        in_place=False,
        file_size=4_000_000_000,
        architecture="qwen2",
        parameter_count=1_500_000_000,
        quantization="Q4_K_M",
        context_length=32768,
        has_chat_template=True,
        facts={"general.name": "Alpha"},
    )

    assert [m.name for m in store.list_models()] == ["Alpha", "Zeta"]
    assert store.get_model(record.id) == record
    assert store.find_model_by_path("/models/alpha.gguf") == record
    assert record.added_at.tzinfo is UTC
    assert store.get_model(9999) is None
    assert store.find_model_by_path("/nowhere.gguf") is None

    store.remove_model(zeta)
    assert [m.name for m in store.list_models()] == ["Alpha"]
    with pytest.raises(HistoryError):
        store.remove_model(zeta)


def test_a_renamed_model_keeps_its_name_and_its_history_follows(db: Database, db_path: Path) -> None:
    store = HistoryStore(db)
    tiny = add_model(store, "Tiny", "/models/tiny.gguf")
    other = add_model(store, "Tiny", "/models/other.gguf")  # another quantization, once named alike
    chat = store.create_conversation("Chat", {}, model_id=tiny, model_name="Tiny")
    store.add_message(chat.id, "assistant", "Hi", model_name="Tiny")
    elsewhere = store.create_conversation("Other", {}, model_id=other, model_name="Tiny")
    store.add_message(elsewhere.id, "assistant", "Hello", model_name="Tiny")
    run = start_run(store)
    comparison = store.start_comparison("chat", title="T", settings={}, input_name="", input_kind="prompt",
                                        input_text="Hi", machine={},
                                        models=[("Tiny", "/models/tiny.gguf", 1), ("Tiny", "/models/other.gguf", 1)])

    renamed = store.rename_model(tiny, "My tiny model")
    assert (renamed.name, renamed.default_name, renamed.given_name) == ("My tiny model", "Tiny", "My tiny model")
    db.close()
    reopened = open_database(db_path)  # as after a restart
    try:
        store = HistoryStore(reopened)
        assert [m.name for m in store.list_models()] == ["My tiny model", "Tiny"]
        assert store.get_conversation(chat.id).model_name == "My tiny model"
        assert [m.model_name for m in store.messages(chat.id)] == ["My tiny model"]
        assert [m.model_name for m in store.messages(elsewhere.id)] == ["Tiny"]
        assert store.get_task_run(run).model_name == "My tiny model"
        entries = store.get_comparison(comparison.id).entries
        assert sorted(e.model_name for e in entries) == ["My tiny model", "Tiny"]

        store.set_default_model_names({tiny: "Tiny · Q4_0", other: "Tiny · Q8_0"})
        assert [m.name for m in store.list_models()] == ["My tiny model", "Tiny · Q8_0"]  # the person's name stays
        assert store.get_conversation(elsewhere.id).model_name == "Tiny · Q8_0"
        back = store.rename_model(tiny, None)
        assert back.name == "Tiny · Q4_0" and store.get_task_run(run).model_name == "Tiny · Q4_0"
    finally:
        reopened.close()


def test_adding_the_same_path_twice_says_it_is_already_there(store: HistoryStore) -> None:
    add_model(store, "Tiny", "/models/tiny.gguf")
    with pytest.raises(HistoryError, match="already in the library"):
        add_model(store, "Tiny again", "/models/tiny.gguf")
    assert len(store.list_models()) == 1


def test_load_records_keep_estimate_and_measurement(db: Database) -> None:
    store = HistoryStore(db)
    first = store.add_load_record("/m/a.gguf", plan={"context_length": 2048}, estimate={"ram_bytes": 100},
                                  measured={"peak_rss_bytes": 110})
    store.add_load_record("/m/b.gguf", plan={}, estimate={}, measured={})
    store.set_load_speed(first, 20.0)
    store.set_load_speed(first, 15.0)  # a slower answer later does not lower the record
    [record] = store.load_records("/m/a.gguf")
    assert record.estimate == {"ram_bytes": 100} and record.measured == {"peak_rss_bytes": 110}
    assert record.tokens_per_s == 20.0 and record.plan == {"context_length": 2048}
    assert [r.model_path for r in store.load_records()] == ["/m/b.gguf", "/m/a.gguf"]


def test_statuses_and_finish_reasons_come_back_as_enums(store: HistoryStore) -> None:
    from app.outcomes import FinishReason, RunStatus

    run_id = start_run(store)
    assert store.get_task_run(run_id).status is RunStatus.RUNNING
    store.mark_unfinished_task_runs_as_interrupted()
    assert store.get_task_run(run_id).status is RunStatus.INTERRUPTED
    conversation = store.create_conversation("Chat", GenerationSettings().to_dict())
    message = store.add_message(conversation.id, "assistant", "Hi")
    store.update_message(message.id, finish_reason=FinishReason.LENGTH)
    (saved,) = store.messages(conversation.id)
    assert saved.finish_reason is FinishReason.LENGTH


def test_an_answer_stopped_as_degenerate_is_kept_also_in_an_upgraded_database(tmp_path: Path) -> None:
    """The answer the engine stopped because it looped ends ``degenerate``; a database from before keeps its
    messages and its other constraints when the new value is allowed."""
    from app.outcomes import FinishReason

    copy = tmp_path / "history.sqlite3"
    shutil.copyfile(DATA / "history-0005.sqlite3", copy)
    with closing(sqlite3.connect(copy)) as conn:
        conn.execute("INSERT INTO conversations (id, title, created_at, updated_at, system_prompt, settings) "
                     "VALUES (1, 'Old', '2026-01-01 00:00:00', '2026-01-01 00:00:00', '', '{}')")
        conn.execute("INSERT INTO messages (conversation_id, role, content, created_at, finish_reason) "
                     "VALUES (1, 'assistant', 'Section 30 …', '2026-01-01 00:00:00', 'stop')")
        conn.commit()
    db = open_database(copy)
    try:
        store = HistoryStore(db)
        (message,) = store.messages(1)
        store.update_message(message.id, finish_reason=FinishReason.DEGENERATE)
        assert store.messages(1)[0].finish_reason is FinishReason.DEGENERATE
        with pytest.raises(IntegrityError), db.engine.begin() as conn:  # the role's check is still there
            conn.execute(text("UPDATE messages SET role = 'robot'"))
    finally:
        db.close()
