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
