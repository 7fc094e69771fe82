"""Past comparisons (newest first; delete with Undo) and the leaderboard of votes, per kind of input."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeAlias

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt, Signal
from PySide6.QtGui import QColor, QFont, QFontMetrics
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QListView,
    QPushButton,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from app.compare.figures import STATUS_WORDS, verdict_text
from app.compare.spec import KIND_WORDS, KINDS
from app.errors import HearthError
from app.history import ComparisonRecord, HistoryStore, LeaderRow
from app.outcomes import RunStatus
from app.words import format_bytes
from ui.qt import theme
from ui.qt.background import BackgroundOp
from ui.qt.qt_models import RecordListModel, RecordRole
from ui.widgets.undo_bar import UndoBar

log = logging.getLogger(__name__)

RECENT = 200
DELETE_TIP = "Delete the chosen comparison from history (Undo is offered); its vote leaves the leaderboard"

Index: TypeAlias = QModelIndex | QPersistentModelIndex


def comparison_subtitle(record: ComparisonRecord) -> str:
    """"12 Mar, 14:03 · Chat prompt · Better: Qwen2.5 0.5B": when, what, and the vote (or how it ended)."""
    when = record.created_at.astimezone()
    parts = [f"{when:%d %b, %H:%M}" if when.year == datetime.now().year else f"{when:%d %b %Y}",
             KIND_WORDS.get(record.kind, record.kind)]
    if record.status != RunStatus.DONE:
        parts.append(STATUS_WORDS.get(record.status, record.status))
    if record.status != RunStatus.RUNNING:
        parts.append(verdict_text(record))
    return " · ".join(parts)


def figures_of(row: LeaderRow) -> str:
    """"21.3 tok/s · 1.2 GB": the model's median speed and peak memory."""
    speed = "speed –" if not row.tokens_per_s else \
        f"{row.tokens_per_s:.0f} tok/s" if row.tokens_per_s >= 10 else f"{row.tokens_per_s:.1f} tok/s"
    memory = format_bytes(row.peak_rss_bytes) if row.peak_rss_bytes else "memory –"
    return f"{speed} · {memory}"


class ComparisonListModel(RecordListModel[ComparisonRecord]):
    def item_data(self, item: ComparisonRecord, role: int) -> Any:
        if role == Qt.ItemDataRole.DisplayRole:
            return f"{item.title or 'Comparison'}\n{comparison_subtitle(item)}"
        if role == Qt.ItemDataRole.ToolTipRole:
            models = "Models hidden until you vote" if item.names_hidden else \
                ", ".join(entry.model_name for entry in item.entries)
            return f"{item.title}\n{models}"
        if role == Qt.ItemDataRole.ForegroundRole and (color := theme.status_color(item.status)) is not None:
            return QColor(color)
        return None


class LeaderboardModel(QAbstractTableModel):
    """One row per model; the model's cell also holds its median speed and memory, on a second line, so the
    table fits beside the page."""

    HEADERS = ("Model", "Wins", "Rate", "Tie / bad")
    TIPS = ("The model; under its name, its median speed and peak memory in these comparisons",
            "Comparisons won, of those voted on", "Wins as a share of the votes",
            "Votes that said “tie”, and votes that said all the answers were bad")

    def __init__(self) -> None:
        super().__init__()
        self._rows: list[LeaderRow] = []

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.HEADERS)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation != Qt.Orientation.Horizontal:
            return None
        if role == Qt.ItemDataRole.DisplayRole:
            return self.HEADERS[section]
        if role == Qt.ItemDataRole.ToolTipRole:
            return self.TIPS[section]
        return None

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self._rows):
            return None
        row = self._rows[index.row()]
        if role == RecordRole:
            return row
        if role == Qt.ItemDataRole.TextAlignmentRole and index.column() > 0:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.ToolTipRole:
            return (f"{row.model_name}\n{row.wins} won, {row.ties} tied, {row.both_bad} all bad and {row.losses} "
                    f"lost, of {row.voted} voted\n{figures_of(row)}")
        if role != Qt.ItemDataRole.DisplayRole:
            return None
        return (
            f"{row.model_name}\n{figures_of(row)}",
            f"{row.wins} / {row.voted}",
            f"{row.win_rate:.0%}",
            f"{row.ties} / {row.both_bad}",
        )[index.column()]

    def set_rows(self, rows: list[LeaderRow]) -> None:
        self.beginResetModel()
        self._rows = list(rows)
        self.endResetModel()

    def rows(self) -> list[LeaderRow]:
        return list(self._rows)


