"""The local server in the window (File → Local server…): turned on and off, answering a real ``openai`` client on
the window's own engine, listing what it answered, and taking turns with the window's chats."""

from __future__ import annotations

import http.client
import os
import signal
import socket
import threading
from pathlib import Path
from typing import Any

import openai
import pytest
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from ui.main_window import MainWindow

from tests.helpers.free_port import free_port
from tests.helpers.windows import TIMEOUT, MakeWindow, import_model

pytestmark = pytest.mark.engine

QUESTION = [{"role": "user", "content": "Once upon a time"}]



def _in_thread(call: Any) -> tuple[threading.Thread, dict[str, Any]]:
    result: dict[str, Any] = {}

    def run() -> None:
        try:
            result["answer"] = call()
        except Exception as error:  # handed to the test, which asserts on it
            result["error"] = error

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, result


def _serving(qtbot: QtBot, window: MainWindow, model: Path) -> openai.OpenAI:
    """The window's local server on, with ``model`` imported and loaded by a first request; a client for it."""
    import_model(qtbot, window, model)
    port = free_port()
    window.settings.server_port = port
    window.server.show_dialog()
    assert window.server.dialog is not None
    with qtbot.waitSignal(window.server.runningChanged, timeout=TIMEOUT):
        window.server.dialog.switch.setChecked(True)
    client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="none", max_retries=0, timeout=120)
    client.chat.completions.create(model="stories260K", messages=QUESTION, max_tokens=1)  # loaded
    return client


