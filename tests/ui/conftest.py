"""The one way the GUI tests open Hearth's window (``make_window``), and close it again."""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import shiboken6
from PySide6.QtCore import QCoreApplication, QEvent
from PySide6.QtTest import QTest
from pytestqt.qtbot import QtBot

from app.paths import Paths
from ui.main import build_services, open_window
from ui.main_window import MainWindow, Services
from ui.qt import background

from tests.helpers.windows import TIMEOUT, MakeWindow, WindowOptions

SETTLE_TIMEOUT = 120_000  # ms: a comparison cancelled by the close may still be ending


@pytest.fixture
def make_window(qtbot: QtBot, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[MakeWindow]:
    """Opens a window on the same HEARTH_HOME each call, as restarting the app would, with the options of the
    nearest ``window`` mark and of the call (:class:`~tests.helpers.windows.WindowOptions`); closes and deletes
    every one at the end, on the GUI thread, once the work they started has come back: a window deleted later,
    in the next test's event loop, would go while that test's threads run."""
    marks = reversed(list(request.node.iter_markers("window")))  # the module's first, the test's own last
    defaults = WindowOptions(**{key: value for mark in marks for key, value in mark.kwargs.items()})
    windows: list[MainWindow] = []
    settle = False

    def make(change: Callable[[Services], None] | None = None, **changes: Any) -> MainWindow:
        nonlocal settle
        options = replace(defaults, **changes)
        services = build_services(Paths.under(tmp_path / "home").ensure())
        if options.machine is not None:
            services.machine = options.machine
        if options.bandwidth is not None:
            services.machine = replace(services.machine, bandwidth_bytes_per_s=options.bandwidth)
        if options.max_tokens is not None:
            services.settings.generation.max_tokens = options.max_tokens
        if options.context_length is not None:
            services.settings.generation.context_length = options.context_length
        if change is not None:
            change(services)
        if options.start:
            window = open_window(services)
        else:
            window = MainWindow(services)
            window.show()
        assert QTest.qWaitForWindowExposed(window, TIMEOUT), "the window was not shown"
        windows.append(window)
        settle = settle or options.settle
        return window

    yield make
    for window in windows:
        if shiboken6.isValid(window):
            window.close()
    if settle:
        qtbot.waitUntil(lambda: not background._running, timeout=SETTLE_TIMEOUT)  # every op released before windows go
    background.wait_for_background(SETTLE_TIMEOUT)
    for window in windows:
        if shiboken6.isValid(window):
            window.deleteLater()
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    from app import network

    network.configure(None)
    windows.clear()
    gc.collect()  # here, on the GUI thread: a closed window must not be collected on a worker thread
