"""The welcome page, driven as a person would on a first start: real Qt, a real library and settings file."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QFileDialog, QLabel, QMessageBox, QPushButton
from pytestqt.qtbot import QtBot

from app.forecast.estimate import WORDS_PER_TOKEN
from app.hardware.machine import Machine
from app.hub.suggestions import USEFUL_WORDS_PER_S, suggest
from ui.main_window import MainWindow
from ui.qt import background
from ui.welcome.welcome_view import MEASURING_NOTE, NO_CATALOG_NOTE, OFFLINE_NOTE, ONLINE_NOTE

from tests.helpers.hub_stand_in import HubStandIn, hub_fixture  # noqa: F401
from tests.helpers.windows import MakeWindow

TIMEOUT = 60_000
GIB = 2**30
# A known computer, so the suggestions do not depend on the one running the tests; its memory speed is known,
# so nothing is measured in the background.
MACHINE = Machine(memory_total=16 * GIB, memory_available=11 * GIB, cpu_name="Test CPU", physical_cores=4,
                  logical_cores=8, cpu_features=("AVX2",), gpus=(), offload_backends=(), bandwidth_bytes_per_s=20e9)

pytestmark = pytest.mark.window(machine=MACHINE, start=True)  # started as `run_app` starts it (`open_window`)


def _welcome_shown(qtbot: QtBot, window: MainWindow) -> None:
    qtbot.waitUntil(lambda: window.stack.currentWidget() is window.welcome.view, timeout=TIMEOUT)


def _click(qtbot: QtBot, button: QPushButton) -> None:
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)


def _machine_lines(window: MainWindow) -> list[str]:
    layout = window.welcome.view.machine_lines
    return [layout.itemAt(i).widget().text() for i in range(layout.count())]  # type: ignore[attr-defined]


def _welcome_action(window: MainWindow) -> QAction:
    return next(a for a in window.findChildren(QAction) if a.text() == "&Welcome")


def test_first_start_welcomes_and_skipping_keeps_it_away(qtbot: QtBot, make_window: MakeWindow) -> None:
    window = make_window()
    _welcome_shown(qtbot, window)
    view = window.welcome.view
    lines = _machine_lines(window)
    assert lines[0] == "16 GB of memory, 11.8 GB free right now."
    assert lines[1].startswith("Processor: Test CPU, 4 cores (8 threads)")
    assert "No graphics card" in lines[2] and not any("Memory speed" in line for line in lines)
    assert not any(button.isChecked() for button in window.nav_group.buttons())  # no page button stands for it
    assert view.close_button.text() == "Skip for now"

    _click(qtbot, view.close_button)
    assert window.stack.currentIndex() == 0 and window.chats_tab.isChecked()
    assert window.settings.welcome_done
    window.close()
    assert json.loads(window.services.paths.settings_file.read_text())["welcome_done"] is True

    again = make_window()
    assert again.settings.welcome_done  # decided at once: no library query, no welcome
    assert again.stack.currentIndex() == 0


def test_not_offered_to_someone_who_has_chatted_before(qtbot: QtBot, make_window: MakeWindow) -> None:
    window = make_window(lambda services: services.store.create_conversation("Old chat", {}))
    qtbot.waitUntil(lambda: window.chat.conversations.rowCount() == 1, timeout=TIMEOUT)
    qtbot.waitUntil(lambda: not background._running, timeout=TIMEOUT)  # the start's decisions are all made
    assert window.stack.currentIndex() == 0 and not window.settings.welcome_done
    _welcome_action(window).trigger()  # still there when asked for
    assert window.stack.currentWidget() is window.welcome.view


def test_esc_leaves_the_welcome_and_stop_keeps_its_shortcut_elsewhere(qtbot: QtBot, make_window: MakeWindow) -> None:
    window = make_window()
    _welcome_shown(qtbot, window)
    assert not window.stop_action.isEnabled()  # Esc belongs to the page here
    focused = window.welcome.view.first_action()
    focused.setFocus()
    qtbot.keyClick(focused, Qt.Key.Key_Escape)
    assert window.stack.currentIndex() == 0 and window.settings.welcome_done
    assert window.stop_action.isEnabled()


def test_suggestions_fit_this_computer_and_say_what_they_are_good_at(
        qtbot: QtBot, make_window: MakeWindow, hub: HubStandIn) -> None:
    window = make_window()
    _welcome_shown(qtbot, window)
    view = window.welcome.view
    assert window.services.catalog is not None
    expected = suggest(window.services.catalog, MACHINE)
    assert len(expected) == 3 and len(view.get_buttons) == 3
    for suggestion, button in zip(expected, view.get_buttons, strict=True):
        card = button.parentWidget()
        texts = [label.text() for label in card.findChildren(QLabel)]
        assert texts[0] == suggestion.entry.name and suggestion.entry.good_at in texts
        assert any(text.startswith("About ") and text.endswith(" GB to download") for text in texts)
        assert button.isEnabled() and button.accessibleName() == f"Get {suggestion.entry.name}"
    assert view.note.text() == ONLINE_NOTE
    for button in view.findChildren(QPushButton):
        assert button.toolTip(), button.text()
    assert view.first_action() is view.get_buttons[0]


def test_get_it_opens_discover_on_the_model_and_the_download_lands_in_the_library(
        qtbot: QtBot, make_window: MakeWindow, hub: HubStandIn, test_model_path: Path) -> None:
    window = make_window()
    _welcome_shown(qtbot, window)
    assert window.services.catalog is not None
    first = suggest(window.services.catalog, MACHINE)[0].entry
    stem = first.repo.split("/")[1].removesuffix("-GGUF")
    hub.add_repo(first.repo, {f"{stem}-Q8_0.gguf": test_model_path.read_bytes()[:400_000],
                              f"{stem}-{first.recommended_quant}.gguf": test_model_path})

    _click(qtbot, window.welcome.view.get_buttons[0])
    discover = window.discover.view
    assert window.stack.currentWidget() is discover and window.discover_tab.isChecked()
    assert window.settings.welcome_done
    assert discover.current_repo == first.repo and discover.results.currentItem() is not None
    qtbot.waitUntil(lambda: discover.files.rowCount() == 2, timeout=TIMEOUT)
    selected = discover.files.selectionModel().selectedRows()
    assert len(selected) == 1
    chosen = discover.files.item(selected[0].row(), 0)
    assert chosen is not None and chosen.text() == f"{first.recommended_quant}  ★ recommended"

    _click(qtbot, discover.download_button)  # the download goes on as from Discover itself
    qtbot.waitUntil(lambda: window.library_model.rowCount() == 1, timeout=TIMEOUT)
    record = window.library_model.record(0)
    assert record is not None and Path(record.path).read_bytes() == test_model_path.read_bytes()


def test_add_a_model_from_disk_then_start_chatting(qtbot: QtBot, make_window: MakeWindow, test_model_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *_a, **_k: (str(test_model_path), ""))
    asked: list[str] = []

    def copy_it(box: QMessageBox) -> int:
        asked.append(box.text())
        next(b for b in box.buttons() if b.text() == "Copy into Hearth").click()
        return 0

    monkeypatch.setattr(QMessageBox, "exec", copy_it)
    window = make_window()
    _welcome_shown(qtbot, window)
    view = window.welcome.view
    _click(qtbot, view.add_button)
    assert asked and test_model_path.name in asked[0]
    qtbot.waitUntil(lambda: window.library_model.rowCount() == 1, timeout=TIMEOUT)
    assert window.stack.currentWidget() is view  # the person decides when to leave
    qtbot.waitUntil(lambda: view.close_button.text() == "Start chatting", timeout=TIMEOUT)
    _click(qtbot, view.close_button)
    assert window.stack.currentIndex() == 0
    assert window.chat.view.model_bar.selected() is not None


def test_the_help_menu_brings_it_back(qtbot: QtBot, make_window: MakeWindow) -> None:
    window = make_window(lambda services: setattr(services.settings, "welcome_done", True))
    assert window.stack.currentIndex() == 0
    _welcome_action(window).trigger()
    assert window.stack.currentWidget() is window.welcome.view
    window._show_page(1)  # the Models page, by its button
    assert window.stack.currentIndex() == 1 and window.models_tab.isChecked()
    _welcome_action(window).trigger()
    assert window.stack.currentWidget() is window.welcome.view


def test_offline_the_file_from_disk_comes_first_and_downloads_wait(
        qtbot: QtBot, make_window: MakeWindow, hub: HubStandIn, monkeypatch: pytest.MonkeyPatch) -> None:
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)  # restored after the test, as the environment
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    window = make_window()
    _welcome_shown(qtbot, window)
    view = window.welcome.view
    column = view.column
    assert column.indexOf(view.disk_row) > column.indexOf(view.suggestions_box)

    window.privacy.set_offline(True)  # File → Work offline, with the page open
    assert len(view.get_buttons) == 3 and not any(b.isEnabled() for b in view.get_buttons)
    assert view.note.text() == OFFLINE_NOTE
    assert column.indexOf(view.disk_row) < column.indexOf(view.suggestions_box)
    assert view.add_button.objectName() == "primary" and view.first_action() is view.add_button
    assert "connection" in view.get_buttons[0].toolTip()

    window.privacy.set_offline(False)
    assert all(b.isEnabled() for b in view.get_buttons) and view.note.text() == ONLINE_NOTE


def test_without_a_catalog_the_computer_and_the_file_from_disk_remain(
        qtbot: QtBot, make_window: MakeWindow) -> None:
    window = make_window(lambda services: setattr(services, "catalog", None))
    _welcome_shown(qtbot, window)
    view = window.welcome.view
    assert view.get_buttons == [] and view.note.text() == NO_CATALOG_NOTE
    assert view.first_action() is view.add_button and view.add_button.isEnabled()
    assert _machine_lines(window)[0] == "16 GB of memory, 11.8 GB free right now."


def _card_texts(button: QPushButton) -> list[str]:
    card = button.parentWidget()
    return [label.text() for label in card.findChildren(QLabel)]


# Two cores, no graphics card, memory to spare, and the memory speed measured there: an 8B model fits, but its
# forecast is 2-4 words a second.
TWO_CORES = Machine(memory_total=16 * GIB, memory_available=12 * GIB, cpu_name="Test CPU", physical_cores=2,
                    logical_cores=2, cpu_features=("AVX2",), gpus=(), offload_backends=(), bandwidth_bytes_per_s=30e9)


def test_a_two_core_computer_is_offered_quick_models_with_their_speed_and_size(
        qtbot: QtBot, make_window: MakeWindow) -> None:
    window = make_window(machine=TWO_CORES)
    _welcome_shown(qtbot, window)
    view = window.welcome.view
    assert len(view.get_buttons) == 3
    for button in view.get_buttons:
        name, size, speed = _card_texts(button)[:3]
        assert "8B" not in name and "7B" not in name, name
        assert size.startswith("About ") and size.endswith(" GB to download"), size
        assert speed.startswith("Answers at about ") and speed.endswith(" words per second here"), speed
        low = float(speed.removeprefix("Answers at about ").split("–")[0])
        assert low >= USEFUL_WORDS_PER_S, speed


def test_a_first_start_measures_how_fast_this_computer_is_before_suggesting(
        qtbot: QtBot, make_window: MakeWindow) -> None:
    window = make_window(machine=replace(MACHINE, bandwidth_bytes_per_s=None))
    _welcome_shown(qtbot, window)
    view = window.welcome.view
    qtbot.waitUntil(lambda: view.note.text() != MEASURING_NOTE, timeout=TIMEOUT)  # measured here, a second or two
    machine = window.services.machine
    assert machine.bandwidth_bytes_per_s is not None
    expected = suggest(window.services.catalog or [], machine)
    assert [_card_texts(b)[0] for b in view.get_buttons] == [s.entry.name for s in expected]
    for suggestion, button in zip(expected, view.get_buttons, strict=True):
        assert suggestion.speed is not None
        assert f"Answers at {suggestion.speed.words()} here" in _card_texts(button)
        assert suggestion.speed.high * WORDS_PER_TOKEN > 0
