"""The history's search, in the chat's sidebar: the box (Ctrl+F there, Ctrl+Shift+F anywhere) and, while it holds
text, the matches in place of the conversation list: each with where it is and when, and the words around the match
with the match marked. The page runs the search (``ChatPage.search``); this only shows it."""

from __future__ import annotations

from html import escape

from PySide6.QtCore import QEvent, QObject, Qt, QTimer, Signal
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.history.records import MARK_END, MARK_START, FolderRecord, HitKind, SearchHit
from ui.qt import theme

TYPING_PAUSE_MS = 150  # a search starts when typing pauses this long
KIND_CHOICES = (("Everything", frozenset(HitKind)),
                ("Chats", frozenset({HitKind.CONVERSATION, HitKind.MESSAGE})),
                ("Tasks", frozenset({HitKind.TASK})),
                ("Comparisons", frozenset({HitKind.COMPARISON, HitKind.ENTRY})))
CHATS = KIND_CHOICES[1][1]
KIND_WORDS = {HitKind.CONVERSATION: "Chat title", HitKind.MESSAGE: "Chat", HitKind.TASK: "Task",
              HitKind.COMPARISON: "Comparison", HitKind.ENTRY: "Comparison"}


class SearchBox(QWidget):
    # the text, the kinds (frozenset[HitKind]) to look among, and the folder's id (or None); "" ends it
    searchWanted = Signal(str, object, object)
    hitChosen = Signal(object)  # SearchHit

    def __init__(self) -> None:
        super().__init__()
        column = QVBoxLayout(self)
        column.setContentsMargins(0, 0, 0, 0)
        row = QHBoxLayout()
        self.field = QLineEdit()
        self.field.setPlaceholderText("Search the history (Ctrl+F)")
        self.field.setAccessibleName("Search the history")
        self.field.setClearButtonEnabled(True)
        self.field.installEventFilter(self)
        row.addWidget(self.field, 1)
        self.kinds = QComboBox()
        self.kinds.setAccessibleName("Search among")
        self._choices: dict[str, tuple[frozenset[HitKind], int | None]] = {}  # a choice's key: where to look
        for words, kinds in KIND_CHOICES:
            self._choices[words] = (kinds, None)
            self.kinds.addItem(words, words)
        row.addWidget(self.kinds)
        column.addLayout(row)
        self.results = QListWidget()
        self.results.setObjectName("searchResults")
        self.results.setWordWrap(True)
        self.results.hide()
        column.addWidget(self.results, 1)
        self.summary = QLabel("")
        self.summary.setObjectName("hint")
        self.summary.setWordWrap(True)
        self.summary.hide()
        column.addWidget(self.summary)
        self._pause = QTimer(self)
        self._pause.setSingleShot(True)
        self._pause.setInterval(TYPING_PAUSE_MS)
        self._pause.timeout.connect(self._wanted)
        self.field.textChanged.connect(self._typed)
        self.field.returnPressed.connect(self._choose_first)
        self.kinds.currentIndexChanged.connect(lambda _index: self._wanted())
        self.results.itemActivated.connect(self._chosen)
        self.results.itemClicked.connect(self._chosen)

    @property
    def searching(self) -> bool:
        return bool(self.field.text().strip())

    def focus(self) -> None:
        self.field.setFocus(Qt.FocusReason.ShortcutFocusReason)
        self.field.selectAll()

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        """Esc in the box ends the search, before the window's Esc (stop the answer) can take it."""
        escape_key = isinstance(event, QKeyEvent) and event.key() == Qt.Key.Key_Escape and self.searching
        if watched is self.field and escape_key and event.type() == QEvent.Type.ShortcutOverride:
            event.accept()
            return True
        if watched is self.field and escape_key and event.type() == QEvent.Type.KeyPress:
            self.field.clear()
            return True
        return False

    def _typed(self, text: str) -> None:
        if text.strip():
            self._pause.start()
        else:  # emptied: the conversations come back at once
            self._pause.stop()
            self._wanted()

    def _wanted(self) -> None:
        text = self.field.text().strip()
        self.results.setVisible(bool(text))
        self.summary.setVisible(bool(text))
        if not text:
            self.results.clear()
        kinds, folder_id = self._choices[self.kinds.currentData()]
        self.searchWanted.emit(text, kinds, folder_id)

    def set_folders(self, folders: list[FolderRecord]) -> None:
        """Each folder's chats are one more choice of where to look."""
        chosen = self.kinds.currentData()
        self.kinds.blockSignals(True)
        while self.kinds.count() > len(KIND_CHOICES):
            self.kinds.removeItem(self.kinds.count() - 1)
        if folders:
            self.kinds.insertSeparator(self.kinds.count())
        for folder in folders:
            self._choices[f"folder:{folder.id}"] = (CHATS, folder.id)
            self.kinds.addItem(f"In “{folder.name}”", f"folder:{folder.id}")
        found = self.kinds.findData(chosen)
        self.kinds.setCurrentIndex(max(found, 0))
        self.kinds.blockSignals(False)
        if found < 0 and self.searching:
            self._wanted()

    def show_hits(self, text: str, hits: list[SearchHit]) -> None:
        """The matches for ``text``, grouped by kind, newest first in each."""
        self.results.clear()
        colors = theme.colors()
        for hit in hits:
            item = QListWidgetItem()
            item.setData(Qt.ItemDataRole.UserRole, hit)
            snippet = escape(" ".join(hit.snippet.split())).replace(
                MARK_START, f"<b style='color:{colors.brand}'>").replace(MARK_END, "</b>")
            label = QLabel(f"<b>{escape(hit.title)}</b><br><span style='color:{colors.sidebar_hint}'>"
                           f"{KIND_WORDS[hit.kind]} · {hit.at.astimezone():%d %b %Y}"
                           f"{' · ' + escape(hit.model) if hit.model else ''}</span><br>{snippet}")
            label.setWordWrap(True)
            label.setTextFormat(Qt.TextFormat.RichText)
            label.setContentsMargins(6, 4, 6, 4)
            item.setSizeHint(label.sizeHint())
            item.setToolTip(" ".join(hit.snippet.replace(MARK_START, "").replace(MARK_END, "").split()))
            self.results.addItem(item)
            self.results.setItemWidget(item, label)
        self.summary.setText(f"Nothing matches “{text}”." if not hits else
                             f"{len(hits)} match{'es' if len(hits) != 1 else ''}; Enter opens the first, Esc ends the "
                             "search.")

    def _choose_first(self) -> None:
        self._pause.stop()
        if self.results.count():
            self._chosen(self.results.item(0))

    def _chosen(self, item: QListWidgetItem) -> None:
        hit = item.data(Qt.ItemDataRole.UserRole)
        if isinstance(hit, SearchHit):
            self.hitChosen.emit(hit)