class ComparisonHistory(QWidget):
    """Every comparison history keeps, newest first; choosing one shows it."""

    chosen = Signal(object)  # ComparisonRecord
    deleted = Signal(int)  # comparison id
    restored = Signal(object)  # ComparisonRecord
    failed = Signal(str)  # for people

    def __init__(self, store: HistoryStore, is_live: Callable[[int], bool]) -> None:
        """``is_live(comparison_id)``: whether that comparison is the one running (it cannot be deleted)."""
        super().__init__()
        self.store, self._is_live = store, is_live
        self.model = ComparisonListModel()
        self._quiet = False  # the list is being refilled: a row chosen then is not the person's choice
        column = QVBoxLayout(self)
        column.setContentsMargins(0, 0, 0, 0)
        column.setSpacing(6)
        title = QLabel("Past comparisons")
        title.setObjectName("sectionTitle")
        column.addWidget(title)
        self.list = QListView()
        self.list.setObjectName("runList")
        self.list.setModel(self.model)
        self.list.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.list.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.list.setMinimumHeight(120)
        column.addWidget(self.list, 1)
        self.empty = QLabel("Comparisons you run are kept here, newest first.")
        self.empty.setObjectName("hint")
        self.empty.setWordWrap(True)
        column.addWidget(self.empty)
        self.undo_bar = UndoBar(store.delete_comparison, store.restore_comparison)
        self.undo_bar.deleted.connect(self._deleted_one)
        self.undo_bar.restored.connect(self._restored_one)
        self.undo_bar.failed.connect(self._failed)
        column.addWidget(self.undo_bar)
        row = QHBoxLayout()
        row.addStretch(1)
        self.delete_button = QPushButton("Delete")
        self.delete_button.clicked.connect(self.delete_selected)
        row.addWidget(self.delete_button)
        column.addLayout(row)
        self.list.selectionModel().currentChanged.connect(self._current_changed)
        self.model.modelReset.connect(self.update_buttons)
        self.model.rowsRemoved.connect(self.update_buttons)
        self.update_buttons()

    def refresh(self, select: int | None = None) -> None:
        """Read the list again; ``select`` (or else the chosen comparison) stays chosen, without showing it
        again."""
        def show(records: list[ComparisonRecord]) -> None:
            current = self.selected()
            keep = select if select is not None else (current.id if current else None)
            self._quiet = True
            try:
                self.model.set_items(records)
                row = self.model.row_of(keep) if keep is not None else -1
                if row >= 0:
                    self.list.setCurrentIndex(self.model.index(row))
            finally:
                self._quiet = False
            self.update_buttons()

        BackgroundOp(self, self.store.comparisons, RECENT).success(show).failure(self._failed).run()

    def selected(self) -> ComparisonRecord | None:
        index = self.list.currentIndex()
        record = index.data(RecordRole) if index.isValid() else None
        return record if isinstance(record, ComparisonRecord) else None

    def forget_choice(self) -> None:
        self._quiet = True
        try:
            self.list.setCurrentIndex(QModelIndex())
        finally:
            self._quiet = False

    def _current_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        self.update_buttons()
        record = current.data(RecordRole) if current.isValid() else None
        if isinstance(record, ComparisonRecord) and not self._quiet:
            self.chosen.emit(record)

    def update_buttons(self) -> None:
        record = self.selected()
        running = record is not None and (record.status == RunStatus.RUNNING or self._is_live(record.id))
        self.delete_button.setEnabled(record is not None and not running)
        self.delete_button.setToolTip("A running comparison cannot be deleted; stop it first." if running
                                      else DELETE_TIP)
        empty = self.model.rowCount() == 0
        self.empty.setVisible(empty)
        self.list.setVisible(not empty)

    def delete_selected(self) -> None:
        record = self.selected()
        if record is None or record.status == RunStatus.RUNNING or self._is_live(record.id):
            return
        self.undo_bar.delete(record, record.id, record.title)

    def _deleted_one(self, record: ComparisonRecord) -> None:
        self.model.remove(record.id)
        self.deleted.emit(record.id)

    def _restored_one(self, record: ComparisonRecord) -> None:
        self.refresh(select=record.id)
        self.restored.emit(record)

    def undo_delete(self) -> None:
        self.undo_bar.undo()

    def stop_timers(self) -> None:
        self.undo_bar.stop()

    def _failed(self, error: BaseException) -> None:
        if not isinstance(error, HearthError):
            log.error("comparison history failed", exc_info=error)
        self.failed.emit(str(error) if isinstance(error, HearthError) else
                         "Hearth could not read or change its comparison history. Details are in the log file.")


