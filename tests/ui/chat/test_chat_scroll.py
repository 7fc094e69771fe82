"""A chat opens, and stays while an answer streams, with its last message at the bottom of the view: wrapped labels
once gave the page the height they need at the narrowest width, so it opened scrolled into blank space."""

from __future__ import annotations

from datetime import datetime

import pytest
from pytestqt.qtbot import QtBot

from app.history import MessageRecord
from app.outcomes import FinishReason
from ui.chat.chat_view import ChatView

pytestmark = pytest.mark.gui

LONG = "This is a fairly long sentence that wraps across several lines of the conversation. " * 30
VERY_LONG = "A very long pasted paragraph with many words in it. " * 400
CODE = "\n\n```python\n" + "\n".join(f"total_{i} = compute(values[{i}]) + offset  # step {i}" * 2 for i in range(30)) \
    + "\n```\n\nThat is all."


def _message(message_id: int, role: str, text: str) -> MessageRecord:
    answer = role == "assistant"
    return MessageRecord(message_id, 1, role, text, datetime.now(), "model" if answer else None, None, None, None,
                         None, FinishReason.STOP if answer else None, None, 0)


def _gap_below_last(qtbot: QtBot, view: ChatView, message_id: int) -> int:
    """Pixels between the last message's bottom edge and the bottom of the visible area, less the page margin."""
    last = view.message_view(message_id)
    assert last is not None
    viewport = view.scroller.viewport()
    margin = view.messages_layout.contentsMargins().bottom()
    return viewport.height() - margin - (last.mapTo(viewport, last.rect().bottomLeft()).y() + 1)


@pytest.mark.parametrize("size", [(1400, 900), (1024, 700), (800, 600)])
def test_the_last_message_is_at_the_bottom_when_opened_and_while_streaming(qtbot: QtBot,
                                                                           size: tuple[int, int]) -> None:
    view = ChatView()
    qtbot.addWidget(view)
    view.resize(*size)
    view.show()
    messages = [_message(1, "user", "Hi"), _message(2, "assistant", "Hello! How can I help?"),
                _message(3, "user", LONG), _message(4, "assistant", LONG + CODE), _message(5, "user", VERY_LONG),
                _message(6, "assistant", "Short answer.")]
    view.show_conversation(1, messages)
    qtbot.waitUntil(lambda: abs(_gap_below_last(qtbot, view, 6)) <= 1)

    question = _message(7, "user", "And then?")
    view.answer_started(question, _message(8, "assistant", ""))
    text = ""
    for word in ("Then ", "the ", "story ", "went ", "on, ") * 12 + ("\n\n```python\n",) \
            + tuple(f"line_{i} = {i}  # a code block that grows\n" for i in range(12)):
        text += word
        view.answer_delta(8, text)
        qtbot.waitUntil(lambda: abs(_gap_below_last(qtbot, view, 8)) <= 1)


def test_tab_in_the_message_box_moves_on_instead_of_typing_a_tab(qtbot: QtBot) -> None:
    from PySide6.QtCore import Qt

    view = ChatView()
    qtbot.addWidget(view)
    qtbot.keyClicks(view.composer, "Hello")
    qtbot.keyClick(view.composer, Qt.Key.Key_Tab)
    assert view.composer.toPlainText() == "Hello" and view.composer.tabChangesFocus()
