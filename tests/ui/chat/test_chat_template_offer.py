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


def test_chatml_chosen_for_a_model_stays_chosen_when_it_is_loaded_again_until_its_own_template_is_asked_for(
        qtbot: QtBot, make_window: MakeWindow, test_model_path: Path, tmp_path: Path) -> None:
    window = make_window()
    import_model(qtbot, window, with_chat_template(test_model_path, tmp_path, LOOPING))
    bar, engine = window.chat.view.model_bar, window.services.engine
    composer = window.chat.view.composer
    composer.setFocus()
    qtbot.keyClicks(composer, "Hello")
    with qtbot.waitSignal(window.bridge.answerFinished, timeout=TIMEOUT):
        qtbot.keyClick(composer, Qt.Key.Key_Return)
    with qtbot.waitSignal(window.bridge.answerFinished, timeout=TIMEOUT):
        qtbot.mouseClick(bar.chatml_button, Qt.MouseButton.LeftButton)
    assert bar.own_template_button.isVisible() and bar.status.text().startswith("In ChatML")
    loaded = engine.loaded
    assert loaded is not None and window.settings.chatml_models == [loaded.path]

    with qtbot.waitSignal(window.bridge.modelUnloaded, timeout=TIMEOUT):
        qtbot.mouseClick(bar.load_button, Qt.MouseButton.LeftButton)  # Unload
    with qtbot.waitSignal(window.bridge.modelLoaded, timeout=TIMEOUT):
        qtbot.mouseClick(bar.load_button, Qt.MouseButton.LeftButton)  # Load: in ChatML again, without being asked
    again = engine.loaded
    assert again is not None and again.chat_format == p.CHATML_CHOSEN
    assert bar.own_template_button.isVisible() and not bar.chatml_button.isVisible()

    with qtbot.waitSignal(window.bridge.modelLoaded, timeout=TIMEOUT):
        qtbot.mouseClick(bar.own_template_button, Qt.MouseButton.LeftButton)  # loaded again with its own
    own = engine.loaded
    assert own is not None and own.chat_format != p.CHATML_CHOSEN and window.settings.chatml_models == []
    assert not bar.own_template_button.isVisible() and "ChatML" not in bar.status.text()
