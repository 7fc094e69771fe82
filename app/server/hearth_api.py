"""What only a Hearth answers, beside the OpenAI and Anthropic APIs: this computer's hardware, and the forecast for
each of its models, so that another Hearth can say "fits on Study-PC, about 30 words per second there" before
anything is loaded.

    GET /hearth/v1/hardware               the machine: memory (free now), processor, graphics cards, in figures
                                          and in the sentences Hearth shows for its own machine
    GET /hearth/v1/forecast?model=NAME    the forecast for one model as this computer would load it: verdict,
                                          its reason, memory, speed (tokens per second) and the speed in words

The forecast is the analytic one the Models page shows (no dry run): it reads only the model file's header.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio.to_thread
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from app.hardware.machine import Machine
from app.history import HistoryStore
from app.server.api_errors import ApiError
from app.server.served_engine import ServedEngine
from app.settings import Settings


@dataclass(frozen=True)
class HearthFacts:
    machine: Callable[[], Machine]  # with its memory free read now
    settings: Settings
    store: HistoryStore  # the load records, for measured speeds and settings


def routes(served: ServedEngine, facts: HearthFacts) -> list[Route]:
    async def hardware(_request: Request) -> Response:
        return JSONResponse(await anyio.to_thread.run_sync(hardware_of, facts.machine()))

    async def forecast(request: Request) -> Response:
        name = request.query_params.get("model", "")
        if not name:
            raise ApiError(400, "Name the model: /hearth/v1/forecast?model=NAME.", param="model")
        record = served.find(name)
        return JSONResponse(await anyio.to_thread.run_sync(forecast_of, record, facts))

    return [Route("/hearth/v1/hardware", hardware, methods=["GET"]),
            Route("/hearth/v1/forecast", forecast, methods=["GET"])]


def hardware_of(machine: Machine) -> dict[str, Any]:
    from app.hardware.description import describe

    return {
        "computer": socket.gethostname(),
        "memory_total_bytes": machine.memory_total, "memory_available_bytes": machine.memory_available,
        "processor": machine.cpu_name, "physical_cores": machine.physical_cores,
        "graphics": [{"name": gpu.name, "memory_total_bytes": gpu.memory_total, "memory_free_bytes": gpu.memory_free}
                     for gpu in machine.usable_gpus],
        "memory_bytes_per_s": machine.bandwidth_bytes_per_s,
        "sentences": describe(machine),
    }


def forecast_of(record: Any, facts: HearthFacts) -> dict[str, Any]:
    from app.errors import HearthError
    from app.forecast.model_check import assess

    machine, settings = facts.machine(), facts.settings
    try:
        assessment = assess(Path(record.path), machine, context_length=settings.generation.context_length,
                            gpu_layers=settings.gpu_layers_for(record.path, machine.card), threads=settings.threads,
                            records=facts.store.load_records())
    except HearthError as error:
        raise ApiError(422, f"“{record.name}” cannot be read here: {error}", code="model_unreadable",
                       param="model") from error
    result = assessment.forecast
    speed = result.speed
    return {
        "model": record.name, "verdict": result.verdict.name.lower(), "verdict_words": result.verdict.value,
        "reason": result.reason, "context_length": result.plan.context_length,
        "ram_bytes": result.memory.ram_bytes, "vram_bytes": result.memory.vram_bytes,
        "tokens_per_s": [speed.low, speed.high] if speed is not None else None,
        "speed_words": speed.words() if speed is not None else None,
        "measured": bool(speed is not None and speed.measured),
    }
