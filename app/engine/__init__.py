"""The engine: a worker process that owns llama.cpp, and the client the rest of the app talks to.

The client (and through it the worker module) is imported when first asked for, like the history's store: the
load plan and the protocol's plain data are read by the forecast and the command line, which should not pay
for the worker's imports.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from app.engine.client import EngineClient, EngineState
    from app.engine.protocol import GenerationMetrics

_LAZY = {"EngineClient": "app.engine.client", "EngineState": "app.engine.client",
         "GenerationMetrics": "app.engine.protocol"}

__all__ = ["EngineClient", "EngineState", "GenerationMetrics"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
