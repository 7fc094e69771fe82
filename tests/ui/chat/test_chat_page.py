"""The Chat page, headless, driven like a person would: real Qt, real engine, real database."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from app.engine import EngineState
from app.history import ConversationRecord, MessageRecord
from ui.main_window import MainWindow

from tests.helpers.windows import TIMEOUT, MakeWindow, import_model

pytestmark = [pytest.mark.engine, pytest.mark.window(max_tokens=1800)]  # long answers, so Stop lands mid-answer


def _type_and_send(qtbot: QtBot, window: MainWindow, text: str) -> None:
    composer = window.chat.view.composer
    composer.setFocus()
    qtbot.keyClicks(composer, text)
    qtbot.keyClick(composer, Qt.Key.Key_Return)


def test_chat_stop_close_and_find_it_again(qtbot: QtBot, make_window: MakeWindow, test_model_path: Path) -> None:
    window = make_window()
    assert window.chat.conversations.rowCount() == 0
    import_model(qtbot, window, test_model_path)
    assert window.library_model.rowCount() == 1

    streamed: list[str] = []
    window.bridge.answerDelta.connect(lambda _conversation, _message, text: streamed.append(text))
    with qtbot.waitSignal(window.bridge.answerDelta, timeout=TIMEOUT):
        _type_and_send(qtbot, window, "Once upon a time")  # no model loaded yet: it loads, then sends
    assert window.chat.view.composer.toPlainText() == ""
    assert window.services.engine.loaded is not None and window.chat.view.stop_button.isVisible()
    assert window.chat.view.model_bar.load_button.text() == "Unload"
    # A stop right after the first word may land before a second token: wait for a few, so the speed exists.
    qtbot.waitUntil(lambda: len(streamed[-1]) >= 40, timeout=TIMEOUT)

    with qtbot.waitSignal(window.bridge.answerFinished, timeout=TIMEOUT) as finished:
        qtbot.mouseClick(window.chat.view.stop_button, Qt.MouseButton.LeftButton)
    answer: MessageRecord = finished.args[0].message
    assert answer.finish_reason == "cancelled" and answer.content
    view = window.chat.view.message_view(answer.id)
    assert view is not None and view.text == answer.content
    assert "Stopped." in view.figures.text() and "tokens/s" in view.figures.text()
    assert window.chat.view.send_button.isVisible() and not window.chat.view.stop_button.isVisible()
    qtbot.waitUntil(lambda: window.chat.conversations.rowCount() == 1, timeout=TIMEOUT)
    window.close()
    assert window.services.engine.state is EngineState.STOPPED

    reopened = make_window()
    qtbot.waitUntil(lambda: len(reopened.chat.view.message_ids()) == 2, timeout=TIMEOUT)
    conversation: ConversationRecord | None = reopened.chat.conversations.record(0)
    assert conversation is not None and conversation.title == "Once upon a time"
    views = [reopened.chat.view.message_view(i) for i in reopened.chat.view.message_ids()]
    assert [v.role for v in views if v] == ["user", "assistant"]
    assert views[0] is not None and views[0].text == "Once upon a time"
    assert views[1] is not None and views[1].text == answer.content
    assert reopened.chat.view.model_bar.selected() is not None  # the last model is chosen again


def test_shift_enter_adds_a_line(qtbot: QtBot, make_window: MakeWindow) -> None:
    window = make_window()
    composer = window.chat.view.composer
    qtbot.keyClicks(composer, "first")
    qtbot.keyClick(composer, Qt.Key.Key_Return, Qt.KeyboardModifier.ShiftModifier)
    qtbot.keyClicks(composer, "second")
    assert composer.toPlainText() == "first\nsecond"


def test_sending_without_any_model_explains_what_to_do(qtbot: QtBot, make_window: MakeWindow) -> None:
    window = make_window()
    _type_and_send(qtbot, window, "Hello")
    assert "Add a model first" in window.chat.view.banner.text() and window.chat.view.banner.isVisible()
    assert window.chat.view.composer.toPlainText() == "Hello"  # the draft is kept


def test_delete_then_undo(qtbot: QtBot, make_window: MakeWindow) -> None:
    window = make_window()
    window.chat.new_conversation()
    qtbot.waitUntil(lambda: window.chat.conversations.rowCount() == 1, timeout=TIMEOUT)
    window.chat.delete_current()
    qtbot.waitUntil(lambda: window.chat.conversations.rowCount() == 0, timeout=TIMEOUT)
    assert window.chat.undo_button.isVisible()
    qtbot.mouseClick(window.chat.undo_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.chat.conversations.rowCount() == 1, timeout=TIMEOUT)


def test_worker_crash_is_reported_and_the_app_carries_on(
        qtbot: QtBot, make_window: MakeWindow, test_model_path: Path) -> None:
    window = make_window()
    import_model(qtbot, window, test_model_path)
    with qtbot.waitSignal(window.bridge.answerDelta, timeout=TIMEOUT):
        _type_and_send(qtbot, window, "Tell me a long story")
    assert window.services.engine.pid is not None
    with qtbot.waitSignal(window.bridge.workerExited, timeout=TIMEOUT):
        os.kill(window.services.engine.pid, signal.SIGKILL)
    assert "stopped unexpectedly" in window.chat.view.banner.text()
    assert window.chat.view.model_bar.load_button.text() == "Load" and window.chat.view.send_button.isVisible()
    message = window.services.store.messages(window.chat.current.id)[-1]  # type: ignore[union-attr]
    assert message.finish_reason == "interrupted" and message.content

    with qtbot.waitSignal(window.bridge.modelLoaded, timeout=TIMEOUT):
        qtbot.mouseClick(window.chat.view.model_bar.load_button, Qt.MouseButton.LeftButton)
    with qtbot.waitSignal(window.bridge.answerFinished, timeout=TIMEOUT):
        _type_and_send(qtbot, window, "Again")
        qtbot.waitSignal(window.bridge.answerDelta, timeout=TIMEOUT).wait()
        window.services.runner.stop()


def test_regenerate_and_rename(qtbot: QtBot, make_window: MakeWindow, test_model_path: Path,
                               monkeypatch: pytest.MonkeyPatch) -> None:
    from PySide6.QtWidgets import QInputDialog

    window = make_window()
    window.settings.generation.max_tokens = 24
    import_model(qtbot, window, test_model_path)
    with qtbot.waitSignal(window.bridge.answerFinished, timeout=TIMEOUT) as first:
        _type_and_send(qtbot, window, "Say something")
    old: MessageRecord = first.args[0].message
    last = window.chat.view.message_view(old.id)
    assert last is not None and last.regenerate_button.isVisible()

    with qtbot.waitSignal(window.bridge.answerFinished, timeout=TIMEOUT) as second:
        qtbot.mouseClick(last.regenerate_button, Qt.MouseButton.LeftButton)
    new: MessageRecord = second.args[0].message
    assert new.finish_reason == "length"
    views = [window.chat.view.message_view(i) for i in window.chat.view.message_ids()]
    assert [v.role for v in views if v] == ["user", "assistant"]
    assert views[1] is not None and views[1].text == new.content
    assert views[1].versions.isVisible() and views[1].versions.text() == "2/2"
    assert views[1].previous_button.isEnabled() and not views[1].next_button.isEnabled()

    qtbot.mouseClick(views[1].previous_button, Qt.MouseButton.LeftButton)  # the first answer, kept
    qtbot.waitUntil(lambda: window.chat.view.message_view(old.id) is not None, timeout=TIMEOUT)
    shown = window.chat.view.message_view(old.id)
    assert shown is not None and shown.text == old.content and shown.versions.text() == "1/2"
    assert window.chat.view.message_view(new.id) is None

    monkeypatch.setattr(QInputDialog, "getText", lambda *a, **k: ("  My chat  ", True))
    window.chat.rename_current()
    qtbot.waitUntil(lambda: window.chat.conversations.record(0).title == "My chat", timeout=TIMEOUT)  # type: ignore[union-attr]


def test_conversation_settings_are_saved_per_conversation(
        qtbot: QtBot, make_window: MakeWindow, monkeypatch: pytest.MonkeyPatch) -> None:
    from ui.chat.settings_dialog import ConversationSettingsDialog

    def accept_with_changes(dialog: ConversationSettingsDialog) -> int:
        dialog.system_prompt.setPlainText("Answer like a pirate.")
        dialog.temperature.setValue(0.2)
        dialog.fixed_seed.setChecked(True)
        dialog.seed.setValue(1234)
        return ConversationSettingsDialog.DialogCode.Accepted.value

    monkeypatch.setattr(ConversationSettingsDialog, "exec", accept_with_changes)
    window = make_window()
    window.chat.new_conversation()
    qtbot.waitUntil(lambda: window.chat.current is not None, timeout=TIMEOUT)
    assert window.chat.current is not None
    conversation_id = window.chat.current.id
    window.chat.edit_settings()
    store = window.services.store
    qtbot.waitUntil(lambda: store.get_conversation(conversation_id).system_prompt == "Answer like a pirate.",
                    timeout=TIMEOUT)
    saved = store.get_conversation(conversation_id).settings
    assert saved["temperature"] == 0.2 and saved["seed"] == 1234
    assert window.settings.generation.system_prompt != "Answer like a pirate."  # defaults untouched


def test_stop_while_the_model_loads_puts_the_message_back(
        qtbot: QtBot, make_window: MakeWindow, test_model_path: Path) -> None:
    window = make_window()
    import_model(qtbot, window, test_model_path)
    _type_and_send(qtbot, window, "Wait for me")  # starts the load; the message waits for it
    assert window.chat.view.stop_button.isVisible()
    qtbot.mouseClick(window.chat.view.stop_button, Qt.MouseButton.LeftButton)
    assert window.chat.view.composer.toPlainText() == "Wait for me"
    assert window.chat.view.send_button.isVisible()
    with qtbot.waitSignal(window.bridge.modelLoaded, timeout=TIMEOUT):
        pass
    qtbot.wait(200)
    assert not window.services.runner.busy
    assert all(not window.services.store.messages(c.id) for c in window.services.store.list_conversations())


def test_a_message_waiting_for_the_model_goes_to_the_chat_it_was_written_in(
        qtbot: QtBot, make_window: MakeWindow, test_model_path: Path) -> None:
    window = make_window()
    window.settings.generation.max_tokens = 8
    import_model(qtbot, window, test_model_path)
    window.chat.new_conversation()
    qtbot.waitUntil(lambda: window.chat.conversations.rowCount() == 1, timeout=TIMEOUT)
    first = window.chat.current
    window.chat.new_conversation()
    qtbot.waitUntil(lambda: window.chat.conversations.rowCount() == 2, timeout=TIMEOUT)
    second = window.chat.current
    assert first is not None and second is not None and first.id != second.id
    window.chat.sidebar.list.setCurrentIndex(window.chat.conversations.index(window.chat.conversations.row_of(first.id)))
    qtbot.waitUntil(lambda: window.chat.current is not None and window.chat.current.id == first.id, timeout=TIMEOUT)
    with qtbot.waitSignal(window.bridge.answerFinished, timeout=TIMEOUT) as finished:
        _type_and_send(qtbot, window, "For the first chat")
        window.chat.sidebar.list.setCurrentIndex(
            window.chat.conversations.index(window.chat.conversations.row_of(second.id)))  # switch while it loads
    assert finished.args[0].conversation_id == first.id
    assert window.services.store.messages(first.id)[0].content == "For the first chat"
    assert window.services.store.messages(second.id) == []


def test_a_conversation_with_another_context_length_reloads_the_model(
        qtbot: QtBot, make_window: MakeWindow, test_model_path: Path) -> None:
    window = make_window()
    window.settings.generation.max_tokens = 8
    import_model(qtbot, window, test_model_path)
    with qtbot.waitSignal(window.bridge.answerFinished, timeout=TIMEOUT):
        _type_and_send(qtbot, window, "First")
    assert window.services.engine.loaded is not None and window.services.engine.loaded.context_length == 2048
    chat = window.chat
    assert chat.current is not None
    chat.current = chat.store_record_with(
        chat.current, chat.current_settings().__class__(**{**chat.current.settings, "context_length": 512}))
    window.services.store.update_conversation(chat.current.id, settings=chat.current.settings)
    with qtbot.waitSignal(window.bridge.answerFinished, timeout=TIMEOUT):
        _type_and_send(qtbot, window, "Second")
    assert window.services.engine.loaded is not None and window.services.engine.loaded.context_length == 512


def test_a_follow_up_is_read_ahead_as_it_is_typed(qtbot: QtBot, make_window: MakeWindow, test_model_path: Path) -> None:
    from app.engine import protocol as p

    window = make_window(max_tokens=8)
    import_model(qtbot, window, test_model_path)
    with qtbot.waitSignal(window.bridge.answerFinished, timeout=TIMEOUT):
        _type_and_send(qtbot, window, "Once upon a time")
    done: list[p.ReadAheadDone] = []
    unsubscribe = window.services.engine.subscribe(
        lambda event: done.append(event) if isinstance(event, p.ReadAheadDone) else None)
    try:
        qtbot.keyClicks(window.chat.view.composer, "there was a cat")
        qtbot.waitUntil(lambda: bool(done) and done[-1].cached == done[-1].prompt_tokens, timeout=TIMEOUT)
        assert window.chat.current is not None and done[-1].conversation == f"chat-{window.chat.current.id}"
        with qtbot.waitSignal(window.bridge.answerFinished, timeout=TIMEOUT) as answered:
            qtbot.keyClick(window.chat.view.composer, Qt.Key.Key_Return)
    finally:
        unsubscribe()
    message: MessageRecord = answered.args[0].message
    assert message.finish_reason in ("length", "stop") and message.prompt_tokens == done[-1].prompt_tokens


def test_edit_a_question_then_switch_between_its_versions(qtbot: QtBot, make_window: MakeWindow,
                                                          test_model_path: Path) -> None:
    window = make_window()
    window.settings.generation.max_tokens = 16
    import_model(qtbot, window, test_model_path)
    with qtbot.waitSignal(window.bridge.answerFinished, timeout=TIMEOUT):
        _type_and_send(qtbot, window, "The first question")
    view = window.chat.view
    question_id = view.message_ids()[0]
    question = view.message_view(question_id)
    assert question is not None and question.edit_button.isVisible() and not question.versions.isVisible()

    qtbot.mouseClick(question.edit_button, Qt.MouseButton.LeftButton)
    assert question.is_editing() and question.editor is not None
    assert question.editor.text.toPlainText() == "The first question"
    qtbot.keyClick(question.editor.text, Qt.Key.Key_Escape)  # Esc gives the edit up
    assert not question.is_editing() and question.body.isVisible()

    qtbot.mouseClick(question.edit_button, Qt.MouseButton.LeftButton)
    assert question.editor is not None
    question.editor.text.setPlainText("The second question")
    with qtbot.waitSignal(window.bridge.answerFinished, timeout=TIMEOUT) as finished:
        qtbot.keyClick(question.editor.text, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    answer: MessageRecord = finished.args[0].message
    ids = view.message_ids()
    assert len(ids) == 2 and ids[1] == answer.id and question_id not in ids
    edited = view.message_view(ids[0])
    assert edited is not None and edited.text == "The second question" and edited.versions.text() == "2/2"
    window.grab().save(str(Path(os.environ.get("HEARTH_SHOTS", "/tmp")) / "chat-versions.png"))

    qtbot.mouseClick(edited.previous_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: view.message_view(question_id) is not None, timeout=TIMEOUT)
    back = view.message_view(question_id)
    assert back is not None and back.text == "The first question" and back.versions.text() == "1/2"
    assert len(view.message_ids()) == 2
    assert window.chat.current is not None
    assert window.services.store.messages(window.chat.current.id)[0].content == "The first question"

    window.chat.delete_message(question_id)  # a version goes with its answers; the other one is shown
    qtbot.waitUntil(lambda: view.message_view(question_id) is None and len(view.message_ids()) == 2, timeout=TIMEOUT)
    left = view.message_view(view.message_ids()[0])
    assert left is not None and left.text == "The second question" and not left.versions.isVisible()
    assert "version 1 of 2" in window.chat.message_undo.label.text()
    qtbot.mouseClick(window.chat.message_undo.button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: view.message_view(question_id) is not None, timeout=TIMEOUT)
    assert view.message_view(question_id).versions.text() == "1/2"  # type: ignore[union-attr]
