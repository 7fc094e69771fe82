"""The Discover page against the Hub stand-in: search, a model's files and card, a download into the library."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QPushButton
from pytestqt.qtbot import QtBot

from tests.helpers.hub_stand_in import HubStandIn, hub_fixture  # noqa: F401
from tests.helpers.windows import TIMEOUT, MakeWindow

pytestmark = pytest.mark.engine


def test_discover_download_and_find_it_in_the_library(qtbot: QtBot, make_window: MakeWindow, hub: HubStandIn,
                                                      test_model_path: Path) -> None:
    hub.add_repo("ggml-org/stories-GGUF", {"stories260K-F32.gguf": test_model_path,
                                           "stories260K-Q8_0.gguf": test_model_path.read_bytes()[:500_000]},
                 downloads=42, card="# Stories\n\nA tiny model that writes **children's stories**.")
    window = make_window()
    window._show_page(2)
    view = window.discover.view
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


def _closed_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _click(qtbot: QtBot, button: QPushButton) -> None:
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)


def test_without_a_network_discover_says_so_with_retry_and_work_offline(
        qtbot: QtBot, make_window: MakeWindow, hub: HubStandIn, test_model_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    from huggingface_hub import constants

    from app import network

    hub.add_repo("owner/llama-GGUF", {"llama-Q4_K_M.gguf": test_model_path})
    monkeypatch.setattr(constants, "ENDPOINT", f"http://127.0.0.1:{_closed_port()}")  # online, but no network
    window = make_window()
    window._show_page(2)
    view = window.discover.view
    assert not view.notice.isVisible()
    view.query.setText("llama")
    view._search()
    qtbot.waitUntil(view.notice.isVisible, timeout=TIMEOUT)
    assert view.notice_text.text().startswith("No network: the Hugging Face Hub cannot be reached.")
    assert "Error" not in view.notice_text.text()  # no exception's class name for people
    assert view.retry_button.isVisible() and view.work_offline_button.isVisible()
    assert view.disk_button.isVisible() and not view.work_online_button.isVisible()

    monkeypatch.setattr(constants, "ENDPOINT", hub.url)  # the network is back
    _click(qtbot, view.retry_button)
    qtbot.waitUntil(lambda: view.results.count() == 1 and "owner/llama-GGUF" in view.results.item(0).text(),
                    timeout=TIMEOUT)
    assert not view.notice.isVisible()
    assert view.current_repo is None  # neither the Retry button's focus nor the new list opened a model by itself

    monkeypatch.setattr(constants, "ENDPOINT", f"http://127.0.0.1:{_closed_port()}")  # gone again
    view._search()
    qtbot.waitUntil(view.notice.isVisible, timeout=TIMEOUT)
    _click(qtbot, view.work_offline_button)  # one click: the app's own switch
    assert network.is_offline() and window.settings.work_offline and window.offline_action.isChecked()
    assert view.notice.isVisible() and view.notice_text.text().startswith("Working offline")
    assert view.work_online_button.isVisible() and not view.retry_button.isVisible()

    monkeypatch.setattr(constants, "ENDPOINT", hub.url)
    view.results.clear()
    _click(qtbot, view.work_online_button)  # back online: what failed is asked again
    assert not network.is_offline() and not window.offline_action.isChecked()
    qtbot.waitUntil(lambda: view.results.count() == 1, timeout=TIMEOUT)
    assert not view.notice.isVisible()


def test_offline_the_catalog_says_each_models_size_and_fit(qtbot: QtBot, make_window: MakeWindow) -> None:
    from app.hardware.machine import Machine

    gib = 2**30
    machine = Machine(memory_total=8 * gib, memory_available=5 * gib, cpu_name="Test CPU", physical_cores=2,
                      logical_cores=2, cpu_features=("AVX2",), gpus=(), offload_backends=(),
                      bandwidth_bytes_per_s=15e9)
    window = make_window(machine=machine)  # the suite works offline: the Hub is never asked
    window._show_page(2)
    view = window.discover.view
    assert view.notice.isVisible() and view.work_online_button.isVisible()
    texts = {view.results.item(row).text().split("  ·  ")[0]: view.results.item(row).text()
             for row in range(view.results.count())}
    assert texts["Llama 3.2 1B Instruct"].split("\n")[0].endswith("  ·  1B  ·  808.0 MB  ·  Runs well")
    assert "  ·  4.9 GB  ·  Tight" in texts["Llama 3.1 8B Instruct"]
    view.query.setText("llama 1b")
    view.results.setCurrentRow(0)
    qtbot.waitUntil(lambda: "808.0 MB" in view.repo_label.text(), timeout=TIMEOUT)  # the Hub is not asked
    assert "Runs well on this computer" in view.repo_label.text()


def test_discover_loads_more_results(qtbot: QtBot, make_window: MakeWindow, hub: HubStandIn,
                                     test_model_path: Path) -> None:
    for i in range(25):
        hub.add_repo(f"owner/model-{i}-GGUF", {"m-Q4_K_M.gguf": test_model_path}, downloads=100 - i)
    window = make_window()
    view = window.discover.view
    window._show_page(2)
    window.discover.search_hub("model", "downloads")
    qtbot.waitUntil(lambda: view.results.count() == 20 and view.more_button.isVisible(), timeout=TIMEOUT)
    qtbot.mouseClick(view.more_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: view.results.count() == 25, timeout=TIMEOUT)
    assert not view.more_button.isVisible()
