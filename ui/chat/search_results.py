"""The history's search, in the chat's sidebar: the box (Ctrl+F there, Ctrl+Shift+F anywhere) and, while it holds
text, the matches in place of the conversation list: each with where it is and when, and the words around the match
with the match marked. The page runs the search (``ChatPage.search``); this only shows it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
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

from app.history.records import MARK_END, MARK_START, FolderRecord, HitKind, SearchHit, SearchQuery
from ui.qt import theme

TYPING_PAUSE_MS = 150  # a search starts when typing pauses this long
KIND_CHOICES = (("Everything", frozenset(HitKind)),
                ("Chats", frozenset({HitKind.CONVERSATION, HitKind.MESSAGE})),
                ("Tasks", frozenset({HitKind.TASK})),
                ("Comparisons", frozenset({HitKind.COMPARISON, HitKind.ENTRY})))
CHATS = KIND_CHOICES[1][1]
ANY_MODEL = "Any model"
TIMES = (("Any time", None), ("Today", timedelta(days=1)), ("Last 7 days", timedelta(days=7)),
         ("Last 30 days", timedelta(days=30)), ("Last 12 months", timedelta(days=365)))
KIND_WORDS = {HitKind.CONVERSATION: "Chat title", HitKind.MESSAGE: "Chat", HitKind.TASK: "Task",
              HitKind.COMPARISON: "Comparison", HitKind.ENTRY: "Comparison"}


class SearchBox(QWidget):
    searchWanted = Signal(str, object)  # the text ("" ends the search), and the SearchQuery to run
    modelsWanted = Signal()  # the box is in use: the models the history names, for its choice (``set_models``)
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
        filters = QHBoxLayout()
        self.model = QComboBox()
        self.model.setAccessibleName("Only what this model wrote")
        self.model.addItem(ANY_MODEL, None)
        self.model.setMinimumContentsLength(8)
        self.model.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.when = QComboBox()
        self.when.setAccessibleName("Only from this time")
        for words, _ago in TIMES:
            self.when.addItem(words)
        filters.addWidget(self.model, 1)
        filters.addWidget(self.when)
        self.filters = QWidget()
        self.filters.setLayout(filters)
        filters.setContentsMargins(0, 0, 0, 0)
        self.filters.hide()  # while searching
        column.addWidget(self.filters)
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
        self.model.currentIndexChanged.connect(lambda _index: self._wanted())
        self.when.currentIndexChanged.connect(lambda _index: self._wanted())
        self._models_asked = False
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
        for widget in (self.results, self.summary, self.filters):
            widget.setVisible(bool(text))
        if not text:
            self.results.clear()
        elif not self._models_asked:
            self._models_asked = True
            self.modelsWanted.emit()
        self.searchWanted.emit(text, self.query(text))

    def query(self, text: str) -> SearchQuery:
        """What the box's choices ask for: the kinds (or one folder's chats), the model, how far back."""
        kinds, folder_id = self._choices[self.kinds.currentData()]
        ago = TIMES[self.when.currentIndex()][1]
        return SearchQuery(text, kinds=kinds, folder_id=folder_id, model=self.model.currentData(),
                           since=datetime.now(UTC) - ago if ago is not None else None)

    def set_models(self, names: list[str]) -> None:
        """The models to choose among, the one chosen kept."""
        chosen = self.model.currentData()
        self.model.blockSignals(True)
        self.model.clear()
        self.model.addItem(ANY_MODEL, None)
        for name in names:
            self.model.addItem(name, name)
        self.model.setCurrentIndex(max(self.model.findData(chosen), 0) if chosen else 0)
        self.model.blockSignals(False)
        self._models_asked = False  # asked again at the next search: a model may have written since

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
