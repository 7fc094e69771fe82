"""A graphics card that cannot take a model: the window says so in one sentence, the model runs on the processor, and
the next load of that model on that card goes to the processor without trying (on the portable engine and Mesa's
software Vulkan device, its buffers limited by the driver's own setting)."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from tests.helpers.portable_engine import on_vulkan
from tests.helpers.windows import TIMEOUT, MakeWindow, import_model

pytestmark = pytest.mark.engine


def test_a_model_the_card_cannot_take_runs_on_the_processor_and_is_remembered(
        qtbot: QtBot, make_window: MakeWindow, monkeypatch: pytest.MonkeyPatch, test_model_path: Path) -> None:
    on_vulkan(monkeypatch, GGML_VK_FORCE_MAX_BUFFER_SIZE="4096")
    window = make_window()
    assert window.services.machine.usable_gpus, "the window sees lavapipe as a graphics card"
    card = window.services.machine.usable_gpus[0].name
    import_model(qtbot, window, test_model_path)
    bar = window.chat.view.model_bar
    messages: list[str] = []
    window.loader.statusMessage.connect(lambda text, _ms: messages.append(text))
    with qtbot.waitSignal(window.loader.loaded, timeout=TIMEOUT) as loaded:
        qtbot.mouseClick(bar.load_button, Qt.MouseButton.LeftButton)
    first = loaded.args[0]  # llama.cpp stops while sizing it for the card (the dry run): the processor takes it
    assert first.plan.gpu_layers == 0 and messages == [first.gpu_fallback]
    assert first.gpu_fallback == ("The graphics card could not run “stories260K.gguf” (llama.cpp stopped while "
                                  "sizing it for the card), so it runs on the processor instead.")
    assert bar.status.text().startswith("Ready on the processor") and first.gpu_fallback in bar.status.toolTip()
    library_copy = window.chat.view.model_bar.selected()
    assert library_copy is not None and window.settings.processor_only == {str(Path(library_copy.path).resolve()): card}

    with qtbot.waitSignal(window.bridge.modelUnloaded, timeout=TIMEOUT):
        qtbot.mouseClick(bar.load_button, Qt.MouseButton.LeftButton)
    with qtbot.waitSignal(window.bridge.loadStarted, timeout=TIMEOUT) as started, \
            qtbot.waitSignal(window.loader.loaded, timeout=TIMEOUT) as again:
        qtbot.mouseClick(bar.load_button, Qt.MouseButton.LeftButton)
    assert started.args[0].plan.gpu_layers == 0  # asked of the processor from the start
    assert not again.args[0].gpu_fallback and bar.status.text().startswith("Ready ·")


def test_the_models_page_says_where_a_model_runs_and_offers_the_processor_only(
        qtbot: QtBot, make_window: MakeWindow, monkeypatch: pytest.MonkeyPatch, test_model_path: Path) -> None:
    on_vulkan(monkeypatch)
    window = make_window()
    card = window.services.machine.usable_gpus[0].name
    import_model(qtbot, window, test_model_path)
    window._show_page(1)
    view = window.library.view
    assert view.device_row.isVisible() and view.device.currentText() == f"{card}: as much of each model as fits"
    qtbot.waitUntil(lambda: f"Runs on: {card} (all 6 layers)." in view.details.text(), timeout=TIMEOUT)
    window.settings.processor_only["elsewhere.gguf"] = card

    view.device.setCurrentIndex(1)
    view.device.activated.emit(1)  # as a person's choice does
    qtbot.waitUntil(lambda: "Runs on: the processor." in view.details.text(), timeout=TIMEOUT)
    assert window.settings.gpu_layers == 0
    bar = window.chat.view.model_bar
    with qtbot.waitSignal(window.bridge.loadStarted, timeout=TIMEOUT) as started, \
            qtbot.waitSignal(window.loader.loaded, timeout=TIMEOUT):
        qtbot.mouseClick(bar.load_button, Qt.MouseButton.LeftButton)
    assert started.args[0].plan.gpu_layers == 0

    view.device.setCurrentIndex(0)
    view.device.activated.emit(0)  # the card again: the models it could not take are tried on it again
    qtbot.waitUntil(lambda: f"Runs on: {card} (all 6 layers)." in view.details.text(), timeout=TIMEOUT)
    assert window.settings.gpu_layers is None and window.settings.processor_only == {}
