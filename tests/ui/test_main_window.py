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


def test_privacy_lists_requests_and_work_offline_blocks_them(
        qtbot: QtBot, make_window: MakeWindow, hub: HubStandIn, monkeypatch: pytest.MonkeyPatch) -> None:
    from huggingface_hub import constants

    from ui.privacy.privacy_dialog import PrivacyDialog

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    window = make_window()
    window.discover.search_hub("", "downloads")
    qtbot.waitUntil(lambda: bool(window.services.store.network_requests()), timeout=TIMEOUT)
    shown: list[PrivacyDialog] = []
    monkeypatch.setattr(PrivacyDialog, "exec", lambda dialog: shown.append(dialog) or 0)
    window.privacy.show_dialog()
    qtbot.waitUntil(lambda: shown[0].table.rowCount() == 1, timeout=TIMEOUT)
    assert shown[0].table.item(0, 2).text() == "Searching for models"  # type: ignore[union-attr]
    shown[0].offline.setChecked(True)  # the switch on the Privacy page
    assert window.offline_action.isChecked() and window.offline_label.isVisible() and window.settings.work_offline
    window.discover.search_hub("", "downloads")
    qtbot.waitUntil(lambda: "offline" in window.discover.view.status.text(), timeout=TIMEOUT)
    assert len(window.services.store.network_requests()) == 1
