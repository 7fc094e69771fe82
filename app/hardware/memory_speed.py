"""How fast main memory reads: the bound on generation speed on a processor (each token reads every weight
once). Measured in a second or two off the GUI thread, and kept in ``hardware.json`` with the last few
readings, so a reading taken while other programs were busy does not stand for this machine."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import psutil

from app.hardware.cache import read_cache, update_cache
from app.hardware.machine import GIB, Machine

_PROBE_BYTES_PER_THREAD = 32 * 2**20
_PROBE_BYTES = (256 * 2**20, 1 * GIB)
_SMALLEST_PROBE_BYTES = 64 * 2**20


def probe_size(memory_available: int, threads: int) -> int:
    """Far larger than the caches the reading threads share (96-128 MB on desktop chips, 32 MB per chiplet of
    many-core ones, hence a share per thread), yet at most a sixteenth of the memory free now."""
    wanted = min(max(_PROBE_BYTES_PER_THREAD * threads, _PROBE_BYTES[0]), _PROBE_BYTES[1])
    return max(_SMALLEST_PROBE_BYTES, min(wanted, memory_available // 16))


def measure_bandwidth(seconds: float = 1.0, threads: int | None = None) -> float:
    """Main memory's read speed in bytes per second, the bound on generation speed on a processor: each token
    reads every weight once (notes/memory-forecast.md §8).

    Read-only, like decoding: an OR-reduction of 64-bit words, numpy's cheapest per byte, split over as many
    threads as llama.cpp uses by default (the physical cores), because one core alone cannot saturate a
    desktop's memory. The best of the passes that fit in ``seconds`` (filling the buffer included, at least
    three), so a busy moment does not count.
    """
    deadline = time.perf_counter() + seconds
    threads = threads or psutil.cpu_count(logical=False) or os.cpu_count() or 1
    size = probe_size(int(psutil.virtual_memory().available), threads)
    words = np.ones(size // 8, dtype=np.uint64)
    chunks = np.array_split(words, threads)
    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="hearth-bandwidth") as pool:

        def one_pass() -> float:
            start = time.perf_counter()
            for _ in pool.map(np.bitwise_or.reduce, chunks):
                pass
            return words.nbytes / max(time.perf_counter() - start, 1e-9)

        one_pass()  # starts the threads and warms the TLB
        return _best_of(one_pass, deadline)


def _best_of(run: Callable[[], float], deadline: float, least: int = 3, most: int = 50) -> float:
    best, passes = 0.0, 0
    while passes < least or (passes < most and time.perf_counter() < deadline):
        best = max(best, run())
        passes += 1
    return best


def machine_key(machine: Machine) -> str:
    """What identifies a machine for the cache: new RAM or a new processor means a new measurement."""
    return f"{machine.cpu_name} | {machine.memory_total}"


# A reading taken while other programs kept the processor busier than this is kept, but a quiet one is
# wanted: the window measures again later (a reading on a busy machine was seen at a quarter of the quiet one).
BUSY_CPU_PERCENT = 25.0
READINGS_KEPT = 5


@dataclass(frozen=True)
class BandwidthReading:
    bytes_per_s: float
    measured_at: str
    busy: bool  # other programs were using the processor
    version: str  # the Hearth that measured it: an update measures again

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def bandwidth_readings(cache_dir: Path, machine: Machine) -> list[BandwidthReading]:
    entry = read_cache(cache_dir).get("bandwidth", {}).get(machine_key(machine))
    if isinstance(entry, dict) and isinstance(entry.get("bytes_per_s"), int | float):  # before readings were kept
        entry = {"readings": [{"bytes_per_s": entry["bytes_per_s"], "measured_at": entry.get("measured_at", ""),
                               "busy": True, "version": ""}]}
    readings = []
    for item in entry.get("readings", []) if isinstance(entry, dict) else []:
        try:
            reading = BandwidthReading(float(item["bytes_per_s"]), str(item["measured_at"]), bool(item["busy"]),
                                       str(item["version"]))
        except (KeyError, TypeError, ValueError):
            continue
        if reading.bytes_per_s > 0:
            readings.append(reading)
    return readings


def cached_bandwidth(cache_dir: Path, machine: Machine) -> float | None:
    """The best reading kept: a busy moment only ever lowers a reading, so the highest is the truest."""
    readings = bandwidth_readings(cache_dir, machine)
    return max(r.bytes_per_s for r in readings) if readings else None


def bandwidth_wanted(cache_dir: Path, machine: Machine) -> bool:
    """Whether another reading should be taken when the machine is next quiet: none yet, none quiet, none by
    this version of Hearth, or one marked doubtful by a generation faster than it allows."""
    from app import __version__

    readings = bandwidth_readings(cache_dir, machine)
    entry = read_cache(cache_dir).get("bandwidth", {}).get(machine_key(machine))
    doubtful = isinstance(entry, dict) and bool(entry.get("doubtful"))
    return (doubtful or not any(not r.busy for r in readings)
            or not any(r.version == __version__ for r in readings))


def processor_share_used() -> float:
    """The share of the whole processor (0 to 1) in use since the last call, without waiting: for words that
    are worked out again and again, such as a task's time estimate. The first call answers 0."""
    return float(psutil.cpu_percent(interval=None)) / 100


def processor_busy(sample_s: float = 0.5) -> bool:
    """Whether other programs are using the processor now (the whole machine's load over ``sample_s``)."""
    return psutil.cpu_percent(interval=sample_s) > BUSY_CPU_PERCENT


def measure_and_store_bandwidth(cache_dir: Path, machine: Machine, *,
                                measure: Callable[[], float] | None = None,
                                busy: Callable[[], bool] | None = None) -> float:
    """Take one reading (a second or two; keep it off the GUI thread), keep it with the last few, and return
    the best kept. ``measure`` and ``busy`` stand in for the real probes in tests."""
    from app import __version__

    was_busy = (busy or processor_busy)()
    value = (measure or measure_bandwidth)()
    reading = BandwidthReading(value, time.strftime("%Y-%m-%dT%H:%M:%S%z"), was_busy, __version__)
    readings = sorted([*bandwidth_readings(cache_dir, machine), reading], key=lambda r: r.measured_at)
    best = max(readings, key=lambda r: r.bytes_per_s)
    kept = readings[-READINGS_KEPT:]
    if best not in kept:
        kept = [best, *kept[1:]]
    update_cache(cache_dir, "bandwidth", machine_key(machine), {"readings": [r.to_dict() for r in kept]})
    return best.bytes_per_s


def mark_bandwidth_doubtful(cache_dir: Path, machine: Machine) -> None:
    """A generation ran faster than the kept readings allow: they were all taken on a busy machine."""
    entry = read_cache(cache_dir).get("bandwidth", {}).get(machine_key(machine))
    if isinstance(entry, dict):
        update_cache(cache_dir, "bandwidth", machine_key(machine), {**entry, "doubtful": True})


def bandwidth(cache_dir: Path, measure_if_missing: bool = True, *, machine: Machine) -> float | None:
    """The best kept reading for this machine; measured (a second or two) and kept if none and allowed."""
    cached = cached_bandwidth(cache_dir, machine)
    if cached is not None or not measure_if_missing:
        return cached
    return measure_and_store_bandwidth(cache_dir, machine)
