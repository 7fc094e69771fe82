"""The engine: a worker process that owns llama.cpp, and the client the rest of the app talks to."""

from app.engine.client import EngineClient, EngineState
from app.engine.protocol import GenerationMetrics

__all__ = ["EngineClient", "EngineState", "GenerationMetrics"]
