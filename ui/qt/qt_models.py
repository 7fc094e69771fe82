"""Qt item models over the core's plain records: the conversation list and the model library."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Generic, TypeAlias, TypeVar

from PySide6.QtCore import (
    QAbstractListModel,
    QAbstractTableModel,
    QMimeData,
    QModelIndex,
    QPersistentModelIndex,
    QRectF,
    Qt,
    Signal,
)
from PySide6.QtGui import QColor, QIcon, QPainter, QPen, QPixmap

from app.gguf.kind import BASE_MODEL_WARNING
from app.history import ComparisonRecord, ConversationRecord, ModelRecord, Page, TaskRunRecord
from app.remote.listing import computer_of
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


def _recency(record: ConversationRecord) -> tuple[bool, datetime, int]:
    """The conversation list's order, as the history orders it: pinned ones first, then newest first."""
    return record.pinned, record.updated_at, record.id


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


class ChatMark(StrEnum):
    """What the conversation list shows beside a conversation's title."""

    ANSWERING = "Answering now"
    WAITING = "A message waits to be sent"
    PINNED = "Pinned"


class ConversationListModel(RecordListModel[ConversationRecord]):
    """Newest first, read a page at a time: when the list is scrolled to its end, Qt asks for more
    (``fetchMore``), the model asks for the page after its oldest row (``moreWanted``) and takes it
    (``add_page``). A conversation that changed is put in its place alone (``put``): reading the list again
    stalled the window seconds with 50,000 conversations.

    While the pointer is over the list, changed conversations stay where they are until ``settle_order``: one
    that is answered would move up under the pointer, and a click meant for one chat would open another."""

    moreWanted = Signal(object)  # ConversationRecord: the oldest row; the next page starts after it
    MIME = "application/x-hearth-conversations"  # dragged conversations' ids, "1,2" (ui.chat.folders_panel)

    def __init__(self) -> None:
        super().__init__()
        self.folder_id: int | None = None  # only the conversations of this folder are rows
        self._marks: dict[int, ChatMark] = {}
        self._icons: dict[ChatMark, QIcon] = {}
        self._more = False  # the history has conversations older than the oldest row
        self._fetching = False

    def flags(self, index: Index) -> Qt.ItemFlag:
        flags = super().flags(index)
        return flags | Qt.ItemFlag.ItemIsDragEnabled if index.isValid() else flags

    def mimeTypes(self) -> list[str]:
        return [self.MIME]

    def mimeData(self, indexes: Any) -> QMimeData:
        """The conversations dragged, for a folder to take."""
        mime = QMimeData()
        ids = [str(record.id) for index in indexes if (record := self.record(index.row())) is not None]
        mime.setData(self.MIME, ",".join(ids).encode("ascii"))
        mime.setText("\n".join(self._items[index.row()].title for index in indexes if self.record(index.row())))
        return mime

    def supportedDragActions(self) -> Qt.DropAction:
        return Qt.DropAction.MoveAction

    def item_data(self, item: ConversationRecord, role: int) -> Any:
        mark = self._marks.get(item.id) or (ChatMark.PINNED if item.pinned else None)
        if role == Qt.ItemDataRole.DisplayRole:
            return item.title or "New chat"
        if role == Qt.ItemDataRole.DecorationRole and mark is not None:
            return self._icon(mark)
        if role == Qt.ItemDataRole.ToolTipRole:
            model = f"\n{item.model_name}" if item.model_name else ""
            state = f"\n{mark.value}" if mark is not None else ""
            return f"{item.title}{state}\nLast used {item.updated_at.astimezone():%d %b %Y, %H:%M}{model}"
        if role == Qt.ItemDataRole.AccessibleDescriptionRole and mark is not None:
            return mark.value
        return None

    # --- pages ---

    def set_page(self, page: Page[ConversationRecord]) -> None:
        """The newest conversations, in place of every row."""
        self._more, self._fetching = page.more, False
        self.set_items(page.items)

    def canFetchMore(self, parent: Index) -> bool:
        return not parent.isValid() and self._more and not self._fetching and bool(self._items)

    def fetchMore(self, parent: Index) -> None:
        if self.canFetchMore(parent):
            self._fetching = True
            self.moreWanted.emit(min(self._items, key=_recency))

    def add_page(self, page: Page[ConversationRecord]) -> None:
        """The page after the oldest row, at the end (but for conversations already shown: one touched since
        has moved up)."""
        self._fetching = False
        known = {item.id for item in self._items}
        fresh = [item for item in page.items if item.id not in known]
        if fresh:
            self.beginInsertRows(QModelIndex(), len(self._items), len(self._items) + len(fresh) - 1)
            self._items.extend(fresh)
            self.endInsertRows()
        self._more = page.more

    def page_failed(self) -> None:
        """The next page could not be read: scrolling to the end asks again."""
        self._fetching = False

    def has_more(self) -> bool:
        return self._more

    # --- one conversation ---

    def put(self, record: ConversationRecord, keep_order: bool = False) -> None:
        """A conversation as it is now: changed in place and moved to its place in the order (with ``keep_order``
        not moved yet), or added there if it is new. One older than every row waits for its page; one not in
        the folder shown is not a row."""
        row = self.row_of(record.id)
        if self.folder_id is not None and record.folder_id != self.folder_id:
            self.remove(record.id)
            return
        if row >= 0:
            self._items[row] = record
            self.dataChanged.emit(self.index(row), self.index(row))
            if not keep_order:
                self._move_into_place(row)
            return
        position = self._place_of(record, self._items)
        if position == len(self._items) and self._more:
            return
        self.beginInsertRows(QModelIndex(), position, position)
        self._items.insert(position, record)
        self.endInsertRows()

    @staticmethod
    def _place_of(record: ConversationRecord, items: list[ConversationRecord]) -> int:
        key = _recency(record)
        return next((row for row, item in enumerate(items) if _recency(item) < key), len(items))

    def _move_into_place(self, row: int) -> None:
        """One older than every other row (unpinned, say) leaves while pages are still to come: the next page
        starts after the oldest row, and would skip those between."""
        record = self._items[row]
        others = self._items[:row] + self._items[row + 1:]
        target = self._place_of(record, others)
        if target == len(others) and self._more:
            self.remove(record.id)
            return
        if target == row:
            return
        self.beginMoveRows(QModelIndex(), row, row, QModelIndex(), target if target < row else target + 1)
        self._items.insert(target, self._items.pop(row))
        self.endMoveRows()

    def settle_order(self) -> None:
        """Newest first again (the pointer left the list)."""
        before = [item.id for item in self._items]
        ordered = sorted(self._items, key=_recency, reverse=True)
        if [item.id for item in ordered] == before:
            return
        self.layoutAboutToBeChanged.emit()
        self._items = ordered
        rows = {item.id: row for row, item in enumerate(ordered)}
        for index in self.persistentIndexList():
            self.changePersistentIndex(index, self.index(rows[before[index.row()]], index.column()))
        self.layoutChanged.emit()

    def set_marks(self, marks: dict[int, ChatMark]) -> None:
        changed = {record_id for record_id in marks.keys() | self._marks.keys()
                   if marks.get(record_id) != self._marks.get(record_id)}
        self._marks = dict(marks)
        for record_id in changed:
            row = self.row_of(record_id)
            if row >= 0:
                self.dataChanged.emit(self.index(row), self.index(row))

    def mark(self, record_id: int) -> ChatMark | None:
        return self._marks.get(record_id)

    def _icon(self, mark: ChatMark) -> QIcon:
        """A dot that shows on the dark list and on its orange selection alike: green while answering, a light
        ring while a message waits."""
        if mark not in self._icons:
            pixmap = QPixmap(14, 14)
            pixmap.fill(Qt.GlobalColor.transparent)
            painter = QPainter(pixmap)
            painter.setRenderHint(QPainter.RenderHint.Antialiasing)
            painter.setPen(QPen(QColor("#1d140d"), 1.5))
            if mark is ChatMark.PINNED:  # a pin's head and point
                painter.setBrush(QColor("#e8893a"))
                painter.drawEllipse(QRectF(3.5, 1.5, 7, 7))
                painter.drawLine(7, 8, 7, 13)
                painter.end()
                self._icons[mark] = QIcon(pixmap)
                return self._icons[mark]
            painter.setBrush(QColor("#7ee07e" if mark is ChatMark.ANSWERING else "#f4e9dc"))
            painter.drawEllipse(QRectF(1.5, 1.5, 11, 11))
            if mark is ChatMark.WAITING:
                painter.setBrush(QColor("#1d140d"))
                painter.drawEllipse(QRectF(5, 5, 4, 4))
            painter.end()
            self._icons[mark] = QIcon(pixmap)
        return self._icons[mark]


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
        computer = computer_of(item)
        if computer is not None:
            return self._remote_data(item, computer, index.column(), role)
        assessment = self._assessments.get(item.id)
        if index.column() == 1:
            return self._verdict_data(assessment, role)
        if role == Qt.ItemDataRole.ToolTipRole:
            return "\n".join([item.name, item.path, *([BASE_MODEL_WARNING] if item.is_base_model else [])])
        if role != Qt.ItemDataRole.DisplayRole:
            return None
        return (item.name, "", format_count(item.parameter_count), format_bytes(item.file_size))[index.column()]

    @staticmethod
    def _remote_data(item: ModelRecord, computer: str, column: int, role: int) -> Any:
        """A model on another computer: its server there decides its memory, so the column says where it runs."""
        forecast = str(item.facts.get("forecast") or "")
        if role == Qt.ItemDataRole.ToolTipRole:
            return f"{item.name}\n{forecast or f'Runs on {computer}: its server there decides the memory it takes'}"
        if role != Qt.ItemDataRole.DisplayRole:
            return None
        verdict = str(item.facts.get("verdict") or "")
        where = f"On {computer}" + (f" · {verdict}" if verdict else "")
        return (item.name, where, format_count(item.parameter_count), "")[column]

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
