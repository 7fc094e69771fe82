"""Building a page in stages, one per turn of the event loop.

A page of a few hundred styled widgets takes 40–80 ms to build (Qt's style sheet machinery costs each widget
several times its own making), longer than the window may stop answering; built after the first paint, in one go,
it held the window up that long. Its builder is a generator instead, yielding between stages that each stay short:
``build_step`` runs one, ``finish_building`` the rest at once (a page wanted now, before its turns came).
"""

from __future__ import annotations

from collections.abc import Iterator


class Staged:
    """Mixed into a widget or a page whose ``__init__`` calls ``begin_building`` with its stages."""

    _remaining: Iterator[None] | None = None

    def begin_building(self, stages: Iterator[None], staged: bool) -> None:
        """With ``staged``, the stages wait for ``build_step``; otherwise they all run now."""
        self._remaining = stages
        if not staged:
            self.finish_building()

    def build_step(self) -> bool:
        """Runs the next stage; True once every stage has run."""
        if self._remaining is not None:
            try:
                next(self._remaining)
                return False
            except StopIteration:
                self._remaining = None
        return True

    def finish_building(self) -> None:
        while not self.build_step():
            pass
