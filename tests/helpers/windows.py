"""Hearth's window in the GUI tests: the options of the ``make_window`` fixture (``tests/ui/conftest.py``), and steps
that tests of several pages take."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from pytestqt.qtbot import QtBot

from app.hardware.machine import Machine
from ui.main_window import MainWindow
from ui.services import Services

TIMEOUT = 60_000  # ms: only a wait that never ends runs into it


@dataclass(frozen=True)
class WindowOptions:
    """How ``make_window`` opens a window: a module sets its own with ``pytestmark = pytest.mark.window(...)`` (a
    class or a test can too, the nearest mark winning), and a call can change any of them:
    ``make_window(max_tokens=8)``. The defaults open the window on this computer with the default settings."""

    machine: Machine | None = None
    """The computer the window sees instead of this one (with a known memory speed, so nothing is measured)."""
    bandwidth: float | None = None
    """This computer, with this memory speed (bytes/s): nothing is measured in the background (a second of work
    that may outlive a short test), and plans come with a time estimate."""
    max_tokens: int | None = None
    """The default answer length."""
    context_length: int | None = None
    """The default context length."""
    start: bool = False
    """Open it as a start does (``ui.main.open_window``): shown, filled in, then the welcome page offered on a
    first start. Otherwise the window is made with its services (``MainWindow(services)``) and shown."""
    settle: bool = False
    """After the test, wait for every background operation to come back before the windows go (a page that
    starts work of its own, such as a plan or a comparison)."""


class MakeWindow(Protocol):
    def __call__(self, change: Callable[[Services], None] | None = None, **options: Any) -> MainWindow:
        """A window on the test's HEARTH_HOME (the same one each call, as restarting the app would use), shown;
        ``change`` edits the services before the window gets them; ``options`` are :class:`WindowOptions`."""
        ...


def import_model(qtbot: QtBot, window: MainWindow, model: Path) -> None:
    """Copies ``model`` into the window's empty library and waits until the model bar offers it."""
    window.library.import_model(model, copy=True)
    qtbot.waitUntil(lambda: window.chat.view.model_bar.combo.count() == 1, timeout=TIMEOUT)
