"""What the installed llama.cpp says about this machine, asked in a one-shot child process.

Three readings must come from llama.cpp itself, because they describe the machine as this build will use it:
its system info (the CPU features it uses, the backends it was built with), whether it can offload to a GPU at
all, and ggml's device list (the GPUs it sees, with their memory). Only the engine worker and one-shot children
load llama.cpp (``tests/app/test_architecture.py`` holds every module to that): loaded in the window's process it
would cost the start its libraries (a CUDA build starts the driver and keeps hundreds of MB), and a build that
aborts on this machine would take the window with it. So ``ask`` starts a child with ``spawn`` (as the dry run
does, so it also works in a frozen app) that answers and exits; ``detect`` calls it off the GUI thread.

The answer is kept in ``hardware.json`` and read back by later starts (and by later calls in this process), so
only the first start after a reboot, an update of Hearth or another llama.cpp build pays for a child. An answer
holding a figure that changes while the computer runs (the free memory of a graphics card that llama.cpp was
asked for, where NVML cannot say it) is never reused: such a machine asks at every start.
"""

from __future__ import annotations

import ctypes
import importlib.util
import json
import logging
import multiprocessing
import os
import re
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import psutil

from app.engine.backends import ggml_library, prepare_llama
from app.hardware.cache import read_cache, update_cache

log = logging.getLogger(__name__)

TIMEOUT_S = 60.0  # a CUDA or Vulkan build starts its driver first: seconds on some machines
CACHE_SECTION = "llama"

# ggml_backend_dev_type; IGPU was inserted before ACCEL in 2025, so an old build's ACCEL (2) reads as an
# integrated GPU here: ``detect`` keeps BLAS and AMX out of the GPUs either way.
_DEVICE_KINDS = {0: "cpu", 1: "gpu", 2: "igpu", 3: "accel"}
GPU_KINDS = ("gpu", "igpu")
# What else decides the answer besides the build and the hardware: which devices the drivers show, and
# which library llama_cpp loads.
_ENVIRONMENT = re.compile(r"GGML_\w+|LLAMA_\w+|HEARTH_ENGINE|(CUDA|HIP|ROCR)_VISIBLE_DEVICES|ONEAPI_DEVICE_SELECTOR")
_SAME_BOOT_S = 5.0  # Windows works the boot time out from an uptime counter: it moves by a second or so


@dataclass(frozen=True)
class GgmlDevice:
    """One entry of ggml's device list; memory is None where it was not asked for."""

    name: str
    description: str
    kind: str  # "cpu", "gpu", "igpu", "accel" or "type N"
    backend: str
    memory_free: int | None = None
    memory_total: int | None = None


@dataclass(frozen=True)
class LlamaFacts:
    """llama.cpp's three readings; None where it could not give one, and ``problems`` says why (for the log)."""

    system_info: str | None = None
    supports_gpu_offload: bool | None = None
    ggml_devices: tuple[GgmlDevice, ...] | None = None
    problems: dict[str, str] | None = None

    def reading(self, name: str) -> Any:
        """The reading ``name``; raises ``LookupError`` (with the child's reason) where there is none, which the
        probes read as "nothing found"."""
        value = getattr(self, name)
        if value is None:
            raise LookupError(f"llama.cpp gave no {name}: {(self.problems or {}).get(name, 'it did not answer')}")
        return value

    @property
    def reusable(self) -> bool:
        """Whether a later start may take this answer as its own: it came from llama.cpp, and none of its figures
        changes while the computer runs (a CUDA card's memory is asked of NVML instead; Metal's share of memory
        is fixed until macOS restarts)."""
        return self.system_info is not None and all(
            device.memory_free is None or device.backend == "Metal" for device in self.ggml_devices or ())

    def to_dict(self) -> dict[str, Any]:
        return {"system_info": self.system_info, "supports_gpu_offload": self.supports_gpu_offload,
                "ggml_devices": None if self.ggml_devices is None else [asdict(d) for d in self.ggml_devices]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LlamaFacts:
        """Inverse of ``to_dict``; raises ``TypeError``, ``KeyError`` or ``ValueError`` on anything else."""
        devices = data["ggml_devices"]
        system_info, offload = data["system_info"], data["supports_gpu_offload"]
        if not isinstance(system_info, str) or not isinstance(offload, bool | None):
            raise TypeError("not llama.cpp's readings")
        return cls(system_info=system_info, supports_gpu_offload=offload,
                   ggml_devices=None if devices is None else tuple(GgmlDevice(**device) for device in devices))


_asked: dict[str, LlamaFacts] = {}  # this process's reusable answers, by their identity


def ask(skip_memory: frozenset[str], cache_dir: Path | None = None, *, timeout: float = TIMEOUT_S) -> LlamaFacts:
    """llama.cpp's readings on this machine, not asking for the memory of the backends in ``skip_memory``.

    Taken from this process's earlier answer or ``hardware.json`` in ``cache_dir`` when one was given for this
    boot, this build and these settings; else asked of a child (a second or so, more for a GPU build: keep it
    off the GUI thread). Never raises: a child that fails or stops answering gives no readings.
    """
    identity = _identity(skip_memory)
    if identity is None:
        return _ask_child(skip_memory, timeout)
    key = json.dumps(identity, sort_keys=True)
    facts = _asked.get(key) or (_cached(cache_dir, identity) if cache_dir is not None else None)
    if facts is None:
        facts = _ask_child(skip_memory, timeout)
        if facts.reusable and cache_dir is not None:
            update_cache(cache_dir, CACHE_SECTION, sys.platform,
                         {"identity": identity, "facts": facts.to_dict(),
                          "asked_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")})
    if facts.reusable:
        _asked[key] = facts
    return facts


