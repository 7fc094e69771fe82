"""Searching the history: what a person types, turned into an SQLite FTS5 query over the index that migration 0013
keeps in step with the history, and the matches as ``SearchHit``s, newest first, each kind apart.

What people type: words (each also finds the words it begins: "rail" finds "railway"), phrases in double quotes,
any letter case and accents ("cafe" finds "Café"). Text is never passed to FTS5 as its own syntax, so a stray
quote, ``*`` or ``AND`` in a query cannot make it fail.

Chinese, Japanese and Korean are written without spaces, which ``unicode61`` keeps as one token per run: a query
with such characters is looked for in the ``trigram`` index of the rows that hold them instead, where any run of
three characters or more is found wherever it is; one or two such characters are looked for as they are (``LIKE``
over those rows only).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, TableClause, column, func, literal_column, or_, select, table
from sqlalchemy.orm import Session

from app.history.models import Comparison, ComparisonEntry, Conversation, Message, TaskRun
from app.history.records import MARK_END, MARK_START, HitKind, SearchHit, SearchQuery

SNIPPET_TOKENS = 12
_CJK = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff\uac00-\ud7af]")
_TERM = re.compile(r'"([^"]*)"|(\S+)')


def fts_query(text: str) -> str | None:
    """``text`` as an FTS5 query: every word (as a prefix) and quoted phrase must match; None when nothing is left
    to look for."""
    parts = []
    for phrase, word in _TERM.findall(text):
        if phrase.strip():
            parts.append('"' + phrase.strip().replace('"', '""') + '"')
        elif word:
            cleaned = word.strip('"')
            if cleaned:
                parts.append('"' + cleaned.replace('"', '""') + '"*')
    return " AND ".join(parts) or None


def _cjk_terms(text: str) -> tuple[str | None, list[str]]:
    """For the trigram index: a MATCH of the terms of three characters or more, and the shorter ones for LIKE."""
    long_terms: list[str] = []
    short_terms: list[str] = []
    for phrase, word in _TERM.findall(text):
        term = (phrase or word).strip('"').strip()
        if not term:
            continue
        (long_terms if len(term) >= 3 else short_terms).append(term)
    match = " AND ".join('"' + t.replace('"', '""') + '"' for t in long_terms) or None
    return match, short_terms


COLUMNS = {HitKind.CONVERSATION: ("title",), HitKind.MESSAGE: ("content",), HitKind.TASK: ("input_name", "output"),
           HitKind.COMPARISON: ("title", "input_text"), HitKind.ENTRY: ("output",)}  # indexed, as migration 0013 has
TABLES = {HitKind.CONVERSATION: "conversations", HitKind.MESSAGE: "messages", HitKind.TASK: "task_runs",
          HitKind.COMPARISON: "comparisons", HitKind.ENTRY: "comparison_entries"}


FOLDERED = (HitKind.CONVERSATION, HitKind.MESSAGE)  # what a folder holds


def search(session: Session, query: SearchQuery) -> list[SearchHit]:
    """The matches of ``query``, newest first within each kind, at most ``query.limit`` of each; what is deleted
    (or waiting for its Undo) is left out."""
    cjk = bool(_CJK.search(query.text))
    match, shorts = _cjk_terms(query.text) if cjk else (fts_query(query.text), [])
    if match is None and not shorts:
        return []
    hits: list[SearchHit] = []
    for kind in HitKind:
        if kind not in query.kinds or (query.folder_id is not None and kind not in FOLDERED):
            continue
        name = f"search_cjk_{TABLES[kind]}" if cjk else f"search_{TABLES[kind]}"
        index = table(name, column("rowid"), *(column(text) for text in COLUMNS[kind]))
        source_id: ColumnElement[Any] = literal_column(f"{name}.rowid")
        where: list[ColumnElement[bool]] = []
        found: ColumnElement[Any] = literal_column(name)
        if match is not None:
            where.append(found.op("MATCH")(match))
            snippet: ColumnElement[Any] = func.snippet(found, -1, MARK_START, MARK_END, "…", SNIPPET_TOKENS)
        else:
            snippet = func.substr(index.c[COLUMNS[kind][-1]], 1, 160)
        where += [or_(*(index.c[text].contains(term, autoescape=True) for text in COLUMNS[kind])) for term in shorts]
        statement = _for_kind(kind, index, source_id, snippet, query).where(*where) \
            .order_by(literal_column(f"{index.name}.rowid").desc()).limit(query.limit)
        for item, part, title, text, at, model in session.execute(statement):
            hits.append(SearchHit(kind, item, part, title, text if match else _marked(text, shorts), at, model))
    return hits


def _marked(text: str, terms: Sequence[str]) -> str:
    for term in terms:
        text = text.replace(term, f"{MARK_START}{term}{MARK_END}")
    return text


def _for_kind(kind: HitKind, index: TableClause, source_id: ColumnElement[Any], snippet: ColumnElement[Any],
              query: SearchQuery) -> Any:
    """The rows of one kind that the index matched, with what a hit shows (``Select`` rows of SearchHit's fields)."""
    if kind is HitKind.MESSAGE:
        statement = select(Message.conversation_id, Message.id, Conversation.title, snippet, Message.created_at,
                           Message.model_name).select_from(index) \
            .join(Message, Message.id == source_id).join(Conversation, Conversation.id == Message.conversation_id) \
            .where(Message.deleted_at.is_(None), Conversation.deleted_at.is_(None))
        return _in_folder(_filtered(statement, Message.created_at, Message.model_name, query), query)
    if kind is HitKind.CONVERSATION:
        statement = select(Conversation.id, literal_column("NULL"), Conversation.title, snippet,
                           Conversation.updated_at, Conversation.model_name).select_from(index) \
            .join(Conversation, Conversation.id == source_id).where(Conversation.deleted_at.is_(None))
        return _in_folder(_filtered(statement, Conversation.updated_at, Conversation.model_name, query), query)
    if kind is HitKind.TASK:
        statement = select(TaskRun.id, literal_column("NULL"), TaskRun.input_name, snippet, TaskRun.created_at,
                           TaskRun.model_name).select_from(index) \
            .join(TaskRun, TaskRun.id == source_id).where(TaskRun.deleted_at.is_(None))
        return _filtered(statement, TaskRun.created_at, TaskRun.model_name, query)
    if kind is HitKind.COMPARISON:
        statement = select(Comparison.id, literal_column("NULL"), Comparison.title, snippet, Comparison.created_at,
                           literal_column("NULL")).select_from(index) \
            .join(Comparison, Comparison.id == source_id).where(Comparison.deleted_at.is_(None))
        if query.model:
            statement = statement.where(Comparison.id.in_(
                select(ComparisonEntry.comparison_id).where(ComparisonEntry.model_name == query.model)))
        return _filtered(statement, Comparison.created_at, None, query)
    statement = select(ComparisonEntry.comparison_id, ComparisonEntry.id, Comparison.title, snippet,
                       Comparison.created_at, ComparisonEntry.model_name).select_from(index) \
        .join(ComparisonEntry, ComparisonEntry.id == source_id) \
        .join(Comparison, Comparison.id == ComparisonEntry.comparison_id).where(Comparison.deleted_at.is_(None))
    return _filtered(statement, Comparison.created_at, ComparisonEntry.model_name, query)


def _filtered(statement: Any, at: Any, model: Any, query: SearchQuery) -> Any:
    if query.since is not None:
        statement = statement.where(at >= query.since)
    if query.until is not None:
        statement = statement.where(at < query.until)
    if query.model and model is not None:
        statement = statement.where(model == query.model)
    return statement


def _in_folder(statement: Any, query: SearchQuery) -> Any:
    return statement if query.folder_id is None else statement.where(Conversation.folder_id == query.folder_id)
