"""What this computer can do: memory, processor, graphics, memory speed, in facts and in plain words.

The forecast compares every model against these facts, so they must describe the machine as the installed
llama.cpp will use it: instruction sets and graphics devices are asked of llama.cpp itself where it can
answer, because a CPU-only build cannot use a GPU that is present and a generic build does not use every
instruction the processor has. Operating-system sources (NVML, sysctl, sysfs, /proc/cpuinfo) fill the gaps
and find hardware this build cannot use, so Hearth can say that another build would help.

Detection must never take the app down: every probe is a small callable whose failure (a missing library,
an absent ctypes symbol, a subprocess that fails) is logged at debug level and read as "nothing found".
Tests replace the probes with recorded answers from other machines (``tests/data/hardware``).
"""

from __future__ import annotations

import ctypes
import json
import logging
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import psutil

log = logging.getLogger(__name__)
_T = TypeVar("_T")

__all__ = [
    "CACHE_FILE", "REAL_PROBES", "BandwidthReading", "DrmRecord", "GgmlDevice", "Gpu", "Machine", "NvmlRecord",
    "Probes", "apple_bandwidth", "apple_gpu", "bandwidth", "bandwidth_readings", "bandwidth_wanted",
    "cached_bandwidth", "cpu_name_from_cpuinfo", "describe", "detect", "engine_baseline", "features_from_cpuinfo",
    "features_from_sysctl", "features_from_system_info", "ggml_devices_from_library",
    "gpus_from_drm", "gpus_from_ggml", "machine_key", "mark_bandwidth_doubtful", "measure_and_store_bandwidth",
    "measure_bandwidth", "metal_working_set", "nvml_bandwidth", "parse_system_info", "probe_size", "processor_busy",
    "processor_share_used",
    "store_engine_baseline", "vendor_of", "with_nvml",
]

GIB = 2**30
CACHE_FILE = "hardware.json"

# ggml_backend_dev_type; IGPU was inserted before ACCEL in 2025, so an old build's ACCEL (2) reads as an
# integrated GPU here: _NOT_GPU_BACKENDS keeps BLAS and AMX out either way.
_DEVICE_KINDS = {0: "cpu", 1: "gpu", 2: "igpu", 3: "accel"}
_GPU_KINDS = ("gpu", "igpu")
_NOT_GPU_BACKENDS = frozenset({"CPU", "BLAS", "AMX", "RPC"})

# Entries of llama.cpp's CPU feature list that describe the build, not the instruction set.
_BUILD_OPTIONS = frozenset({"LLAMAFILE", "ACCELERATE", "CPU_HBM", "OPENMP", "AARCH64_REPACK", "REPACK", "KLEIDIAI"})
# llama.cpp says MATMUL_INT8 where Arm (and the rest of Hearth) says I8MM.
_FEATURE_ALIASES = {"MATMUL_INT8": "I8MM"}

_CPUINFO_FLAGS = {  # /proc/cpuinfo "flags" (x86) and "Features" (Arm) in llama.cpp's names
    "pni": "SSE3", "ssse3": "SSSE3", "avx": "AVX", "avx_vnni": "AVX_VNNI", "avx2": "AVX2", "f16c": "F16C",
    "fma": "FMA", "bmi2": "BMI2", "avx512f": "AVX512", "avx512vbmi": "AVX512_VBMI", "avx512_vnni": "AVX512_VNNI",
    "avx512_bf16": "AVX512_BF16", "amx_int8": "AMX_INT8",
    "asimd": "NEON", "asimdhp": "FP16_VA", "asimddp": "DOTPROD", "i8mm": "I8MM", "sve": "SVE", "sme": "SME",
}
_SYSCTL_FEATURES = {  # macOS: Apple Silicon, then Intel Macs
    "hw.optional.neon": "NEON", "hw.optional.arm.FEAT_FP16": "FP16_VA", "hw.optional.arm.FEAT_DotProd": "DOTPROD",
    "hw.optional.arm.FEAT_I8MM": "I8MM", "hw.optional.arm.FEAT_SME": "SME",
    "hw.optional.avx1_0": "AVX", "hw.optional.avx2_0": "AVX2", "hw.optional.fma": "FMA",
    "hw.optional.avx512f": "AVX512",
}
_SYSCTL_BRAND = "machdep.cpu.brand_string"
_SYSCTL_WIRED_LIMIT = "iogpu.wired_limit_mb"
_SYSCTL_NAMES = (_SYSCTL_BRAND, _SYSCTL_WIRED_LIMIT, *_SYSCTL_FEATURES)
# The order llama.cpp lists them in, so every source gives the same tuple for the same processor.
_FEATURE_ORDER = ("SSE3", "SSSE3", "AVX", "AVX_VNNI", "AVX2", "F16C", "FMA", "BMI2", "AVX512", "AVX512_VBMI",
                  "AVX512_VNNI", "AVX512_BF16", "AMX_INT8", "NEON", "ARM_FMA", "FP16_VA", "I8MM", "SVE", "DOTPROD",
                  "SME")

