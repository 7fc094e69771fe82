"""The window, headless, driven like a person would: real Qt, real engine, real database."""

from __future__ import annotations

import gc
import os
import signal
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QPushButton
from pytestqt.qtbot import QtBot

from app.engine import EngineState
from app.history import ConversationRecord, MessageRecord
from app.paths import Paths
from ui.main import build_services
from ui.main_window import MainWindow, Services
from ui.qt_models import ConversationListModel, LibraryModel

from tests.helpers.hub_stand_in import HubStandIn, hub_fixture  # noqa: F401

pytestmark = pytest.mark.engine

TIMEOUT = 60_000

MakeWindow = Callable[[], MainWindow]


@pytest.fixture
def make_window(qtbot: QtBot, tmp_path: Path) -> Iterator[MakeWindow]:
    """Opens a window on the same HEARTH_HOME each call, as restarting the app would."""
    windows: list[MainWindow] = []

    def make() -> MainWindow:
        services = build_services(Paths.under(tmp_path / "home").ensure())
        services.settings.generation.max_tokens = 1800  # long answers, so Stop lands mid-answer
        window = MainWindow(services)
        qtbot.addWidget(window)
        window.show()
        qtbot.waitExposed(window)
        windows.append(window)
        return window

    yield make
    for window in windows:
        window.close()
    from app import network

    network.configure(None)
    windows.clear()
    gc.collect()  # here, on the GUI thread: a closed window must not be collected on a worker thread


def _import(qtbot: QtBot, window: MainWindow, model: Path) -> None:
    window.import_model(model, copy=True)
    qtbot.waitUntil(lambda: window.model_bar.combo.count() == 1, timeout=TIMEOUT)


def _type_and_send(qtbot: QtBot, window: MainWindow, text: str) -> None:
    composer = window.chat_view.composer
    composer.setFocus()
    qtbot.keyClicks(composer, text)
    qtbot.keyClick(composer, Qt.Key.Key_Return)


def test_chat_stop_close_and_find_it_again(qtbot: QtBot, make_window: MakeWindow, test_model_path: Path) -> None:
    window = make_window()
    assert window.conversations.rowCount() == 0
    _import(qtbot, window, test_model_path)
    assert window.library_model.rowCount() == 1

    streamed: list[str] = []
    window.bridge.answerDelta.connect(lambda _conversation, _message, text: streamed.append(text))
    with qtbot.waitSignal(window.bridge.answerDelta, timeout=TIMEOUT):
        _type_and_send(qtbot, window, "Once upon a time")  # no model loaded yet: it loads, then sends
    assert window.chat_view.composer.toPlainText() == ""
    assert window.engine.loaded is not None and window.chat_view.stop_button.isVisible()
    assert window.model_bar.load_button.text() == "Unload"
    # A stop right after the first word may land before a second token: wait for a few, so the speed exists.
    qtbot.waitUntil(lambda: len(streamed[-1]) >= 40, timeout=TIMEOUT)

    with qtbot.waitSignal(window.bridge.answerFinished, timeout=TIMEOUT) as finished:
        qtbot.mouseClick(window.chat_view.stop_button, Qt.MouseButton.LeftButton)
    answer: MessageRecord = finished.args[0].message
    assert answer.finish_reason == "cancelled" and answer.content
    view = window.chat_view.message_view(answer.id)
    assert view is not None and view.text == answer.content
    assert "Stopped." in view.figures.text() and "tokens/s" in view.figures.text()
    assert window.chat_view.send_button.isVisible() and not window.chat_view.stop_button.isVisible()
    qtbot.waitUntil(lambda: window.conversations.rowCount() == 1, timeout=TIMEOUT)
    window.close()
    assert window.engine.state is EngineState.STOPPED

    reopened = make_window()
    qtbot.waitUntil(lambda: len(reopened.chat_view.message_ids()) == 2, timeout=TIMEOUT)
    conversation: ConversationRecord | None = reopened.conversations.record(0)
    assert conversation is not None and conversation.title == "Once upon a time"
    views = [reopened.chat_view.message_view(i) for i in reopened.chat_view.message_ids()]
    assert [v.role for v in views if v] == ["user", "assistant"]
    assert views[0] is not None and views[0].text == "Once upon a time"
    assert views[1] is not None and views[1].text == answer.content
    assert reopened.model_bar.selected() is not None  # the last model is chosen again


