"""The settings a model is loaded with: decided once, then used by the forecast and by the engine alike.

llama-cpp-python's defaults are poor for a desktop app (no flash attention, a full-size cache for
sliding-window layers, the context of the file's training length). Hearth always passes every one of
these explicitly, and forecasts memory for exactly the plan it will load with.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

KV_TYPES = {"f16": 1, "q8_0": 8, "q4_0": 2}  # name -> ggml type id
KV_BYTES_PER_ELEMENT = {"f16": 2.0, "q8_0": 34 / 32, "q4_0": 18 / 32}


@dataclass(frozen=True)
class LoadPlan:
    context_length: int = 4096
    gpu_layers: int = 0
    kv_type: str = "f16"
    flash_attention: bool = True
    swa_full: bool = False
    use_mmap: bool = True
    batch: int = 512
    ubatch: int = 512
    threads: int | None = None
    # llama.cpp's extra CPU weight layouts (repacking, AMX). Off on CPUs with AMX: its quantized matrix code
    # crashes there (ggml-org/llama.cpp#20824, seen on this project's machines with Q8_0 and Q4_0).
    extra_buffers: bool = True

    def __post_init__(self) -> None:
        if self.kv_type not in KV_TYPES:
            raise ValueError(f"unknown KV cache type {self.kv_type!r}; expected one of {sorted(KV_TYPES)}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LoadPlan:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})

    def llama_kwargs(self) -> dict[str, Any]:
        """Arguments for ``llama_cpp.Llama`` that carry out this plan."""
        kv = KV_TYPES[self.kv_type]
        return {
            "n_ctx": self.context_length, "n_gpu_layers": self.gpu_layers, "n_batch": self.batch,
            "n_ubatch": self.ubatch, "flash_attn": self.flash_attention, "swa_full": self.swa_full,
            "use_mmap": self.use_mmap, "type_k": kv, "type_v": kv, "n_threads": self.threads,
        }


def cpu_has_amx(system_info: str | None = None) -> bool:
    """Whether llama.cpp's CPU backend uses AMX here (it reports ``AMX_INT8 = 1`` in its system info)."""
    if system_info is None:
        import llama_cpp

        system_info = llama_cpp.llama_print_system_info().decode("utf-8", "replace")
    return "AMX_INT8 = 1" in system_info