# Peak memory bandwidth of Apple's chips (GB/s, Apple's figures; the lower one where a chip came in two).
_APPLE_BANDWIDTH_GBS = {
    "M1": 68.25, "M1 Pro": 204.8, "M1 Max": 409.6, "M1 Ultra": 819.2,
    "M2": 102.4, "M2 Pro": 204.8, "M2 Max": 409.6, "M2 Ultra": 819.2,
    "M3": 102.4, "M3 Pro": 153.6, "M3 Max": 307.2, "M3 Ultra": 819.2,
    "M4": 120.0, "M4 Pro": 273.0, "M4 Max": 410.0, "M5": 153.6,
}
_VENDOR_WORDS = (("nvidia", "NVIDIA"), ("geforce", "NVIDIA"), ("quadro", "NVIDIA"), ("tesla", "NVIDIA"),
                 ("amd", "AMD"), ("radeon", "AMD"), ("intel", "Intel"), ("apple", "Apple"),
                 ("adreno", "Qualcomm"), ("mali", "Arm"))
_PCI_VENDORS = {"0x10de": "NVIDIA", "0x1002": "AMD", "0x8086": "Intel"}
# Below this, a card's own memory is an integrated GPU's carve-out from RAM, not a place for a model.
_SMALLEST_DEDICATED = 2 * GIB


# --- facts -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Gpu:
    """A graphics processor. Memory sizes are bytes; 0 where no source could tell.

    ``backend`` is the llama.cpp backend of this build that can offload to it ("CUDA", "Metal", "Vulkan"...),
    or None for hardware found by the operating system that this build cannot use. ``unified``: it shares
    the computer's RAM (Apple Silicon, integrated graphics), so what a model puts there counts against both.
    ``bandwidth_bytes_per_s`` is the specification's peak, where one is known (NVML, Apple's chip table).
    """

    name: str
    vendor: str
    memory_total: int
    memory_free: int
    unified: bool
    source: str
    backend: str | None = None
    bandwidth_bytes_per_s: float | None = None

    @property
    def usable(self) -> bool:
        return self.backend is not None


@dataclass(frozen=True)
class Machine:
    """This computer as llama.cpp will use it.

    ``cpu_features`` are instruction sets in llama.cpp's names (AVX2, AVX512, NEON, DOTPROD, I8MM...), as
    the loaded build uses them. ``cpu_build_options`` are the rest of that list (REPACK, OPENMP, LLAMAFILE,
    KLEIDIAI, ACCELERATE). ``gpus`` lists usable devices first. ``offload_backends`` are the backends of
    this build that found a device here (a CUDA build on a computer without NVIDIA graphics has none).
    ``bandwidth_bytes_per_s`` is the measured read speed of main memory, None until measured (``bandwidth``).
    ``engine_baseline_bytes`` is the engine worker's own resident size before any model, as last measured on
    this computer (``store_engine_baseline``); None until a worker has run here.
    """

    memory_total: int
    memory_available: int
    cpu_name: str
    physical_cores: int
    logical_cores: int
    cpu_features: tuple[str, ...]
    gpus: tuple[Gpu, ...]
    offload_backends: tuple[str, ...]
    bandwidth_bytes_per_s: float | None = None
    cpu_build_options: tuple[str, ...] = ()
    engine_baseline_bytes: int | None = None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("cpu_features", "offload_backends", "cpu_build_options"):
            data[key] = list(data[key])
        data["gpus"] = [asdict(gpu) for gpu in self.gpus]
        return data

    @property
    def usable_gpus(self) -> tuple[Gpu, ...]:
        return tuple(gpu for gpu in self.gpus if gpu.usable)


