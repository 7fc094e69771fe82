"""Full-text search over the history (``app.history.search``): conversation titles and messages, task runs (the
input's name and the output), comparisons (the title and the input) and their models' outputs.

SQLite FTS5 tables, kept in step by triggers, so no code path that writes the history can forget them. Two tables
per kind, so that a search of one kind reads only that kind's matches, newest (highest rowid) first, and stops at
the number wanted: ``search_<table>`` with the ``unicode61`` tokenizer (letter case and accents removed, so "cafe"
finds "Café"), and ``search_cjk_<table>`` with the ``trigram`` tokenizer for the rows with Chinese, Japanese or
Korean text, which ``unicode61`` would keep as one long token per run of characters. Both are external-content
tables over the table they index (its ``id`` their rowid): the index holds no second copy of the text, and a
snippet is read from the row itself. The upgrade indexes the history there already.

A later migration that rebuilds one of the indexed tables (Alembic's batch mode on SQLite copies it and drops the
old one) drops its triggers with it, and must make them again.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-05
"""

from __future__ import annotations

from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

CJK = "'*[一-鿿぀-ヿ가-힯]*'"  # a GLOB for any Chinese, Japanese or Korean character

# the table indexed: its columns indexed
SOURCES = {
    "conversations": ("title",),
    "messages": ("content",),
    "task_runs": ("input_name", "output"),
    "comparisons": ("title", "input_text"),
    "comparison_entries": ("output",),
}


def _values(table: str, row: str) -> str:
    return ", ".join(f"{row}.{name}" for name in SOURCES[table])


def _has_cjk(table: str, row: str) -> str:
    return " OR ".join(f"{row}.{name} GLOB {CJK}" for name in SOURCES[table])


def _insert(table: str, row: str) -> str:
    names, values = ", ".join(SOURCES[table]), _values(table, row)
    return (f"INSERT INTO search_{table}(rowid, {names}) VALUES ({row}.id, {values});\n"
            f"INSERT INTO search_cjk_{table}(rowid, {names}) SELECT {row}.id, {values} "
            f"WHERE {_has_cjk(table, row)};\n")


def _delete(table: str, row: str) -> str:
    """External-content FTS5 forgets a row when told the values it indexed (and only a row it indexed)."""
    names, values = ", ".join(SOURCES[table]), _values(table, row)
    return (f"INSERT INTO search_{table}(search_{table}, rowid, {names}) VALUES ('delete', {row}.id, {values});\n"
            f"INSERT INTO search_cjk_{table}(search_cjk_{table}, rowid, {names}) "
            f"SELECT 'delete', {row}.id, {values} WHERE {_has_cjk(table, row)};\n")


def upgrade() -> None:
    for table, names in SOURCES.items():
        columns = ", ".join(names)
        op.execute(f"CREATE VIRTUAL TABLE search_{table} USING fts5({columns}, content = '{table}', "
                   "content_rowid = 'id', tokenize = 'unicode61 remove_diacritics 2', prefix = '2 3')")
        op.execute(f"CREATE VIRTUAL TABLE search_cjk_{table} USING fts5({columns}, content = '{table}', "
                   "content_rowid = 'id', tokenize = 'trigram')")
        op.execute(f"CREATE TRIGGER search_{table}_insert AFTER INSERT ON {table} BEGIN\n{_insert(table, 'new')}END")
        op.execute(f"CREATE TRIGGER search_{table}_update AFTER UPDATE OF {columns} ON {table} BEGIN\n"
                   f"{_delete(table, 'old')}{_insert(table, 'new')}END")
        op.execute(f"CREATE TRIGGER search_{table}_delete AFTER DELETE ON {table} BEGIN\n{_delete(table, 'old')}END")
        op.execute(f"INSERT INTO search_{table}(search_{table}) VALUES ('rebuild')")
        op.execute(f"INSERT INTO search_cjk_{table}(rowid, {columns}) SELECT r.id, {_values(table, 'r')} "
                   f"FROM {table} AS r WHERE {_has_cjk(table, 'r')}")


def downgrade() -> None:
    for table in SOURCES:
        for event in ("insert", "update", "delete"):
            op.execute(f"DROP TRIGGER search_{table}_{event}")
        op.execute(f"DROP TABLE search_{table}")
        op.execute(f"DROP TABLE search_cjk_{table}")
