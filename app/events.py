"""The one observer type of the core: the engine client, the chat runner, the task session, the comparer and the
download manager each keep their listeners in a ``Listeners``.

Events are emitted on whatever thread the work runs on (the engine's reader thread, a download thread), so the
list is guarded by a lock and copied before the calls: a listener may unsubscribe itself, or another, while it
runs. A listener that raises is logged with its traceback and the others still hear the event: a bug in one
page must not stop the history from being saved by another.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

E = TypeVar("E")


class Listeners(Generic[E]):
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._listeners: list[Callable[[E], None]] = []

    def subscribe(self, listener: Callable[[E], None]) -> Callable[[], None]:
        """Add ``listener``; the function returned removes it (calling it twice is harmless)."""
        with self._lock:
            self._listeners.append(listener)

        def unsubscribe() -> None:
            with self._lock:
                if listener in self._listeners:
                    self._listeners.remove(listener)

        return unsubscribe

    def emit(self, event: E) -> None:
        with self._lock:
            listeners = list(self._listeners)
        for listener in listeners:
            try:
                listener(event)
            except Exception:
                log.exception("a listener failed on %s", type(event).__name__)

    def __len__(self) -> int:
        with self._lock:
            return len(self._listeners)
