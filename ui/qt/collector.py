"""Python's cycle collector, run on the GUI thread only.

The collector runs in whichever thread happens to allocate when a threshold is crossed. If that is a
worker thread (a ``BackgroundOp`` on the thread pool, the engine's reader) and the garbage holds Qt objects
(a closed window, a finished operation), their C++ destructors run on that thread and Qt crashes. So
automatic collection is switched off while the app runs, and this object collects on the GUI thread, on a
timer, whenever Python's own thresholds say a collection is due. Non-cyclic garbage is still freed at once
by reference counting; only cycles wait for the timer.

A full collection walks every object alive: once the core's libraries are imported that is some 150,000 of them,
and a tenth of a second during which the window cannot move. Most of them (modules, classes, the window itself)
live as long as the app, so once the app has started they are set aside for good (``settle``) and later full
collections walk only what was made after.
"""

from __future__ import annotations

import gc

from PySide6.QtCore import QObject, QTimer

INTERVAL_MS = 500


class GuiThreadCollector(QObject):
    _installed: GuiThreadCollector | None = None

    def __init__(self, parent: QObject) -> None:
        super().__init__(parent)
        self._timer = QTimer(self, interval=INTERVAL_MS)
        self._timer.timeout.connect(self.collect_if_due)
        self._timer.start()

    @classmethod
    def install(cls, app: QObject) -> GuiThreadCollector:
        """Once per application; later calls return the same collector."""
        if cls._installed is None:
            gc.disable()
            cls._installed = cls(app)
        return cls._installed

    @staticmethod
    def settle() -> None:
        """Once the app has started: collect the young garbage, then exempt everything still alive from later
        collections (``gc.freeze``). What of it ever becomes garbage is not reclaimed: it is the start's own."""
        gc.collect(1)
        gc.freeze()

    def collect_if_due(self) -> None:
        counts, thresholds = gc.get_count(), gc.get_threshold()
        for generation in (2, 1, 0):
            if counts[generation] > thresholds[generation]:
                gc.collect(generation)
                return
