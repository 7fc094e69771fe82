"""Conversation history, document-task runs, comparisons and the model library, kept in one SQLite file.

Qt-free on purpose: the CLI, the tests and the UI's worker threads all use the same store.
"""

from app.history.database import Database, open_database
from app.history.records import (
    ComparisonRecord,
    ConversationRecord,
    EntryRecord,
    LeaderRow,
    LoadRecordData,
    MessageRecord,
    ModelRecord,
    TaskRunRecord,
)
from app.history.store import HistoryStore

__all__ = [
    "ComparisonRecord",
    "ConversationRecord",
    "Database",
    "EntryRecord",
    "HistoryStore",
    "LeaderRow",
    "LoadRecordData",
    "MessageRecord",
    "ModelRecord",
    "TaskRunRecord",
    "open_database",
]
