"""Qt item models for the Tasks page (recent runs, classification results), and the words it shows for a
run: what it read, how, and how long it took."""

from __future__ import annotations

from typing import Any, TypeAlias

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtGui import QColor

from app.forecast.task_time import duration_words
from app.history import TaskRunRecord
from app.outcomes import RunStatus
from app.tasks.result_words import run_options, run_title, went_wrong
from app.tasks.spec import (
    LENGTH_WORDS,
    ClassifiedText,
    Classify,
    Plan,
    TaskInput,
    TaskResult,
    Translate,
)
from app.words import plural
from ui.qt import theme
from ui.qt.qt_models import RecordListModel

Index: TypeAlias = QModelIndex | QPersistentModelIndex

STATUS_WORDS = {RunStatus.RUNNING: "running", RunStatus.DONE: "done", RunStatus.CANCELLED: "stopped",
                RunStatus.FAILED: "failed", RunStatus.INTERRUPTED: "interrupted"}


def verb_of(task: str) -> str:
    """"Summarizing": what a task does while it runs."""
    return {"summarize": "Summarizing", "translate": "Translating", "classify": "Labelling"}[task]


def options_words(task: TaskInput) -> str:
    """A task's settings in words, as ``run_options`` says them for a saved run."""
    kind = task.kind
    if isinstance(kind, Classify):
        return ("Several labels each: " if kind.multi else "One label each: ") + ", ".join(
            label.name for label in kind.labels)
    if isinstance(kind, Translate):
        return f"{kind.source} to {kind.target}" if kind.source else f"into {kind.target}"
    return LENGTH_WORDS.get(kind.length, kind.length) + (f" · focus: {kind.focus}" if kind.focus else "")


def plan_words(whole: str, plan: Plan, model: str, task: str, seconds: tuple[float, float] | None,
               busy: float = 0.0) -> str:
    """"38 pages · 21,400 tokens · Qwen2.5 3B reads it in 9 parts · about 3–6 minutes". How many model calls that
    makes is for the technical reader (``hearth summarize --json``), not this line."""
    if task == "classify":
        how = f"{model} labels them one by one"
    elif task == "translate":
        how = f"{model} translates it in one pass" if plan.one_pass else \
            f"{model} translates it in {plural(plan.chunks, 'part')}"
    else:
        how = f"{model} reads it in one pass" if plan.one_pass else \
            f"{model} reads it in {plural(plan.chunks, 'part')}"
    pieces = [whole, f"{plan.document_tokens:,} tokens", how]
    if seconds is not None:
        pieces.append(duration_words(seconds, busy))
    return " · ".join(pieces)


def status_notice(record: TaskRunRecord, result: TaskResult | None) -> tuple[str, str]:
    """The line above a run that did not simply finish: (text, kind)."""
    if record.status == RunStatus.CANCELLED:
        if record.task == "classify":
            return f"Stopped after {plural(len(result.rows) if result else 0, 'text')}.", "info"
        done = len(result.parts) if result else 0
        return (f"Stopped after {done} of {plural(result.chunks, 'part')}." if result and result.chunks > 1
                else "Stopped before the end."), "info"
    if record.status == RunStatus.FAILED:
        return f"The task failed: {record.error or 'the model stopped with an error.'}", "error"
    if record.status == RunStatus.INTERRUPTED:
        kept = " What was done before is shown." if result and (result.parts or result.rows) else \
            " Nothing was kept."
        return f"Interrupted: {record.error or 'Hearth stopped before the task finished.'}{kept}", "error"
    if record.status == RunStatus.RUNNING:
        return "This task is still running.", "info"
    if result is None:
        return "", "info"
    return " ".join(words for words in (went_wrong(result), result.note) if words), "info"


def status_words(record: TaskRunRecord) -> str:
    """"done", "stopped", …; a finished run the model went wrong in says so ("incomplete", or "no summary")."""
    result = record.result
    if record.status == RunStatus.DONE and result:
        if result.get("degeneration") or (record.task == "summarize" and not str(result.get("text", "")).strip()):
            return "no summary" if record.task == "summarize" else "went wrong"
        if any(part.get("degeneration") for part in result.get("parts", ())):
            return "incomplete"
    return STATUS_WORDS.get(record.status, record.status)


class TaskRunListModel(RecordListModel[TaskRunRecord]):
    """Recent task runs, newest first."""

    def item_data(self, item: TaskRunRecord, role: int) -> Any:
        if role == Qt.ItemDataRole.DisplayRole:
            when = item.created_at.astimezone()
            return f"{run_title(item)}\n{when:%d %b, %H:%M} · {status_words(item)}"
        if role == Qt.ItemDataRole.ToolTipRole:
            lines = [run_title(item), run_options(item), f"Model: {item.model_name or 'unknown'}",
                     f"Started {item.created_at.astimezone():%d %b %Y, %H:%M}",
                     f"Status: {status_words(item)}"]
            if item.error:
                lines.append(item.error)
            return "\n".join(lines)
        if role == Qt.ItemDataRole.ForegroundRole and (color := theme.status_color(item.status)) is not None:
            return QColor(color)
        return None


class ClassifiedModel(QAbstractTableModel):
    """Classification results, filled row by row as the model labels them."""

    HEADERS = ("Text", "Label", "Confidence")

    def __init__(self) -> None:
        super().__init__()
        self._rows: list[ClassifiedText] = []
        self.multi = False

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.HEADERS)

    def headerData(self, section: int, orientation: Qt.Orientation,
                   role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if role == Qt.ItemDataRole.DisplayRole and orientation == Qt.Orientation.Horizontal:
            return ("Text", "Labels" if self.multi else "Label", "Confidence")[section]
        return None

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self._rows):
            return None
        row = self._rows[index.row()]
        column = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            if column == 0:
                return " ".join(row.input.split())
            if column == 1:
                return ", ".join(row.labels) or "(none)"
            return ", ".join(f"{row.confidence.get(label, 0.0):.0%}" for label in row.labels) or "–"
        if role == Qt.ItemDataRole.ToolTipRole:
            ranked = sorted(row.confidence.items(), key=lambda item: -item[1])
            lines = [f"{name}: {value:.1%}" for name, value in ranked]
            if row.truncated:
                lines.append("The text was too long for the model and was cut.")
            return (row.input[:600] + "\n\n" if column == 0 else "") + "\n".join(lines)
        if role == Qt.ItemDataRole.ForegroundRole and column == 1 and not row.labels:
            return QColor(theme.colors().ink_soft)
        return None

    def set_rows(self, rows: list[ClassifiedText] | tuple[ClassifiedText, ...], multi: bool) -> None:
        self.beginResetModel()
        self._rows = list(rows)
        self.multi = multi
        self.endResetModel()

    def add_row(self, row: ClassifiedText) -> None:
        self.beginInsertRows(QModelIndex(), len(self._rows), len(self._rows))
        self._rows.append(row)
        self.endInsertRows()

    def rows(self) -> list[ClassifiedText]:
        return list(self._rows)
