"""A page of the window's stack that builds its content the first time it is shown or asked for.

Building the Tasks and Compare pages costs as much as the rest of the window together (a few hundred styled
widgets, and the modules behind them), and neither is on screen at start; so the first paint does not wait for
them. A start builds them a moment after the window is ready (``MainWindow.build_pages``), so that a first visit
finds them there.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, Protocol, TypeVar

from PySide6.QtGui import QShowEvent
from PySide6.QtWidgets import QVBoxLayout, QWidget


class Page(Protocol):
    """A page's controller; its ``view`` is what the window shows."""

    @property
    def view(self) -> QWidget: ...


PageT = TypeVar("PageT", bound=Page)


class LazyPage(QWidget, Generic[PageT]):
    """Stands in the stack for a page until ``content`` builds it; then holds the page's view."""

    def __init__(self, build: Callable[[], PageT]) -> None:
        super().__init__()
        self._build: Callable[[], PageT] | None = build
        self._content: PageT | None = None
        self._layout = QVBoxLayout(self)
        self._layout.setContentsMargins(0, 0, 0, 0)

    def content(self) -> PageT:
        if self._content is None:
            assert self._build is not None
            build, self._build = self._build, None
            self._content = build()
            self._layout.addWidget(self._content.view)
            if self.isVisible():
                self._content.view.show()  # now, as the page it stands for would be (a layout shows it a turn later)
        return self._content

    def is_built(self) -> bool:
        return self._content is not None

    def showEvent(self, event: QShowEvent) -> None:
        self.content()
        super().showEvent(event)
