"""One message in the chat: its Markdown body, and for answers the figures and actions under it."""

from __future__ import annotations

import time

from PySide6.QtCore import QEvent, QObject, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QGuiApplication, QKeyEvent
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPlainTextEdit, QPushButton, QVBoxLayout, QWidget

from app.degenerate import Degeneration
from app.history import MessageRecord
from app.outcomes import FinishReason
from app.words import context_trimmed
from ui.chat.message_body import MessageBody

MESSAGE_PADDING = 13  # px between a message's border and its text, each side (with the border's pixel)
RENDER_INTERVAL_MS = 50
RENDER_SHARE = 3  # a long answer is re-laid out at most a third of the time, so the window keeps up with input

FINISH_NOTES = {
    FinishReason.CANCELLED: "Stopped.",
    FinishReason.INTERRUPTED: "Interrupted: the app closed or the engine stopped before the answer was complete.",
    FinishReason.LENGTH: "Reached the answer length limit (max tokens in the conversation settings).",
    FinishReason.DEGENERATE: f"Stopped: {Degeneration.REPEATING.sentence}. Regenerate, or raise the repeat penalty in "
                             "the conversation settings.",
}


class MessageView(QFrame):
    regenerateRequested = Signal()
    continueRequested = Signal()
    deleteRequested = Signal(int)  # this message's id
    versionRequested = Signal(int, int)  # this message's id, and -1 or 1: the version before or after it
    editRequested = Signal(int, str)  # this message's id, and its new text: sent as a new version

    def minimumSizeHint(self) -> QSize:
        """No height of its own: wrapped labels give their height for the narrowest width (a long message
        asked for twice the height it paints at 1400 px), and the chat page would be that tall, opening
        scrolled into blank space below the last message. The layout gives each message its height for the
        width it really has (``heightForWidth``)."""
        return QSize(super().minimumSizeHint().width(), 0)

    def __init__(self, message: MessageRecord) -> None:
        super().__init__()
        self.message_id = message.id
        self.role = message.role
        self.setObjectName("userMessage" if message.role == "user" else "assistantMessage")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        layout = self.column = QVBoxLayout(self)
        layout.setContentsMargins(MESSAGE_PADDING - 1, 8, MESSAGE_PADDING - 1, 8)
        layout.setSpacing(4)
        self.author = QLabel("You" if message.role == "user" else (message.model_name or "Assistant"))
        self.author.setObjectName("messageAuthor")
        layout.addWidget(self.author)
        self.body = MessageBody()
        layout.addWidget(self.body)
        self.editor: _Editor | None = None  # made when Edit is first pressed
        self.footer = QHBoxLayout()
        self.previous_button = QPushButton("‹")
        self.next_button = QPushButton("›")
        self.versions = QLabel()
        self.versions.setObjectName("messageFigures")
        for button, step, words in ((self.previous_button, -1, "Show the version before"),
                                    (self.next_button, 1, "Show the version after")):
            button.setObjectName("messageAction")
            button.setToolTip(words)
            button.setAccessibleName(words)
            button.setFixedWidth(button.fontMetrics().horizontalAdvance("‹") * 2 + 18)  # not a word's width
            button.clicked.connect(lambda _checked=False, step=step: self.versionRequested.emit(self.message_id, step))
        self.footer.addWidget(self.previous_button)
        self.footer.addWidget(self.versions)
        self.footer.addWidget(self.next_button)
        self.figures = QLabel()
        self.figures.setObjectName("messageFigures")
        self.figures.setWordWrap(True)
        self.footer.addWidget(self.figures, 1)
        self.copy_button = QPushButton("Copy")
        self.copy_button.setObjectName("messageAction")
        self.copy_button.setToolTip("Copy this message as text")
        self.copy_button.clicked.connect(self._copy)
        self.regenerate_button = QPushButton("Regenerate")
        self.regenerate_button.setObjectName("messageAction")
        self.regenerate_button.setToolTip("Answer the last question again (Ctrl+R)")
        self.regenerate_button.clicked.connect(self.regenerateRequested)
        self.continue_button = QPushButton("Continue")
        self.continue_button.setObjectName("messageAction")
        self.continue_button.setToolTip("Go on with this answer from where it stopped")
        self.continue_button.clicked.connect(self.continueRequested)
        self.delete_button = QPushButton("Delete")
        self.delete_button.setObjectName("messageAction")
        self.delete_button.setToolTip("Delete this message (Undo is offered)")
        self.delete_button.clicked.connect(lambda: self.deleteRequested.emit(self.message_id))
        self.edit_button = QPushButton("Edit")
        self.edit_button.setObjectName("messageAction")
        self.edit_button.setToolTip("Change this message and send it again (the old one and its answers are kept, "
                                    "a click on ‹ away)")
        self.edit_button.clicked.connect(self.start_editing)
        self.footer.addWidget(self.copy_button)
        self.footer.addWidget(self.edit_button)
        self.footer.addWidget(self.continue_button)
        self.footer.addWidget(self.regenerate_button)
        self.footer.addWidget(self.delete_button)
        layout.addLayout(self.footer)
        self._text = ""
        self._render_timer = QTimer(self, singleShot=True, interval=RENDER_INTERVAL_MS)
        self._render_timer.timeout.connect(self._render)
        self.notice = ""
        self.finish_reason: FinishReason | None = message.finish_reason
        self._editable = True
        self.version, self.version_count = message.version, message.versions
        self.update_from(message)

    @property
    def text(self) -> str:
        return self._text

    def set_streaming_text(self, text: str) -> None:
        """Re-render at most every 50 ms, or less often as a long answer's layout grows longer: Markdown layout
        of a long answer costs more than a token."""
        self._text = text
        if not self._render_timer.isActive():
            self._render_timer.start()

    def _render(self) -> None:
        started = time.perf_counter()
        self.body.setMarkdown(self._text if self._text else "…")
        if self.body.isVisible():
            self.body.heightForWidth(self.body.width())  # the layout now, to time it (the layout pass reuses it)
        spent_ms = (time.perf_counter() - started) * 1000
        self._render_timer.setInterval(max(RENDER_INTERVAL_MS, round(spent_ms * RENDER_SHARE)))

    def update_from(self, message: MessageRecord) -> None:
        self._text = message.content
        self.finish_reason = message.finish_reason
        self._render_timer.stop()
        self._render()
        streaming = message.role == "assistant" and message.finish_reason is None
        self.copy_button.setVisible(not streaming and bool(message.content))
        self.delete_button.setVisible(not streaming)
        self.edit_button.setVisible(message.role == "user" and self._editable)
        self.version, self.version_count = message.version, message.versions
        several = message.versions > 1
        self.versions.setText(f"{message.version}/{message.versions}")
        self.versions.setAccessibleName(f"Version {message.version} of {message.versions}")
        for widget in (self.previous_button, self.versions, self.next_button):
            widget.setVisible(several)
        self.previous_button.setEnabled(message.version > 1)
        self.next_button.setEnabled(message.version < message.versions)
        self.regenerate_button.setVisible(False)
        self.continue_button.setVisible(False)
        if message.role == "assistant":
            self.author.setText(message.model_name or "Assistant")
            self.figures.setText(_figures(message, self.notice))
            self.setProperty("failed", message.finish_reason == FinishReason.ERROR)

    def set_notice(self, notice: str) -> None:
        self.notice = notice
        self.figures.setText(notice)

    def set_regenerate_visible(self, visible: bool) -> None:
        self.regenerate_button.setVisible(visible and self.role == "assistant")

    def set_continue_visible(self, visible: bool) -> None:
        self.continue_button.setVisible(visible and self.role == "assistant")

    def set_editable(self, editable: bool) -> None:
        """Edit is offered on questions while no answer is being written."""
        self._editable = editable
        self.edit_button.setVisible(editable and self.role == "user" and not self.is_editing())
        self.previous_button.setEnabled(editable and self.version > 1)
        self.next_button.setEnabled(editable and self.version < self.version_count)

    def is_editing(self) -> bool:
        return self.editor is not None and self.editor.isVisible()

    def start_editing(self) -> None:
        if self.editor is None:
            self.editor = _Editor(self)
            self.column.insertWidget(self.column.indexOf(self.body) + 1, self.editor)
            self.editor.sent.connect(lambda text: self.editRequested.emit(self.message_id, text))
            self.editor.cancelled.connect(self.stop_editing)
        self.editor.start(self._text)
        self.body.hide()
        for button in (self.edit_button, self.copy_button, self.delete_button):
            button.hide()

    def stop_editing(self) -> None:
        """The edit is given up (Cancel, Esc): the message as it was."""
        if self.editor is not None:
            self.editor.hide()
        self.body.show()
        self.edit_button.setVisible(self.role == "user" and self._editable)
        self.copy_button.setVisible(bool(self._text))
        self.delete_button.show()

    def edit_failed(self) -> None:
        """The edited message could not be sent: the editor is back, with the text as it was written."""
        if self.editor is not None:
            self.editor.set_sending(False)

    def _copy(self) -> None:
        QGuiApplication.clipboard().setText(self._text)
        self.copy_button.setText("Copied")
        QTimer.singleShot(1500, self.copy_button, lambda: self.copy_button.setText("Copy"))


