"""Where ``detect`` gets its readings: each a small callable whose failure (a missing library, an absent ctypes
symbol, a subprocess that fails) is logged at debug level and read as "nothing found", and the parsing of what
they return. Operating-system sources (psutil, NVML, sysctl, sysfs, /proc/cpuinfo) are read in this process;
what only llama.cpp knows comes from a one-shot child (``llama_probe``). Tests replace the probes with recorded
answers from other machines (``tests/data/hardware``).
"""

from __future__ import annotations

import logging
import os
import platform
import re
import subprocess
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import psutil

from app.hardware import llama_probe
from app.hardware.llama_probe import GgmlDevice, LlamaFacts
from app.hardware.machine import GIB

log = logging.getLogger(__name__)
_T = TypeVar("_T")


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
SYSCTL_BRAND = "machdep.cpu.brand_string"
SYSCTL_WIRED_LIMIT = "iogpu.wired_limit_mb"
SYSCTL_NAMES = (SYSCTL_BRAND, SYSCTL_WIRED_LIMIT, *_SYSCTL_FEATURES)
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


# --- what the probes return ----------------------------------------------------------------------------


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



def read_memory() -> tuple[int, int]:
    memory = psutil.virtual_memory()
    return int(memory.total), int(memory.available)



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
        bus_width_bits=optional(lambda: int(nvml.nvmlDeviceGetMemoryBusWidth(handle))),
        max_memory_clock_mhz=optional(lambda: int(nvml.nvmlDeviceGetMaxClockInfo(handle, nvml.NVML_CLOCK_MEM))),
    )


def _read_drm() -> list[DrmRecord]:
    records = []
    for card in sorted(Path("/sys/class/drm").glob("card[0-9]*")):
        device = card / "device"
        if "-" in card.name or not (device / "mem_info_vram_total").exists():
            continue
        records.append(DrmRecord(
            vendor_id=_read_text(device / "vendor") or "",
            memory_total=int_or_zero(_read_text(device / "mem_info_vram_total")),
            memory_used=int_or_zero(_read_text(device / "mem_info_vram_used")),
            name=_read_text(device / "product_name"),
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

    ``llama`` asks llama.cpp, once per detect(), for what only it knows: its system info, whether it can offload,
    and ggml's device list (``llama_probe.ask``: in a one-shot child, or from the cache). ``system_info``,
    ``supports_gpu_offload`` and ``ggml_devices``, where given, answer instead: recorded machines give all
    three, and then no child is started.

    ``ggml_devices`` gets the backends whose memory it must not ask for: on older llama.cpp builds CUDA's
    memory query creates a CUDA context that keeps 100-550 MB of the card for the life of the process that asks
    (llama.cpp PR #23604), so CUDA memory comes from NVML whenever NVML answers.
    """

    platform: Callable[[], str] = platform.system
    memory: Callable[[], tuple[int, int]] = read_memory
    cores: Callable[[], tuple[int | None, int | None]] = _read_cores
    cpuinfo: Callable[[], str] = _read_cpuinfo
    sysctl: Callable[[Sequence[str]], Mapping[str, str]] = _read_sysctl
    windows_cpu_name: Callable[[], str] = _read_windows_cpu_name
    system_info: Callable[[], str] | None = None
    supports_gpu_offload: Callable[[], bool] | None = None
    ggml_devices: Callable[[frozenset[str]], Sequence[GgmlDevice]] | None = None
    nvml: Callable[[], Sequence[NvmlRecord]] = _read_nvml
    drm: Callable[[], Sequence[DrmRecord]] = _read_drm
    llama: Callable[[frozenset[str], Path | None], LlamaFacts] = llama_probe.ask


REAL_PROBES = Probes()


def ask(what: str, probe: Callable[[], _T], default: _T) -> _T:
    """``probe()``, or ``default`` where it fails (logged at debug level: missing hardware is not an error)."""
    try:
        return probe()
    except ImportError as error:
        log.debug("hardware probe %r: %s; taking it as nothing found", what, error)
    except Exception:
        log.debug("hardware probe %r failed; taking it as nothing found", what, exc_info=True)
    return default


def optional(probe: Callable[[], _T]) -> _T | None:
    return ask("optional reading", probe, None)



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


def int_or_zero(text: str | None) -> int:
    try:
        return int(text or 0)
    except ValueError:
        return 0
