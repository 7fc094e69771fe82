"""Folders and pins in the chat's sidebar: a folder made from its dialog, a conversation dropped on it (a real drag's
data) or moved with "Move to", the list showing one folder's chats, a new chat there starting with the folder's
system prompt, the search looking in one folder, a pinned chat on top, and a folder deleted then brought back."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from PySide6.QtCore import QEvent, QPointF, Qt
from PySide6.QtGui import QDragEnterEvent, QDragMoveEvent, QDropEvent
from PySide6.QtWidgets import QApplication, QDialog
from pytestqt.qtbot import QtBot

from app.history import ConversationRecord
from ui.chat.folder_dialog import FolderDialog
from ui.chat.folders_panel import ALL_CHATS, conversation_ids
from ui.main_window import Services

from tests.helpers.windows import TIMEOUT, MakeWindow

pytestmark = pytest.mark.gui


def _history(services: Services) -> None:
    store = services.store
    for title in ("Tax return", "Birthday cake", "Quarterly report"):
        chat = store.create_conversation(title, {})
        store.add_message(chat.id, "user", f"Notes about the {title.lower()}")


def _titles(window: object) -> list[str]:
    model = window.chat.conversations  # type: ignore[attr-defined]
    return [model.record(row).title for row in range(model.rowCount())]


def test_folders_hold_chats_by_drag_and_menu_and_new_chats_start_with_their_prompt(
        qtbot: QtBot, make_window: MakeWindow, monkeypatch: pytest.MonkeyPatch) -> None:
    window = make_window(_history)
    chat, panel = window.chat, window.chat.sidebar.folders
    qtbot.waitUntil(lambda: chat.conversations.rowCount() == 3, timeout=TIMEOUT)
    assert panel.list.count() == 1 and panel.list.item(0).text() == ALL_CHATS

    def fill(dialog: FolderDialog) -> int:
        assert dialog.buttons.button(dialog.buttons.StandardButton.Save).isEnabled() is False  # no name yet
        dialog.name.setText("Work")
        dialog.system_prompt.setPlainText("Answer formally.")
        return QDialog.DialogCode.Accepted.value

    monkeypatch.setattr(FolderDialog, "exec", fill)
    qtbot.mouseClick(panel.new_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: panel.list.count() == 2, timeout=TIMEOUT)
    work = panel.folders[0]
    assert panel.current() == work  # a new folder is chosen: its list is empty
    qtbot.waitUntil(lambda: chat.conversations.rowCount() == 0, timeout=TIMEOUT)

    panel.choose(None)
    qtbot.waitUntil(lambda: chat.conversations.rowCount() == 3, timeout=TIMEOUT)
    report = chat.conversations.record(0)
    assert report is not None and report.title == "Quarterly report"
    dragged = chat.conversations.mimeData([chat.conversations.index(0)])  # what a drag from the list carries
    assert conversation_ids(dragged) == [report.id]
    row = panel.list.visualItemRect(panel.list.item(1)).center()  # the "Work" row
    for kind in (QEvent.Type.DragEnter, QEvent.Type.DragMove, QEvent.Type.Drop):  # as Qt delivers a drop there
        event = (QDragEnterEvent if kind is QEvent.Type.DragEnter else QDragMoveEvent if kind is QEvent.Type.DragMove
                 else QDropEvent)(QPointF(row) if kind is QEvent.Type.Drop else row, Qt.DropAction.MoveAction,
                                  dragged, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
        QApplication.sendEvent(panel.list.viewport(), event)
        assert event.isAccepted()
    qtbot.waitUntil(lambda: window.services.store.get_conversation(report.id).folder_id == work.id, timeout=TIMEOUT)

    cake_row = _titles(window).index("Birthday cake")
    menu = chat.sidebar.menu_for(chat.conversations.record(cake_row))  # type: ignore[arg-type]
    move = next(a.menu() for a in menu.actions() if a.text() == "Move to")
    assert [a.text() for a in move.actions() if a.text()] == ["Work", "New folder…"]
    next(a for a in move.actions() if a.text() == "Work").trigger()
    qtbot.waitUntil(lambda: chat.conversations.record(cake_row).folder_id == work.id, timeout=TIMEOUT)  # type: ignore[union-attr]

    panel.choose(work.id)
    qtbot.waitUntil(lambda: sorted(_titles(window)) == ["Birthday cake", "Quarterly report"], timeout=TIMEOUT)
    chat.new_conversation()
    qtbot.waitUntil(lambda: chat.current is not None and chat.current.title == "New chat", timeout=TIMEOUT)
    current: ConversationRecord = chat.current  # type: ignore[assignment]
    assert current.folder_id == work.id and current.system_prompt == "Answer formally."
    qtbot.waitUntil(lambda: chat.conversations.rowCount() == 3, timeout=TIMEOUT)

    search = chat.sidebar.search
    assert search.kinds.findText("In “Work”") > 0
    search.kinds.setCurrentIndex(search.kinds.findText("In “Work”"))
    qtbot.keyClicks(search.field, "notes")
    qtbot.waitUntil(lambda: search.results.count() == 2, timeout=TIMEOUT)  # the tax return is not in Work
    search.field.clear()

    panel.choose(None)  # the pin, from All chats
    qtbot.waitUntil(lambda: chat.conversations.rowCount() == 4, timeout=TIMEOUT)
    tax_row = _titles(window).index("Tax return")
    menu = chat.sidebar.menu_for(chat.conversations.record(tax_row))  # type: ignore[arg-type]
    next(a for a in menu.actions() if a.text() == "Pin to the top").trigger()
    qtbot.waitUntil(lambda: _titles(window)[0] == "Tax return", timeout=TIMEOUT)
    assert chat.conversations.record(0).pinned  # type: ignore[union-attr]
    window.grab().save(str(Path(os.environ.get("HEARTH_SHOTS", "/tmp")) / "chat-folders.png"))

    panel.choose(work.id)
    panel.list.setFocus()
    qtbot.keyClick(panel.list, Qt.Key.Key_Delete)  # its chats stay, in All chats; Undo brings the folder back
    qtbot.waitUntil(lambda: panel.list.count() == 1, timeout=TIMEOUT)
    # All chats is shown again: its page is read off the GUI thread, so it may come after the folder list.
    qtbot.waitUntil(lambda: chat.conversations.rowCount() == 4, timeout=TIMEOUT)
    qtbot.mouseClick(panel.undo.button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: panel.list.count() == 2, timeout=TIMEOUT)
    panel.choose(work.id)
    qtbot.waitUntil(lambda: chat.conversations.rowCount() == 3, timeout=TIMEOUT)


def test_a_chat_unpinned_while_pages_are_to_come_waits_for_its_page(qapp: object) -> None:
    """Put at the end, it would be the oldest row, and the next page would start after it, skipping those between."""
    from dataclasses import replace
    from datetime import UTC, datetime, timedelta

    from app.history import Page
    from ui.qt.qt_models import ConversationListModel

    now = datetime(2026, 12, 5, tzinfo=UTC)

    def record(i: int, pinned: bool = False) -> ConversationRecord:
        return ConversationRecord(id=i, title=f"C{i}", created_at=now, updated_at=now - timedelta(hours=i),
                                  model_id=None, model_name=None, system_prompt="", settings={},
                                  pinned_at=now if pinned else None)

    model = ConversationListModel()
    old = record(50, pinned=True)
    model.set_page(Page([old, record(1), record(2), record(3)], more=True))
    asked: list[ConversationRecord] = []
    model.moreWanted.connect(asked.append)
    model.put(replace(old, pinned_at=None))
    assert model.row_of(50) == -1 and model.rowCount() == 3
    model.fetchMore(model.index(0).parent())
    assert [r.id for r in asked] == [3]
    model.put(record(1, pinned=True))
    assert model.record(0).id == 1  # type: ignore[union-attr]


@pytest.mark.engine
def test_a_new_chat_in_a_folder_starts_with_its_model(qtbot: QtBot, make_window: MakeWindow,
                                                      test_model_path: Path) -> None:
    from tests.helpers.windows import import_model

    window = make_window()
    import_model(qtbot, window, test_model_path)
    model = window.library_model.items()[0]
    window.chat.view.model_bar.combo.setCurrentIndex(-1)
    assert window.chat.view.model_bar.selected() is None
    store, panel = window.services.store, window.chat.sidebar.folders
    stories = store.create_folder("Stories", model_id=model.id, model_name=model.name)
    panel.reload(then_choose=stories.id)
    qtbot.waitUntil(lambda: panel.current() is not None, timeout=TIMEOUT)
    window.chat.new_conversation()
    qtbot.waitUntil(lambda: window.chat.current is not None, timeout=TIMEOUT)
    assert window.chat.current is not None and window.chat.current.model_name == model.name
    selected = window.chat.view.model_bar.selected()
    assert selected is not None and selected.id == model.id
