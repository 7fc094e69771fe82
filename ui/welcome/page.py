"""The welcome page: shown by itself on a first start (no models, no conversations), and from Help → Welcome. It
says what this computer can run and offers three catalog models that fit it, or a model from disk.

Leaving it, by any way, means it was seen: it opens by itself no more (``Settings.welcome_done``). The window shows
the page and routes what the person chose (a suggested model to Discover, a model from disk to the library).
``WelcomeView`` is the page's layout; this is what it does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Signal

from app import network
from app.settings import Settings
from ui.qt.background import BackgroundOp
from ui.qt.qt_models import LibraryModel
from ui.welcome.welcome_view import WelcomeView

if TYPE_CHECKING:
    from ui.services import Services


class WelcomePage(QObject):
    """Made with the window, so that it paints at once; ``attach`` gives it the services once they are built."""

    firstStart = Signal()  # the library and the history are empty: the page offers itself
    failed = Signal(object)  # an error, for the window to show
    settingsChanged = Signal()  # the welcome was seen
    memorySpeedWanted = Signal()  # the suggestions wait for this computer's memory speed: measure it now

    services: Services

    def __init__(self, settings: Settings, library_model: LibraryModel, parent: QObject) -> None:
        super().__init__(parent)
        self.settings, self.library_model = settings, library_model
        self.view = WelcomeView()
        self._on_page = False
        self._speed_asked = False  # the memory speed was asked for once: without it, memory alone decides
        self._waiting_for_speed = False
        library_model.modelReset.connect(self.refill)

    def attach(self, services: Services) -> None:
        self.services = services

    def offer(self) -> None:
        """At start: ``firstStart`` when the library is empty and the welcome was never left before.

        Not when there are conversations either: opening the newest one (``load_conversations``, which runs
        at the same time) would take the window back to the chat page a moment later."""
        if self.settings.welcome_done:
            return
        library, store = self.services.library, self.services.store

        def first_start() -> bool:
            return not library.models() and not store.has_conversations()

        def decided(first: bool) -> None:
            if first:
                self.firstStart.emit()

        BackgroundOp(self, first_start).success(decided).failure(self.failed.emit).run()

    def fill(self) -> None:
        """This computer and the models that suit it. Which models answer quickly here depends on the memory speed,
        which a first start has not measured yet: the page asks for it (``memorySpeedWanted``, a second or two) and
        suggests once it comes (``memory_speed_measured``)."""
        from app.hardware.description import describe
        from app.hub.suggestions import suggest

        catalog, machine = self.services.catalog, self.services.machine
        if catalog is not None and machine.bandwidth_bytes_per_s is None and not self._speed_asked:
            self._speed_asked = self._waiting_for_speed = True
            self.memorySpeedWanted.emit()
        measuring = self._waiting_for_speed
        self.view.set_content(
            describe(machine, memory_speed=False),
            suggest(catalog, machine) if catalog is not None and not measuring else [],
            catalog_available=catalog is not None, offline=network.is_offline(),
            has_models=self.library_model.rowCount() > 0, measuring=measuring)

    def memory_speed_measured(self) -> None:
        """The memory speed is known (or could not be measured): the suggestions it decides."""
        if self._waiting_for_speed:
            self._waiting_for_speed = False
            self.refill()

    def refill(self) -> None:
        """Going offline or online, or a model landing in the library, changes what the page offers."""
        if self._on_page:
            self.fill()

    def page_changed(self, on_page: bool) -> None:
        """Leaving the welcome page, by any way, means it was seen: it opens by itself no more."""
        if not on_page and self._on_page and not self.settings.welcome_done:
            self.settings.welcome_done = True
            self.settingsChanged.emit()
        self._on_page = on_page