def _identity(skip_memory: frozenset[str]) -> dict[str, Any] | None:
    """What the answer depends on besides the hardware, which only a restart changes (a new card, a new driver):
    the boot, the llama.cpp build (its library files), the settings that choose devices, and Hearth's version.
    None where the build cannot be found without importing it: then nothing is reused."""
    from app import __version__

    try:
        spec = importlib.util.find_spec("llama_cpp")
        folder = Path(next(iter(spec.submodule_search_locations or ()))) if spec is not None else None
        if folder is None:
            return None
        libraries = folder / "lib"
        build = [[path.name, stat.st_size, stat.st_mtime_ns]
                 for path in sorted(libraries.iterdir() if libraries.is_dir() else ())
                 if path.is_file() and (stat := path.stat())]
        boot = psutil.boot_time()
    except (ImportError, ValueError, StopIteration, OSError):
        log.debug("the llama.cpp build cannot be told apart; its answer is not kept", exc_info=True)
        return None
    return {"boot": boot, "build": [str(folder), *build], "hearth": __version__, "skip_memory": sorted(skip_memory),
            "environment": {name: value for name, value in sorted(os.environ.items()) if _ENVIRONMENT.fullmatch(name)}}


def _cached(cache_dir: Path, identity: dict[str, Any]) -> LlamaFacts | None:
    entry = read_cache(cache_dir).get(CACHE_SECTION, {}).get(sys.platform)
    if not isinstance(entry, dict) or not isinstance(entry.get("identity"), dict):
        return None
    kept = dict(entry["identity"])
    boot = kept.pop("boot", None)
    wanted = json.loads(json.dumps(identity))
    if not isinstance(boot, int | float) or abs(boot - wanted.pop("boot")) > _SAME_BOOT_S or kept != wanted:
        return None
    try:
        return LlamaFacts.from_dict(entry["facts"])
    except (KeyError, TypeError, ValueError):
        log.debug("ignoring llama.cpp's unreadable answer in %s", cache_dir, exc_info=True)
        return None


def _ask_child(skip_memory: frozenset[str], timeout: float) -> LlamaFacts:
    context = multiprocessing.get_context("spawn")
    parent, child = context.Pipe(duplex=False)
    process = context.Process(target=_child, args=(child, sorted(skip_memory)), name="hearth-llama-probe",
                              daemon=True)
    answer: LlamaFacts | None = None
    try:
        process.start()
        child.close()
        if parent.poll(timeout):
            answer = parent.recv()
    except Exception:  # it died before answering, or could not start: detection never takes the app down
        log.debug("asking llama.cpp about this machine failed", exc_info=True)
    finally:
        parent.close()
        if process.pid is not None:
            process.join(5)
            if process.is_alive():
                process.kill()
                process.join(5)
    if not isinstance(answer, LlamaFacts):
        log.warning("llama.cpp did not say what it sees on this machine (exit code %s)", process.exitcode)
        return LlamaFacts()
    return answer


