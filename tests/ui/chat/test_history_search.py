"""The history's search in the window: typed in the sidebar (Ctrl+F there, Ctrl+Shift+F anywhere), its matches in
place of the conversation list with the match marked, a chat opened at the message found (marked, and older
messages still there to scroll up to), a task run on its own page, and Esc to end the search."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from app.history.records import HitKind
from ui.chat.page import MESSAGE_PAGE
from ui.main_window import TASKS_PAGE, MainWindow, Services

from tests.helpers.windows import TIMEOUT, MakeWindow

pytestmark = pytest.mark.gui

EARLY = "Where did the lighthouse keeper live?"


def _history(services: Services) -> None:
    store = services.store
    long = store.create_conversation("Coast trip", {})
    store.add_message(long.id, "user", EARLY)
    for n in range(2 * MESSAGE_PAGE):  # the match is far above the last page
        store.add_message(long.id, "user" if n % 2 else "assistant", f"Message {n} about the weather by the sea.")
    store.create_conversation("Recipes", {})
    run = store.start_task_run("summarize", parameters={}, input_name="lighthouse-report.pdf", input_kind="pdf",
                               input_bytes=1, input_sha256="", input_text=None, model_name="Tiny", model_path=None)
    store.finish_task_run(run, status="done", output="The keeper lived by the lighthouse.", result={}, metrics={})


def _search(qtbot: QtBot, window: MainWindow, text: str) -> None:
    box = window.chat.sidebar.search
    qtbot.keyClicks(box.field, text)
    qtbot.waitUntil(lambda: box.results.count() > 0 or "Nothing matches" in box.summary.text(), timeout=TIMEOUT)


def test_search_opens_a_chat_at_the_message_found_and_esc_ends_it(qtbot: QtBot, make_window: MakeWindow) -> None:
    window = make_window(_history)
    chat, box = window.chat, window.chat.sidebar.search
    qtbot.waitUntil(lambda: chat.conversations.rowCount() == 2, timeout=TIMEOUT)
    qtbot.keyClick(window, Qt.Key.Key_F, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    assert box.field.hasFocus()
    _search(qtbot, window, "keeper")
    assert not chat.sidebar.list.isVisible() and box.results.isVisible()
    hits = [box.results.item(i).data(Qt.ItemDataRole.UserRole) for i in range(box.results.count())]
    assert [h.kind for h in hits] == [HitKind.MESSAGE, HitKind.TASK]  # grouped by kind
    label = box.results.itemWidget(box.results.item(0)).text()
    assert "<b>Coast trip</b>" in label and "keeper</b>" in label  # the match marked
    assert box.summary.text() == "2 matches; Enter opens the first, Esc ends the search."

    qtbot.keyClick(box.field, Qt.Key.Key_Return)  # the first: the chat, at that message
    qtbot.waitUntil(lambda: chat.view.revealed is not None, timeout=TIMEOUT)
    view = chat.view.message_view(chat.view.revealed)
    assert view is not None and view.property("found") is True and EARLY in view._text
    assert chat.current is not None and chat.current.title == "Coast trip"
    assert len(chat.view.message_ids()) == 2 * MESSAGE_PAGE + 1  # from the match to the newest

    box.field.setFocus()
    qtbot.keyClick(box.field, Qt.Key.Key_Escape)
    assert box.field.text() == "" and chat.sidebar.list.isVisibleTo(window) and not box.results.isVisibleTo(window)


def test_a_task_run_found_opens_on_the_tasks_page(qtbot: QtBot, make_window: MakeWindow) -> None:
    window = make_window(_history)
    window.search_history()
    box = window.chat.sidebar.search
    box.kinds.setCurrentIndex(2)  # Tasks
    _search(qtbot, window, "lighthouse")
    assert box.results.count() == 1
    box.results.itemActivated.emit(box.results.item(0))
    qtbot.waitUntil(lambda: window.tasks.view.output.title.text() == "Summary of “lighthouse-report.pdf”",
                    timeout=TIMEOUT)
    assert window.stack.currentIndex() == TASKS_PAGE


def test_nothing_found_says_so(qtbot: QtBot, make_window: MakeWindow) -> None:
    window = make_window(_history)
    window.search_history()
    _search(qtbot, window, "zebra")
    assert window.chat.sidebar.search.summary.text() == "Nothing matches “zebra”."


def test_the_search_looks_at_one_model_and_a_recent_time_when_asked(qtbot: QtBot, make_window: MakeWindow) -> None:
    from datetime import UTC, datetime, timedelta

    def history(services: Services) -> None:
        store = services.store
        for model in ("Qwen", "Gemma"):
            chat = store.create_conversation(f"Garden with {model}", {})
            store.add_message(chat.id, "assistant", f"Tomatoes like sun, says {model}.", model_name=model)
        run = store.start_task_run("summarize", parameters={}, input_name="tomatoes.txt", input_kind="txt",
                                   input_bytes=1, input_sha256="", input_text=None, model_name="Qwen",
                                   model_path=None)
        store.finish_task_run(run, status="done", output="Old notes on tomatoes.", result={}, metrics={})

    window = make_window(history)
    box = window.chat.sidebar.search
    qtbot.waitUntil(lambda: window.chat.conversations.rowCount() == 2, timeout=TIMEOUT)
    _search(qtbot, window, "tomatoes")
    assert box.filters.isVisible() and box.results.count() == 3
    qtbot.waitUntil(lambda: box.model.count() == 3, timeout=TIMEOUT)  # the models the history names
    assert [box.model.itemText(i) for i in range(3)] == ["Any model", "Gemma", "Qwen"]
    box.model.setCurrentIndex(box.model.findText("Gemma"))
    qtbot.waitUntil(lambda: box.results.count() == 1, timeout=TIMEOUT)
    hit = box.results.item(0).data(Qt.ItemDataRole.UserRole)
    assert hit.model == "Gemma" and hit.kind is HitKind.MESSAGE
    box.model.setCurrentIndex(0)
    qtbot.waitUntil(lambda: box.results.count() == 3, timeout=TIMEOUT)
    query = box.query("tomatoes")
    assert query.since is None
    box.when.setCurrentIndex(box.when.findText("Last 7 days"))
    since = box.query("tomatoes").since
    assert since is not None and abs(since - (datetime.now(UTC) - timedelta(days=7))) < timedelta(minutes=1)
    qtbot.waitUntil(lambda: box.results.count() == 3, timeout=TIMEOUT)  # all written just now
