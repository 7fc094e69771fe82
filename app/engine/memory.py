"""Peak resident memory of the engine worker, the figure users compare models by.

On Linux the peak is the address space's high-water mark (``VmHWM``), not ``ru_maxrss``: the latter
survives ``exec``, so a worker started from a large GUI process would report the GUI's size as its own
floor. The high-water mark can also be reset, so each load measures its own model.
"""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path

_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


def peak_rss_bytes() -> int:
    """Highest resident set size since the start or the last ``reset_peak``; touched mapped model pages count."""
    if sys.platform == "win32":
        import psutil

        return int(getattr(psutil.Process().memory_info(), "peak_wset", 0))
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, ValueError):
            for line in _STATUS.read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)


def reset_peak() -> None:
    """Start a new peak from the current resident size (Linux only; elsewhere the peak is since start)."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError):
            _CLEAR_REFS.write_text("5")