def test_the_local_server_answers_other_programs_and_lists_what_it_answered(
        qtbot: QtBot, make_window: MakeWindow, test_model_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    window = make_window()
    import_model(qtbot, window, test_model_path)
    port = free_port()
    window.settings.server_port = port
    window.server.show_dialog()
    dialog = window.server.dialog
    assert dialog is not None and dialog.state.text() == "Off." and not window.server_label.isVisible()
    with qtbot.waitSignal(window.server.runningChanged, timeout=TIMEOUT):
        dialog.switch.setChecked(True)
    url = f"http://127.0.0.1:{port}/v1"
    assert dialog.address.text() == url and window.server_label.isVisible() and not dialog.port.isEnabled()
    assert dialog.state.text().startswith("On: waiting for requests.")

    client = openai.OpenAI(base_url=url, api_key="none", max_retries=0, timeout=120)
    thread, result = _in_thread(lambda: client.chat.completions.create(model="stories260K", messages=QUESTION,
                                                                       max_tokens=4))
    qtbot.waitUntil(lambda: dialog.requests.rowCount() == 1, timeout=TIMEOUT)
    thread.join(60)
    assert "error" not in result and result["answer"].usage.completion_tokens == 4
    row = [dialog.requests.item(0, column).text() for column in range(dialog.requests.columnCount())]
    assert row[1:4] == ["127.0.0.1", "/v1/chat/completions", "stories260K · F32"] and row[6] == "200"
    assert window.services.engine.loaded is not None  # the window's engine: its model bar shows the model

    # A page elsewhere that tries to reach it (DNS rebinding) is refused, listed, and kept for the Privacy page.
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    connection.request("GET", "/v1/models", headers={"Host": "attacker.example"})
    assert connection.getresponse().status == 403
    connection.close()
    qtbot.waitUntil(lambda: dialog.requests.rowCount() == 2, timeout=TIMEOUT)
    assert dialog.requests.item(0, 2).text() == "/v1/models" and dialog.requests.item(0, 6).text() == "403"
    from ui.privacy.privacy_dialog import PrivacyDialog

    shown: list[PrivacyDialog] = []
    monkeypatch.setattr(PrivacyDialog, "exec", lambda privacy: shown.append(privacy) or 0)
    window.privacy.show_dialog()
    privacy = shown[0]
    qtbot.waitUntil(lambda: privacy.incoming.rowCount() == 2, timeout=TIMEOUT)
    incoming = [[privacy.incoming.item(r, c).text() for c in range(1, 5)] for r in range(2)]  # type: ignore[union-attr]
    assert incoming == [["127.0.0.1", "/v1/models", "–", "Refused (403)"],
                        ["127.0.0.1", "/v1/chat/completions", "stories260K · F32", "Answered (200)"]]
    assert not privacy.incoming.isHidden() and privacy.table.rowCount() == 0  # apart from Hearth's own requests

    with qtbot.waitSignal(window.server.runningChanged, timeout=TIMEOUT):
        dialog.switch.setChecked(False)
    assert dialog.state.text() == "Off." and not window.server_label.isVisible() and dialog.port.isEnabled()
    with pytest.raises(openai.APIConnectionError):
        client.models.list()


def test_a_chat_message_waits_while_the_server_answers_and_goes_after(
        qtbot: QtBot, make_window: MakeWindow, test_model_path: Path) -> None:
    window = make_window()
    client = _serving(qtbot, window, test_model_path)
    engine = window.services.engine
    assert engine.pid is not None
    os.kill(engine.pid, signal.SIGSTOP)  # the request below holds the engine until the worker goes on
    try:
        thread, result = _in_thread(lambda: client.chat.completions.create(model="stories260K",
                                                                           messages=QUESTION, max_tokens=64))
        qtbot.waitUntil(lambda: window.server.holding, timeout=TIMEOUT)
        assert window.server_label.text() == "Local server answering…"  # the window shows the engine is taken
        view = window.chat.view
        view.composer.setFocus()
        qtbot.keyClicks(view.composer, "Hello from the window")
        qtbot.keyClick(view.composer, Qt.Key.Key_Return)  # a new chat is made for it first, off the GUI thread
        qtbot.waitUntil(view.waiting.isVisible, timeout=TIMEOUT)
        assert "local server has answered another program" in view.waiting_label.text()
        assert not view.stop_other_button.isVisible() and view.send_button.isVisible()
    finally:
        os.kill(engine.pid, signal.SIGCONT)
    with qtbot.waitSignal(window.bridge.answerFinished, timeout=TIMEOUT) as answered:
        thread.join(60)
    assert "error" not in result and result["answer"].usage.completion_tokens > 0
    conversation = answered.args[0].conversation_id
    saved = window.services.store.messages(conversation)
    assert [m.role for m in saved] == ["user", "assistant"] and saved[0].content == "Hello from the window"
    assert not view.waiting.isVisible() and window.server_label.text() == "Local server on"


def test_other_computers_need_the_key_shown_once(
        qtbot: QtBot, make_window: MakeWindow, test_model_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import keyring

    from tests.helpers.memory_keyring import MemoryKeyring

    store = MemoryKeyring()
    previous = keyring.get_keyring()
    keyring.set_keyring(store)
    shown: list[str] = []
    monkeypatch.setattr("ui.server.page.ServerPage._show_key", lambda _page, key: shown.append(key) or True)
    try:
        window = make_window()
        import_model(qtbot, window, test_model_path)
        port = free_port()
        window.settings.server_port = port
        window.server.show_dialog()
        dialog = window.server.dialog
        assert dialog is not None and not dialog.warning.isVisible()
        dialog.network.setChecked(True)
        assert window.settings.server_network and dialog.warning.isVisible()
        with qtbot.waitSignal(window.server.runningChanged, timeout=TIMEOUT):
            dialog.switch.setChecked(True)
        assert len(shown) == 1 and shown[0].startswith("hearth-")
        assert store.saved == {("Hearth", "api-server-key"): shown[0]}
        assert dialog.address.text() == f"http://{socket.gethostname()}:{port}/v1"
        url = f"http://127.0.0.1:{port}/v1"
        wrong = openai.OpenAI(base_url=url, api_key="guess", max_retries=0, timeout=60)
        thread, result = _in_thread(wrong.models.list)
        thread.join(60)
        assert isinstance(result.get("error"), openai.AuthenticationError)
        right = openai.OpenAI(base_url=url, api_key=shown[0], max_retries=0, timeout=60)
        thread, result = _in_thread(right.models.list)
        thread.join(60)
        assert "error" not in result and result["answer"].data[0].id == "stories260K · F32"
        # Other computers name this one as they know it; a name it does not have is still refused.
        for host, status in ((f"{socket.gethostname()}:{port}", 200), ("attacker.example", 403)):
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            connection.request("GET", "/v1/models", headers={"Host": host, "Authorization": f"Bearer {shown[0]}"})
            assert connection.getresponse().status == status, host
            connection.close()
        with qtbot.waitSignal(window.server.runningChanged, timeout=TIMEOUT):
            dialog.switch.setChecked(False)
        with qtbot.waitSignal(window.server.runningChanged, timeout=TIMEOUT):
            dialog.switch.setChecked(True)
        assert len(shown) == 1  # the key is kept: shown once, when it was made
    finally:
        keyring.set_keyring(previous)


def test_a_task_started_while_the_server_answers_runs_after_it(
        qtbot: QtBot, make_window: MakeWindow, test_model_path: Path) -> None:
    from app.tasks import inputs
    from app.tasks.spec import Classify, Label, Passage, TaskInput

    window = make_window()
    client = _serving(qtbot, window, test_model_path)
    engine, tasks = window.services.engine, window.services.tasks
    assert engine.pid is not None
    os.kill(engine.pid, signal.SIGSTOP)  # the request below holds the engine until the worker goes on
    try:
        served, answered = _in_thread(lambda: client.chat.completions.create(model="stories260K", messages=QUESTION,
                                                                            max_tokens=32))
        qtbot.waitUntil(lambda: window.server.holding, timeout=TIMEOUT)
        rows = ["It crashes", "I was charged twice"]
        task, ended = _in_thread(lambda: tasks.run_blocking(
            TaskInput(Classify((Label("bug"), Label("billing"))), tuple(Passage(r) for r in rows)),
            inputs.rows_source(rows, "feedback.csv", "csv"), timeout=120))
        qtbot.wait(200)
        assert not tasks.busy and task.is_alive()  # it waits for the request, rather than failing
    finally:
        os.kill(engine.pid, signal.SIGCONT)
    served.join(60)
    task.join(120)
    assert "error" not in answered and "error" not in ended, (answered, ended)
    assert ended["answer"].record.status == "done" and len(ended["answer"].result.rows) == 2


def test_api_conversations_are_kept_in_history_only_when_asked(
        qtbot: QtBot, make_window: MakeWindow, test_model_path: Path) -> None:
    window = make_window()
    client = _serving(qtbot, window, test_model_path)  # one request answered: not kept, by default
    store = window.services.store
    assert store.list_conversations() == []
    dialog = window.server.dialog
    assert dialog is not None and not dialog.keep.isChecked()
    dialog.keep.setChecked(True)
    assert window.settings.server_keep_history
    with qtbot.waitSignal(window.server.conversationKept, timeout=TIMEOUT):
        thread, result = _in_thread(lambda: client.chat.completions.create(
            model="stories260K", max_tokens=6, messages=[{"role": "system", "content": "Be brief."}, *QUESTION]))
        thread.join(60)
    assert "error" not in result
    (kept,) = store.list_conversations()
    assert kept.title == "API: Once upon a time" and kept.settings["system_prompt"] == "Be brief."
    user, answer = store.messages(kept.id)
    assert (user.role, user.content) == ("user", "Once upon a time")
    assert answer.content == result["answer"].choices[0].message.content and answer.completion_tokens == 6
    assert answer.model_name == "stories260K · F32"
    qtbot.waitUntil(lambda: window.chat.conversations.row_of(kept.id) >= 0, timeout=TIMEOUT)  # in the chat list
    dialog.keep.setChecked(False)
    with qtbot.waitSignal(window.server.dialog.requests.rowsInserted, timeout=TIMEOUT):
        client.chat.completions.create(model="stories260K", messages=QUESTION, max_tokens=2)
    assert len(store.list_conversations()) == 1


def test_the_tasks_page_says_its_run_waits_for_the_server(
        qtbot: QtBot, make_window: MakeWindow, test_model_path: Path) -> None:
    window = make_window()
    client = _serving(qtbot, window, test_model_path)
    engine = window.services.engine
    window._show_page(3)
    view = window.tasks.view
    view.text_input.setPlainText("Lily had a little dog. The dog liked to run in the park.")
    qtbot.waitUntil(lambda: not view.plan_label.property("stale") and "reads it in one pass" in view.plan_label.text(),
                    timeout=TIMEOUT)
    assert engine.pid is not None
    os.kill(engine.pid, signal.SIGSTOP)  # the request below holds the engine until the worker goes on
    try:
        served, answered = _in_thread(lambda: client.chat.completions.create(model="stories260K", messages=QUESTION,
                                                                            max_tokens=16))
        qtbot.waitUntil(lambda: window.server.holding, timeout=TIMEOUT)
        qtbot.mouseClick(view.run_button, Qt.MouseButton.LeftButton)
        assert view.progress_label.text().startswith("Waiting for the local server to finish answering")
    finally:
        os.kill(engine.pid, signal.SIGCONT)
    served.join(60)
    qtbot.waitUntil(lambda: view.run_button.isVisible(), timeout=TIMEOUT)  # the run went after the request
    assert "error" not in answered and window.services.store.task_runs()[0].status == "done"
