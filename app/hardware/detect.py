"""This machine as the installed llama.cpp will use it, from the probes' readings.

The forecast compares every model against these facts, so they must describe the machine as the installed
llama.cpp will use it: instruction sets and graphics devices are asked of llama.cpp itself where it can
answer, because a CPU-only build cannot use a GPU that is present and a generic build does not use every
instruction the processor has. Operating-system sources (NVML, sysctl, sysfs, /proc/cpuinfo) fill the gaps
and find hardware this build cannot use, so Hearth can say that another build would help.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path

from app.hardware.cache import engine_baseline
from app.hardware.llama_probe import GPU_KINDS, GgmlDevice, LlamaFacts
from app.hardware.machine import GIB, Gpu, Machine
from app.hardware.memory_speed import bandwidth
from app.hardware.probes import (
    REAL_PROBES,
    SYSCTL_BRAND,
    SYSCTL_NAMES,
    SYSCTL_WIRED_LIMIT,
    DrmRecord,
    NvmlRecord,
    Probes,
    apple_bandwidth,
    ask,
    cpu_name_from_cpuinfo,
    features_from_cpuinfo,
    features_from_sysctl,
    features_from_system_info,
    int_or_zero,
    metal_working_set,
    nvml_bandwidth,
    parse_system_info,
    read_memory,
    vendor_of,
)

_NOT_GPU_BACKENDS = frozenset({"CPU", "BLAS", "AMX", "RPC"})
_PCI_VENDORS = {"0x10de": "NVIDIA", "0x1002": "AMD", "0x8086": "Intel"}
# Below this, a card's own memory is an integrated GPU's carve-out from RAM, not a place for a model.
_SMALLEST_DEDICATED = 2 * GIB


def with_memory_now(machine: Machine) -> Machine:
    """``machine`` with its free memory read again: what another app took or gave back since start-up."""
    total, available = read_memory()
    return replace(machine, memory_total=total, memory_available=available)


# --- graphics: merging what each source saw --------------------------------------------------------------


def gpus_from_ggml(devices: Iterable[GgmlDevice]) -> list[Gpu]:
    gpus = []
    for device in devices:
        if device.kind not in GPU_KINDS or device.backend in _NOT_GPU_BACKENDS:
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
        gpus += [gpu for gpu in gpus_from_drm(ask("drm", probes.drm, ())) if gpu.vendor not in vendors]
    chip = sysctl.get(SYSCTL_BRAND, "")
    if system == "Darwin" and chip.startswith("Apple") and "Apple" not in vendors:
        gpus.append(apple_gpu(chip, *memory, wired_limit_mb=int_or_zero(sysctl.get(SYSCTL_WIRED_LIMIT))))
    return tuple(sorted(gpus, key=lambda gpu: (not gpu.usable, -gpu.memory_total)))


def _offload_backends(devices: Sequence[GgmlDevice] | None, sections: Mapping[str, Mapping[str, str]],
                      supports_offload: Callable[[], bool]) -> tuple[str, ...]:
    """From the device list; without it, from the backends named in the system info, if llama.cpp says it can
    offload at all."""
    if devices is not None:
        return tuple(dict.fromkeys(gpu.backend for gpu in gpus_from_ggml(devices) if gpu.backend))
    if not ask("gpu offload support", supports_offload, False):
        return ()
    named = tuple(name for name in sections if name not in _NOT_GPU_BACKENDS)
    return named or ("GPU",)


# --- the processor --------------------------------------------------------------------------------------


def _cpu_name(system: str, cpuinfo: str, sysctl: Mapping[str, str], devices: Sequence[GgmlDevice] | None,
              probes: Probes) -> str:
    candidates = [cpu_name_from_cpuinfo(cpuinfo), sysctl.get(SYSCTL_BRAND)]
    if system == "Windows":
        candidates.append(ask("windows cpu name", probes.windows_cpu_name, ""))
    candidates += [device.description for device in devices or () if device.kind == "cpu"]
    return next((name.strip() for name in candidates if name and name.strip() not in ("", "CPU")),
                "Unknown processor")


def _cpu_features(sections: Mapping[str, Mapping[str, str]], cpuinfo: str,
                  sysctl: Mapping[str, str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    features, options = features_from_system_info(sections)
    if features:
        return features, options
    return features_from_cpuinfo(cpuinfo) or features_from_sysctl(sysctl), options


# --- detect ------------------------------------------------------------------------------------------------

_NO_CORES: tuple[int | None, int | None] = (None, None)
_NO_NVML: Sequence[NvmlRecord] = ()
_NO_SYSCTL: Mapping[str, str] = {}


class _LlamaReadings:
    """The three readings only llama.cpp can give: from the probes that give them (recorded machines), else from
    one question to llama.cpp (``probes.llama``) for all that remain, asked when the first is wanted."""

    def __init__(self, probes: Probes, skip_memory: frozenset[str], cache_dir: Path | None) -> None:
        self.probes = probes
        self.skip_memory = skip_memory
        self.cache_dir = cache_dir
        self._answer: LlamaFacts | None = None

    def _asked(self) -> LlamaFacts:
        if self._answer is None:
            self._answer = ask("llama.cpp", lambda: self.probes.llama(self.skip_memory, self.cache_dir), LlamaFacts())
        return self._answer

    def ggml_devices(self) -> Sequence[GgmlDevice]:
        given = self.probes.ggml_devices
        return given(self.skip_memory) if given is not None else self._asked().reading("ggml_devices")

    def system_info(self) -> str:
        given = self.probes.system_info
        return given() if given is not None else str(self._asked().reading("system_info"))

    def supports_gpu_offload(self) -> bool:
        given = self.probes.supports_gpu_offload
        return given() if given is not None else bool(self._asked().reading("supports_gpu_offload"))


def detect(probes: Probes = REAL_PROBES, *, cache_dir: Path | None = None, measure: bool = False) -> Machine:
    """This machine. Never raises for missing hardware or libraries. Off the GUI thread: llama.cpp's readings
    take a child process (a second or so) where no earlier one is kept for this boot and build.

    With ``cache_dir`` the memory bandwidth and llama.cpp's readings are read from the cache (and llama.cpp's
    kept there); with ``measure`` too, a missing bandwidth figure is measured (a second or two) and cached.
    """
    system = ask("platform", probes.platform, "")
    memory = ask("memory", probes.memory, (0, 0))
    physical, logical = ask("cores", probes.cores, _NO_CORES)
    nvml = ask("nvml", probes.nvml, _NO_NVML)
    llama = _LlamaReadings(probes, frozenset({"CUDA"}) if nvml else frozenset(), cache_dir)
    devices = ask("ggml devices", llama.ggml_devices, None)
    sections = parse_system_info(ask("system info", llama.system_info, ""))
    sysctl = ask("sysctl", lambda: probes.sysctl(SYSCTL_NAMES), _NO_SYSCTL) if system == "Darwin" else _NO_SYSCTL
    cpuinfo = ask("cpuinfo", probes.cpuinfo, "")
    features, options = _cpu_features(sections, cpuinfo, sysctl)
    machine = Machine(
        memory_total=memory[0], memory_available=memory[1],
        cpu_name=_cpu_name(system, cpuinfo, sysctl, devices, probes),
        physical_cores=max(physical or logical or 1, 1), logical_cores=max(logical or physical or 1, 1),
        cpu_features=features, gpus=_gpus(system, devices, probes, nvml, sysctl, memory),
        offload_backends=_offload_backends(devices, sections, llama.supports_gpu_offload),
        cpu_build_options=options,
    )
    if cache_dir is None:
        return machine
    return replace(machine, bandwidth_bytes_per_s=bandwidth(cache_dir, measure_if_missing=measure, machine=machine),
                   engine_baseline_bytes=engine_baseline(cache_dir))


