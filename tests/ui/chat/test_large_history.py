"""Large histories stay smooth: the conversation list and a long conversation are read a page at a time, off the GUI
thread, and the list follows one conversation's change without being read again. (How long the window is held up
is measured by ``benchmarks/history_scale.py``, not asserted here.)"""

from __future__ import annotations

from typing import NoReturn

import pytest
from pytestqt.qtbot import QtBot

from app.history import ConversationRecord
from ui.chat.page import CONVERSATION_PAGE, MESSAGE_PAGE
from ui.main_window import MainWindow, Services

from tests.helpers.windows import TIMEOUT, MakeWindow

CONVERSATIONS = 2 * CONVERSATION_PAGE + 50
MESSAGES = 3 * MESSAGE_PAGE + 10


def _many_conversations(services: Services) -> None:
    store = services.store
    for n in range(CONVERSATIONS):
        store.create_conversation(f"Chat {n}", {})
    long = store.create_conversation("Long", {})
    for n in range(MESSAGES):
        store.add_message(long.id, "user" if n % 2 == 0 else "assistant",
                          f"Message {n}.\n\n" + "A line of a long answer that wraps across the page. " * 8,
                          finish_reason=None if n % 2 == 0 else "stop")
    store.touch_conversation(long.id)


def _never(*_args: object, **_kwargs: object) -> NoReturn:
    raise AssertionError("the whole history was read")


def _scroll_list_to_end(qtbot: QtBot, window: MainWindow, rows: int) -> None:
    chat = window.chat
    bar = chat.sidebar.list.verticalScrollBar()
    bar.setValue(bar.maximum())
    qtbot.waitUntil(lambda: chat.conversations.rowCount() == rows, timeout=TIMEOUT)


@pytest.fixture
def window(make_window: MakeWindow, monkeypatch: pytest.MonkeyPatch) -> MainWindow:
    window = make_window(_many_conversations)
    monkeypatch.setattr(window.services.store, "list_conversations", _never)
    return window


def test_the_list_starts_with_a_page_and_reads_the_next_as_it_is_scrolled_to_its_end(qtbot: QtBot,
                                                                                     window: MainWindow) -> None:
    chat = window.chat  # the window reads the first page as it opens, and opens the newest chat
    qtbot.waitUntil(lambda: chat.current is not None and chat.current.title == "Long", timeout=TIMEOUT)
    assert chat.conversations.rowCount() == CONVERSATION_PAGE
    _scroll_list_to_end(qtbot, window, 2 * CONVERSATION_PAGE)
    _scroll_list_to_end(qtbot, window, CONVERSATIONS + 1)
    titles = [chat.conversations.record(row).title for row in range(CONVERSATIONS + 1)]  # type: ignore[union-attr]
    assert titles == ["Long"] + [f"Chat {n}" for n in reversed(range(CONVERSATIONS))]
    assert not chat.conversations.canFetchMore(chat.conversations.index(0).parent())


def test_a_conversation_that_changes_is_moved_alone_and_the_list_is_not_read_again(qtbot: QtBot,
                                                                                   window: MainWindow) -> None:
    chat = window.chat
    qtbot.waitUntil(lambda: chat.current is not None and chat.current.title == "Long", timeout=TIMEOUT)
    resets: list[bool] = []
    chat.conversations.modelReset.connect(lambda: resets.append(True))
    store = window.services.store
    old: ConversationRecord = next(c for c in store.conversation_page(CONVERSATIONS + 1).items if c.title == "Chat 3")
    store.add_message(old.id, "user", "Back to this one, far down the list")  # an answer started there
    chat.refresh_conversation(old.id)
    qtbot.waitUntil(lambda: chat.conversations.row_of(old.id) == 0, timeout=TIMEOUT)
    newest = chat.conversations.record(1)
    assert newest is not None and newest.title == "Long"
    store.rename_conversation(newest.id, "Long, renamed")
    chat.refresh_conversation(newest.id)
    qtbot.waitUntil(lambda: chat.conversations.record(1).title == "Long, renamed", timeout=TIMEOUT)  # type: ignore[union-attr]
    assert chat.conversations.rowCount() == CONVERSATION_PAGE + 1 and not resets
    _scroll_list_to_end(qtbot, window, 2 * CONVERSATION_PAGE + 1)
    _scroll_list_to_end(qtbot, window, CONVERSATIONS + 1)  # the page it was in before does not bring it again
    ids = [chat.conversations.record(row).id for row in range(chat.conversations.rowCount())]  # type: ignore[union-attr]
    assert len(ids) == len(set(ids))


def test_a_long_conversation_opens_at_its_last_page_and_older_messages_come_as_it_is_scrolled_up(
        qtbot: QtBot, window: MainWindow) -> None:
    view = window.chat.view
    qtbot.waitUntil(lambda: view.conversation_id is not None and view.is_settled(), timeout=TIMEOUT)
    store = window.services.store
    messages = store.messages(view.conversation_id)
    assert view.message_ids() == [m.id for m in messages[-MESSAGE_PAGE:]] and view.has_older()
    bar = view.scroller.verticalScrollBar()
    qtbot.waitUntil(lambda: bar.value() == bar.maximum() > 0, timeout=TIMEOUT)  # opened at its end
    while view.has_older():
        first = view.message_view(view.message_ids()[0])
        assert first is not None
        bar.setValue(0)  # the reader reaches the top of the messages shown
        offset = first.y() - bar.value()  # where the first message is on screen, which it keeps
        qtbot.waitUntil(lambda first_id=first.message_id: view.message_ids()[0] < first_id and view.is_settled(),  # type: ignore[misc]
                        timeout=TIMEOUT)
        qtbot.waitUntil(lambda first=first, offset=offset: abs(first.y() - bar.value() - offset) <= 2,  # type: ignore[misc]
                        timeout=TIMEOUT)
    assert view.message_ids() == [m.id for m in messages]