def test_shift_enter_adds_a_line(qtbot: QtBot, make_window: MakeWindow) -> None:
    window = make_window()
    composer = window.chat_view.composer
    qtbot.keyClicks(composer, "first")
    qtbot.keyClick(composer, Qt.Key.Key_Return, Qt.KeyboardModifier.ShiftModifier)
    qtbot.keyClicks(composer, "second")
    assert composer.toPlainText() == "first\nsecond"


def test_sending_without_any_model_explains_what_to_do(qtbot: QtBot, make_window: MakeWindow) -> None:
    window = make_window()
    _type_and_send(qtbot, window, "Hello")
    assert "Add a model first" in window.chat_view.banner.text() and window.chat_view.banner.isVisible()
    assert window.chat_view.composer.toPlainText() == "Hello"  # the draft is kept


def test_delete_then_undo(qtbot: QtBot, make_window: MakeWindow) -> None:
    window = make_window()
    window.new_conversation()
    qtbot.waitUntil(lambda: window.conversations.rowCount() == 1, timeout=TIMEOUT)
    window.delete_current()
    qtbot.waitUntil(lambda: window.conversations.rowCount() == 0, timeout=TIMEOUT)
    assert window.undo_button.isVisible()
    qtbot.mouseClick(window.undo_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.conversations.rowCount() == 1, timeout=TIMEOUT)


def test_worker_crash_is_reported_and_the_app_carries_on(
        qtbot: QtBot, make_window: MakeWindow, test_model_path: Path) -> None:
    window = make_window()
    _import(qtbot, window, test_model_path)
    with qtbot.waitSignal(window.bridge.answerDelta, timeout=TIMEOUT):
        _type_and_send(qtbot, window, "Tell me a long story")
    assert window.engine.pid is not None
    with qtbot.waitSignal(window.bridge.workerExited, timeout=TIMEOUT):
        os.kill(window.engine.pid, signal.SIGKILL)
    assert "stopped unexpectedly" in window.chat_view.banner.text()
    assert window.model_bar.load_button.text() == "Load" and window.chat_view.send_button.isVisible()
    message = window.store.messages(window.current.id)[-1]  # type: ignore[union-attr]
    assert message.finish_reason == "interrupted" and message.content

    with qtbot.waitSignal(window.bridge.modelLoaded, timeout=TIMEOUT):
        qtbot.mouseClick(window.model_bar.load_button, Qt.MouseButton.LeftButton)
    with qtbot.waitSignal(window.bridge.answerFinished, timeout=TIMEOUT):
        _type_and_send(qtbot, window, "Again")
        qtbot.waitSignal(window.bridge.answerDelta, timeout=TIMEOUT).wait()
        window.runner.stop()


