"""Recent runs on the Tasks page: every task run history keeps, newest first; delete with Undo, and the
choice whether history keeps the text of documents."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QModelIndex, Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QHBoxLayout,
    QLabel,
    QListView,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from app.errors import HearthError
from app.history import HistoryStore, TaskRunRecord
from app.outcomes import RunStatus
from app.settings import Settings
from app.tasks.result_words import run_title
from ui.qt.background import BackgroundOp
from ui.qt.qt_models import RecordRole
from ui.tasks.run_models import TaskRunListModel
from ui.widgets.undo_bar import UndoBar

log = logging.getLogger(__name__)

RECENT_RUNS = 200
DELETE_TIP = "Delete the chosen run from history (Undo is offered)"


class RunHistory(QWidget):
    runChosen = Signal(object)  # TaskRunRecord
    runDeleted = Signal(int)  # run id
    runRestored = Signal(object)  # TaskRunRecord
    failed = Signal(str)  # for people

    def __init__(self, store: HistoryStore, settings: Settings, settings_file: Path,
                 is_live: Callable[[int], bool]) -> None:
        """``is_live(run_id)``: whether that run is the one in progress (it cannot be deleted)."""
        super().__init__()
        self.store, self.settings, self.settings_file, self._is_live = store, settings, settings_file, is_live
        self.setObjectName("recentRuns")
        self.setAttribute(Qt.WidgetAttribute.WA_StyledBackground)
        self.runs = TaskRunListModel()
        column = QVBoxLayout(self)
        column.setContentsMargins(20, 6, 16, 10)
        column.setSpacing(6)
        title = QLabel("Recent runs")
        title.setObjectName("sectionTitle")
        column.addWidget(title)
        self.list = QListView()
        self.list.setObjectName("runList")
        self.list.setModel(self.runs)
        self.list.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.list.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.list.setMinimumHeight(96)
        column.addWidget(self.list, 1)
        self.empty = QLabel("Runs you make are kept here, newest first.")
        self.empty.setObjectName("hint")
        self.empty.setWordWrap(True)
        column.addWidget(self.empty)
        self.undo_bar = UndoBar(store.delete_task_run, store.restore_task_run)
        self.undo_bar.deleted.connect(self._deleted_one)
        self.undo_bar.restored.connect(self._restored_one)
        self.undo_bar.failed.connect(self._failed)
        column.addWidget(self.undo_bar)
        row = QHBoxLayout()
        self.keep_text = QCheckBox("Keep document text in history")
        self.keep_text.setToolTip("When off, history keeps each result with the document's name, size and a "
                                  "fingerprint, but not its text.")
        self.keep_text.setChecked(settings.save_document_text)
        self.keep_text.toggled.connect(self._keep_text_toggled)
        row.addWidget(self.keep_text, 1)
        self.delete_button = QPushButton("Delete")
        self.delete_button.clicked.connect(self.delete_selected)
        row.addWidget(self.delete_button)
        column.addLayout(row)
        self.list.selectionModel().currentChanged.connect(self._current_changed)
        self.runs.modelReset.connect(self.update_buttons)
        self.runs.rowsRemoved.connect(self.update_buttons)
        self.update_buttons()

    def refresh(self, select: int | None = None) -> None:
        """Read the runs again; ``select`` (or else the chosen run) stays chosen."""
        def show(records: list[TaskRunRecord]) -> None:
            current = self.selected()
            keep = select if select is not None else (current.id if current else None)
            self.runs.set_items(records)
            row = self.runs.row_of(keep) if keep is not None else -1
            if row >= 0:
                self.list.setCurrentIndex(self.runs.index(row))

        BackgroundOp(self, self.store.task_runs, RECENT_RUNS).success(show).failure(self._failed).run()

    def selected(self) -> TaskRunRecord | None:
        index = self.list.currentIndex()
        record = index.data(RecordRole) if index.isValid() else None
        return record if isinstance(record, TaskRunRecord) else None

    def forget_choice(self) -> None:
        """A new run takes the output: no run in the list stays marked as the one shown."""
        self.list.setCurrentIndex(QModelIndex())

    def _current_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        self.update_buttons()
        record = current.data(RecordRole) if current.isValid() else None
        if isinstance(record, TaskRunRecord):
            self.runChosen.emit(record)

    def update_buttons(self) -> None:
        record = self.selected()
        running = record is not None and (record.status == RunStatus.RUNNING or self._is_live(record.id))
        self.delete_button.setEnabled(record is not None and not running)
        self.delete_button.setToolTip("A running task cannot be deleted; cancel it first." if running else DELETE_TIP)
        empty = self.runs.rowCount() == 0
        self.empty.setVisible(empty)
        self.list.setVisible(not empty)
        self.setSizePolicy(QSizePolicy.Policy.Preferred,  # no room kept for an empty list
                           QSizePolicy.Policy.Maximum if empty else QSizePolicy.Policy.Preferred)

    def delete_selected(self) -> None:
        record = self.selected()
        if record is None or record.status == RunStatus.RUNNING or self._is_live(record.id):
            return
        self.undo_bar.delete(record, record.id, run_title(record))

    def _deleted_one(self, record: TaskRunRecord) -> None:
        self.runs.remove(record.id)
        self.runDeleted.emit(record.id)

    def _restored_one(self, record: TaskRunRecord) -> None:
        self.refresh(select=record.id)
        self.runRestored.emit(record)

    def undo_delete(self) -> None:
        self.undo_bar.undo()

    def stop_timers(self) -> None:
        self.undo_bar.stop()

    def _keep_text_toggled(self, keep: bool) -> None:
        self.settings.save_document_text = keep
        BackgroundOp(self, self.settings.save, self.settings_file).failure(self._failed).run()

    def _failed(self, error: BaseException) -> None:
        if not isinstance(error, HearthError):
            log.error("task history failed", exc_info=error)
        self.failed.emit(str(error) if isinstance(error, HearthError) else
                         "Hearth could not read or change its task history. Details are in the log file.")
