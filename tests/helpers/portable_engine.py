"""Where the tests find the portable engine (``make engine``), and the environment that runs a process on it with
Mesa's software Vulkan device (lavapipe), which ggml leaves out unless it is named (it is a CPU-type device)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from app.engine.backends import ENGINE_ENV

from tests.helpers import ROOT

ENGINE = Path(os.environ.get(ENGINE_ENV) or ROOT / "build" / "engine")
VULKAN_ENV = {ENGINE_ENV: str(ENGINE), "GGML_VK_VISIBLE_DEVICES": "0"}


def need_portable_engine() -> Path:
    """The engine's folder; skips the test, saying why, where it is not built."""
    if not (ENGINE / "llama_cpp").is_dir():
        pytest.skip(f"the portable engine is not built in {ENGINE} (make engine)")
    return ENGINE


def on_vulkan(monkeypatch: pytest.MonkeyPatch, **more: str) -> None:
    """This process's children (the engine worker, the probes) run on the portable engine and lavapipe."""
    need_portable_engine()
    for name, value in {**VULKAN_ENV, **more}.items():
        monkeypatch.setenv(name, value)
