"""A page of the window's stack that builds its content the first time it is shown or asked for.

Building the Tasks and Compare pages costs as much as the rest of the window together (a few hundred styled
widgets, and the modules behind them), and neither is on screen at start; so the first paint does not wait for
them. A start builds them a moment after the window is ready (``MainWindow.build_pages``), a stage per event-loop
turn (``step``, the page's own ``build_step``), so that a first visit finds them there.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, Protocol, TypeVar

from PySide6.QtGui import QShowEvent
from PySide6.QtWidgets import QVBoxLayout, QWidget


class Page(Protocol):
    """A page's controller, built in stages (``ui.qt.staged.Staged``); its ``view`` is what the window shows."""

    @property
    def view(self) -> QWidget: ...

    def build_step(self) -> bool: ...

    def finish_building(self) -> None: ...


PageT = TypeVar("PageT", bound=Page)


class LazyPage(QWidget, Generic[PageT]):
    """Stands in the stack for a page until it is built; then holds the page's view. ``build`` makes the page with
    its stages still to run; ``ready`` gets it once they have run and its view is in place."""

    def __init__(self, build: Callable[[], PageT], ready: Callable[[PageT], None] | None = None) -> None:
        super().__init__()
        self._build: Callable[[], PageT] | None = build
        self._ready = ready
        self._building: PageT | None = None
        self._stages_done = False
        self._content: PageT | None = None
        self._layout = QVBoxLayout(self)
        self._layout.setContentsMargins(0, 0, 0, 0)

    def step(self) -> bool:
        """One stage of the build (making the page, each of its stages, putting its view in place); True once
        the page is built."""
        if self._content is not None:
            return True
        if self._building is None:
            self._building = self._start()
        elif not self._stages_done:
            self._stages_done = self._building.build_step()
        else:
            self._place()
        return self._content is not None

    def content(self) -> PageT:
        if self._content is None:
            page = self._building if self._building is not None else self._start()
            page.finish_building()
            self._building = page
            self._place()
        assert self._content is not None
        return self._content

    def _start(self) -> PageT:
        assert self._build is not None
        build, self._build = self._build, None
        return build()

    def _place(self) -> None:
        page, self._building = self._building, None
        assert page is not None
        self._layout.addWidget(page.view)
        if self.isVisible():
            page.view.show()  # now, as the page it stands for would be (a layout shows it a turn later)
        self._content = page
        if self._ready is not None:
            self._ready(page)

    def is_built(self) -> bool:
        return self._content is not None

    def showEvent(self, event: QShowEvent) -> None:
        self.content()
        super().showEvent(event)
