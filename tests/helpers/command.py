"""The `hearth` command as a person runs it: a separate process on a home folder of the test's own."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from tests.helpers import ROOT

HEARTH = [sys.executable, "-m", "ui.entry"]


def hearth(home: Path, *args: str, input: str | None = None,
           online: bool = False) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HEARTH_HOME": str(home)}
    if online:  # the stand-in server plays the Hub, so the Hub's offline switch must be off
        env.pop("HF_HUB_OFFLINE", None)
    return subprocess.run([*HEARTH, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
                          input=input)


@contextlib.contextmanager
def ctrl_c_reaches_children() -> Iterator[None]:
    """Children started inside get Ctrl+C as a terminal's programs do. A suite started in the background from a
    script (``make test &``) has SIGINT ignored, an ignored signal is inherited, and Python then neither raises
    KeyboardInterrupt nor lets uvicorn raise it again."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
