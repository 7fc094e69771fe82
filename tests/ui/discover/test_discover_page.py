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


def test_discover_says_offline_plainly(qtbot: QtBot, make_window: MakeWindow) -> None:
    window = make_window()  # the suite runs with HF_HUB_OFFLINE set: the Hub is out of reach
    window._show_page(2)
    window.discover.view.query.setText("llama")
    window.discover.view._search()
    qtbot.waitUntil(lambda: "offline" in window.discover.view.status.text(), timeout=TIMEOUT)
    assert window.discover.view.offline_button.isVisible()


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
