"""Emitting a Qt signal from a core thread safely while the GUI thread may be deleting the signal's owner.

Kept apart from ``bridge`` so that pages shown at the first paint can use it without importing the core.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable

from PySide6.QtCore import QObject


def guarded_emit(owner: QObject, emit: Callable[..., None]) -> Callable[..., None]:
    """``emit`` (a signal of ``owner``) made callable from any thread for as long as ``owner`` lives.

    A thread that emits while the GUI thread deletes ``owner`` would touch a half-destroyed object. Here the
    emit runs under a lock that ``owner``'s ``destroyed`` takes too: an emit in flight finishes before the
    object goes, and later calls do nothing. PySide marks the object deleted a moment before ``destroyed``
    comes, and an emit in that moment is refused with a ``RuntimeError``: nobody is left to tell then either."""
    lock = threading.Lock()
    live = [True]

    def guarded(*args: object) -> None:
        with lock:
            if live[0]:
                with contextlib.suppress(RuntimeError):
                    emit(*args)

    def gone(*_: object) -> None:
        with lock:
            live[0] = False

    owner.destroyed.connect(gone)
    return guarded
