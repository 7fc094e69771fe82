"""The chat page's part of the sidebar: New chat, the history's search, the list of conversations, and its
right-click menu. It shows and asks; ``ChatPage`` decides."""

from __future__ import annotations

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

from ui.chat.search_results import SearchBox
from ui.qt.qt_models import ConversationListModel, RecordRole


class ConversationsView(QWidget):
    newRequested = Signal()
    openRequested = Signal(object)  # ConversationRecord: chosen in the list
    renameRequested = Signal(object)  # ConversationRecord
    deleteRequested = Signal(object)  # ConversationRecord
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
        self.list = QListView()
        self.list.setObjectName("conversationList")
        self.list.setModel(model)
        self.list.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.list.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.list.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.list.setUniformItemSizes(True)  # one line each: the list does not measure thousands of rows
        column.addWidget(self.list, 1)
        self.no_chats = QLabel("No conversations yet.")
        self.no_chats.setObjectName("hint")
        self.no_chats.hide()  # until the history says so
        column.addWidget(self.no_chats)
        self._searching(False)
        self.search.searchWanted.connect(lambda text, _kinds: self._searching(bool(text)))
        self.new_button.clicked.connect(self.newRequested)
        self.list.selectionModel().currentChanged.connect(self._current_changed)
        self.list.customContextMenuRequested.connect(self._menu)
        self.list.installEventFilter(self)

    def _searching(self, searching: bool) -> None:
        """While the box holds text, its matches stand in the conversation list's place."""
        self.list.setVisible(not searching)
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
        if record is None:
            return
        menu = QMenu(self.window())
        menu.addAction("Rename…", lambda: self.renameRequested.emit(record))
        menu.addAction("Delete", lambda: self.deleteRequested.emit(record))
        menu.exec(self.list.viewport().mapToGlobal(point))
