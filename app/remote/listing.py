"""The models of the computers the person added, as the pages list models: a ``ModelRecord`` each, whose path is
its ``app.remote.address`` and whose name says which computer it is on.

A remote model is not in the library's database (the server decides what it has, and it changes there), so each
record gets an id of its own below zero, the same at every listing.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from datetime import UTC, datetime

from app.errors import HearthError
from app.history import ModelRecord
from app.remote.address import RemoteAddress, is_remote
from app.remote.computers import Computer, Computers
from app.remote.server import RemoteServer


@dataclass(frozen=True)
class Listing:
    models: list[ModelRecord]
    problems: list[str]  # a sentence for each computer that could not be asked


def remote_record(computer: Computer, model: str, context_length: int | None) -> ModelRecord:
    where = RemoteAddress(computer.base_url, model)
    return ModelRecord(id=-1 - zlib.crc32(str(where).encode()) % 2**30, default_name=where.short_model, given_name=None,
                       path=str(where), in_place=True, file_size=0, architecture="", parameter_count=None,
                       quantization=None, context_length=context_length, has_chat_template=True,
                       facts={"computer": computer.name}, added_at=datetime.now(UTC))


def computer_of(record: ModelRecord) -> str | None:
    """The name of the computer a listed model is on; None for a model on this one."""
    return str(record.facts.get("computer")) if is_remote(record.path) else None


def list_remote_models(computers: Computers) -> Listing:
    models: list[ModelRecord] = []
    problems: list[str] = []
    for computer in computers.all():
        server = RemoteServer(computer.base_url, computers.key(computer.base_url))
        try:
            for listed in server.models():
                models.append(remote_record(computer, listed.id, listed.context_length or computer.context_length
                                            or None))
        except HearthError as error:
            problems.append(f"{computer.name}: {error}")
        finally:
            server.close()
    return Listing(models, problems)
