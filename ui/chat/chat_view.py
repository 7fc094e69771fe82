"""The chat page's layout: the model bar on top, the messages of one conversation with streaming answers, and the
box to write in. It shows and asks (``sendRequested``, ``stopRequested``, the model bar's requests); ``ChatPage``
decides."""

from __future__ import annotations

import bisect
import time
from collections import deque
from enum import StrEnum
from typing import cast

from PySide6.QtCore import QEvent, QObject, Qt, QTimer, Signal
from PySide6.QtGui import QFont, QFontMetricsF, QKeyEvent, QResizeEvent, QWheelEvent
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from app.history import MessageRecord
from app.outcomes import CONTINUABLE
from app.words import context_use
from ui.chat.message_view import MESSAGE_PADDING, MessageView
from ui.chat.model_bar import ModelBar

# A pause in typing this long sends the draft to the model to read ahead: shorter than the gap people leave
# before pressing Enter, long enough that a burst of keys is one read-ahead.
DRAFT_PAUSE_MS = 120
# The longest line of a message, in characters of its text: longer lines are hard to follow from one to the next.
READING_CHARACTERS = 100
PAGE_MARGIN = 24  # px beside the messages when the page is narrower than the reading width
# A turn of the event loop makes message views for this long at most, then lets input and painting in: one message
# takes a few milliseconds (a long one with code more), a page of them would hold the window up a quarter second.
ADD_BUDGET_S = 0.008
# After the last view of a page is made and laid out, the reader's place is checked again: older messages are read
# when it is within a screen of the top, or the page does not fill the screen.
SETTLE_MS = 100