class Leaderboard(QWidget):
    """How the models fared in the comparisons voted on, for one kind of input at a time."""

    failed = Signal(str)

    def __init__(self, store: HistoryStore) -> None:
        super().__init__()
        self.store = store
        self.kind = KINDS[0]
        self.model = LeaderboardModel()
        column = QVBoxLayout(self)
        column.setContentsMargins(0, 0, 0, 0)
        column.setSpacing(6)
        row = QHBoxLayout()
        title = QLabel("Leaderboard")
        title.setObjectName("sectionTitle")
        row.addWidget(title)
        row.addStretch(1)
        self.kind_combo = QComboBox()
        for kind in KINDS:
            self.kind_combo.addItem(KIND_WORDS[kind], kind)
        self.kind_combo.setToolTip("Votes are counted separately for each kind of input")
        self.kind_combo.currentIndexChanged.connect(lambda _i: self.refresh(self.kind_combo.currentData()))
        row.addWidget(self.kind_combo)
        column.addLayout(row)
        self.table = QTableView()
        self.table.setTabKeyNavigation(False)  # Tab moves on to the next control; the arrows move between cells
        self.table.setObjectName("leaderboard")
        self.table.setModel(self.model)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.table.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.table.verticalHeader().hide()
        self.table.setShowGrid(False)
        self.table.setWordWrap(True)  # a long model name takes another line (its tooltip says it whole too)
        self.table.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        bold = QFont(header.font())
        bold.setBold(True)
        metrics = QFontMetrics(bold)
        for section in (1, 2, 3):  # as wide as their (bold) headings: the numbers are shorter
            header.resizeSection(section, metrics.horizontalAdvance(str(self.model.HEADERS[section])) + 12)
        header.setHighlightSections(False)
        self.table.setMinimumHeight(110)
        column.addWidget(self.table, 1)
        self.empty = QLabel()
        self.empty.setObjectName("hint")
        self.empty.setWordWrap(True)
        column.addWidget(self.empty)

    def refresh(self, kind: str | None = None) -> None:
        """Count the votes of ``kind`` (or of the kind on show) again."""
        if kind is not None and kind in KINDS:
            self.kind = kind
        wanted = self.kind
        self.kind_combo.blockSignals(True)
        self.kind_combo.setCurrentIndex(KINDS.index(wanted))
        self.kind_combo.blockSignals(False)

        def show(rows: list[LeaderRow]) -> None:
            if wanted != self.kind:
                return  # another kind was chosen meanwhile
            self.model.set_rows(rows)
            self.table.setVisible(bool(rows))
            self.empty.setVisible(not rows)
            self.empty.setText(f"No votes yet on {KIND_WORDS[wanted].lower()} comparisons. After a comparison, "
                               "say which answer was better, and the models' wins add up here.")

        def failed(error: BaseException) -> None:
            if not isinstance(error, HearthError):
                log.error("the leaderboard could not be read", exc_info=error)
            self.failed.emit("Hearth could not count the votes. Details are in the log file.")

        BackgroundOp(self, self.store.leaderboard, wanted).success(show).failure(failed).run()
