"""This computer's facts as the forecast and the window use them: ``Machine`` and its ``Gpu``s."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

GIB = 2**30


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

    @property
    def card(self) -> str | None:
        """The graphics card a load puts layers on (the first usable one), by its name; None: none here."""
        return self.usable_gpus[0].name if self.usable_gpus else None