def _figures(message: MessageRecord, notice: str) -> str:
    parts: list[str] = []
    if message.finish_reason is None:
        return notice or "Writing…"
    if message.finish_reason == FinishReason.ERROR:
        return f"⚠ {message.error or 'The answer failed.'}"
    if message.ttft_s is not None:
        parts.append(f"{message.ttft_s:.2f} s to first token")
    if message.tokens_per_s:
        parts.append(f"{message.tokens_per_s:.1f} tokens/s")
    if message.completion_tokens:
        parts.append(f"{message.completion_tokens} tokens")
    text = " · ".join(parts)
    note = FINISH_NOTES.get(message.finish_reason) if message.finish_reason else None
    if note:
        text = f"{text} — {note}" if text else note
    if message.context_dropped:
        dropped = message.context_dropped
        text += "\n" + context_trimmed(dropped)
    return text


class _Editor(QWidget):
    """A question being edited in its place: Send (Ctrl+Enter) makes it a new version, Cancel (Esc) leaves it."""

    sent = Signal(str)
    cancelled = Signal()

    def __init__(self, parent: QWidget) -> None:
        super().__init__(parent)
        column = QVBoxLayout(self)
        column.setContentsMargins(0, 0, 0, 0)
        self.text = QPlainTextEdit()
        self.text.setAccessibleName("The message, edited")
        self.text.setTabChangesFocus(True)
        column.addWidget(self.text)
        row = QHBoxLayout()
        hint = QLabel("The message as it was, and its answers, stay a click on ‹ away.")
        hint.setObjectName("hint")
        hint.setWordWrap(True)
        row.addWidget(hint, 1)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.cancelled)
        self.send_button = QPushButton("Send")
        self.send_button.setObjectName("primary")
        self.send_button.setToolTip("Send the edited message (Ctrl+Enter)")
        self.send_button.clicked.connect(self._send)
        row.addWidget(self.cancel_button)
        row.addWidget(self.send_button)
        column.addLayout(row)
        self.text.installEventFilter(self)
        self.text.textChanged.connect(self._changed)

    def _changed(self) -> None:
        """Send only with something to send; the box as tall as its text, from 3 to 12 lines."""
        self.send_button.setEnabled(bool(self.text.toPlainText().strip()) and not self.text.isReadOnly())
        lines = max(3, min(12, self.text.document().size().toSize().height()))
        margins = self.text.contentsMargins()
        self.text.setFixedHeight(self.text.fontMetrics().lineSpacing() * lines + 2 * round(
            self.text.document().documentMargin()) + margins.top() + margins.bottom())

    def start(self, text: str) -> None:
        self.text.setPlainText(text)
        self.set_sending(False)
        self.show()
        self.text.setFocus()
        self.text.moveCursor(self.text.textCursor().MoveOperation.End)

    def set_sending(self, sending: bool) -> None:
        self.text.setReadOnly(sending)
        self.send_button.setEnabled(not sending and bool(self.text.toPlainText().strip()))
        self.send_button.setText("Sending…" if sending else "Send")

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        """Esc and Ctrl+Enter are the window's too (Stop, Run): taken here first while the editor has the focus."""
        if watched is self.text and event.type() in (QEvent.Type.ShortcutOverride, QEvent.Type.KeyPress):
            assert isinstance(event, QKeyEvent)
            key, control = event.key(), bool(event.modifiers() & Qt.KeyboardModifier.ControlModifier)
            ours = key == Qt.Key.Key_Escape or (control and key in (Qt.Key.Key_Return, Qt.Key.Key_Enter))
            if ours:
                event.accept()
                if event.type() == QEvent.Type.KeyPress:
                    if key == Qt.Key.Key_Escape:
                        self.cancelled.emit()
                    else:
                        self._send()
                return True
        return super().eventFilter(watched, event)

    def _send(self) -> None:
        text = self.text.toPlainText().strip()
        if text and self.send_button.isEnabled():
            self.set_sending(True)
            self.sent.emit(text)