def test_a_bad_file_is_refused_with_a_message(
        qtbot: QtBot, make_window: MakeWindow, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from PySide6.QtWidgets import QMessageBox

    shown: list[str] = []
    monkeypatch.setattr(QMessageBox, "warning", lambda _parent, _title, text, *a: shown.append(text))
    window = make_window()
    bad = tmp_path / "notes.gguf"
    bad.write_text("not a model")
    window.import_model(bad, copy=True)
    qtbot.waitUntil(lambda: bool(shown), timeout=TIMEOUT)
    assert "is not a GGUF model file" in shown[0]
    assert window.library_model.rowCount() == 0


def test_qt_models_follow_the_rules(qtmodeltester: object, make_window: MakeWindow, qtbot: QtBot,
                                    test_model_path: Path) -> None:
    window = make_window()
    _import(qtbot, window, test_model_path)
    window.new_conversation()
    qtbot.waitUntil(lambda: window.conversations.rowCount() == 1, timeout=TIMEOUT)
    for model in (window.conversations, window.library_model):
        assert isinstance(model, ConversationListModel | LibraryModel)
        qtmodeltester.check(model)  # type: ignore[attr-defined]


def test_services_are_built_in_one_place(tmp_path: Path) -> None:
    services = build_services(Paths.under(tmp_path).ensure())
    assert isinstance(services, Services)
    assert services.runner.engine is services.engine and services.library.store is services.store


def test_regenerate_and_rename(qtbot: QtBot, make_window: MakeWindow, test_model_path: Path,
                               monkeypatch: pytest.MonkeyPatch) -> None:
    from PySide6.QtWidgets import QInputDialog

    window = make_window()
    window.settings.generation.max_tokens = 24
    _import(qtbot, window, test_model_path)
    with qtbot.waitSignal(window.bridge.answerFinished, timeout=TIMEOUT) as first:
        _type_and_send(qtbot, window, "Say something")
    old: MessageRecord = first.args[0].message
    last = window.chat_view.message_view(old.id)
    assert last is not None and last.regenerate_button.isVisible()

    with qtbot.waitSignal(window.bridge.answerFinished, timeout=TIMEOUT) as second:
        qtbot.mouseClick(last.regenerate_button, Qt.MouseButton.LeftButton)
    new: MessageRecord = second.args[0].message
    assert new.finish_reason == "length"
    views = [window.chat_view.message_view(i) for i in window.chat_view.message_ids()]
    assert [v.role for v in views if v] == ["user", "assistant"]
    assert views[1] is not None and views[1].text == new.content

    monkeypatch.setattr(QInputDialog, "getText", lambda *a, **k: ("  My chat  ", True))
    window.rename_current()
    qtbot.waitUntil(lambda: window.conversations.record(0).title == "My chat", timeout=TIMEOUT)  # type: ignore[union-attr]


def test_conversation_settings_are_saved_per_conversation(
        qtbot: QtBot, make_window: MakeWindow, monkeypatch: pytest.MonkeyPatch) -> None:
    from ui.settings_dialog import ConversationSettingsDialog

    def accept_with_changes(dialog: ConversationSettingsDialog) -> int:
        dialog.system_prompt.setPlainText("Answer like a pirate.")
        dialog.temperature.setValue(0.2)
        dialog.fixed_seed.setChecked(True)
        dialog.seed.setValue(1234)
        return ConversationSettingsDialog.DialogCode.Accepted.value

    monkeypatch.setattr(ConversationSettingsDialog, "exec", accept_with_changes)
    window = make_window()
    window.new_conversation()
    qtbot.waitUntil(lambda: window.current is not None, timeout=TIMEOUT)
    assert window.current is not None
    conversation_id = window.current.id
    window.edit_settings()
    qtbot.waitUntil(lambda: window.store.get_conversation(conversation_id).system_prompt == "Answer like a pirate.",
                    timeout=TIMEOUT)
    saved = window.store.get_conversation(conversation_id).settings
    assert saved["temperature"] == 0.2 and saved["seed"] == 1234
    assert window.settings.generation.system_prompt != "Answer like a pirate."  # defaults untouched


def test_stop_while_the_model_loads_puts_the_message_back(
        qtbot: QtBot, make_window: MakeWindow, test_model_path: Path) -> None:
    window = make_window()
    _import(qtbot, window, test_model_path)
    _type_and_send(qtbot, window, "Wait for me")  # starts the load; the message waits for it
    assert window.chat_view.stop_button.isVisible()
    qtbot.mouseClick(window.chat_view.stop_button, Qt.MouseButton.LeftButton)
    assert window.chat_view.composer.toPlainText() == "Wait for me"
    assert window.chat_view.send_button.isVisible()
    with qtbot.waitSignal(window.bridge.modelLoaded, timeout=TIMEOUT):
        pass
    qtbot.wait(200)
    assert not window.runner.busy
    assert all(not window.store.messages(c.id) for c in window.store.list_conversations())


def test_a_message_waiting_for_the_model_goes_to_the_chat_it_was_written_in(
        qtbot: QtBot, make_window: MakeWindow, test_model_path: Path) -> None:
    window = make_window()
    window.settings.generation.max_tokens = 8
    _import(qtbot, window, test_model_path)
    window.new_conversation()
    qtbot.waitUntil(lambda: window.conversations.rowCount() == 1, timeout=TIMEOUT)
    first = window.current
    window.new_conversation()
    qtbot.waitUntil(lambda: window.conversations.rowCount() == 2, timeout=TIMEOUT)
    second = window.current
    assert first is not None and second is not None and first.id != second.id
    window.conversation_list.setCurrentIndex(window.conversations.index(window.conversations.row_of(first.id)))
    qtbot.waitUntil(lambda: window.current is not None and window.current.id == first.id, timeout=TIMEOUT)
    with qtbot.waitSignal(window.bridge.answerFinished, timeout=TIMEOUT) as finished:
        _type_and_send(qtbot, window, "For the first chat")
        window.conversation_list.setCurrentIndex(
            window.conversations.index(window.conversations.row_of(second.id)))  # switch while it loads
    assert finished.args[0].conversation_id == first.id
    assert window.store.messages(first.id)[0].content == "For the first chat"
    assert window.store.messages(second.id) == []


def test_a_conversation_with_another_context_length_reloads_the_model(
        qtbot: QtBot, make_window: MakeWindow, test_model_path: Path) -> None:
    window = make_window()
    window.settings.generation.max_tokens = 8
    _import(qtbot, window, test_model_path)
    with qtbot.waitSignal(window.bridge.answerFinished, timeout=TIMEOUT):
        _type_and_send(qtbot, window, "First")
    assert window.engine.loaded is not None and window.engine.loaded.context_length == 2048
    assert window.current is not None
    window.current = window.store_record_with(
        window.current, window._current_settings().__class__(**{**window.current.settings, "context_length": 512}))
    window.store.update_conversation(window.current.id, settings=window.current.settings)
    with qtbot.waitSignal(window.bridge.answerFinished, timeout=TIMEOUT):
        _type_and_send(qtbot, window, "Second")
    assert window.engine.loaded is not None and window.engine.loaded.context_length == 512


def test_library_shows_what_each_model_needs(qtbot: QtBot, make_window: MakeWindow, test_model_path: Path) -> None:
    window = make_window()
    _import(qtbot, window, test_model_path)
    model = window.library_model
    qtbot.waitUntil(lambda: str(model.index(0, 1).data()).startswith("Runs well"), timeout=TIMEOUT)
    window._show_page(1)
    qtbot.waitUntil(lambda: "Memory with a" in window.library_view.details.text(), timeout=TIMEOUT)
    assert "Longest context that fits now" in window.library_view.details.text()


def test_a_model_that_does_not_fit_asks_first(qtbot: QtBot, make_window: MakeWindow, test_model_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    from dataclasses import replace

    from PySide6.QtWidgets import QMessageBox

    window = make_window()
    _import(qtbot, window, test_model_path)
    gib = 1024**3
    window.services.machine = replace(window.services.machine, memory_total=8 * gib,
                                      memory_available=gib + 20 * 1024**2)  # 20 MB above the reserve
    asked: list[str] = []
    choice = {"button": "Cancel"}

    def answer(box: QMessageBox) -> int:
        asked.append(box.text())
        wanted = next(b for b in box.buttons() if choice["button"] in b.text())
        wanted.click()
        return 0

    monkeypatch.setattr(QMessageBox, "exec", answer)
    qtbot.mouseClick(window.model_bar.load_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: bool(asked), timeout=TIMEOUT)
    assert asked[0].startswith("Tight")
    qtbot.waitUntil(lambda: not window.model_bar.loading, timeout=TIMEOUT)
    assert window.engine.loaded is None

    choice["button"] = "Load anyway"
    with qtbot.waitSignal(window.bridge.modelLoaded, timeout=TIMEOUT):
        qtbot.mouseClick(window.model_bar.load_button, Qt.MouseButton.LeftButton)
    assert len(asked) == 2
    qtbot.waitUntil(lambda: bool(window.store.load_records()), timeout=TIMEOUT)
    record = window.store.load_records()[0]
    assert record.estimate["verdict"].startswith("Tight") and record.measured["weights_bytes"] > 0


def test_discover_download_and_find_it_in_the_library(qtbot: QtBot, make_window: MakeWindow, hub: HubStandIn,
                                                      test_model_path: Path) -> None:
    hub.add_repo("ggml-org/stories-GGUF", {"stories260K-F32.gguf": test_model_path,
                                           "stories260K-Q8_0.gguf": test_model_path.read_bytes()[:500_000]},
                 downloads=42, card="# Stories\n\nA tiny model that writes **children's stories**.")
    window = make_window()
    window._show_page(2)
    view = window.discover_view
    assert view.results.count() >= 20  # the curated catalog is shown first
    view.query.setText("stories")
    qtbot.mouseClick(next(b for b in view.findChildren(QPushButton) if b.text() == "Search"),
                     Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: view.results.count() == 1 and "ggml-org/stories-GGUF" in view.results.item(0).text(),
                    timeout=TIMEOUT)
    view.results.setCurrentRow(0)
    qtbot.waitUntil(lambda: view.files.rowCount() == 2, timeout=TIMEOUT)
    qtbot.waitUntil(lambda: "Stories" in view.card.toPlainText(), timeout=TIMEOUT)  # the model card
    row = next(r for r in range(2) if view.files.item(r, 0).text().startswith("F32"))  # type: ignore[union-attr]
    assert view.files.item(row, 2).text() == "Runs well"  # type: ignore[union-attr]
    view.files.selectRow(row)
    qtbot.waitUntil(lambda: "longest context that fits" in view.file_details.text(), timeout=TIMEOUT)
    assert view.file_details.text().startswith("<b>Runs well.</b>")  # from the remote header and a dry run
    with qtbot.waitSignal(window.library_model.modelReset, timeout=TIMEOUT):
        qtbot.mouseClick(view.download_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: any(j.state.value == "done" for j in window.services.downloads.jobs()),
                        timeout=TIMEOUT)
    qtbot.waitUntil(lambda: window.library_model.rowCount() == 1, timeout=TIMEOUT)
    record = window.library_model.record(0)
    assert record is not None and Path(record.path).read_bytes() == test_model_path.read_bytes()
    assert "done" in view.jobs.item(0).text()  # type: ignore[union-attr]


def test_discover_says_offline_plainly(qtbot: QtBot, make_window: MakeWindow) -> None:
    window = make_window()  # the suite runs with HF_HUB_OFFLINE set: the Hub is out of reach
    window._show_page(2)
    window.discover_view.query.setText("llama")
    window.discover_view._search()
    qtbot.waitUntil(lambda: "offline" in window.discover_view.status.text(), timeout=TIMEOUT)
    assert window.discover_view.offline_button.isVisible()


def test_privacy_lists_requests_and_work_offline_blocks_them(
        qtbot: QtBot, make_window: MakeWindow, hub: HubStandIn, monkeypatch: pytest.MonkeyPatch) -> None:
    from huggingface_hub import constants

    from ui.privacy_dialog import PrivacyDialog

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    window = make_window()
    window.search_hub("", "downloads")
    qtbot.waitUntil(lambda: bool(window.store.network_requests()), timeout=TIMEOUT)
    shown: list[PrivacyDialog] = []
    monkeypatch.setattr(PrivacyDialog, "exec", lambda dialog: shown.append(dialog) or 0)
    window.show_privacy()
    qtbot.waitUntil(lambda: shown[0].table.rowCount() == 1, timeout=TIMEOUT)
    assert shown[0].table.item(0, 2).text() == "Searching for models"  # type: ignore[union-attr]
    shown[0].offline.setChecked(True)  # the switch on the Privacy page
    assert window.offline_action.isChecked() and window.offline_label.isVisible() and window.settings.work_offline
    window.search_hub("", "downloads")
    qtbot.waitUntil(lambda: "offline" in window.discover_view.status.text(), timeout=TIMEOUT)
    assert len(window.store.network_requests()) == 1


def test_discover_loads_more_results(qtbot: QtBot, make_window: MakeWindow, hub: HubStandIn,
                                     test_model_path: Path) -> None:
    for i in range(25):
        hub.add_repo(f"owner/model-{i}-GGUF", {"m-Q4_K_M.gguf": test_model_path}, downloads=100 - i)
    window = make_window()
    view = window.discover_view
    window._show_page(2)
    window.search_hub("model", "downloads")
    qtbot.waitUntil(lambda: view.results.count() == 20 and view.more_button.isVisible(), timeout=TIMEOUT)
    qtbot.mouseClick(view.more_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: view.results.count() == 25, timeout=TIMEOUT)
    assert not view.more_button.isVisible()
