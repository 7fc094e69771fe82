"""Reading a conversation: messages no wider than a comfortable line, centred on a wide window, and a text size
the person chooses (Ctrl+= / Ctrl+- / Ctrl+0, Ctrl+wheel) that the next start keeps."""

from __future__ import annotations

import json
from datetime import datetime

import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QWheelEvent
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from app.history import MessageRecord
from app.outcomes import FinishReason
from ui.chat.chat_view import ChatView
from ui.chat.message_view import MessageView
from ui.main_window import MainWindow
from ui.services import Services

from tests.helpers.windows import MakeWindow

pytestmark = pytest.mark.gui

PARAGRAPH = "A long paragraph that would run across the whole window if nothing held it back. " * 12
CODE = "```python\nprint('hello')\n```"
PAGE_MARGIN = 24  # px: the least space beside the messages


def _message(message_id: int, role: str, text: str) -> MessageRecord:
    answer = role == "assistant"
    return MessageRecord(message_id, 1, role, text, datetime.now(), "model" if answer else None, None, None, None,
                         None, FinishReason.STOP if answer else None, None, 0)


def _conversation(qtbot: QtBot, view: ChatView) -> None:
    view.show_conversation(1, [_message(1, "user", "Tell me something long."),
                               _message(2, "assistant", f"{PARAGRAPH}\n\n{CODE}")])
    qtbot.waitUntil(view.is_settled)  # the views are made a few at a time


@pytest.mark.parametrize("width", [1340, 600])  # the chat beside the sidebar in a 1600 px window; a narrow one
def test_messages_keep_to_a_reading_width_centred_on_the_page(qtbot: QtBot, width: int) -> None:
    view = ChatView()
    qtbot.addWidget(view)
    view.resize(width, 900)
    view.show()
    _conversation(qtbot, view)
    viewport = view.scroller.viewport()
    column = viewport.width() - 2 * PAGE_MARGIN
    for message_id in (1, 2):
        message = view.message_view(message_id)
        assert message is not None
        qtbot.waitUntil(lambda message=message: message.width() > 0 and message.isVisible())
        assert message.width() <= min(column, 1100), "about 100 characters of the message text"
        reading = view.page.reading_width
        qtbot.waitUntil(lambda message=message, reading=reading: abs(message.width() - min(column, reading)) <= 1)
        left = message.mapTo(viewport, QPoint(0, 0)).x()
        right = viewport.width() - (left + message.width())
        assert abs(left - right) <= 1, "centred"
        assert left >= PAGE_MARGIN


def _with_a_conversation(services: Services) -> None:
    if not services.store.list_conversations():
        conversation = services.store.create_conversation("Long", {})
        services.store.add_message(conversation.id, "user", "Tell me something long.")
        services.store.add_message(conversation.id, "assistant", f"{PARAGRAPH}\n\n{CODE}", model_name="model",
                                   finish_reason="stop")


def _answer(qtbot: QtBot, window: MainWindow) -> MessageView:
    view = window.chat.view
    qtbot.waitUntil(lambda: len(view.message_ids()) == 2)
    answer = view.message_view(view.message_ids()[-1])
    assert answer is not None
    return answer


def _body_point_size(answer: MessageView) -> float:
    [prose] = answer.body.prose()
    [block] = answer.body.code_blocks()
    size = prose.font().pointSizeF()
    assert block.text.font().pointSizeF() == pytest.approx(size, abs=0.01), "code zooms with the text"
    return size


def _saved_zoom(window: MainWindow) -> int:
    path = window.services.paths.settings_file
    return int(json.loads(path.read_text(encoding="utf-8"))["chat_zoom"]) if path.exists() else 100


def test_ctrl_plus_minus_and_zero_zoom_the_conversation_and_the_size_is_kept(qtbot: QtBot,
                                                                             make_window: MakeWindow) -> None:
    window = make_window(_with_a_conversation)
    view = window.chat.view
    answer = _answer(qtbot, window)
    usual = _body_point_size(answer)
    usual_reading = view.page.reading_width
    figures = answer.figures.font().pointSizeF()
    view.composer.setFocus()

    qtbot.keyClick(view.composer, Qt.Key.Key_Equal, Qt.KeyboardModifier.ControlModifier)
    qtbot.keyClick(view.composer, Qt.Key.Key_Equal, Qt.KeyboardModifier.ControlModifier)
    assert window.settings.chat_zoom == 125
    qtbot.waitUntil(lambda: _body_point_size(answer) == pytest.approx(usual * 1.25, abs=0.01))
    assert view.page.reading_width > usual_reading * 1.2, "the column widens with its text"
    assert answer.figures.font().pointSizeF() == figures, "the text of the messages; not their figures"
    assert view.composer.toPlainText() == "", "the keys zoom; they type nothing"
    qtbot.keyClick(view.composer, Qt.Key.Key_Minus, Qt.KeyboardModifier.ControlModifier)
    assert window.settings.chat_zoom == 110
    qtbot.keyClick(view.composer, Qt.Key.Key_0, Qt.KeyboardModifier.ControlModifier)
    assert window.settings.chat_zoom == 100
    qtbot.waitUntil(lambda: _body_point_size(answer) == usual)
    assert view.page.reading_width == usual_reading

    # Ctrl+wheel over the messages zooms too
    viewport = view.scroller.viewport()
    wheel = QWheelEvent(QPointF(50, 50), QPointF(viewport.mapToGlobal(QPoint(50, 50))), QPoint(0, 0),
                        QPoint(0, 120), Qt.MouseButton.NoButton, Qt.KeyboardModifier.ControlModifier,
                        Qt.ScrollPhase.NoScrollPhase, False)
    QApplication.sendEvent(viewport, wheel)
    assert window.settings.chat_zoom == 110
    qtbot.waitUntil(lambda: _saved_zoom(window) == 110)
    window.close()

    reopened = make_window()
    assert reopened.settings.chat_zoom == 110
    qtbot.waitUntil(lambda: _body_point_size(_answer(qtbot, reopened)) == pytest.approx(usual * 1.1, abs=0.01))
