"""Conversation history, document-task runs, comparisons and the model library, kept in one SQLite file.

Qt-free on purpose: the CLI, the tests and the UI's worker threads all use the same store.

The records are plain data and imported at once; the store and the database (SQLAlchemy, Alembic) only when first
asked for, so that code which merely shows records (the window's first paint) does not pay for them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from app.history.records import (
    ComparisonRecord,
    ConversationRecord,
    EntryRecord,
    FolderRecord,
    LeaderRow,
    LoadRecordData,
    MessageRecord,
    ModelRecord,
    Page,
    TaskRunRecord,
)

if TYPE_CHECKING:
    from app.history.database import Database, open_database
    from app.history.store import HistoryStore

_LAZY = {"Database": "app.history.database", "open_database": "app.history.database",
         "HistoryStore": "app.history.store"}

__all__ = [
    "ComparisonRecord",
    "ConversationRecord",
    "Database",
    "EntryRecord",
    "FolderRecord",
    "HistoryStore",
    "LeaderRow",
    "LoadRecordData",
    "MessageRecord",
    "ModelRecord",
    "Page",
    "TaskRunRecord",
    "open_database",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
