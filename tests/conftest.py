"""Shared fixtures: the real test model, a private HEARTH_HOME, and a real engine worker."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.fetch_test_model import locate, locate_real
from tests.helpers.free_port import free_port

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")


@pytest.fixture(scope="session")
def test_model_path() -> Path:
    path = locate()
    if path is None:
        pytest.fail("the test model is missing: run `make test`, which fetches it (tests/helpers/fetch_test_model.py)")
    return path


@pytest.fixture(scope="session")
def real_model_path() -> Path:
    """SmolLM2-135M-Instruct Q4_1: real weights, a 49,152-token BPE vocabulary and a chat template."""
    path = locate_real("smollm2")
    if path is None:
        pytest.fail("the real test model is missing: run `make test`, which fetches it "
                    "(tests/helpers/fetch_test_model.py smollm2)")
    return path


@pytest.fixture(scope="session")
def llama_server(test_model_path: Path) -> Iterator[str]:
    """``python -m llama_cpp.server`` on a free port; its base URL."""
    pytest.importorskip("llama_cpp.server.app", reason="llama-cpp-python's server extra is not installed")
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "llama_cpp.server", "--model", str(test_model_path),
                               "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "1024",
                               "--chat_format", "chatml"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              env={**os.environ, "NO_PROXY": "127.0.0.1"})
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            urllib.request.urlopen(url + "/v1/models", timeout=2).read()
            break
        except OSError:
            assert server.poll() is None, server.stderr.read().decode() if server.stderr else "it exited"
            assert time.monotonic() < deadline, "llama_cpp.server did not start"
            time.sleep(0.2)
    yield url
    server.terminate()
    server.wait(30)


@pytest.fixture
def hearth_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "hearth-home"
    monkeypatch.setenv("HEARTH_HOME", str(home))
    return home


@pytest.fixture(scope="module")
def loaded_engine(test_model_path: Path) -> Iterator[object]:
    """One worker with the test model loaded, shared by a module's tests (loading costs a process start)."""
    from app.engine import EngineClient

    engine = EngineClient()
    engine.start()
    engine.load_blocking(test_model_path, context_length=2048)
    yield engine
    engine.shutdown()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "qtbot" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.gui)
