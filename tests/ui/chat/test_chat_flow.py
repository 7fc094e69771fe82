"""The chat's flow, driven as a person would with real Qt, the real engine and a real database: two chats and one
answer at a time, Continue, deleting one message with Undo, and the context meter."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtTest import QTest
from pytestqt.qtbot import QtBot

from app.chat import AnswerFinished, AnswerStarted
from app.history import ConversationRecord, MessageRecord
from ui.main_window import MainWindow

from tests.helpers.windows import TIMEOUT, MakeWindow, import_model

pytestmark = [pytest.mark.engine, pytest.mark.window(max_tokens=1800)]  # long answers, so Stop lands mid-answer


def _type_and_send(qtbot: QtBot, window: MainWindow, text: str) -> None:
    composer = window.chat.view.composer
    composer.setFocus()
    qtbot.keyClicks(composer, text)
    qtbot.keyClick(composer, Qt.Key.Key_Return)


def _new_chat(qtbot: QtBot, window: MainWindow) -> ConversationRecord:
    count = window.chat.conversations.rowCount()
    window.chat.new_conversation()
    qtbot.waitUntil(lambda: window.chat.conversations.rowCount() == count + 1 and window.chat.current is not None
                    and window.chat.view.conversation_id == window.chat.current.id, timeout=TIMEOUT)
    assert window.chat.current is not None
    return window.chat.current


def _open(qtbot: QtBot, window: MainWindow, conversation: ConversationRecord) -> None:
    chat = window.chat
    chat.sidebar.list.setCurrentIndex(chat.conversations.index(chat.conversations.row_of(conversation.id)))
    qtbot.waitUntil(lambda: chat.view.conversation_id == conversation.id, timeout=TIMEOUT)


def test_while_one_chat_is_answered_another_waits_its_turn_and_says_so(
        qtbot: QtBot, make_window: MakeWindow, test_model_path: Path) -> None:
    window = make_window()
    chat, view = window.chat, window.chat.view
    import_model(qtbot, window, test_model_path)
    first = _new_chat(qtbot, window)
    streamed: list[str] = []
    window.bridge.answerDelta.connect(lambda _c, _m, text: streamed.append(text))
    finished: list[AnswerFinished] = []
    window.bridge.answerFinished.connect(finished.append)
    with qtbot.waitSignal(window.bridge.answerDelta, timeout=TIMEOUT):
        _type_and_send(qtbot, window, "Tell me a long story")
    second = _new_chat(qtbot, window)

    # The other chat's answer goes on; this one offers Send, and Stop (Esc) here stops nothing there.
    assert view.send_button.isVisible() and not view.stop_button.isVisible()
    from ui.qt.qt_models import ChatMark  # here: before the fix, the first failure is the one people saw

    assert chat.conversations.mark(first.id) is ChatMark.ANSWERING and chat.conversations.mark(second.id) is None
    window.stop_action.trigger()
    written = len(streamed[-1])
    qtbot.waitUntil(lambda: bool(finished) or len(streamed[-1]) > written + 40, timeout=TIMEOUT)
    assert not finished and window.services.runner.streaming_conversation() == first.id

    # The context meter counts this chat's message while the other chat's answer is written.
    qtbot.keyClicks(view.composer, "Hello from the second chat")
    qtbot.waitUntil(lambda: view.meter_row.isVisible() and "of 2,048 tokens" in view.meter_label.text(),
                    timeout=TIMEOUT)
    assert window.services.runner.streaming_conversation() == first.id

    # Enter: the message waits for the other answer, visibly, and is not saved yet.
    qtbot.keyClick(view.composer, Qt.Key.Key_Return)
    assert view.composer.toPlainText() == "" and view.waiting.isVisible()
    assert "Tell me a long story" in view.waiting_label.text() and view.stop_other_button.isVisible()
    assert view.send_button.isVisible() and window.services.store.messages(second.id) == []
    assert chat.conversations.mark(second.id) is ChatMark.WAITING

    # "Stop that answer" stops the other chat's; then the waiting message is answered, here, with Stop here.
    with qtbot.waitSignal(window.bridge.answerStarted, timeout=TIMEOUT,
                          check_params_cb=lambda e: e.conversation_id == second.id):
        qtbot.mouseClick(view.stop_other_button, Qt.MouseButton.LeftButton)
    assert finished[0].conversation_id == first.id and finished[0].message.finish_reason == "cancelled"
    assert not view.waiting.isVisible() and view.stop_button.isVisible() and not view.send_button.isVisible()
    assert chat.conversations.mark(second.id) is ChatMark.ANSWERING and chat.conversations.mark(first.id) is None
    with qtbot.waitSignal(window.bridge.answerFinished, timeout=TIMEOUT):
        qtbot.waitSignal(window.bridge.answerDelta, timeout=TIMEOUT).wait()
        qtbot.mouseClick(view.stop_button, Qt.MouseButton.LeftButton)
    saved = window.services.store.messages(second.id)
    assert [m.role for m in saved] == ["user", "assistant"] and saved[0].content == "Hello from the second chat"
    assert chat.conversations.mark(second.id) is None and view.send_button.isVisible()


def test_a_message_waiting_for_another_chat_can_be_taken_back(
        qtbot: QtBot, make_window: MakeWindow, test_model_path: Path) -> None:
    window = make_window()
    chat, view = window.chat, window.chat.view
    import_model(qtbot, window, test_model_path)
    first = _new_chat(qtbot, window)
    with qtbot.waitSignal(window.bridge.answerDelta, timeout=TIMEOUT):
        _type_and_send(qtbot, window, "Tell me a long story")
    second = _new_chat(qtbot, window)
    _type_and_send(qtbot, window, "Never mind")
    assert view.waiting.isVisible()
    window.stop_action.trigger()  # Esc: the waiting message comes back; the other chat's answer goes on
    assert view.composer.toPlainText() == "Never mind" and not view.waiting.isVisible()
    assert chat.conversations.mark(second.id) is None
    assert window.services.runner.streaming_conversation() == first.id
    _open(qtbot, window, first)
    assert view.stop_button.isVisible()
    with qtbot.waitSignal(window.bridge.answerFinished, timeout=TIMEOUT):
        window.stop_action.trigger()
    assert window.services.store.messages(second.id) == [] and not window.services.runner.busy  # nothing waited


def test_the_list_does_not_reorder_under_the_pointer(qtbot: QtBot, make_window: MakeWindow, qtmodeltester: object,
                                                    test_model_path: Path) -> None:
    window = make_window(max_tokens=8)
    chat = window.chat
    import_model(qtbot, window, test_model_path)
    older = _new_chat(qtbot, window)
    newer = _new_chat(qtbot, window)
    assert [chat.conversations.record(row).id for row in range(2)] == [newer.id, older.id]  # type: ignore[union-attr]

    viewport = chat.sidebar.list.viewport()
    below = chat.sidebar.list.visualRect(chat.conversations.index(1)).center()
    QTest.mouseMove(viewport, below)
    qtbot.mouseClick(viewport, Qt.MouseButton.LeftButton, pos=below)  # the older chat opens; the pointer stays
    qtbot.waitUntil(lambda: chat.view.conversation_id == older.id, timeout=TIMEOUT)
    with qtbot.waitSignal(window.bridge.answerFinished, timeout=TIMEOUT):
        _type_and_send(qtbot, window, "Hello")
    qtbot.waitUntil(lambda: chat.conversations.record(  # type: ignore[union-attr]
        chat.conversations.row_of(older.id)).model_name is not None, timeout=TIMEOUT)  # the list was read again
    assert chat.conversations.row_of(older.id) == 1 and chat.sidebar.list.currentIndex().row() == 1
    assert chat.sidebar.list.indexAt(below).row() == 1

    QTest.mouseMove(chat.view.composer, QPoint(10, 10))  # the pointer leaves the list: newest first again
    qtbot.waitUntil(lambda: chat.conversations.row_of(older.id) == 0, timeout=TIMEOUT)
    assert chat.sidebar.list.currentIndex().row() == 0 and chat.view.conversation_id == older.id
    qtmodeltester.check(chat.conversations)  # type: ignore[attr-defined]


def test_an_answer_stopped_or_interrupted_is_continued_in_place(
        qtbot: QtBot, make_window: MakeWindow, test_model_path: Path) -> None:
    window = make_window()
    view = window.chat.view
    import_model(qtbot, window, test_model_path)
    with qtbot.waitSignal(window.bridge.answerFinished, timeout=TIMEOUT) as stopped:
        _type_and_send(qtbot, window, "Once upon a time")
        qtbot.waitSignal(window.bridge.answerDelta, timeout=TIMEOUT).wait()
        window.stop_action.trigger()
    cut: MessageRecord = stopped.args[0].message
    last = view.message_view(cut.id)
    assert cut.finish_reason == "cancelled" and last is not None and last.continue_button.isVisible()

    with qtbot.waitSignal(window.bridge.answerStarted, timeout=TIMEOUT) as started:
        qtbot.mouseClick(last.continue_button, Qt.MouseButton.LeftButton)
    event: AnswerStarted = started.args[0]
    assert event.continued and event.assistant_message.id == cut.id
    assert view.stop_button.isVisible() and not last.continue_button.isVisible()
    qtbot.waitUntil(lambda: len(last.text) > len(cut.content) + 20, timeout=TIMEOUT)
    assert last.text.startswith(cut.content) and view.message_ids() == [cut.id - 1, cut.id]
    window.close()  # mid-answer: the continued answer is kept, interrupted

    reopened = make_window()
    qtbot.waitUntil(lambda: len(reopened.chat.view.message_ids()) == 2, timeout=TIMEOUT)
    saved = reopened.services.store.messages(cut.conversation_id)[-1]
    assert saved.id == cut.id and saved.finish_reason == "interrupted" and saved.content.startswith(cut.content)
    again = reopened.chat.view.message_view(cut.id)
    assert again is not None
    qtbot.waitUntil(again.continue_button.isVisible, timeout=TIMEOUT)
    qtbot.mouseClick(again.continue_button, Qt.MouseButton.LeftButton)
    assert "Load a model first" in reopened.chat.view.banner.text()
    with qtbot.waitSignal(reopened.bridge.modelLoaded, timeout=TIMEOUT):
        qtbot.mouseClick(reopened.chat.view.model_bar.load_button, Qt.MouseButton.LeftButton)
    with qtbot.waitSignal(reopened.bridge.answerFinished, timeout=TIMEOUT) as done:
        qtbot.mouseClick(again.continue_button, Qt.MouseButton.LeftButton)
        qtbot.waitSignal(reopened.bridge.answerDelta, timeout=TIMEOUT).wait()
        reopened.stop_action.trigger()
    final: MessageRecord = done.args[0].message
    assert final.id == cut.id and final.content.startswith(saved.content) and len(final.content) > len(saved.content)
    assert [m.id for m in reopened.services.store.messages(cut.conversation_id)] == [cut.id - 1, cut.id]


def test_one_message_is_deleted_and_brought_back_with_undo(
        qtbot: QtBot, make_window: MakeWindow, test_model_path: Path) -> None:
    window = make_window(max_tokens=8)
    view, store = window.chat.view, window.services.store
    import_model(qtbot, window, test_model_path)
    for text in ("First question", "Second question"):
        with qtbot.waitSignal(window.bridge.answerFinished, timeout=TIMEOUT):
            _type_and_send(qtbot, window, text)
    assert window.chat.current is not None
    conversation = window.chat.current.id
    ids = view.message_ids()
    assert len(ids) == 4
    question = view.message_view(ids[2])
    assert question is not None and question.role == "user" and question.delete_button.isVisible()

    qtbot.mouseClick(question.delete_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: view.message_view(ids[2]) is None, timeout=TIMEOUT)
    bar = window.chat.message_undo
    assert bar.isVisible() and "Second question" in bar.label.text()
    assert [m.id for m in store.messages(conversation)] == [ids[0], ids[1], ids[3]]

    qtbot.mouseClick(bar.button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: view.message_ids() == ids, timeout=TIMEOUT)
    assert [m.id for m in store.messages(conversation)] == ids
    restored = view.message_view(ids[2])
    assert restored is not None and restored.text == "Second question"


@pytest.mark.window(context_length=256, max_tokens=16)
def test_a_message_too_long_for_the_context_is_never_saved(
        qtbot: QtBot, make_window: MakeWindow, test_model_path: Path) -> None:
    window = make_window()
    view, store = window.chat.view, window.services.store
    import_model(qtbot, window, test_model_path)
    with qtbot.waitSignal(window.bridge.answerFinished, timeout=TIMEOUT):
        _type_and_send(qtbot, window, "Hello")
    assert window.chat.current is not None
    conversation = window.chat.current.id
    too_long = "word " * 300

    view.composer.setPlainText(too_long)  # pasted and sent at once, before it could be counted
    qtbot.keyClick(view.composer, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: "too long" in view.banner.text() or len(store.messages(conversation)) > 2,
                    timeout=TIMEOUT)
    assert len(store.messages(conversation)) == 2 and len(view.message_ids()) == 2
    qtbot.waitUntil(lambda: view.composer.toPlainText() == too_long.strip(), timeout=TIMEOUT)  # back in the box
    assert view.send_button.isVisible() and not window.services.runner.busy

    view.show_banner("")
    qtbot.waitUntil(lambda: view.meter.property("level") == "over", timeout=TIMEOUT)  # counted now
    qtbot.keyClick(view.composer, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: "too long" in view.banner.text() or len(store.messages(conversation)) > 2,
                    timeout=TIMEOUT)
    assert len(store.messages(conversation)) == 2 and view.composer.toPlainText().strip() == too_long.strip()


@pytest.mark.window(context_length=256, max_tokens=16)
def test_the_meter_counts_the_conversation_with_the_draft_and_warns(
        qtbot: QtBot, make_window: MakeWindow, test_model_path: Path) -> None:
    from ui.chat.chat_view import MeterLevel

    window = make_window()
    chat, view, store = window.chat, window.chat.view, window.services.store
    import_model(qtbot, window, test_model_path)
    assert not view.meter_row.isVisible()  # nothing to count with before a model is loaded
    with qtbot.waitSignal(window.bridge.answerFinished, timeout=TIMEOUT):
        _type_and_send(qtbot, window, "Hello")
    assert chat.current is not None
    conversation = chat.current.id
    qtbot.waitUntil(lambda: view.meter_row.isVisible(), timeout=TIMEOUT)
    assert "of 256 tokens" in view.meter_label.text() and view.meter.property("level") == MeterLevel.OK

    too_long = "word " * 300
    view.composer.setPlainText(too_long)  # pasted
    qtbot.waitUntil(lambda: view.meter.property("level") == MeterLevel.OVER, timeout=TIMEOUT)
    assert "too long to send" in view.meter_label.text() and "Shorten it" in view.meter_row.toolTip()
    qtbot.keyClick(view.composer, Qt.Key.Key_Return)  # refused at once, with the meter's words
    assert view.composer.toPlainText().strip() == too_long.strip() and "too long" in view.banner.text()
    assert len(store.messages(conversation)) == 2

    view.composer.setPlainText("word " * 50)  # fits, though the conversation is then longer than the context
    qtbot.waitUntil(lambda: view.meter.property("level") == MeterLevel.FULL, timeout=TIMEOUT)
    assert "left out" in view.meter_label.text()
    view.composer.clear()
    qtbot.waitUntil(lambda: view.meter.property("level") == MeterLevel.OK, timeout=TIMEOUT)
