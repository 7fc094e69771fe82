"""Another computer's models in the window: added under Models → Other computers… (checked first, its key kept in the
password store), listed in the model bar with the computer's name, and chatted with through its server, here
llama-cpp-python's own (``python -m llama_cpp.server``) on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator

import keyring
import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox
from pytestqt.qtbot import QtBot

from app import network
from app.chat import AnswerFinished
from ui.library.computers_dialog import ComputersDialog
from ui.main_window import MainWindow

from tests.helpers.free_port import free_port
from tests.helpers.memory_keyring import MemoryKeyring
from tests.helpers.windows import TIMEOUT, MakeWindow

pytestmark = pytest.mark.engine


@pytest.fixture(autouse=True)
def online(monkeypatch: pytest.MonkeyPatch) -> Iterator[MemoryKeyring]:
    """Hearth online, as a person has it (the tests keep the Hub offline), with a password store in memory."""
    monkeypatch.setattr(network, "is_offline", lambda: False)
    store, previous = MemoryKeyring(), keyring.get_keyring()
    keyring.set_keyring(store)
    yield store
    keyring.set_keyring(previous)


def _dialog(qtbot: QtBot, window: object) -> ComputersDialog:
    from ui.main_window import MainWindow

    assert isinstance(window, MainWindow)
    qtbot.mouseClick(window.library.view.computers_button, Qt.MouseButton.LeftButton)
    dialog = window.library.computers_dialog
    assert isinstance(dialog, ComputersDialog) and dialog.isVisible()
    return dialog


def test_add_a_computer_chat_with_its_model_then_remove_it(
        qtbot: QtBot, make_window: MakeWindow, llama_server: str, online: MemoryKeyring,
        monkeypatch: pytest.MonkeyPatch) -> None:
    window = make_window()
    window._show_page(1)
    dialog = _dialog(qtbot, window)
    assert not dialog.add_button.isEnabled()  # nothing typed yet

    qtbot.keyClicks(dialog.address, f"127.0.0.1:{free_port()}")  # nobody there
    qtbot.mouseClick(dialog.add_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: "Could not reach 127.0.0.1" in dialog.status.text(), timeout=TIMEOUT)
    assert window.settings.remote_computers == {}  # not kept

    dialog.address.setText(llama_server)
    qtbot.keyClicks(dialog.name, "Study-PC")
    qtbot.keyClicks(dialog.key, "sesame")
    with qtbot.waitSignal(dialog.changed, timeout=TIMEOUT):
        qtbot.mouseClick(dialog.add_button, Qt.MouseButton.LeftButton)
    assert dialog.status.text().startswith("Added Study-PC: ") and "2,048 tokens" in dialog.status.text()
    assert window.settings.remote_computers == {llama_server: "Study-PC"}
    assert online.saved == {("Hearth", f"remote-key:{llama_server}"): "sesame"}

    bar = window.chat.view.model_bar
    qtbot.waitUntil(lambda: bar.combo.count() == 1, timeout=TIMEOUT)
    assert bar.combo.itemText(0) == "stories260K · on Study-PC"
    dialog.close()

    window._show_page(0)
    window.chat.new_conversation()
    qtbot.waitUntil(lambda: window.chat.current is not None, timeout=TIMEOUT)
    with qtbot.waitSignal(window.loader.loaded, timeout=TIMEOUT):
        qtbot.mouseClick(bar.load_button, Qt.MouseButton.LeftButton)
    assert bar.status.text() == "Ready on Study-PC · 2,048-token context" and bar.load_button.text() == "Unload"
    finished: list[AnswerFinished] = []
    window.bridge.answerFinished.connect(finished.append)
    composer = window.chat.view.composer
    composer.setFocus()
    qtbot.keyClicks(composer, "Once upon a time")
    qtbot.keyClick(composer, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: bool(finished), timeout=TIMEOUT)
    answer = finished[0].message
    assert answer.content and not finished[0].error and answer.model_name == "stories260K on Study-PC"
    assert answer.completion_tokens and answer.ttft_s is not None  # measured on this side
    last = window.chat.view._views[answer.id]
    assert last.regenerate_button.isVisibleTo(window) and not last.continue_button.isVisibleTo(window)

    dialog = _dialog(qtbot, window)
    dialog.list.setCurrentRow(0)
    monkeypatch.setattr(QMessageBox, "question", lambda *_args: QMessageBox.StandardButton.Yes)
    with qtbot.waitSignal(dialog.changed, timeout=TIMEOUT):
        qtbot.mouseClick(dialog.remove_button, Qt.MouseButton.LeftButton)
    assert window.settings.remote_computers == {} and online.saved == {}
    qtbot.waitUntil(lambda: bar.combo.count() == 0, timeout=TIMEOUT)
    dialog.close()


def test_the_dialog_refuses_what_is_not_an_address(qtbot: QtBot, make_window: MakeWindow) -> None:
    window = make_window()
    dialog = _dialog(qtbot, window)
    dialog.address.setText("ftp://study-pc")
    qtbot.mouseClick(dialog.add_button, Qt.MouseButton.LeftButton)
    assert "is not a server's address" in dialog.status.text() and dialog.status.property("problem") is True
    dialog.close()


def test_a_remote_model_is_listed_by_its_short_name_and_its_computer() -> None:
    from app.remote.address import RemoteAddress
    from app.remote.computers import Computer
    from app.remote.listing import computer_of, remote_record

    record = remote_record(Computer("http://study-pc:8080", "Study-PC"), "/models/qwen2.5-7b.gguf", None)
    assert record.name == "qwen2.5-7b" and computer_of(record) == "Study-PC" and record.id < 0
    assert record.path == str(RemoteAddress("http://study-pc:8080", "/models/qwen2.5-7b.gguf"))
    assert remote_record(Computer("http://study-pc:8080", "Study-PC"), "/models/qwen2.5-7b.gguf", None).id == record.id


def _with_study_pc(qtbot: QtBot, make_window: MakeWindow, llama_server: str) -> MainWindow:
    """A window with the llama.cpp server added as Study-PC (its model listed), and no model of its own."""
    window = make_window()
    window.services.computers.add(llama_server, "Study-PC", context_length=1024)
    window.library.refresh_remote()
    qtbot.waitUntil(lambda: window.library_model.rowCount() == 1, timeout=TIMEOUT)
    return window


def test_a_remote_model_summarizes_on_the_tasks_page_and_is_in_the_models_table(
        qtbot: QtBot, make_window: MakeWindow, llama_server: str) -> None:
    from app.remote.listing import computer_of

    window = _with_study_pc(qtbot, make_window, llama_server)
    record = window.library_model.items()[0]
    assert computer_of(record) == "Study-PC"
    assert window.library_model.index(0, 1).data() == "On Study-PC"
    window._show_page(1)
    window.library.view.select(record.id)
    assert "Runs on <b>Study-PC</b>" in window.library.view.details.text()
    assert window.library.view.chat_button.isEnabled() and not window.library.view.remove_button.isEnabled()

    window._show_page(3)
    view = window.tasks.view
    qtbot.waitUntil(lambda: view.model_combo.count() == 1 and view.selected_model() is not None, timeout=TIMEOUT)
    assert view.model_combo.itemText(0) == "stories260K · on Study-PC"
    view.text_input.setPlainText("Lily had a little dog. The dog liked to run in the park.\n\n"
                                 "One day the dog saw a big red ball and ran after it.")
    qtbot.waitUntil(lambda: not view.plan_label.property("stale") and "reads it in one pass" in view.plan_label.text(),
                    timeout=TIMEOUT)
    with qtbot.waitSignal(window.task_bridge.runEnded, timeout=TIMEOUT) as ended:
        qtbot.mouseClick(view.run_button, Qt.MouseButton.LeftButton)
    event = ended.args[0]
    assert event.record.status == "done" and event.result is not None and event.result.text.strip()
    assert window.services.engine.loaded is not None and window.services.engine.loaded.remote == "Study-PC"


def test_classify_on_a_remote_model_says_how_its_labels_were_read(
        qtbot: QtBot, make_window: MakeWindow, llama_server: str) -> None:
    from app.tasks.orchestration import READ_LABELS_NOTE

    window = _with_study_pc(qtbot, make_window, llama_server)
    window._show_page(3)
    page, view = window.tasks, window.tasks.view
    page.set_task("classify")
    view.options.labels.setPlainText("dog, cat")
    view.text_input.setPlainText("The dog ran after the ball.\n\nThe cat slept in the sun.")
    qtbot.waitUntil(lambda: not view.plan_label.property("stale") and "2 texts" in view.plan_label.text(),
                    timeout=TIMEOUT)
    with qtbot.waitSignal(window.task_bridge.runEnded, timeout=TIMEOUT) as ended:
        qtbot.mouseClick(view.run_button, Qt.MouseButton.LeftButton)
    assert ended.args[0].record.status == "done" and view.output.classified.rowCount() == 2
    assert view.output.notice.text() == READ_LABELS_NOTE and view.output.notice.isVisibleTo(window)
