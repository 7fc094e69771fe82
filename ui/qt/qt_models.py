"""Qt item models over the core's plain records: the conversation list and the model library."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Generic, TypeAlias, TypeVar

from PySide6.QtCore import QAbstractListModel, QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtGui import QColor

from app.gguf.kind import BASE_MODEL_WARNING
from app.history import ComparisonRecord, ConversationRecord, ModelRecord, TaskRunRecord
from app.words import format_bytes, format_count
from ui.qt import theme

if TYPE_CHECKING:
    from app.forecast.estimate import Verdict
    from app.forecast.model_check import Assessment

Index: TypeAlias = QModelIndex | QPersistentModelIndex


def verdict_label(verdict: Verdict) -> str:
    """The verdict short enough for a table cell ("Tight", not "Tight: close other apps first")."""
    return verdict.value.split(":")[0]
RecordRole = Qt.ItemDataRole.UserRole + 1


RecordT = TypeVar("RecordT", ConversationRecord, TaskRunRecord, ComparisonRecord)


class RecordListModel(QAbstractListModel, Generic[RecordT]):
    """A list of history records with an ``id``; subclasses say how one row looks in ``item_data``."""

    def __init__(self) -> None:
        super().__init__()
        self._items: list[RecordT] = []

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._items)

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self._items):
            return None
        item = self._items[index.row()]
        if role == RecordRole:
            return item
        return self.item_data(item, role)

    def item_data(self, item: RecordT, role: int) -> Any:
        raise NotImplementedError

    def set_items(self, items: list[RecordT]) -> None:
        self.beginResetModel()
        self._items = list(items)
        self.endResetModel()

    def row_of(self, record_id: int) -> int:
        return next((i for i, r in enumerate(self._items) if r.id == record_id), -1)

    def record(self, row: int) -> RecordT | None:
        return self._items[row] if 0 <= row < len(self._items) else None

    def remove(self, record_id: int) -> None:
        row = self.row_of(record_id)
        if row >= 0:
            self.beginRemoveRows(QModelIndex(), row, row)
            del self._items[row]
            self.endRemoveRows()


class ConversationListModel(RecordListModel[ConversationRecord]):
    def item_data(self, item: ConversationRecord, role: int) -> Any:
        if role == Qt.ItemDataRole.DisplayRole:
            return item.title or "New chat"
        if role == Qt.ItemDataRole.ToolTipRole:
            model = f"\n{item.model_name}" if item.model_name else ""
            return f"{item.title}\nLast used {item.updated_at.astimezone():%d %b %Y, %H:%M}{model}"
        return None


class LibraryModel(QAbstractTableModel):
    """The library as a table narrow enough for the smallest window: what tells models apart at a glance. The rest
    of their facts (architecture, trained context, chat format, where the file is) is in the page's details."""

    HEADERS = ("Name", "On this computer", "Parameters", "Size")

    def __init__(self) -> None:
        super().__init__()
        self._items: list[ModelRecord] = []
        self._assessments: dict[int, Assessment | str] = {}  # model id -> forecast, or why there is none

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._items)

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.HEADERS)

    def headerData(self, section: int, orientation: Qt.Orientation,
                   role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if role == Qt.ItemDataRole.DisplayRole and orientation == Qt.Orientation.Horizontal:
            return self.HEADERS[section]
        return None

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self._items):
            return None
        item = self._items[index.row()]
        if role == RecordRole:
            return item
        assessment = self._assessments.get(item.id)
        if index.column() == 1:
            return self._verdict_data(assessment, role)
        if role == Qt.ItemDataRole.ToolTipRole:
            return "\n".join([item.name, item.path, *([BASE_MODEL_WARNING] if item.is_base_model else [])])
        if role != Qt.ItemDataRole.DisplayRole:
            return None
        return (item.name, "", format_count(item.parameter_count), format_bytes(item.file_size))[index.column()]

    def _verdict_data(self, assessment: Assessment | str | None, role: int) -> Any:
        if assessment is None:
            return "Checking…" if role == Qt.ItemDataRole.DisplayRole else None
        if isinstance(assessment, str):
            if role == Qt.ItemDataRole.DisplayRole:
                return "Cannot read"
            if role == Qt.ItemDataRole.ToolTipRole:
                return assessment
            return QColor(theme.colors().bad) if role == Qt.ItemDataRole.ForegroundRole else None
        result = assessment.forecast
        if role == Qt.ItemDataRole.DisplayRole:
            return f"{verdict_label(result.verdict)} · {format_bytes(result.memory.ram_bytes)}"
        if role == Qt.ItemDataRole.ToolTipRole:
            return result.reason
        if role == Qt.ItemDataRole.ForegroundRole:
            return QColor(theme.verdict_color(result.verdict.name))
        return None

    def set_items(self, items: list[ModelRecord]) -> None:
        self.beginResetModel()
        self._items = list(items)
        self.endResetModel()

    def set_assessments(self, assessments: dict[int, Assessment | str]) -> None:
        self._assessments = dict(assessments)
        if self._items:
            self.dataChanged.emit(self.index(0, 1), self.index(len(self._items) - 1, 1))

    def assessment(self, model_id: int) -> Assessment | str | None:
        return self._assessments.get(model_id)

    def items(self) -> list[ModelRecord]:
        return list(self._items)

    def row_of(self, model_id: int) -> int:
        return next((i for i, r in enumerate(self._items) if r.id == model_id), -1)

    def record(self, row: int) -> ModelRecord | None:
        return self._items[row] if 0 <= row < len(self._items) else None
