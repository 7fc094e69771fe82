"""Qt item models over the core's plain records: the conversation list and the model library."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QAbstractListModel, QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt

from app.history import ConversationRecord, ModelRecord
from app.units import format_bytes, format_count

Index = QModelIndex | QPersistentModelIndex
RecordRole = Qt.ItemDataRole.UserRole + 1


class ConversationListModel(QAbstractListModel):
    def __init__(self) -> None:
        super().__init__()
        self._items: list[ConversationRecord] = []

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._items)

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self._items):
            return None
        item = self._items[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            return item.title or "New chat"
        if role == Qt.ItemDataRole.ToolTipRole:
            model = f"\n{item.model_name}" if item.model_name else ""
            return f"{item.title}\nLast used {item.updated_at.astimezone():%d %b %Y, %H:%M}{model}"
        if role == RecordRole:
            return item
        return None

    def set_items(self, items: list[ConversationRecord]) -> None:
        self.beginResetModel()
        self._items = list(items)
        self.endResetModel()

    def row_of(self, conversation_id: int) -> int:
        return next((i for i, c in enumerate(self._items) if c.id == conversation_id), -1)

    def record(self, row: int) -> ConversationRecord | None:
        return self._items[row] if 0 <= row < len(self._items) else None

    def remove(self, conversation_id: int) -> None:
        row = self.row_of(conversation_id)
        if row >= 0:
            self.beginRemoveRows(QModelIndex(), row, row)
            del self._items[row]
            self.endRemoveRows()


class LibraryModel(QAbstractTableModel):
    HEADERS = ("Name", "Architecture", "Parameters", "Quantization", "Size", "Trained context",
               "Chat template", "Location")

    def __init__(self) -> None:
        super().__init__()
        self._items: list[ModelRecord] = []

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
        if role == Qt.ItemDataRole.ToolTipRole:
            return item.path
        if role != Qt.ItemDataRole.DisplayRole:
            return None
        return (
            item.name,
            item.architecture,
            format_count(item.parameter_count),
            item.quantization or "–",
            format_bytes(item.file_size),
            f"{item.context_length:,} tokens" if item.context_length else "–",
            "Yes" if item.has_chat_template else "No (uses ChatML)",
            "Where it was" if item.in_place else "Hearth's models folder",
        )[index.column()]

    def set_items(self, items: list[ModelRecord]) -> None:
        self.beginResetModel()
        self._items = list(items)
        self.endResetModel()

    def items(self) -> list[ModelRecord]:
        return list(self._items)

    def record(self, row: int) -> ModelRecord | None:
        return self._items[row] if 0 <= row < len(self._items) else None
