"""Write tests/data/history-<revision>.sqlite3: an empty history database at one schema revision.

Run it once for every new migration (``python tests/data/make_schema_db.py``, from the repository root)
and check the file in; tests then prove that every schema Hearth ever shipped still opens and upgrades.
"""

from __future__ import annotations

import sqlite3
import sys
from contextlib import closing
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from alembic import command
from sqlalchemy import create_engine

from app.history.database import alembic_config, head_revision


def make(revision: str) -> Path:
    target = Path(__file__).resolve().parent / f"history-{revision}.sqlite3"
    target.unlink(missing_ok=True)
    engine = create_engine(f"sqlite:///{target}")
    try:
        with engine.begin() as conn:
            command.upgrade(alembic_config(conn), revision)
    finally:
        engine.dispose()
    # One self-contained file: no WAL beside it, no free pages.
    with closing(sqlite3.connect(target)) as conn:
        conn.execute("PRAGMA journal_mode=DELETE")
        conn.execute("VACUUM")
    return target


if __name__ == "__main__":
    print(make(sys.argv[1] if len(sys.argv) > 1 else head_revision()))