class ReadingPage(QWidget):
    """The messages, in a column centred on the page and no wider than ``reading_width``: the side margins take
    the rest (a column of fixed width in a box layout would be given its size hint, not the width it has)."""

    def __init__(self) -> None:
        super().__init__()
        self.setObjectName("chatPage")
        self.setAttribute(Qt.WidgetAttribute.WA_StyledBackground)  # else a subclass paints no style sheet background
        self.messages_layout = QVBoxLayout(self)
        self.messages_layout.setContentsMargins(PAGE_MARGIN, 16, PAGE_MARGIN, 16)
        self.reading_width = 720

    def set_reading_width(self, width: int) -> None:
        self.reading_width = width
        self._fit()

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._fit()

    def _fit(self) -> None:
        side = max(PAGE_MARGIN, (self.width() - self.reading_width) // 2)
        margins = self.messages_layout.contentsMargins()
        if side != margins.left():
            self.messages_layout.setContentsMargins(side, margins.top(), side, margins.bottom())


class Composer(QPlainTextEdit):
    """Enter sends; Shift+Enter starts a new line; Tab moves on to the next control, as everywhere else."""

    submitted = Signal()

    def __init__(self) -> None:
        super().__init__()
        self.setTabChangesFocus(True)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and \
                not event.modifiers() & Qt.KeyboardModifier.ShiftModifier:
            self.submitted.emit()
            return
        super().keyPressEvent(event)


class MeterLevel(StrEnum):
    """How full the context meter is: room to spare, full enough that older messages are (or soon will be) left
    out, or a message too long to send."""

    OK = "ok"
    FULL = "full"
    OVER = "over"


class ChatView(QWidget):
    sendRequested = Signal(str)
    draftChanged = Signal(str)  # the message being written, once typing pauses (the model reads ahead)
    draftPaused = Signal(str)  # the same, also empty, in a new chat or while answering (the context meter counts)
    stopRequested = Signal()
    regenerateRequested = Signal()
    zoomRequested = Signal(int)  # steps larger (or smaller, below 0): Ctrl+wheel over the messages
    continueRequested = Signal()
    deleteMessageRequested = Signal(int)  # message id
    versionRequested = Signal(int, int)  # message id, -1 or 1: show the version before or after it
    editRequested = Signal(int, str)  # message id, the new text: send it as a new version
    stopOtherRequested = Signal()  # stop the answer another chat is waiting for
    unqueueRequested = Signal()  # the messages waiting to be sent come back into the box
    olderWanted = Signal(int, int)  # conversation id, the first message shown: the page of messages before it

    def __init__(self) -> None:
        super().__init__()
        self.conversation_id: int | None = None
        self._views: dict[int, MessageView] = {}
        self._ids: list[int] = []  # of the views, in their order (the order messages were added)
        self._busy = False
        self._can_continue = True
        self._reveal: int | None = None
        self._mark = True  # the message revealed is marked (a search found it)
        self.revealed: int | None = None  # the message a search opened the conversation at
        self._to_make: deque[MessageRecord] = deque()  # messages still to be shown, the next first
        self._maker = QTimer(self, singleShot=True, interval=0)
        self._maker.timeout.connect(self._make_views)
        self._settle_timer = QTimer(self, singleShot=True, interval=SETTLE_MS)
        self._settle_timer.timeout.connect(self._settled)
        self._older = False  # the conversation has messages before the first shown
        self._older_asked = False
        self._growing_top = False  # older messages are being put above: the reader's place is kept
        self._last_maximum = 0

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        self.model_bar = ModelBar()
        layout.addWidget(self.model_bar)

        self.banner = QLabel()
        self.banner.setObjectName("banner")
        self.banner.setWordWrap(True)
        self.banner.hide()
        layout.addWidget(self.banner)

        self.scroller = QScrollArea()
        self.scroller.setWidgetResizable(True)
        self.scroller.setFrameShape(QFrame.Shape.NoFrame)
        self.page = ReadingPage()
        self.messages_layout = self.page.messages_layout
        self.messages_layout.setSpacing(12)
        self.empty = QLabel()
        self.empty.setObjectName("emptyState")
        self.empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty.setWordWrap(True)
        self.messages_layout.addWidget(self.empty)
        self.messages_layout.addStretch(1)
        self.scroller.setWidget(self.page)
        layout.addWidget(self.scroller, 1)
        self.scroller.verticalScrollBar().rangeChanged.connect(self._follow)
        self._at_bottom = True
        self.scroller.verticalScrollBar().valueChanged.connect(self._track_bottom)
        self.scroller.viewport().installEventFilter(self)  # Ctrl+wheel: the text size

        self.notices = QVBoxLayout()  # the page's notices over the box: the undo bar of a deleted message
        self.notices.setContentsMargins(16, 8, 16, 0)
        self.notices.setSpacing(6)
        self.waiting = QFrame()
        self.waiting.setObjectName("waitingNotice")
        waiting_row = QHBoxLayout(self.waiting)
        waiting_row.setContentsMargins(10, 4, 4, 4)
        self.waiting_label = QLabel()
        self.waiting_label.setWordWrap(True)
        self.stop_other_button = QPushButton("Stop that answer")
        self.stop_other_button.setToolTip("Stop the answer being written in the other chat; your message goes next")
        self.stop_other_button.clicked.connect(self.stopOtherRequested)
        self.unqueue_button = QPushButton("Edit")
        self.unqueue_button.setToolTip("Take the waiting message back into the box (Esc)")
        self.unqueue_button.clicked.connect(self.unqueueRequested)
        waiting_row.addWidget(self.waiting_label, 1)
        waiting_row.addWidget(self.stop_other_button)
        waiting_row.addWidget(self.unqueue_button)
        self.waiting.hide()
        self.notices.addWidget(self.waiting)
        layout.addLayout(self.notices)

        composer_row = QHBoxLayout()
        composer_row.setContentsMargins(16, 8, 16, 12)
        self.composer = Composer()
        self.composer.setObjectName("composer")
        self.composer.setPlaceholderText("Write a message… (Enter sends, Shift+Enter adds a line)")
        self.composer.setFixedHeight(84)
        self.composer.submitted.connect(self._submit)
        self._draft_timer = QTimer(self)
        self._draft_timer.setSingleShot(True)
        self._draft_timer.setInterval(DRAFT_PAUSE_MS)
        self._draft_timer.timeout.connect(self._draft_paused)
        self.composer.textChanged.connect(self._draft_timer.start)
        composer_column = QVBoxLayout()
        composer_column.setSpacing(4)
        composer_column.addWidget(self.composer)
        self.meter_row = QWidget()
        meter_layout = QHBoxLayout(self.meter_row)
        meter_layout.setContentsMargins(2, 0, 2, 0)
        self.meter = QProgressBar()
        self.meter.setObjectName("contextMeter")
        self.meter.setTextVisible(False)
        self.meter.setFixedSize(96, 6)
        self.meter_label = QLabel()
        self.meter_label.setObjectName("contextMeterLabel")
        self.meter_label.setWordWrap(True)
        meter_layout.addWidget(self.meter, 0, Qt.AlignmentFlag.AlignVCenter)
        meter_layout.addWidget(self.meter_label, 1)
        self.meter_row.hide()  # until a model counts the conversation's tokens
        composer_column.addWidget(self.meter_row)
        composer_row.addLayout(composer_column, 1)
        self.send_button = QPushButton("Send")
        self.send_button.setObjectName("primary")
        self.send_button.setToolTip("Send (Enter)")
        self.send_button.clicked.connect(self._submit)
        self.stop_button = QPushButton("Stop")
        self.stop_button.setToolTip("Stop the answer (Esc)")
        self.stop_button.clicked.connect(self.stopRequested)
        self.stop_button.hide()
        buttons = QVBoxLayout()
        buttons.addWidget(self.send_button)
        buttons.addWidget(self.stop_button)
        buttons.addStretch(1)
        composer_row.addLayout(buttons)
        layout.addLayout(composer_row)
        self.show_empty("Start a new chat, or pick one on the left.")
        self.set_zoom(100)

    # --- content ---

    def show_empty(self, text: str) -> None:
        self._clear()
        self.conversation_id = None
        self.empty.setText(text)
        self.empty.show()

    def show_conversation(self, conversation_id: int, messages: list[MessageRecord], older: bool = False,
                          reveal: int | None = None, mark: bool = True) -> None:
        """The conversation's last ``messages``, the newest first (they are what shows); with ``older``, the ones
        before them are asked for (``olderWanted``) as the reader scrolls up to them. ``reveal``: a message to show
        at the top and, with ``mark``, mark (a search found it), instead of the newest at the bottom."""
        self._clear()
        self.conversation_id = conversation_id
        self.empty.setText("Ask anything. Your conversation stays on this computer.")
        self.empty.setVisible(not messages)
        self._older = older
        self._reveal = reveal
        self._mark = mark
        self._to_make.extend(reversed(messages))
        self._make_views()
        self._at_bottom = reveal is None
        if reveal is None:
            QTimer.singleShot(0, self, self._scroll_to_bottom)

    def add_older(self, conversation_id: int, messages: list[MessageRecord], older: bool) -> None:
        """The page before the first message shown, put above it while the reader's place stays."""
        if conversation_id != self.conversation_id:
            return
        self._older, self._older_asked = older, False
        self._growing_top = True
        self._to_make.extend(reversed(messages))
        self._make_views()

    def older_failed(self, conversation_id: int) -> None:
        if conversation_id == self.conversation_id:
            self._older_asked = False

    def has_older(self) -> bool:
        return self._older

    def is_settled(self) -> bool:
        """Every message given is shown, and none is being read."""
        return not self._to_make and not self._older_asked and not self._settle_timer.isActive()

    def _make_views(self) -> None:
        started = time.perf_counter()
        while self._to_make and time.perf_counter() - started < ADD_BUDGET_S:
            self._add(self._to_make.popleft())
        if self._to_make:
            self._maker.start()
        else:
            self._update_regenerate()
            self._settle_timer.start()
            if self._reveal is not None:
                QTimer.singleShot(0, self, self._show_revealed)

    def _show_revealed(self) -> None:
        """The message a search found, at the top of the view and marked until another conversation opens."""
        view = self._views.get(self._reveal) if self._reveal is not None else None
        self._reveal = None
        if view is None:
            return
        if self._mark:
            view.setProperty("found", True)
            view.style().unpolish(view)
            view.style().polish(view)
        self.scroller.verticalScrollBar().setValue(view.y())
        self.revealed = view.message_id

    def _settled(self) -> None:
        self._growing_top = False
        self._want_older()

    def _want_older(self) -> None:
        """Older messages are read when the reader is within a screen of the top of those shown."""
        if not self._older or self._older_asked or self._to_make or not self._ids or self.conversation_id is None \
                or self._settle_timer.isActive():
            return
        if self.scroller.verticalScrollBar().value() <= self.scroller.viewport().height():
            self._older_asked = True
            self.olderWanted.emit(self.conversation_id, self._ids[0])

    def _clear(self) -> None:
        self.revealed = None
        for view in self._views.values():
            view.setParent(None)
            view.deleteLater()
        self._views.clear()
        self._ids.clear()
        self._to_make.clear()
        self._maker.stop()
        self._settle_timer.stop()
        self._older = self._older_asked = self._growing_top = False

    def _add(self, message: MessageRecord) -> MessageView:
        """A message at its place: messages are shown in the order they were added (by id)."""
        self.empty.hide()
        view = MessageView(message)
        view.regenerateRequested.connect(self.regenerateRequested)
        view.continueRequested.connect(self.continueRequested)
        view.deleteRequested.connect(self.deleteMessageRequested)
        view.versionRequested.connect(self.versionRequested)
        view.editRequested.connect(self.editRequested)
        view.set_editable(not self._busy)
        place = bisect.bisect_left(self._ids, message.id)
        self.messages_layout.insertWidget(self.messages_layout.indexOf(self.empty) + 1 + place, view)
        self._ids.insert(place, message.id)
        self._views[message.id] = view
        return view

    def _drop(self, message_id: int) -> None:
        view = self._views.pop(message_id, None)
        if view is not None:
            self._ids.remove(message_id)
            view.setParent(None)
            view.deleteLater()

    def insert_message(self, message: MessageRecord) -> None:
        """A deleted message back at its place (Undo); one before the first shown comes with its page."""
        if message.id not in self._views and not (self._older and self._ids and message.id < self._ids[0]):
            self._add(message)
            self._update_regenerate()

    def remove_message(self, message_id: int) -> None:
        self._drop(message_id)
        self.empty.setVisible(not self._views)
        self._update_regenerate()

    def message_view(self, message_id: int) -> MessageView | None:
        return self._views.get(message_id)

    def message_ids(self) -> list[int]:
        return list(self._ids)

    def answer_started(self, user: MessageRecord | None, assistant: MessageRecord, continued: bool = False,
                       replaced: int | None = None) -> None:
        """An answer began. With ``replaced``, it (and ``user``, an edited question) is a new version of that
        message: the old one goes from the view with everything after it, which stays a click on ‹ away."""
        if continued and assistant.id in self._views:  # the answer goes on in its own message
            self._views[assistant.id].update_from(assistant)
            self._at_bottom = True
            self._update_regenerate()
            return
        if replaced is not None:
            for message_id in [i for i in self._ids if i >= replaced]:
                self._drop(message_id)
        if user is not None:
            self._add(user)
        self._add(assistant)
        self._at_bottom = True
        self._update_regenerate()

    def answer_delta(self, message_id: int, text: str) -> None:
        view = self._views.get(message_id)
        if view is not None:
            view.set_streaming_text(text)

    def answer_notice(self, message_id: int, notice: str) -> None:
        view = self._views.get(message_id)
        if view is not None:
            view.set_notice(notice)

    def answer_finished(self, message: MessageRecord) -> None:
        view = self._views.get(message.id)
        if view is not None:
            view.update_from(message)
        self._update_regenerate()

    def set_can_continue(self, can: bool) -> None:
        """Whether the loaded model can go on from an answer's end (Continue); a remote one cannot."""
        self._can_continue = can
        self._update_regenerate()

    def _update_regenerate(self) -> None:
        """Regenerate, and Continue for an answer cut short, are offered on the last answer, while none is written."""
        views = [self._views[message_id] for message_id in self._ids]
        for view in views:
            view.set_regenerate_visible(False)
            view.set_continue_visible(False)
            view.set_editable(not self._busy)
        if views and views[-1].role == "assistant" and not self._busy:
            views[-1].set_regenerate_visible(True)
            views[-1].set_continue_visible(views[-1].finish_reason in CONTINUABLE and bool(views[-1].text)
                                           and self._can_continue)

    # --- state ---

    def is_busy(self) -> bool:
        return self._busy

    def set_busy(self, busy: bool) -> None:
        self._busy = busy
        self.send_button.setVisible(not busy)
        self.stop_button.setVisible(busy)
        self._update_regenerate()

    def show_banner(self, text: str) -> None:
        self.banner.setText(text)
        self.banner.setVisible(bool(text))

    def show_waiting(self, text: str, can_stop_other: bool) -> None:
        """Messages of this chat wait for an answer to finish (``text`` says which); empty: none wait."""
        self.waiting_label.setText(text)
        self.stop_other_button.setVisible(can_stop_other)
        self.waiting.setVisible(bool(text))

    def show_meter(self, tokens: int, context_length: int, level: MeterLevel, note: str, explanation: str) -> None:
        """The context meter: ``tokens`` of ``context_length``, with a ``note`` after the figures when it is
        full or over, and ``explanation`` in words on hover."""
        self.meter.setRange(0, max(context_length, 1))
        self.meter.setValue(min(tokens, context_length))
        self.meter_label.setText(" · ".join(part for part in (context_use(tokens, context_length), note) if part))
        for widget in (self.meter, self.meter_label):
            widget.setProperty("level", level.value)
            widget.style().unpolish(widget)
            widget.style().polish(widget)
        self.meter_row.setToolTip(explanation)
        self.meter_row.setAccessibleDescription(explanation)
        self.meter_row.show()

    def hide_meter(self) -> None:
        self.meter_row.hide()

    def draft(self) -> str:
        return self.composer.toPlainText().strip()

    def _submit(self) -> None:
        text = self.composer.toPlainText().strip()
        if not text:
            return
        self.composer.clear()
        self.sendRequested.emit(text)

    def _draft_paused(self) -> None:
        text = self.composer.toPlainText().strip()
        self.draftPaused.emit(text)
        if text and not self._busy and self.conversation_id is not None:
            self.draftChanged.emit(text)

    def restore_draft(self, text: str) -> None:
        """A message that was not sent comes back into the box, before anything written since."""
        written = self.composer.toPlainText().strip()
        if written != text:
            self.composer.setPlainText(f"{text}\n\n{written}" if written else text)

    # --- the text size ---

    def set_zoom(self, percent: int) -> None:
        """The messages' text at ``percent`` of the app's size, and their column as wide as that text reads well.
        A style sheet, not a font: the app's style sheet may set every widget's font size, and a sheet wins over
        a font; this one, set on the page, wins over the app's for the messages' text alone."""
        self.zoom = percent
        self.page.setStyleSheet("")
        self.page.ensurePolished()
        font = QFont(self.page.font())
        if font.pointSizeF() > 0:
            font.setPointSizeF(font.pointSizeF() * percent / 100)
            size = f"{font.pointSizeF():.2f}pt"
        else:
            font.setPixelSize(max(1, round(font.pixelSize() * percent / 100)))
            size = f"{font.pixelSize()}px"
        if percent != 100:
            self.page.setStyleSheet(f"#messageBody, #codeText {{ font-size: {size}; }}")
        text_width = QFontMetricsF(font).averageCharWidth() * READING_CHARACTERS
        self.page.set_reading_width(round(text_width) + 2 * MESSAGE_PADDING)

    def changeEvent(self, event: QEvent) -> None:
        super().changeEvent(event)
        if event.type() == QEvent.Type.ApplicationFontChange:  # the system's text size changed: the zoom is of it
            self.set_zoom(self.zoom)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if watched is self.scroller.viewport() and event.type() == QEvent.Type.Wheel:
            wheel = cast(QWheelEvent, event)
            if wheel.modifiers() & Qt.KeyboardModifier.ControlModifier and wheel.angleDelta().y():
                self.zoomRequested.emit(1 if wheel.angleDelta().y() > 0 else -1)
                return True
        return super().eventFilter(watched, event)

    # --- scrolling: follow the answer unless the person scrolled up to read ---

    def _track_bottom(self, value: int) -> None:
        bar = self.scroller.verticalScrollBar()
        self._at_bottom = value >= bar.maximum() - 24
        self._want_older()

    def _follow(self, _minimum: int, maximum: int) -> None:
        grown, self._last_maximum = maximum - self._last_maximum, maximum
        if self._at_bottom:
            self._scroll_to_bottom()
        elif self._growing_top and grown > 0:  # the messages put above push the one being read down by as much
            bar = self.scroller.verticalScrollBar()
            bar.setValue(bar.value() + grown)

    def _scroll_to_bottom(self) -> None:
        bar = self.scroller.verticalScrollBar()
        bar.setValue(bar.maximum())
