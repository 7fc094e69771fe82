"""Where a page that runs something long (Tasks, Compare) stands; its controls follow it."""

from __future__ import annotations

from enum import Enum


class RunPhase(Enum):
    IDLE = "idle"
    LOADING = "loading"  # the model loads first (Tasks)
    STARTING = "starting"  # sent, not yet confirmed (reading headers, saving the run)
    RUNNING = "running"
    STOPPING = "stopping"  # Stop pressed, waiting for the run to end
