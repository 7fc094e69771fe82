"""A fresh engine worker with nothing loaded, for the tests that load (or fail to load) a model themselves."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from app.engine import EngineClient


@pytest.fixture
def engine() -> Iterator[EngineClient]:
    client = EngineClient()
    client.start()
    yield client
    client.shutdown()