# --- what the probes return ----------------------------------------------------------------------------


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
class NvmlRecord:
    name: str
    memory_total: int
    memory_free: int
    bus_width_bits: int | None = None
    max_memory_clock_mhz: int | None = None


@dataclass(frozen=True)
class DrmRecord:
    """A Linux DRM card that reports its own memory (amdgpu does)."""

    vendor_id: str
    memory_total: int
    memory_used: int
    name: str | None = None


# --- real probes ---------------------------------------------------------------------------------------


def _read_memory() -> tuple[int, int]:
    memory = psutil.virtual_memory()
    return int(memory.total), int(memory.available)


def with_memory_now(machine: Machine) -> Machine:
    """``machine`` with its free memory read again: what another app took or gave back since start-up."""
    total, available = _read_memory()
    return replace(machine, memory_total=total, memory_available=available)


def _read_cores() -> tuple[int | None, int | None]:
    return psutil.cpu_count(logical=False), os.cpu_count()


def _read_cpuinfo() -> str:
    path = Path("/proc/cpuinfo")
    return path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""


def _read_sysctl(names: Sequence[str]) -> dict[str, str]:
    """One ``sysctl`` run for all names; unknown names only cost a line on stderr, so the exit code is ignored."""
    result = subprocess.run(["sysctl", *names], capture_output=True, text=True, timeout=5, check=False)
    values = {}
    for line in result.stdout.splitlines():
        name, sep, value = line.partition(":")
        if sep:
            values[name.strip()] = value.strip()
    return values


def _read_windows_cpu_name() -> str:
    if sys.platform == "win32":
        import winreg

        key = winreg.OpenKey(winreg.HKEY_LOCAL_MACHINE, r"HARDWARE\DESCRIPTION\System\CentralProcessor\0")
        with key:
            return str(winreg.QueryValueEx(key, "ProcessorNameString")[0]).strip()
    return platform.processor()


def _read_system_info() -> str:
    import llama_cpp

    return bytes(llama_cpp.llama_print_system_info()).decode("utf-8", "replace")


def _read_supports_gpu_offload() -> bool:
    import llama_cpp

    return bool(llama_cpp.llama_supports_gpu_offload())


def _ggml_library() -> ctypes.CDLL:
    """The ggml that llama-cpp-python loaded. ``_ggml`` is internal ("use at your own risk"), hence the fallback:
    a handle to libllama also finds the symbols of the libraries it depends on."""
    try:
        from llama_cpp import _ggml

        return _ggml.libggml
    except (ImportError, OSError, AttributeError, RuntimeError):
        log.debug("llama_cpp._ggml is not available; asking libllama for ggml's symbols", exc_info=True)
        from llama_cpp import llama_cpp as low_level

        return low_level._lib


def _read_ggml_devices(skip_memory: frozenset[str]) -> list[GgmlDevice]:
    return ggml_devices_from_library(_ggml_library(), skip_memory)


def _read_nvml() -> list[NvmlRecord]:
    import pynvml  # the nvidia-ml-py package

    pynvml.nvmlInit()
    try:
        return [_nvml_record(pynvml, pynvml.nvmlDeviceGetHandleByIndex(i)) for i in range(pynvml.nvmlDeviceGetCount())]
    finally:
        pynvml.nvmlShutdown()


def _nvml_record(nvml: Any, handle: Any) -> NvmlRecord:
    name = nvml.nvmlDeviceGetName(handle)
    memory = nvml.nvmlDeviceGetMemoryInfo(handle)
    return NvmlRecord(
        name=name.decode("utf-8", "replace") if isinstance(name, bytes) else str(name),
        memory_total=int(memory.total), memory_free=int(memory.free),
        bus_width_bits=_optional(lambda: int(nvml.nvmlDeviceGetMemoryBusWidth(handle))),
        max_memory_clock_mhz=_optional(lambda: int(nvml.nvmlDeviceGetMaxClockInfo(handle, nvml.NVML_CLOCK_MEM))),
    )


def _read_drm() -> list[DrmRecord]:
    records = []
    for card in sorted(Path("/sys/class/drm").glob("card[0-9]*")):
        device = card / "device"
        if "-" in card.name or not (device / "mem_info_vram_total").exists():
            continue
        records.append(DrmRecord(
            vendor_id=_read_text(device / "vendor") or "",
            memory_total=_int(_read_text(device / "mem_info_vram_total")),
            memory_used=_int(_read_text(device / "mem_info_vram_used")), name=_read_text(device / "product_name"),
        ))
    return records


