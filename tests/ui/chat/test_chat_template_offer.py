"""A model whose chat template is broken: the answer says so, and one button answers again in ChatML."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from app.engine import protocol as p
from app.history import MessageRecord

from tests.helpers.gguf_fixtures import with_chat_template
from tests.helpers.windows import TIMEOUT, MakeWindow, import_model

pytestmark = [pytest.mark.engine, pytest.mark.window(max_tokens=16)]

LOOPING = "{% for i in range(99999) %}{% for j in range(99999) %}{% endfor %}{% endfor %}"


def test_a_broken_chat_template_is_said_and_chatml_answers_instead(
        qtbot: QtBot, make_window: MakeWindow, test_model_path: Path, tmp_path: Path) -> None:
    window = make_window()
    import_model(qtbot, window, with_chat_template(test_model_path, tmp_path, LOOPING))
    bar = window.chat.view.model_bar
    composer = window.chat.view.composer
    composer.setFocus()
    qtbot.keyClicks(composer, "Hello")
    with qtbot.waitSignal(window.bridge.answerFinished, timeout=TIMEOUT) as failed:
        qtbot.keyClick(composer, Qt.Key.Key_Return)  # loads the model, then sends
    message: MessageRecord = failed.args[0].message
    assert message.finish_reason == "error"
    assert message.error is not None and message.error.startswith("This model's chat template is broken")
    view = window.chat.view.message_view(message.id)
    assert view is not None and "chat template is broken" in view.figures.text()
    assert bar.chatml_button.isVisible()  # shown only now: a model whose template works never shows it

    with qtbot.waitSignal(window.bridge.answerFinished, timeout=TIMEOUT) as answered:
        qtbot.mouseClick(bar.chatml_button, Qt.MouseButton.LeftButton)
    again: MessageRecord = answered.args[0].message
    assert again.finish_reason in ("stop", "length") and again.content
    assert not bar.chatml_button.isVisible()
    loaded = window.services.engine.loaded
    assert loaded is not None and loaded.chat_format == p.CHATML_CHOSEN
