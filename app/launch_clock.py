"""How long ago this app was launched, as a person counts: from the launch, not from Python's start.

Its own module, with nothing heavy imported at the top, because the figure is read the moment the first window is
on screen (by ``--self-test`` and ``benchmarks/cold_start.py``): whatever this module imported would be counted.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from pathlib import Path


def seconds_since_launch() -> float:
    """Seconds since this process (or, in a frozen app, its launcher) was started.

    In a frozen app, a launcher process of the same executable (a bootloader that re-executes itself) counts as
    the launch. On Linux ``psutil``'s start times stand on the boot time in whole seconds, so they are up to a second
    off; the kernel's own clock of ticks since boot is exact to 10 ms and used instead.
    """
    now = time.time()
    uptime = _uptime()
    import psutil  # after the clocks were read, so that importing it is not counted

    process = psutil.Process()
    if getattr(sys, "frozen", False):
        with contextlib.suppress(psutil.Error):
            parent = process.parent()
            while parent is not None and parent.exe() == process.exe():
                process, parent = parent, parent.parent()
    if uptime is not None:
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = Path(f"/proc/{process.pid}/stat").read_text().rsplit(")", 1)[1].split()
            return uptime - int(fields[19]) / os.sysconf("SC_CLK_TCK")
    return now - process.create_time()


def _uptime() -> float | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        return float(Path("/proc/uptime").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