def _read_text(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8", errors="replace").strip() or None
    except OSError:
        return None


@dataclass(frozen=True)
class Probes:
    """Where detect() gets its readings; tests replace them with recorded answers.

    ``ggml_devices`` gets the backends whose memory it must not ask for: on older llama.cpp builds CUDA's
    memory query creates a CUDA context that keeps 100-550 MB of the card for the life of this process
    (llama.cpp PR #23604), so CUDA memory comes from NVML whenever NVML answers.
    """

    platform: Callable[[], str] = platform.system
    memory: Callable[[], tuple[int, int]] = _read_memory
    cores: Callable[[], tuple[int | None, int | None]] = _read_cores
    cpuinfo: Callable[[], str] = _read_cpuinfo
    sysctl: Callable[[Sequence[str]], Mapping[str, str]] = _read_sysctl
    windows_cpu_name: Callable[[], str] = _read_windows_cpu_name
    system_info: Callable[[], str] = _read_system_info
    supports_gpu_offload: Callable[[], bool] = _read_supports_gpu_offload
    ggml_devices: Callable[[frozenset[str]], Sequence[GgmlDevice]] = _read_ggml_devices
    nvml: Callable[[], Sequence[NvmlRecord]] = _read_nvml
    drm: Callable[[], Sequence[DrmRecord]] = _read_drm


REAL_PROBES = Probes()


def _ask(what: str, probe: Callable[[], _T], default: _T) -> _T:
    try:
        return probe()
    except ImportError as error:
        log.debug("hardware probe %r: %s; taking it as nothing found", what, error)
    except Exception:
        log.debug("hardware probe %r failed; taking it as nothing found", what, exc_info=True)
    return default


def _optional(probe: Callable[[], _T]) -> _T | None:
    return _ask("optional reading", probe, None)


# --- ggml's device list through ctypes -----------------------------------------------------------------


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
        if device_kind in _GPU_KINDS and device_backend not in skip_memory:
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


# --- parsing ---------------------------------------------------------------------------------------------


def parse_system_info(text: str) -> dict[str, dict[str, str]]:
    """``llama_print_system_info()`` as {registry: {feature: value}}.

    The string is "CUDA : ARCHS = 890 | USE_GRAPHS = 1 | CPU : SSE3 = 1 | AVX2 = 1 | ": each backend that
    lists features starts a section with "NAME : ", and features are only listed when present.
    """
    sections: dict[str, dict[str, str]] = {}
    current: dict[str, str] | None = None
    for part in text.split("|"):
        head, sep, rest = part.partition(" : ")
        if sep and "=" not in head:
            current = sections.setdefault(head.strip(), {})
            part = rest
        key, sep, value = part.partition("=")
        if sep and current is not None and key.strip():
            current[key.strip()] = value.strip()
    return sections


def _ordered(features: Iterable[str]) -> tuple[str, ...]:
    unique = dict.fromkeys(features)
    rank = {name: i for i, name in enumerate(_FEATURE_ORDER)}
    return tuple(sorted(unique, key=lambda name: rank.get(name, len(rank))))


def features_from_system_info(sections: Mapping[str, Mapping[str, str]]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(instruction sets, build options) of llama.cpp's CPU backend; counts such as SVE_CNT = 16 are neither."""
    cpu = sections.get("CPU", {})
    flags = [name for name, value in cpu.items() if value == "1"]
    features = [_FEATURE_ALIASES.get(name, name) for name in flags if name not in _BUILD_OPTIONS]
    return _ordered(features), tuple(name for name in flags if name in _BUILD_OPTIONS)


def features_from_cpuinfo(text: str) -> tuple[str, ...]:
    flags: set[str] = set()
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() in ("flags", "Features"):
            flags.update(value.split())
    features = [name for flag, name in _CPUINFO_FLAGS.items() if flag in flags]
    if "NEON" in features:
        features.append("ARM_FMA")  # part of the base AArch64 instruction set
    return _ordered(features)


def features_from_sysctl(values: Mapping[str, str]) -> tuple[str, ...]:
    features = [name for key, name in _SYSCTL_FEATURES.items() if values.get(key) == "1"]
    if "NEON" in features:
        features.append("ARM_FMA")
    return _ordered(features)


def cpu_name_from_cpuinfo(text: str) -> str | None:
    match = re.search(r"^model name\s*:\s*(.+)$", text, re.MULTILINE)
    return " ".join(match.group(1).split()) if match else None


def vendor_of(name: str) -> str:
    lowered = name.lower()
    return next((vendor for word, vendor in _VENDOR_WORDS if word in lowered), "unknown")


def metal_working_set(memory_total: int, wired_limit_mb: int = 0) -> int:
    """The share of RAM Metal lets a GPU program keep resident (``recommendedMaxWorkingSetSize``), for builds
    that cannot ask Metal itself.

    Rule: two thirds of RAM up to 36 GB, three quarters above. It matches what macOS reported for years
    (11453.25 MB on every 16 GB Mac, 48 GB on 64 GB, 96 GB on 128 GB); recent macOS versions were seen
    allowing ~74-78% on 18-36 GB machines, so the rule errs on the side of "does not fit". A limit set with
    ``sudo sysctl iogpu.wired_limit_mb=N`` replaces the default, and this follows it.
    """
    if wired_limit_mb > 0:
        return wired_limit_mb * 2**20
    share = 2 / 3 if memory_total <= 36 * GIB else 3 / 4
    return int(memory_total * share)


def apple_bandwidth(chip: str) -> float | None:
    match = re.search(r"\b(M\d+(?: (?:Pro|Max|Ultra))?)\b", chip)
    gbs = _APPLE_BANDWIDTH_GBS.get(match.group(1)) if match else None
    return float(round(gbs * 1e9)) if gbs else None


def nvml_bandwidth(record: NvmlRecord) -> float | None:
    """Bus width times the double-data-rate memory clock NVML reports (10501 MHz for GDDR6X at 21 Gbps)."""
    if not record.bus_width_bits or not record.max_memory_clock_mhz:
        return None
    return record.bus_width_bits / 8 * record.max_memory_clock_mhz * 1e6 * 2


# --- graphics: merging what each source saw --------------------------------------------------------------


def gpus_from_ggml(devices: Iterable[GgmlDevice]) -> list[Gpu]:
    gpus = []
    for device in devices:
        if device.kind not in _GPU_KINDS or device.backend in _NOT_GPU_BACKENDS:
            continue
        name = device.description or device.name
        vendor = vendor_of(name)
        gpus.append(Gpu(
            name=name, vendor=vendor, memory_total=device.memory_total or 0, memory_free=device.memory_free or 0,
            unified=device.kind == "igpu" or vendor == "Apple", source="llama.cpp", backend=device.backend,
            bandwidth_bytes_per_s=apple_bandwidth(name) if vendor == "Apple" else None,
        ))
    return gpus


def with_nvml(gpus: Sequence[Gpu], records: Sequence[NvmlRecord]) -> list[Gpu]:
    """Fill llama.cpp's NVIDIA devices from NVML (memory it was not asked for, bandwidth), matched by name (by
    order for CUDA when names differ); NVIDIA cards that llama.cpp did not list are added as not usable."""
    remaining = list(records)
    merged = []
    for gpu in gpus:
        record = _take_nvml_match(remaining, gpu)
        if record is not None:
            gpu = replace(
                gpu, memory_total=gpu.memory_total or record.memory_total,
                memory_free=gpu.memory_free if gpu.memory_total else record.memory_free,
                source=f"{gpu.source} + NVML", bandwidth_bytes_per_s=nvml_bandwidth(record),
            )
        merged.append(gpu)
    return merged + [_nvml_gpu(record) for record in remaining]


def _take_nvml_match(remaining: list[NvmlRecord], gpu: Gpu) -> NvmlRecord | None:
    match = next((r for r in remaining if r.name == gpu.name), None)
    if match is None and gpu.backend == "CUDA" and remaining:
        match = remaining[0]
    if match is not None:
        remaining.remove(match)
    return match


def _nvml_gpu(record: NvmlRecord) -> Gpu:
    return Gpu(name=record.name, vendor="NVIDIA", memory_total=record.memory_total, memory_free=record.memory_free,
               unified=False, source="NVML", bandwidth_bytes_per_s=nvml_bandwidth(record))


def gpus_from_drm(records: Iterable[DrmRecord]) -> list[Gpu]:
    gpus = []
    for record in records:
        vendor = _PCI_VENDORS.get(record.vendor_id.lower(), "unknown")
        if vendor == "NVIDIA" or record.memory_total < _SMALLEST_DEDICATED:
            continue  # NVIDIA comes from NVML; a small carve-out is integrated graphics
        gpus.append(Gpu(name=record.name or f"{vendor} graphics card", vendor=vendor,
                        memory_total=record.memory_total, memory_free=max(record.memory_total - record.memory_used, 0),
                        unified=False, source="sysfs"))
    return gpus


def apple_gpu(chip: str, memory_total: int, memory_available: int, wired_limit_mb: int = 0) -> Gpu:
    """An Apple Silicon GPU seen by macOS alone (this build has no Metal), with the share of RAM it may use."""
    budget = metal_working_set(memory_total, wired_limit_mb)
    return Gpu(name=chip, vendor="Apple", memory_total=budget, memory_free=min(budget, memory_available),
               unified=True, source="sysctl", bandwidth_bytes_per_s=apple_bandwidth(chip))


def _gpus(system: str, devices: Sequence[GgmlDevice] | None, probes: Probes, nvml: Sequence[NvmlRecord],
          sysctl: Mapping[str, str], memory: tuple[int, int]) -> tuple[Gpu, ...]:
    gpus = with_nvml(gpus_from_ggml(devices or ()), nvml)
    vendors = {gpu.vendor for gpu in gpus}
    if system == "Linux":
        gpus += [gpu for gpu in gpus_from_drm(_ask("drm", probes.drm, ())) if gpu.vendor not in vendors]
    chip = sysctl.get(_SYSCTL_BRAND, "")
    if system == "Darwin" and chip.startswith("Apple") and "Apple" not in vendors:
        gpus.append(apple_gpu(chip, *memory, wired_limit_mb=_int(sysctl.get(_SYSCTL_WIRED_LIMIT))))
    return tuple(sorted(gpus, key=lambda gpu: (not gpu.usable, -gpu.memory_total)))


def _offload_backends(devices: Sequence[GgmlDevice] | None, sections: Mapping[str, Mapping[str, str]],
                      supports_offload: Callable[[], bool]) -> tuple[str, ...]:
    """From the device list; without it, from the backends named in the system info, if llama.cpp says it can
    offload at all."""
    if devices is not None:
        return tuple(dict.fromkeys(gpu.backend for gpu in gpus_from_ggml(devices) if gpu.backend))
    if not _ask("gpu offload support", supports_offload, False):
        return ()
    named = tuple(name for name in sections if name not in _NOT_GPU_BACKENDS)
    return named or ("GPU",)


# --- the processor --------------------------------------------------------------------------------------


def _cpu_name(system: str, cpuinfo: str, sysctl: Mapping[str, str], devices: Sequence[GgmlDevice] | None,
              probes: Probes) -> str:
    candidates = [cpu_name_from_cpuinfo(cpuinfo), sysctl.get(_SYSCTL_BRAND)]
    if system == "Windows":
        candidates.append(_ask("windows cpu name", probes.windows_cpu_name, ""))
    candidates += [device.description for device in devices or () if device.kind == "cpu"]
    return next((name.strip() for name in candidates if name and name.strip() not in ("", "CPU")),
                "Unknown processor")


def _cpu_features(sections: Mapping[str, Mapping[str, str]], cpuinfo: str,
                  sysctl: Mapping[str, str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    features, options = features_from_system_info(sections)
    if features:
        return features, options
    return features_from_cpuinfo(cpuinfo) or features_from_sysctl(sysctl), options


def _int(text: str | None) -> int:
    try:
        return int(text or 0)
    except ValueError:
        return 0


# --- detect ------------------------------------------------------------------------------------------------

_NO_CORES: tuple[int | None, int | None] = (None, None)
_NO_NVML: Sequence[NvmlRecord] = ()
_NO_SYSCTL: Mapping[str, str] = {}


def detect(probes: Probes = REAL_PROBES, *, cache_dir: Path | None = None, measure: bool = False) -> Machine:
    """This machine, in well under a second. Never raises for missing hardware or libraries.

    With ``cache_dir`` the memory bandwidth is read from the cache; with ``measure`` too, a missing figure is
    measured (a second or two: keep it off the GUI thread) and cached.
    """
    system = _ask("platform", probes.platform, "")
    memory = _ask("memory", probes.memory, (0, 0))
    physical, logical = _ask("cores", probes.cores, _NO_CORES)
    nvml = _ask("nvml", probes.nvml, _NO_NVML)
    devices = _ask("ggml devices", lambda: probes.ggml_devices(frozenset({"CUDA"}) if nvml else frozenset()), None)
    sections = parse_system_info(_ask("system info", probes.system_info, ""))
    sysctl = _ask("sysctl", lambda: probes.sysctl(_SYSCTL_NAMES), _NO_SYSCTL) if system == "Darwin" else _NO_SYSCTL
    cpuinfo = _ask("cpuinfo", probes.cpuinfo, "")
    features, options = _cpu_features(sections, cpuinfo, sysctl)
    machine = Machine(
        memory_total=memory[0], memory_available=memory[1],
        cpu_name=_cpu_name(system, cpuinfo, sysctl, devices, probes),
        physical_cores=max(physical or logical or 1, 1), logical_cores=max(logical or physical or 1, 1),
        cpu_features=features, gpus=_gpus(system, devices, probes, nvml, sysctl, memory),
        offload_backends=_offload_backends(devices, sections, probes.supports_gpu_offload),
        cpu_build_options=options,
    )
    if cache_dir is None:
        return machine
    return replace(machine, bandwidth_bytes_per_s=bandwidth(cache_dir, measure_if_missing=measure, machine=machine),
                   engine_baseline_bytes=engine_baseline(cache_dir))


# --- memory bandwidth ------------------------------------------------------------------------------------

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
    entry = _read_cache(cache_dir).get("bandwidth", {}).get(machine_key(machine))
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


def cached_bandwidth(cache_dir: Path, machine: Machine | None = None) -> float | None:
    """The best reading kept: a busy moment only ever lowers a reading, so the highest is the truest."""
    readings = bandwidth_readings(cache_dir, machine or detect())
    return max(r.bytes_per_s for r in readings) if readings else None


def bandwidth_wanted(cache_dir: Path, machine: Machine) -> bool:
    """Whether another reading should be taken when the machine is next quiet: none yet, none quiet, none by
    this version of Hearth, or one marked doubtful by a generation faster than it allows."""
    from app import __version__

    readings = bandwidth_readings(cache_dir, machine)
    entry = _read_cache(cache_dir).get("bandwidth", {}).get(machine_key(machine))
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
    _update_cache(cache_dir, "bandwidth", machine_key(machine), {"readings": [r.to_dict() for r in kept]})
    return best.bytes_per_s


def mark_bandwidth_doubtful(cache_dir: Path, machine: Machine) -> None:
    """A generation ran faster than the kept readings allow: they were all taken on a busy machine."""
    entry = _read_cache(cache_dir).get("bandwidth", {}).get(machine_key(machine))
    if isinstance(entry, dict):
        _update_cache(cache_dir, "bandwidth", machine_key(machine), {**entry, "doubtful": True})


def bandwidth(cache_dir: Path, measure_if_missing: bool = True, machine: Machine | None = None) -> float | None:
    """The best kept reading for this machine; measured (a second or two) and kept if none and allowed."""
    machine = machine or detect()
    cached = cached_bandwidth(cache_dir, machine)
    if cached is not None or not measure_if_missing:
        return cached
    return measure_and_store_bandwidth(cache_dir, machine)


def engine_baseline(cache_dir: Path) -> int | None:
    """The engine worker's resident size before any model, as last measured here (see ``Machine``)."""
    entry = _read_cache(cache_dir).get("engine", {}).get(sys.platform)
    value = entry.get("rss_bytes") if isinstance(entry, dict) else None
    return int(value) if isinstance(value, int) and value > 0 else None


def store_engine_baseline(cache_dir: Path, rss_bytes: int, llama_cpp_version: str) -> None:
    """Kept per platform: the worker's size depends on the Python, the libraries and the build it runs."""
    if rss_bytes > 0 and rss_bytes != engine_baseline(cache_dir):
        _update_cache(cache_dir, "engine", sys.platform,
                      {"rss_bytes": rss_bytes, "llama_cpp": llama_cpp_version,
                       "measured_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")})


def _read_cache(cache_dir: Path) -> dict[str, Any]:
    path = cache_dir / CACHE_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError):
        log.debug("ignoring an unreadable %s", path, exc_info=True)
        return {}
    if not isinstance(data, dict):
        return {}
    return {key: value for key, value in data.items() if isinstance(value, dict)}


def _update_cache(cache_dir: Path, section: str, key: str, value: dict[str, Any]) -> None:
    """Atomic, so a second Hearth reading at the same moment never sees half a file."""
    data = _read_cache(cache_dir)
    data.setdefault(section, {})[key] = value
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", encoding="utf-8", dir=cache_dir, delete=False, suffix=".tmp") as tmp:
            json.dump(data, tmp, indent=2)
        os.replace(tmp.name, cache_dir / CACHE_FILE)
    except OSError:
        log.warning("could not write %s in %s", CACHE_FILE, cache_dir, exc_info=True)


# --- plain words ------------------------------------------------------------------------------------------

_HEADLINE_FEATURES = (("AVX2", "AVX2"), ("AVX512", "AVX-512"), ("AMX_INT8", "AMX"), ("NEON", "NEON"),
                      ("DOTPROD", "DotProd"), ("I8MM", "I8MM"), ("SVE", "SVE"), ("SME", "SME"))
_X86_BASICS = frozenset({"SSE3", "SSSE3", "AVX", "F16C", "FMA"})


def describe(machine: Machine, *, memory_speed: bool = True) -> list[str]:
    """Sentences for people who are not programmers, one fact each, in the order they matter for models.

    ``memory_speed=False`` leaves out the last one, the measured memory speed (the welcome page, shown before
    it is measured, keeps to memory, processor and graphics)."""
    sentences = [
        f"{_gigabytes(machine.memory_total)} of memory, {_gigabytes(machine.memory_available)} free right now.",
        _processor_sentence(machine),
    ]
    features = set(machine.cpu_features)
    if features & _X86_BASICS and "AVX2" not in features:
        sentences.append("This processor lacks AVX2, so models will run slowly on it.")
    sentences += [_gpu_sentence(gpu, machine) for gpu in machine.gpus] or [_no_gpu_sentence(machine)]
    if machine.gpus and not machine.usable_gpus:
        sentences.append("Models run on the processor.")
    if memory_speed:
        sentences.append(_bandwidth_sentence(machine.bandwidth_bytes_per_s))
    return sentences


def _gigabytes(n: int) -> str:
    """Memory is sold in binary gigabytes called "GB": a "16 GB" laptop has 16 GiB, and should read "16 GB"."""
    if n < GIB:
        return f"{n / 2**20:.0f} MB"
    value = n / GIB
    return (f"{value:.0f}" if value >= 100 else f"{value:.1f}").removesuffix(".0") + " GB"


def _processor_sentence(machine: Machine) -> str:
    cores = f"{machine.physical_cores} core{'s' if machine.physical_cores != 1 else ''}"
    if machine.logical_cores != machine.physical_cores:
        cores += f" ({machine.logical_cores} threads)"
    headline = [label for name, label in _HEADLINE_FEATURES if name in machine.cpu_features]
    return f"Processor: {', '.join([machine.cpu_name, cores, *headline])}."


def _gpu_sentence(gpu: Gpu, machine: Machine) -> str:
    if gpu.unified and gpu.memory_total:
        size = (f", which shares the computer's {_gigabytes(machine.memory_total)} of memory; up to "
                f"{_gigabytes(gpu.memory_total)} of it can hold a model")
    else:
        size = f" with {_gigabytes(gpu.memory_total)}" if gpu.memory_total else ""
    if gpu.usable:
        verdict = "this version of Hearth can use it"
    elif machine.offload_backends:
        verdict = "this version of Hearth cannot use it"
    else:
        verdict = "this version of Hearth cannot use it: it was built for the processor only"
    return f"Graphics: {gpu.name}{size} ({verdict})."


def _no_gpu_sentence(machine: Machine) -> str:
    if machine.offload_backends:
        return (f"This version of Hearth can use {' or '.join(machine.offload_backends)} graphics, but no graphics "
                "card was found; models run on the processor.")
    return "No graphics card that Hearth can use was found; models run on the processor."


def _bandwidth_sentence(value: float | None) -> str:
    if not value:
        return "Memory speed: not measured yet."
    gbs = value / 1e9
    return f"Memory speed: about {gbs:.0f} GB/s." if gbs >= 10 else f"Memory speed: about {gbs:.1f} GB/s."
