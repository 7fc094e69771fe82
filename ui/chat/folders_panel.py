"""The sidebar's folders: All chats and each folder, to choose which conversations the list shows, and to drop a
conversation on to move it there. Folders are made, set up and deleted (with Undo) from here."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from PySide6.QtCore import QMimeData, QPoint, Qt, Signal
from PySide6.QtGui import QAction, QDragEnterEvent, QDragMoveEvent, QDropEvent, QKeySequence
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMenu,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from app.history import FolderRecord, ModelRecord
from ui.chat.folder_dialog import FolderDialog
from ui.qt.background import BackgroundOp
from ui.qt.qt_models import ConversationListModel
from ui.widgets.undo_bar import UndoBar

if TYPE_CHECKING:  # the store brings SQLAlchemy, which the first paint does without
    from app.history import HistoryStore

CONVERSATION_MIME = ConversationListModel.MIME
ALL_CHATS = "All chats"
VISIBLE_ROWS = 6  # more folders scroll


def conversation_ids(mime: QMimeData) -> list[int]:
    if not mime.hasFormat(CONVERSATION_MIME):
        return []
    text = bytes(mime.data(CONVERSATION_MIME).data()).decode("ascii", "replace")
    return [int(part) for part in text.split(",") if part.strip().isdigit()]


class FolderList(QListWidget):
    """Takes conversations dropped on a row: into that folder, or out of any on All chats."""

    dropped = Signal(object, object)  # the conversation ids, the folder's id (None: All chats)

    def __init__(self) -> None:
        super().__init__()
        self.setObjectName("folderList")
        self.setAcceptDrops(True)
        self.setDragDropMode(QAbstractItemView.DragDropMode.DropOnly)
        self.setDropIndicatorShown(True)
        self.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setTextElideMode(Qt.TextElideMode.ElideRight)

    def _target(self, point: QPoint, mime: QMimeData) -> QListWidgetItem | None:
        return self.itemAt(point) if conversation_ids(mime) else None

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if conversation_ids(event.mimeData()):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dragMoveEvent(self, event: QDragMoveEvent) -> None:
        item = self._target(event.position().toPoint(), event.mimeData())
        if item is not None:
            event.acceptProposedAction()
        else:
            event.ignore()

    def dropEvent(self, event: QDropEvent) -> None:
        item = self._target(event.position().toPoint(), event.mimeData())
        if item is None:
            event.ignore()
            return
        event.acceptProposedAction()
        self.dropped.emit(conversation_ids(event.mimeData()), item.data(Qt.ItemDataRole.UserRole))


class FoldersPanel(QWidget):
    chosen = Signal(object)  # FolderRecord | None (All chats): the list shows these conversations
    moveRequested = Signal(object, object)  # conversation ids, folder id or None
    foldersChanged = Signal()  # made, renamed or deleted: menus that name folders read them again
    exportRequested = Signal(object)  # FolderRecord
    failed = Signal(object)

    def __init__(self) -> None:
        super().__init__()
        self._folders: list[FolderRecord] = []
        self._models: Callable[[], list[ModelRecord]] = list
        column = QVBoxLayout(self)
        column.setContentsMargins(0, 0, 0, 0)
        column.setSpacing(2)
        header = QHBoxLayout()
        title = QLabel("Folders")
        title.setObjectName("sectionTitle")
        header.addWidget(title, 1)
        self.new_button = QToolButton()
        self.new_button.setText("+")
        self.new_button.setToolTip("New folder… (F2 on a folder: its settings; Delete: delete it)")
        self.new_button.setAccessibleName("New folder")
        header.addWidget(self.new_button)
        column.addLayout(header)
        self.list = FolderList()
        self.list.setAccessibleName("Folders")
        column.addWidget(self.list)
        self.undo = UndoBar(lambda folder_id: self.store.delete_folder(folder_id),
                            lambda folder_id: self.store.restore_folder(folder_id))
        column.addWidget(self.undo)
        self._fill()
        self.new_button.clicked.connect(lambda: self.new_folder())
        self.list.currentItemChanged.connect(self._current_changed)
        self.list.customContextMenuRequested.connect(self._menu)
        self.list.dropped.connect(self.moveRequested)
        self.undo.deleted.connect(lambda _folder: self.reload())
        self.undo.restored.connect(lambda _folder: self.reload())
        self.undo.failed.connect(self.failed.emit)
        for keys, act in ((QKeySequence.StandardKey.Delete, self.delete), (QKeySequence("F2"), self.edit)):
            action = QAction(self.list)
            action.setShortcut(keys)
            action.setShortcutContext(Qt.ShortcutContext.WidgetShortcut)  # on the folder list only
            action.triggered.connect(lambda _checked=False, act=act: self._on_current(act))
            self.list.addAction(action)

    store: HistoryStore

    def attach(self, store: HistoryStore, models: Callable[[], list[ModelRecord]]) -> None:
        self.store = store
        self._models = models
        self.reload()

    @property
    def folders(self) -> list[FolderRecord]:
        return list(self._folders)

    def current(self) -> FolderRecord | None:
        item = self.list.currentItem()
        folder_id = item.data(Qt.ItemDataRole.UserRole) if item is not None else None
        return next((f for f in self._folders if f.id == folder_id), None)

    def reload(self, then_choose: int | None = None) -> None:
        def show(folders: list[FolderRecord]) -> None:
            self._folders = folders
            self._fill(then_choose)
            self.foldersChanged.emit()

        BackgroundOp(self, self.store.folders).success(show).failure(self.failed.emit).run()

    def choose(self, folder_id: int | None) -> None:
        for row in range(self.list.count()):
            if self.list.item(row).data(Qt.ItemDataRole.UserRole) == folder_id:
                self.list.setCurrentRow(row)
                return

    def _fill(self, then_choose: int | None = None) -> None:
        """The rows again; the folder chosen stays chosen (All chats if it is gone)."""
        item = self.list.currentItem()
        was = then_choose if then_choose is not None else (item.data(Qt.ItemDataRole.UserRole) if item else None)
        self.list.blockSignals(True)
        self.list.clear()
        every = QListWidgetItem(ALL_CHATS)
        every.setData(Qt.ItemDataRole.UserRole, None)
        self.list.addItem(every)
        for folder in self._folders:
            item = QListWidgetItem(folder.name)
            item.setData(Qt.ItemDataRole.UserRole, folder.id)
            item.setToolTip(_tooltip(folder))
            self.list.addItem(item)
        row = next((r for r in range(self.list.count()) if self.list.item(r).data(Qt.ItemDataRole.UserRole) == was), 0)
        self.list.setCurrentRow(row)
        self.list.blockSignals(False)
        rows = min(self.list.count(), VISIBLE_ROWS)
        self.list.setFixedHeight(self.list.sizeHintForRow(0) * rows + 2 * self.list.frameWidth() + 2)
        if row == 0 and was is not None:
            self.chosen.emit(None)  # the folder shown was deleted
        elif then_choose is not None:
            self.chosen.emit(self.current())

    def _current_changed(self, current: QListWidgetItem | None, _previous: QListWidgetItem | None) -> None:
        if current is not None:
            self.chosen.emit(self.current())

    def _on_current(self, act: Callable[[FolderRecord], None]) -> None:
        """Delete and F2 on the folder chosen (not on All chats)."""
        folder = self.current()
        if folder is not None:
            act(folder)

    def _menu(self, point: QPoint) -> None:
        item = self.list.itemAt(point)
        folder_id = item.data(Qt.ItemDataRole.UserRole) if item is not None else None
        folder = next((f for f in self._folders if f.id == folder_id), None)
        menu = QMenu(self.window())
        menu.addAction("New folder…", lambda: self.new_folder())
        if folder is not None:
            menu.addAction("Folder settings…", lambda: self.edit(folder))
            menu.addAction("Export the folder…", lambda: self.exportRequested.emit(folder))
            menu.addSeparator()
            menu.addAction("Delete folder", lambda: self.delete(folder))
        menu.exec(self.list.viewport().mapToGlobal(point))

    def new_folder(self, then_move: list[int] | None = None) -> None:
        """A folder made from the dialog and chosen; ``then_move``: conversations put in it."""
        dialog = FolderDialog(self.window(), self._models())
        if dialog.exec() != QDialog.DialogCode.Accepted:
            return
        choice = dialog.choice()

        def made(folder: FolderRecord) -> None:
            if then_move:
                self.moveRequested.emit(then_move, folder.id)
            self.reload(then_choose=folder.id)

        model = choice.model
        BackgroundOp(self, self.store.create_folder, choice.name, choice.system_prompt,
                     model.id if model else None, model.name if model else None) \
            .success(made).failure(self.failed.emit).run()

    def edit(self, folder: FolderRecord) -> None:
        dialog = FolderDialog(self.window(), self._models(), folder)
        if dialog.exec() != QDialog.DialogCode.Accepted:
            return
        choice = dialog.choice()
        model = choice.model
        keep = dialog.keeps_removed_model()
        BackgroundOp(self, self.store.update_folder, folder.id, name=choice.name, system_prompt=choice.system_prompt,
                     model_id=model.id if model else None, model_name=model.name if model else None,
                     clear_model=model is None and not keep) \
            .success(lambda _: self.reload()).failure(self.failed.emit).run()

    def delete(self, folder: FolderRecord) -> None:
        """Its conversations stay, in All chats; Undo brings the folder back with them in it."""
        self.undo.delete(folder, folder.id, folder.name)


def _tooltip(folder: FolderRecord) -> str:
    parts = [folder.name]
    if folder.system_prompt:
        prompt = " ".join(folder.system_prompt.split())
        parts.append(f"System prompt: {prompt[:80]}{'…' if len(prompt) > 80 else ''}")
    if folder.model_name:
        parts.append(f"Model: {folder.model_name}")
    return "\n".join(parts)
