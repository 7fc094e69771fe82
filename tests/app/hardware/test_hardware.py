"""Hardware detection on this machine (no GPU, CPU-only llama.cpp) and on recorded GPU machines."""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import re
import sys
import types
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import psutil
import pytest

from app.engine.backends import ggml_library, prepare_llama
from app.hardware import cache, memory_speed
from app.hardware import probes as hardware_probes
from app.hardware.description import describe
from app.hardware.detect import detect
from app.hardware.llama_probe import GgmlDevice, ggml_devices_from_library
from app.hardware.machine import Gpu, Machine
from app.hardware.memory_speed import bandwidth, cached_bandwidth
from app.hardware.probes import (
    REAL_PROBES,
    DrmRecord,
    NvmlRecord,
    Probes,
    features_from_system_info,
    metal_working_set,
    parse_system_info,
)

from tests.helpers import DATA

MACHINES = DATA / "hardware"  # recorded answers of other machines' probes
GIB = 2**30


def recording(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((MACHINES / f"{name}.json").read_text(encoding="utf-8"))
    return data


def _failing(what: str) -> Callable[..., Any]:
    def fail(*_: object) -> Any:
        raise RuntimeError(f"recorded: the {what} probe failed")

    return fail


def _ggml_answer(devices: list[dict[str, Any]]) -> Callable[[frozenset[str]], list[GgmlDevice]]:
    """Like llama.cpp: memory is only there where it was asked for."""

    def answer(skip_memory: frozenset[str]) -> list[GgmlDevice]:
        listed = [GgmlDevice(**device) for device in devices]
        return [replace(d, memory_free=None, memory_total=None) if d.backend in skip_memory else d for d in listed]

    return answer


def probes_from(answers: dict[str, Any]) -> Probes:
    """Probes that give the recorded answers; a null answer is a probe that raises."""
    converters: dict[str, Callable[[Any], Any]] = {
        "memory": tuple, "cores": tuple,
        "nvml": lambda records: [NvmlRecord(**r) for r in records],
        "drm": lambda records: [DrmRecord(**r) for r in records],
    }
    probes: dict[str, Any] = {}
    for key, value in answers.items():
        if value is None:
            probes[key] = _failing(key)
        elif key == "ggml_devices":
            probes[key] = _ggml_answer(value)
        else:
            converted = converters.get(key, lambda v: v)(value)
            probes[key] = lambda *_, converted=converted: converted
    return Probes(**probes)


def recorded_machine(name: str, **changes: Any) -> Machine:
    answers = {**recording(name)["probes"], **changes}
    return detect(probes_from(answers))


# --- this machine ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def here() -> Machine:
    return detect()


def test_this_machine_has_no_gpu_and_a_cpu_only_build(here: Machine) -> None:
    assert here.gpus == ()
    assert here.offload_backends == ()
    assert "No graphics card that Hearth can use was found; models run on the processor." in describe(here)


def test_this_machine_memory_and_cores_agree_with_psutil(here: Machine) -> None:
    memory = psutil.virtual_memory()
    assert here.memory_total == memory.total
    assert 0 < here.memory_available <= here.memory_total
    assert 1 <= here.physical_cores <= here.logical_cores
    assert here.logical_cores == psutil.cpu_count()


def test_this_machine_features_and_name_match_cpuinfo(here: Machine) -> None:
    cpuinfo = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    flags = re.search(r"^flags\s*:(.*)$", cpuinfo, re.MULTILINE)
    if flags and "avx2" in flags.group(1).split():
        assert "AVX2" in here.cpu_features
    name = re.search(r"^model name\s*:\s*(.+)$", cpuinfo, re.MULTILINE)
    if name:
        assert here.cpu_name == " ".join(name.group(1).split())
    assert here.cpu_name
    assert "REPACK" not in here.cpu_features  # a build option, kept apart


def test_to_dict_is_json(here: Machine) -> None:
    data = json.loads(json.dumps(here.to_dict()))
    assert data["memory_total"] == here.memory_total and data["gpus"] == []
    assert data["cpu_features"] == list(here.cpu_features)


def test_ggml_device_list_through_ctypes_lists_the_cpu() -> None:
    prepare_llama()
    devices = ggml_devices_from_library(ggml_library())
    assert [d.kind for d in devices] == ["cpu"] and devices[0].backend == "CPU"
    assert devices[0].memory_total is None  # RAM comes from psutil, never from ggml


# --- recorded machines ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["nvidia-rtx4070-cuda", "apple-m2-metal"])
def test_recorded_machine_gives_the_expected_facts(name: str) -> None:
    data = recording(name)
    assert detect(probes_from(data["probes"])).to_dict() == data["expected"]


def test_nvidia_memory_comes_from_nvml_not_from_a_cuda_context() -> None:
    asked: list[frozenset[str]] = []
    answers = recording("nvidia-rtx4070-cuda")["probes"]
    devices = _ggml_answer(answers["ggml_devices"])

    def listing(skip: frozenset[str]) -> list[GgmlDevice]:
        asked.append(skip)
        return devices(skip)

    probes = replace(probes_from(answers), ggml_devices=listing)
    gpu = detect(probes).gpus[0]
    assert asked == [frozenset({"CUDA"})]
    assert (gpu.memory_total, gpu.memory_free) == (12878610432, 12106530816)


def test_nvidia_without_nvml_takes_llama_cpp_memory() -> None:
    machine = recorded_machine("nvidia-rtx4070-cuda", nvml=None)
    (gpu,) = machine.gpus
    assert (gpu.name, gpu.backend, gpu.source) == ("NVIDIA GeForce RTX 4070", "CUDA", "llama.cpp")
    assert (gpu.memory_total, gpu.memory_free) == (12878610432, 11733762048)
    assert gpu.bandwidth_bytes_per_s is None
    assert machine.offload_backends == ("CUDA",)


def test_nvidia_card_with_a_cpu_only_build_is_found_but_not_usable() -> None:
    answers = recording("nvidia-rtx4070-cuda")["probes"]
    machine = recorded_machine(
        "nvidia-rtx4070-cuda", supports_gpu_offload=False, ggml_devices=answers["ggml_devices"][1:],
        system_info=answers["system_info"].split("CPU : ")[0].replace("CUDA", "CPU", 1),
    )
    (gpu,) = machine.gpus
    assert (gpu.name, gpu.source, gpu.backend, gpu.usable) == ("NVIDIA GeForce RTX 4070", "NVML", None, False)
    assert machine.offload_backends == () and machine.usable_gpus == ()
    assert describe(machine)[2:4] == [
        "Graphics: NVIDIA GeForce RTX 4070 with 12 GB (this version of Hearth cannot use it: it was built for the "
        "processor only).",
        "Models run on the processor.",
    ]


def test_apple_silicon_with_a_cpu_only_build_estimates_the_metal_share() -> None:
    answers = recording("apple-m2-metal")["probes"]
    machine = recorded_machine("apple-m2-metal", supports_gpu_offload=False, ggml_devices=answers["ggml_devices"][2:],
                               system_info="CPU : NEON = 1 | ARM_FMA = 1 | DOTPROD = 1 | ")
    (gpu,) = machine.gpus
    assert (gpu.name, gpu.vendor, gpu.unified, gpu.source, gpu.backend) == ("Apple M2", "Apple", True, "sysctl", None)
    assert gpu.memory_total == int(16 * GIB * 2 / 3)  # within 6 kB of the 11453.25 MB Metal reports
    assert gpu.memory_free == machine.memory_available
    assert machine.offload_backends == ()


def test_metal_share_follows_the_documented_rule_and_a_wired_limit() -> None:
    assert metal_working_set(16 * GIB) == int(16 * GIB * 2 / 3)
    assert metal_working_set(64 * GIB) == 48 * GIB
    assert metal_working_set(128 * GIB) == 96 * GIB
    assert metal_working_set(64 * GIB, wired_limit_mb=57344) == 56 * GIB


def test_apple_features_fall_back_to_sysctl_without_llama_cpp() -> None:
    machine = recorded_machine("apple-m2-metal", system_info=None, ggml_devices=None, supports_gpu_offload=None)
    assert machine.cpu_features == ("NEON", "ARM_FMA", "FP16_VA", "I8MM", "DOTPROD")
    assert machine.cpu_name == "Apple M2" and machine.offload_backends == ()
    assert machine.gpus[0].source == "sysctl"


def test_amd_card_seen_by_sysfs_only() -> None:
    machine = recorded_machine("nvidia-rtx4070-cuda", nvml=[], ggml_devices=[], supports_gpu_offload=False,
                               drm=[{"vendor_id": "0x1002", "memory_total": 16 * GIB, "memory_used": GIB},
                                    {"vendor_id": "0x1002", "memory_total": GIB // 2, "memory_used": 0}])
    (gpu,) = machine.gpus
    assert (gpu.vendor, gpu.memory_total, gpu.memory_free, gpu.source) == ("AMD", 16 * GIB, 15 * GIB, "sysfs")


# --- failures are "nothing found", never an exception --------------------------------------------------------


def test_a_missing_ctypes_symbol_means_no_gpu() -> None:
    libc = ctypes.CDLL(ctypes.util.find_library("c"))
    with pytest.raises(AttributeError):
        ggml_devices_from_library(libc)
    machine = detect(replace(REAL_PROBES, ggml_devices=lambda skip: ggml_devices_from_library(libc, skip)))
    assert machine.gpus == () and machine.offload_backends == ()


def test_nvml_that_cannot_be_imported_or_started_means_no_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", None)
    assert detect().gpus == ()

    def no_driver() -> None:
        raise OSError("NVML Shared Library Not Found")

    monkeypatch.setitem(sys.modules, "pynvml", types.SimpleNamespace(nvmlInit=no_driver))
    assert detect().gpus == ()


def test_nvml_reader_turns_handles_into_records(monkeypatch: pytest.MonkeyPatch) -> None:
    shut: list[bool] = []

    def no_bus_width(handle: object) -> int:
        raise RuntimeError("NVML_ERROR_NOT_SUPPORTED")

    fake = types.SimpleNamespace(
        NVML_CLOCK_MEM=2, nvmlInit=lambda: None, nvmlShutdown=lambda: shut.append(True),
        nvmlDeviceGetCount=lambda: 1, nvmlDeviceGetHandleByIndex=lambda i: f"handle{i}",
        nvmlDeviceGetName=lambda h: b"NVIDIA GeForce RTX 3060",
        nvmlDeviceGetMemoryInfo=lambda h: types.SimpleNamespace(total=12 * GIB, free=11 * GIB, used=GIB),
        nvmlDeviceGetMemoryBusWidth=no_bus_width, nvmlDeviceGetMaxClockInfo=lambda h, kind: 7501,
    )
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    assert hardware_probes._read_nvml() == [NvmlRecord("NVIDIA GeForce RTX 3060", 12 * GIB, 11 * GIB, None, 7501)]
    assert shut == [True]


def test_every_probe_failing_still_gives_a_machine() -> None:
    broken = Probes(**{name: _failing(name) for name in Probes.__dataclass_fields__})
    machine = detect(broken)
    assert (machine.cpu_name, machine.physical_cores, machine.logical_cores) == ("Unknown processor", 1, 1)
    assert machine.gpus == () and machine.offload_backends == () and machine.cpu_features == ()
    assert describe(machine)


# --- parsing ------------------------------------------------------------------------------------------------


def test_system_info_sections_and_feature_split() -> None:
    text = ("Metal : EMBED_LIBRARY = 1 | BF16 = 1 | CPU : NEON = 1 | MATMUL_INT8 = 1 | SVE = 1 | SVE_CNT = 16 | "
            "DOTPROD = 1 | MATMUL_INT8 = 1 | KLEIDIAI = 1 | REPACK = 1 | ")
    sections = parse_system_info(text)
    assert sections["Metal"] == {"EMBED_LIBRARY": "1", "BF16": "1"}
    assert sections["CPU"]["SVE_CNT"] == "16"
    assert features_from_system_info(sections) == (("NEON", "I8MM", "SVE", "DOTPROD"), ("KLEIDIAI", "REPACK"))
    assert parse_system_info("") == {}


def test_offload_backends_from_system_info_when_the_device_list_is_unreachable() -> None:
    machine = recorded_machine("nvidia-rtx4070-cuda", ggml_devices=None, nvml=[])
    assert machine.offload_backends == ("CUDA",)
    assert recorded_machine("nvidia-rtx4070-cuda", ggml_devices=None, supports_gpu_offload=False).offload_backends == ()


# --- bandwidth ----------------------------------------------------------------------------------------------


def _counting_measure(monkeypatch: pytest.MonkeyPatch, value: float) -> list[float]:
    calls: list[float] = []

    def fake(seconds: float = 1.0, threads: int | None = None) -> float:
        calls.append(seconds)
        return value

    monkeypatch.setattr(memory_speed, "measure_bandwidth", fake)
    return calls


def test_bandwidth_is_measured_once_then_read_from_the_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _counting_measure(monkeypatch, 38.2e9)
    machine = recorded_machine("nvidia-rtx4070-cuda")
    assert cached_bandwidth(tmp_path, machine) is None
    assert bandwidth(tmp_path, machine=machine) == 38.2e9
    assert bandwidth(tmp_path, machine=machine) == 38.2e9
    assert len(calls) == 1
    stored = json.loads((tmp_path / "hardware.json").read_text())
    assert stored["bandwidth"][memory_speed.machine_key(machine)]["readings"][0]["bytes_per_s"] == 38.2e9
    assert detect(probes_from(recording("nvidia-rtx4070-cuda")["probes"]), cache_dir=tmp_path).bandwidth_bytes_per_s \
        == 38.2e9
    assert len(calls) == 1


def test_bandwidth_cache_is_per_machine_and_measuring_can_be_declined(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _counting_measure(monkeypatch, 100e9)
    nvidia, apple = recorded_machine("nvidia-rtx4070-cuda"), recorded_machine("apple-m2-metal")
    bandwidth(tmp_path, machine=nvidia)
    assert bandwidth(tmp_path, measure_if_missing=False, machine=apple) is None
    assert detect(probes_from(recording("apple-m2-metal")["probes"]), cache_dir=tmp_path).bandwidth_bytes_per_s is None
    assert bandwidth(tmp_path, machine=apple) == 100e9
    assert len(calls) == 2
    assert len(json.loads((tmp_path / "hardware.json").read_text())["bandwidth"]) == 2


def test_an_unreadable_cache_is_measured_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _counting_measure(monkeypatch, 20e9)
    (tmp_path / "hardware.json").write_text("{not json")
    machine = recorded_machine("apple-m2-metal")
    assert bandwidth(tmp_path, machine=machine) == 20e9
    assert cached_bandwidth(tmp_path, machine) == 20e9 and len(calls) == 1


def _reading(value: float, when: str, *, busy: bool = False, version: str = "") -> memory_speed.BandwidthReading:
    from app import __version__

    return memory_speed.BandwidthReading(value, when, busy, version or __version__)


def test_the_best_of_several_readings_is_kept_and_a_busy_one_asks_for_another(tmp_path: Path) -> None:
    """A reading on a busy machine (4.1 GB/s against 15 GB/s idle, seen here) never replaces a better one, and
    until a quiet reading exists another is wanted."""
    machine = recorded_machine("nvidia-rtx4070-cuda")
    readings = [(4.1e9, True), (15e9, False), (14e9, False), (13e9, False), (12e9, False), (11e9, False),
                (10e9, False)]

    def take(value: float, busy: bool) -> float:
        return memory_speed.measure_and_store_bandwidth(tmp_path, machine, measure=lambda: value, busy=lambda: busy)

    assert memory_speed.bandwidth_wanted(tmp_path, machine)
    take(*readings[0])
    assert cached_bandwidth(tmp_path, machine) == 4.1e9 and memory_speed.bandwidth_wanted(tmp_path, machine)
    for value, busy in readings[1:]:
        take(value, busy)
    kept = memory_speed.bandwidth_readings(tmp_path, machine)
    assert len(kept) == memory_speed.READINGS_KEPT and cached_bandwidth(tmp_path, machine) == 15e9  # the best stays
    assert not memory_speed.bandwidth_wanted(tmp_path, machine)


def test_an_update_or_a_faster_generation_asks_for_a_new_reading(tmp_path: Path) -> None:
    machine = recorded_machine("apple-m2-metal")
    old = _reading(60e9, "2026-01-01T00:00:00", version="0.0.1")
    cache.update_cache(tmp_path, "bandwidth", memory_speed.machine_key(machine), {"readings": [old.to_dict()]})
    assert cached_bandwidth(tmp_path, machine) == 60e9 and memory_speed.bandwidth_wanted(tmp_path, machine)
    now = _reading(61e9, "2026-02-01T00:00:00")
    cache.update_cache(tmp_path, "bandwidth", memory_speed.machine_key(machine),
                           {"readings": [old.to_dict(), now.to_dict()]})
    assert not memory_speed.bandwidth_wanted(tmp_path, machine)
    memory_speed.mark_bandwidth_doubtful(tmp_path, machine)
    assert memory_speed.bandwidth_wanted(tmp_path, machine) and cached_bandwidth(tmp_path, machine) == 61e9


def test_a_cache_from_before_readings_were_kept_still_reads(tmp_path: Path) -> None:
    machine = recorded_machine("apple-m2-metal")
    (tmp_path / "hardware.json").write_text(json.dumps({"bandwidth": {memory_speed.machine_key(machine): {
        "bytes_per_s": 42e9, "measured_at": "2026-11-01T10:00:00+0000"}}}))
    assert cached_bandwidth(tmp_path, machine) == 42e9
    assert memory_speed.bandwidth_wanted(tmp_path, machine), "its busy or quiet state is unknown: measured again"


def test_the_engine_baseline_is_kept_per_platform_and_read_into_the_machine(tmp_path: Path) -> None:
    assert cache.engine_baseline(tmp_path) is None
    cache.store_engine_baseline(tmp_path, 51 * 2**20, "0.3.36")
    assert cache.engine_baseline(tmp_path) == 51 * 2**20
    machine = detect(probes_from(recording("apple-m2-metal")["probes"]), cache_dir=tmp_path)
    assert machine.engine_baseline_bytes == 51 * 2**20


def test_measure_bandwidth_gives_a_plausible_figure() -> None:
    measured = memory_speed.measure_bandwidth(seconds=0.2)
    assert 5e8 < measured < 5e12


def test_probe_buffer_outgrows_caches_but_stays_small_next_to_free_memory() -> None:
    assert memory_speed.probe_size(64 * GIB, threads=2) == 256 * 2**20
    assert memory_speed.probe_size(64 * GIB, threads=32) == GIB
    assert memory_speed.probe_size(2 * GIB, threads=8) == 128 * 2**20
    assert memory_speed.probe_size(100 * 2**20, threads=8) == 64 * 2**20


# --- plain words --------------------------------------------------------------------------------------------


def test_describe_nvidia_machine() -> None:
    machine = replace(recorded_machine("nvidia-rtx4070-cuda"), bandwidth_bytes_per_s=38.2e9)
    assert describe(machine) == [
        "31.3 GB of memory, 24.9 GB free right now.",
        "Processor: AMD Ryzen 7 5800X 8-Core Processor, 8 cores (16 threads), AVX2.",
        "Graphics: NVIDIA GeForce RTX 4070 with 12 GB (this version of Hearth can use it).",
        "Memory speed: about 38 GB/s.",
    ]


def test_describe_apple_machine() -> None:
    assert describe(recorded_machine("apple-m2-metal")) == [
        "16 GB of memory, 9.1 GB free right now.",
        "Processor: Apple M2, 8 cores, NEON, DotProd, I8MM.",
        "Graphics: Apple M2, which shares the computer's 16 GB of memory; up to 10.7 GB of it can hold a model "
        "(this version of Hearth can use it).",
        "Memory speed: not measured yet.",
    ]


def test_describe_can_leave_out_the_memory_speed() -> None:
    machine = recorded_machine("apple-m2-metal")
    assert describe(machine, memory_speed=False) == describe(machine)[:-1]


def test_describe_warns_about_a_processor_without_avx2() -> None:
    machine = replace(recorded_machine("nvidia-rtx4070-cuda"), cpu_features=("SSE3", "SSSE3", "AVX"), gpus=(),
                      offload_backends=(), bandwidth_bytes_per_s=6.4e9)
    sentences = describe(machine)
    assert sentences[1] == "Processor: AMD Ryzen 7 5800X 8-Core Processor, 8 cores (16 threads)."
    assert "This processor lacks AVX2, so models will run slowly on it." in sentences
    assert sentences[-1] == "Memory speed: about 6.4 GB/s."


def _gpu_names(gpus: Sequence[Gpu]) -> list[str]:
    return [gpu.name for gpu in gpus]


def test_usable_gpus_come_first() -> None:
    machine = recorded_machine(
        "nvidia-rtx4070-cuda",
        nvml=[*recording("nvidia-rtx4070-cuda")["probes"]["nvml"],
              {"name": "NVIDIA GeForce RTX 4090", "memory_total": 24 * GIB, "memory_free": 23 * GIB}],
    )
    assert _gpu_names(machine.gpus) == ["NVIDIA GeForce RTX 4070", "NVIDIA GeForce RTX 4090"]
    assert [gpu.usable for gpu in machine.gpus] == [True, False]
