"""The servers a remote engine is tested against, on 127.0.0.1: llama-cpp-python's own OpenAI-compatible server (an
engine Hearth did not write) and a second Hearth (``hearth serve``'s app); and Hearth online, with its Privacy log."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from app import network

from tests.helpers.free_port import free_port


@pytest.fixture(autouse=True)
def recorded(monkeypatch: pytest.MonkeyPatch) -> list[network.RequestRecord]:
    """The Privacy log's records; and Hearth online (the tests keep the Hub offline), as a person has it."""
    records: list[network.RequestRecord] = []
    monkeypatch.setattr(network, "_recorder", records.append)
    monkeypatch.setattr(network, "is_offline", lambda: False)
    return records


@pytest.fixture(scope="package")
def library_server(tmp_path_factory: pytest.TempPathFactory, test_model_path: Path) -> Iterator[tuple[str, str]]:
    """A second Hearth's API (``hearth serve``'s app, in this process, with its hardware and forecasts), its key
    "right"; its URL and model name."""
    from app.engine import EngineClient
    from app.engine.load_plan import LoadPlan
    from app.hardware.detect import detect
    from app.history import HistoryStore, open_database
    from app.library import Library
    from app.server.hearth_api import HearthFacts
    from app.server.options import ServerOptions
    from app.server.served_engine import ServedEngine
    from app.server.serving import build_app, uvicorn_server
    from app.settings import Settings

    folder = tmp_path_factory.mktemp("other-hearth")
    library = Library(HistoryStore(open_database(folder / "history.sqlite3")), folder / "models")
    record = library.import_model(test_model_path, copy=False)
    engine = EngineClient()
    served = ServedEngine(engine, library.models, lambda _record: LoadPlan(context_length=1024))
    options = replace(ServerOptions(port=free_port()), api_key="right")
    machine = replace(detect(), bandwidth_bytes_per_s=20e9)  # measured, as a running Hearth has it
    facts = HearthFacts(lambda: machine, Settings(), library.store)
    server: Any = uvicorn_server(options, build_app(options, served, facts))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    yield f"http://127.0.0.1:{options.port}", record.name
    server.should_exit = True
    thread.join(30)
    engine.shutdown()
