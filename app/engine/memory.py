"""Peak resident memory of the engine worker, the figure users compare models by, and the cap on what it may
allocate (``MemoryCap``).

On Linux the peak is the address space's high-water mark (``VmHWM``), not ``ru_maxrss``: the latter
survives ``exec``, so a worker started from a large GUI process would report the GUI's size as its own
floor. The high-water mark can also be reset, so each load measures its own model.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

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


GIB = 1 << 30
MARGIN_BYTES = GIB  # beyond the forecast: the forecast is within ~10% (notes/memory-forecast.md); this is room,
MARGIN_SHARE = 0.5  # or half the forecast if more, for what it does not count (threads' stacks, a second vocabulary)


class MemoryCap:
    """The most memory the engine worker may allocate, so that a runaway (a prompt builder gone wrong, a bug,
    a hostile file) ends in ``MemoryError`` or a failed allocation, and a sentence, instead of swapping the
    computer to a halt.

    The limit counts what the process allocates for itself, not the model file it maps read-only (the pages of a
    mapped file are the page cache's, shared, and dropped under pressure): ``RLIMIT_DATA`` on Linux (private
    writable mappings: the C heap, every ``malloc`` and anonymous ``mmap``, thread stacks), and a Job Object's
    per-process memory limit on Windows (committed private memory, the same thing). ``RLIMIT_AS`` was not
    used: it counts the mapped model and every reservation never touched (each thread's malloc arena reserves
    64 MiB), so a limit that lets a model load is no limit. macOS has no cap yet: its kernel does not apply
    ``RLIMIT_DATA`` to the ``mmap`` behind ``malloc``, its ``RLIMIT_AS`` counts the mapped model and Metal's
    reservations, and it offers no per-process figure of private memory to start from, so any limit set there would
    either do nothing or refuse good loads; it was not tried on a Mac. The Windows code cannot be tried here either
    (a Linux machine); it is written from the Win32 documentation, and it logs rather than fails where the system
    refuses.

    The limit is the memory allocated when it is set plus what is expected next plus a margin; ``lift`` puts back
    the limit the process started with.
    """

    def __init__(self) -> None:
        self.limit: int | None = None
        self._started_with: tuple[int, int] | None = None
        self._job: Any = None
        if sys.platform.startswith("linux"):
            import resource

            self._started_with = resource.getrlimit(resource.RLIMIT_DATA)

    @property
    def supported(self) -> bool:
        return sys.platform == "win32" or self._started_with is not None

    @staticmethod
    def allocated() -> int:
        """What the limit counts now: ``VmData`` on Linux, private bytes on Windows (resident memory elsewhere)."""
        if sys.platform.startswith("linux"):
            with contextlib.suppress(OSError, ValueError):
                for line in _STATUS.read_text().splitlines():
                    if line.startswith("VmData:"):
                        return int(line.split()[1]) * 1024
        import psutil

        info = psutil.Process().memory_info()
        return int(getattr(info, "private", 0) or info.rss)

    def expect(self, more: int) -> int | None:
        """Allow what is allocated now, ``more``, and the margin; returns the limit set (``None``: not set)."""
        limit = self.allocated() + more + max(MARGIN_BYTES, int(more * MARGIN_SHARE))
        return self._set(limit)

    def lift(self) -> None:
        self._set(None)

    def _set(self, limit: int | None) -> int | None:
        if not self.supported:
            return None
        try:
            if sys.platform == "win32":
                applied = _set_job_limit(self, limit)
            else:
                applied = self._set_rlimit(limit)
        except (OSError, ValueError, AttributeError):
            log.warning("could not set the engine's memory limit to %s", limit, exc_info=True)
            return None
        self.limit = applied
        return applied

    def _set_rlimit(self, limit: int | None) -> int | None:
        import resource

        assert self._started_with is not None
        soft, hard = self._started_with
        if limit is not None:
            unlimited = (resource.RLIM_INFINITY, -1)
            ceiling = soft if soft not in unlimited else hard
            if ceiling not in unlimited:
                limit = min(limit, ceiling)  # never above what the process was given
            soft = limit
        resource.setrlimit(resource.RLIMIT_DATA, (soft, hard))
        return limit


def _set_job_limit(cap: MemoryCap, limit: int | None) -> int | None:
    """Put this process in a Job Object of its own (once) and set or clear its per-process memory limit. A process
    may join a job from Windows 8 on, also when it is in another job already (jobs nest)."""
    if sys.platform != "win32":
        raise OSError("Job Objects are Windows only")
    import ctypes
    from ctypes import wintypes

    kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)
    if cap._job is None:
        kernel32.CreateJobObjectW.restype = wintypes.HANDLE
        kernel32.GetCurrentProcess.restype = wintypes.HANDLE
        job = kernel32.CreateJobObjectW(None, None)
        if not job or not kernel32.AssignProcessToJobObject(wintypes.HANDLE(job), kernel32.GetCurrentProcess()):
            raise ctypes.WinError(ctypes.get_last_error())
        cap._job = job

    class BasicLimits(ctypes.Structure):
        _fields_ = [("PerProcessUserTimeLimit", ctypes.c_int64), ("PerJobUserTimeLimit", ctypes.c_int64),
                    ("LimitFlags", wintypes.DWORD), ("MinimumWorkingSetSize", ctypes.c_size_t),
                    ("MaximumWorkingSetSize", ctypes.c_size_t), ("ActiveProcessLimit", wintypes.DWORD),
                    ("Affinity", ctypes.c_size_t), ("PriorityClass", wintypes.DWORD),
                    ("SchedulingClass", wintypes.DWORD)]

    class IoCounters(ctypes.Structure):
        _fields_ = [(name, ctypes.c_uint64) for name in (
            "ReadOperationCount", "WriteOperationCount", "OtherOperationCount", "ReadTransferCount",
            "WriteTransferCount", "OtherTransferCount")]

    class ExtendedLimits(ctypes.Structure):
        _fields_ = [("BasicLimitInformation", BasicLimits), ("IoInfo", IoCounters),
                    ("ProcessMemoryLimit", ctypes.c_size_t), ("JobMemoryLimit", ctypes.c_size_t),
                    ("PeakProcessMemoryUsed", ctypes.c_size_t), ("PeakJobMemoryUsed", ctypes.c_size_t)]

    job_object_extended_limit_information, job_object_limit_process_memory = 9, 0x100
    info = ExtendedLimits()
    if limit is not None:
        info.BasicLimitInformation.LimitFlags = job_object_limit_process_memory
        info.ProcessMemoryLimit = limit
    if not kernel32.SetInformationJobObject(wintypes.HANDLE(cap._job), job_object_extended_limit_information,
                                            ctypes.byref(info), ctypes.sizeof(info)):
        raise ctypes.WinError(ctypes.get_last_error())
    return limit
