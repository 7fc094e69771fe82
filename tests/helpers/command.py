"""The `hearth` command as a person runs it: a separate process on a home folder of the test's own."""

from __future__ import annotations

import os
import subprocess
import sys
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
