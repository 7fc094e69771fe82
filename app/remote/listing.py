"""The models of the computers the person added, as the pages list models: a ``ModelRecord`` each, whose path is
its ``app.remote.address`` and whose name says which computer it is on.

A remote model is not in the library's database (the server decides what it has, and it changes there), so each
record gets an id of its own below zero, the same at every listing.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from app.errors import HearthError
from app.history import ModelRecord
from app.remote.address import RemoteAddress, is_remote
from app.remote.computers import Computer, Computers
from app.remote.server import RemoteServer


@dataclass(frozen=True)
class Listing:
    models: list[ModelRecord]
    problems: list[str]  # a sentence for each computer that could not be asked


def forecast_words(forecast: dict[str, Any] | None, computer: str) -> str:
    """Another Hearth's forecast for a model there, as the Models page says it: "Runs well on Study-PC, about
    25–30 words per second there." ("" without one)."""
    if not forecast:
        return ""
    speed = forecast.get("speed_words")
    return f"{forecast['verdict_words']} on {computer}" + (f", {speed} there." if speed else ".")


def remote_record(computer: Computer, model: str, context_length: int | None,
                  forecast: dict[str, Any] | None = None) -> ModelRecord:
    """``forecast``: another Hearth's for the model there (``RemoteServer.forecast``); kept as its sentence and its
    verdict, in the record's facts."""
    where = RemoteAddress(computer.base_url, model)
    return ModelRecord(id=-1 - zlib.crc32(str(where).encode()) % 2**30, default_name=where.short_model, given_name=None,
                       path=str(where), in_place=True, file_size=0, architecture="", parameter_count=None,
                       quantization=None, context_length=context_length, has_chat_template=True,
                       facts={"computer": computer.name, "forecast": forecast_words(forecast, computer.name),
                              "verdict": str(forecast["verdict_words"]) if forecast else ""},
                       added_at=datetime.now(UTC))


def computer_of(record: ModelRecord) -> str | None:
    """The name of the computer a listed model is on; None for a model on this one."""
    return str(record.facts.get("computer")) if is_remote(record.path) else None


def shown_name(record: ModelRecord) -> str:
    """The model's name where models are chosen: with the computer it is on, where that is not this one."""
    computer = computer_of(record)
    return f"{record.name} · on {computer}" if computer else record.name


def list_remote_models(computers: Computers) -> Listing:
    models: list[ModelRecord] = []
    problems: list[str] = []
    for computer in computers.all():
        server = RemoteServer(computer.base_url, computers.key(computer.base_url))
        try:
            for listed in server.models():
                forecast = server.forecast(listed.id) if listed.hearth else None
                # Another Hearth says the context it would load the model with, beside the one it was trained with.
                planned = forecast.get("context_length") if forecast else None
                context = planned if isinstance(planned, int) and planned > 0 else listed.context_length
                models.append(remote_record(computer, listed.id, context or computer.context_length or None,
                                            forecast))
        except HearthError as error:
            problems.append(f"{computer.name}: {error}")
        finally:
            server.close()
    return Listing(models, problems)
