"""The window's shell: services built in one place, its Qt models, loading a model that may not fit, and the
Privacy page; real Qt, engine and database."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from app.paths import Paths
from ui.main import build_services
from ui.qt.qt_models import ConversationListModel, LibraryModel
from ui.services import Services

from tests.helpers.hub_stand_in import HubStandIn, hub_fixture  # noqa: F401
from tests.helpers.windows import TIMEOUT, MakeWindow, import_model

pytestmark = pytest.mark.engine


def test_qt_models_follow_the_rules(qtmodeltester: object, make_window: MakeWindow, qtbot: QtBot,
                                    test_model_path: Path) -> None:
    window = make_window()
    import_model(qtbot, window, test_model_path)
    window.chat.new_conversation()
    qtbot.waitUntil(lambda: window.chat.conversations.rowCount() == 1, timeout=TIMEOUT)
    for model in (window.chat.conversations, window.library_model):
        assert isinstance(model, ConversationListModel | LibraryModel)
        qtmodeltester.check(model)  # type: ignore[attr-defined]


def test_services_are_built_in_one_place(tmp_path: Path) -> None:
    services = build_services(Paths.under(tmp_path).ensure())
    assert isinstance(services, Services)
    assert services.runner.engine is services.engine and services.library.store is services.store


def test_a_model_that_does_not_fit_asks_first(qtbot: QtBot, make_window: MakeWindow, test_model_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    from dataclasses import replace

    from PySide6.QtWidgets import QMessageBox

    window = make_window()
    import_model(qtbot, window, test_model_path)
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
    qtbot.mouseClick(window.chat.view.model_bar.load_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: bool(asked), timeout=TIMEOUT)
    assert asked[0].startswith("Tight")
    qtbot.waitUntil(lambda: not window.chat.view.model_bar.loading, timeout=TIMEOUT)
    assert window.services.engine.loaded is None

    choice["button"] = "Load anyway"
    with qtbot.waitSignal(window.bridge.modelLoaded, timeout=TIMEOUT):
        qtbot.mouseClick(window.chat.view.model_bar.load_button, Qt.MouseButton.LeftButton)
    assert len(asked) == 2
    qtbot.waitUntil(lambda: bool(window.services.store.load_records()), timeout=TIMEOUT)
    record = window.services.store.load_records()[0]
    assert record.estimate["verdict"].startswith("Tight") and record.measured["weights_bytes"] > 0


def test_privacy_lists_every_attempt_and_work_offline_blocks_them(
        qtbot: QtBot, make_window: MakeWindow, hub: HubStandIn, monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    from huggingface_hub import constants

    from app.network import Outcome
    from ui.privacy.privacy_dialog import PrivacyDialog

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    with socket.socket() as probe:  # a port nothing listens on: no network
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    hub_url = constants.ENDPOINT
    monkeypatch.setattr(constants, "ENDPOINT", f"http://127.0.0.1:{closed}")
    window = make_window()
    store = window.services.store
    window.discover.search_hub("", "downloads")
    qtbot.waitUntil(lambda: bool(store.network_requests()), timeout=TIMEOUT)
    monkeypatch.setattr(constants, "ENDPOINT", hub_url)
    window.discover.search_hub("", "downloads")
    qtbot.waitUntil(lambda: any(r.status == 200 for r in store.network_requests()), timeout=TIMEOUT)
    shown: list[PrivacyDialog] = []
    monkeypatch.setattr(PrivacyDialog, "exec", lambda dialog: shown.append(dialog) or 0)
    window.privacy.show_dialog()
    dialog = shown[0]
    rows = len(store.network_requests())
    qtbot.waitUntil(lambda: dialog.table.rowCount() == rows, timeout=TIMEOUT)
    cells = [[dialog.table.item(r, c).text() for c in range(4)] for r in range(rows)]  # type: ignore[union-attr]
    assert cells[0][2:] == ["Searching for models", "Answered (200)"]
    assert cells[-1][2:] == ["Searching for models", "Refused"]  # the attempt without a network is listed
    assert not dialog.empty.isVisible() and "refused" in dialog.summary.text()

    dialog.offline.setChecked(True)  # the switch on the Privacy page
    assert window.offline_action.isChecked() and window.offline_label.isVisible() and window.settings.work_offline
    window.discover.search_hub("", "downloads")
    notice = window.discover.view.notice_text
    qtbot.waitUntil(lambda: notice.text().startswith("Hearth is working offline"), timeout=TIMEOUT)
    assert store.network_requests()[0].outcome is Outcome.BLOCKED