def _child(conn: Connection, skip_memory: list[str]) -> None:
    """In the child: the three readings, each on its own (a reading that fails costs only itself)."""
    problems: dict[str, str] = {}

    def reading(name: str, probe: Callable[[], Any]) -> Any:
        try:
            return probe()
        except Exception as error:
            problems[name] = f"{type(error).__name__}: {error}"[:500]
            return None

    reading("backends", prepare_llama)
    devices = reading("ggml_devices", lambda: tuple(ggml_devices_from_library(ggml_library(),
                                                                               frozenset(skip_memory))))
    conn.send(LlamaFacts(system_info=reading("system_info", _read_system_info),
                         supports_gpu_offload=reading("supports_gpu_offload", _read_supports_gpu_offload),
                         ggml_devices=devices, problems=problems))
    conn.close()


# --- llama.cpp's answers, in the child ------------------------------------------------------------------------


def _read_system_info() -> str:
    import llama_cpp

    return bytes(llama_cpp.llama_print_system_info()).decode("utf-8", "replace")


def _read_supports_gpu_offload() -> bool:
    import llama_cpp

    return bool(llama_cpp.llama_supports_gpu_offload())


# --- ggml's device list through ctypes -----------------------------------------------------------------------


def _c_function(lib: ctypes.CDLL, name: str, restype: Any, *argtypes: Any) -> Any:
    """A private prototype, so the signatures set here never change the library object llama_cpp shares."""
    return ctypes.CFUNCTYPE(restype, *argtypes)((name, lib))


def ggml_devices_from_library(lib: ctypes.CDLL, skip_memory: frozenset[str] = frozenset()) -> list[GgmlDevice]:
    """The devices llama.cpp will place work on, with the memory each reports (a GPU's own memory; for Metal,
    the working set macOS recommends). Raises AttributeError where the library lacks a symbol."""
    count = _c_function(lib, "ggml_backend_dev_count", ctypes.c_size_t)
    get = _c_function(lib, "ggml_backend_dev_get", ctypes.c_void_p, ctypes.c_size_t)
    name = _c_function(lib, "ggml_backend_dev_name", ctypes.c_char_p, ctypes.c_void_p)
    description = _c_function(lib, "ggml_backend_dev_description", ctypes.c_char_p, ctypes.c_void_p)
    kind = _c_function(lib, "ggml_backend_dev_type", ctypes.c_int, ctypes.c_void_p)
    backend = _backend_namer(lib)
    memory = _memory_reader(lib)
    devices = []
    for index in range(count()):
        device = get(index)
        device_name = _text(name(device))
        device_kind = _DEVICE_KINDS.get(kind(device), f"type {kind(device)}")
        device_backend = backend(device) or device_name.rstrip("0123456789")
        free, total = (None, None)
        if device_kind in GPU_KINDS and device_backend not in skip_memory:
            free, total = memory(device)
        devices.append(GgmlDevice(device_name, _text(description(device)), device_kind, device_backend, free, total))
    return devices


def _backend_namer(lib: ctypes.CDLL) -> Callable[[int], str | None]:
    try:
        registry_of = _c_function(lib, "ggml_backend_dev_backend_reg", ctypes.c_void_p, ctypes.c_void_p)
        registry_name = _c_function(lib, "ggml_backend_reg_name", ctypes.c_char_p, ctypes.c_void_p)
    except AttributeError:
        return lambda device: None
    return lambda device: _text(registry_name(registry_of(device))) or None


def _memory_reader(lib: ctypes.CDLL) -> Callable[[int], tuple[int, int]]:
    size_p = ctypes.POINTER(ctypes.c_size_t)
    memory = _c_function(lib, "ggml_backend_dev_memory", None, ctypes.c_void_p, size_p, size_p)

    def read(device: int) -> tuple[int, int]:
        free, total = ctypes.c_size_t(0), ctypes.c_size_t(0)
        memory(device, ctypes.byref(free), ctypes.byref(total))
        return int(free.value), int(total.value)

    return read


def _text(raw: bytes | None) -> str:
    return raw.decode("utf-8", "replace").strip() if raw else ""

