"""The chat page's part of the sidebar: New chat, the history's search, the folders, the list of conversations
(dragged on to a folder to move them), and its right-click menu. It shows and asks; ``ChatPage`` decides."""

from __future__ import annotations

import functools

from PySide6.QtCore import QEvent, QModelIndex, QObject, QPoint, Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QLabel,
    QListView,
    QMenu,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from app.history import ConversationRecord
from ui.chat.folders_panel import FoldersPanel
from ui.chat.search_results import SearchBox
from ui.qt.qt_models import ConversationListModel, RecordRole


class ConversationsView(QWidget):
    newRequested = Signal()
    openRequested = Signal(object)  # ConversationRecord: chosen in the list
    renameRequested = Signal(object)  # ConversationRecord
    deleteRequested = Signal(object)  # ConversationRecord
    pinRequested = Signal(object, bool)  # ConversationRecord, pinned or not
    exportRequested = Signal(object)  # ConversationRecord
    pointerLeft = Signal()  # the pointer left the list: its rows may move again

    def __init__(self, model: ConversationListModel) -> None:
        super().__init__()
        column = QVBoxLayout(self)
        column.setContentsMargins(0, 0, 0, 0)
        self.new_button = QPushButton("+  New chat")
        self.new_button.setObjectName("primary")
        self.new_button.setToolTip("Start a new conversation (Ctrl+N)")
        column.addWidget(self.new_button)
        self.search = SearchBox()
        column.addWidget(self.search, 1)
        self.folders = FoldersPanel()
        column.addWidget(self.folders)
        self.list = QListView()
        self.list.setObjectName("conversationList")
        self.list.setModel(model)
        self.list.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.list.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.list.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.list.setUniformItemSizes(True)  # one line each: the list does not measure thousands of rows
        self.list.setDragEnabled(True)  # on to a folder
        self.list.setDragDropMode(QAbstractItemView.DragDropMode.DragOnly)
        self.list.setDefaultDropAction(Qt.DropAction.MoveAction)
        column.addWidget(self.list, 1)
        self.no_chats = QLabel("No conversations yet.")
        self.no_chats.setObjectName("hint")
        self.no_chats.hide()  # until the history says so
        column.addWidget(self.no_chats)
        self._searching(False)
        self.search.searchWanted.connect(lambda text, _query: self._searching(bool(text)))
        self.folders.foldersChanged.connect(lambda: self.search.set_folders(self.folders.folders))
        self.new_button.clicked.connect(self.newRequested)
        self.list.selectionModel().currentChanged.connect(self._current_changed)
        self.list.customContextMenuRequested.connect(self._menu)
        self.list.installEventFilter(self)

    def _searching(self, searching: bool) -> None:
        """While the box holds text, its matches stand in the conversation list's place."""
        self.list.setVisible(not searching)
        self.folders.setVisible(not searching)
        self.search.setSizePolicy(self.search.sizePolicy().horizontalPolicy(),
                                  QSizePolicy.Policy.Expanding if searching else QSizePolicy.Policy.Maximum)

    def pointer_inside(self) -> bool:
        """The pointer is over the list (its scroll bar included), where rows must not move under it."""
        return self.list.underMouse()

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if watched is self.list and event.type() == QEvent.Type.Leave:
            self.pointerLeft.emit()
        return False

    def _current_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        record = current.data(RecordRole) if current.isValid() else None
        if record is not None:
            self.openRequested.emit(record)

    def _menu(self, point: QPoint) -> None:
        index = self.list.indexAt(point)
        record = index.data(RecordRole) if index.isValid() else None
        if record is not None:
            self.menu_for(record).exec(self.list.viewport().mapToGlobal(point))

    def menu_for(self, record: ConversationRecord) -> QMenu:
        """The right-click menu of a conversation in the list."""
        menu = QMenu(self.window())
        menu.addAction("Unpin" if record.pinned else "Pin to the top",
                       lambda: self.pinRequested.emit(record, not record.pinned))
        move = menu.addMenu("Move to")
        if record.folder_id is not None:
            move.addAction("No folder", lambda: self.folders.moveRequested.emit([record.id], None))
        for folder in self.folders.folders:
            if folder.id != record.folder_id:
                move.addAction(folder.name, functools.partial(self.folders.moveRequested.emit, [record.id], folder.id))
        if move.actions():
            move.addSeparator()
        move.addAction("New folder…", lambda: self.folders.new_folder(then_move=[record.id]))
        menu.addAction("Rename…", lambda: self.renameRequested.emit(record))
        menu.addAction("Export…", lambda: self.exportRequested.emit(record))
        menu.addSeparator()
        menu.addAction("Delete", lambda: self.deleteRequested.emit(record))
        return menu
