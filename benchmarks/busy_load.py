"""A busy machine for the benchmarks that must hold on one: processes that each keep a core busy while a block runs.

Targets such as the window's start and its responsiveness are to be met on a busy machine too, and a load the
benchmark makes itself can be repeated (other processes running at the time cannot); the machine's own load is
printed beside the figures.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def busy_cores(loops: int) -> Iterator[None]:
    """``loops`` busy loops (one per core for a machine fully busy); each is ended, by its own id, afterwards."""
    workers = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(loops)]
    try:
        yield
    finally:
        for worker in workers:
            worker.terminate()
        for worker in workers:
            worker.wait()


def machine_words(loops: int) -> str:
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    cores = os.cpu_count()
    if loops:
        return f"busy: {loops} busy loop{'s' if loops != 1 else ''} on {cores} cores (load average {load:.1f})"
    return f"no load of its own on {cores} cores (load average {load:.1f}: above 0.5 means others were running)"
