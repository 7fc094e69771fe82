"""Everything the window and its pages work with, built in one place (``ui/main.py``, or a test fixture)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the first paint comes before any of these is imported (ui/main.py)
    from app.chat import ChatRunner
    from app.compare.runner import Comparer
    from app.engine import EngineClient
    from app.forecast.load_tracker import LoadTracker
    from app.hardware.machine import Machine
    from app.history import HistoryStore
    from app.hub.catalog import Catalog
    from app.hub.downloads import DownloadManager
    from app.library import Library
    from app.paths import Paths
    from app.remote.computers import Computers
    from app.settings import Settings
    from app.task_session import TaskSession


@dataclass
class Services:
    """Everything the window needs, built in one place (``ui/main.py``, or a test fixture). ``machine`` and
    ``catalog`` are replaced while the app runs (memory speed measured, a newer catalog fetched): pages read them
    from here when they need them."""

    paths: Paths
    settings: Settings
    store: HistoryStore
    library: Library
    engine: EngineClient
    runner: ChatRunner
    tracker: LoadTracker
    machine: Machine
    downloads: DownloadManager
    catalog: Catalog | None
    tasks: TaskSession
    compare: Comparer
    computers: Computers  # the other computers whose servers the person added
