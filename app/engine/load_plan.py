"""The settings a model is loaded with: decided once, then used by the forecast and by the engine alike.

llama-cpp-python's defaults are poor for a desktop app (no flash attention, a full-size cache for
sliding-window layers, the context of the file's training length). Hearth always passes every one of
these explicitly, and forecasts memory for exactly the plan it will load with.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

# The speed probe's way of measuring (``engine/tuning.py``). Settings measured by an older probe are measured
# again: version 2 also reads each setting with the context nearly full; version 3 does so for a model as slow
# as a 1B-class one on two cores too, which version 2 judged after a short prompt only; version 4 runs a model
# still too slow for that without flash attention when every layer attends to the whole conversation.
PROBE_VERSION = 4
KV_TYPES = {"f16": 1, "q8_0": 8, "q4_0": 2}  # name -> ggml type id
KV_BYTES_PER_ELEMENT = {"f16": 2.0, "q8_0": 34 / 32, "q4_0": 18 / 32}
# Without flash attention the compute buffer grows with the context: beyond this, only the plan with it is
# forecast to fit, so the probe does not offer the other.
FLASH_ATTENTION_OPTIONAL_UP_TO = 8192
# Micro-batch without flash attention on the processor. Its compute buffer holds every head's scores for a
# micro-batch against the whole cache (550 MiB for a 1B-class model at 8,192 tokens with 512), and smaller
# micro-batches cost nothing there: a 2,048-token prompt read at 69, 71 and 71 tokens/s with 512, 256 and 128
# (1B-class shape) and 232, 240 and 246 (SmolLM2-135M) on two cores.
NO_FLASH_UBATCH = 128


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
    threads: int | None = None  # generation; None: llama-cpp-python's default until tuned
    batch_threads: int | None = None  # prompt processing; None: the same as ``threads``
    # Measure the fastest threads and flash attention after loading (``engine/tuning.py``): the first load
    # of a model with a plan; later loads take the measured choice from the load records (``Tuning``).
    tune: bool = False
    # Rows of logits one micro-batch may ask for. llama.cpp reserves room for ``n_batch`` rows by default
    # (4 x vocabulary x 512 bytes: 512 MiB for a 262k vocabulary), but chat and tasks only ever read the last
    # token's logits, so Hearth reserves one row. A batch asking for more aborts llama.cpp: nothing in Hearth
    # sets ``logits_all`` or asks for embeddings.
    max_outputs: int = 1
    # llama.cpp's extra CPU weight layouts (repacking, AMX). Off on CPUs with AMX: its quantized matrix code
    # crashes there (ggml-org/llama.cpp#20824, seen on this project's machines with Q8_0 and Q4_0).
    extra_buffers: bool = True
    # Write prompts in ChatML even when the file has a chat template: the person chose it after the model's own
    # template failed (``protocol.UseChatML``).
    chatml: bool = False
    # Bytes the forecast expects the load to allocate beyond the mapped model file and the worker's own baseline
    # (``forecast.estimate.allocated_bytes``); the worker's memory cap is this plus a margin (``engine/memory.py``).
    # 0: no forecast, no cap (plans made by hand, as in tests and benchmarks).
    memory_forecast: int = 0
    # The probe keeps flash attention on: without it, the compute buffer would not fit the memory free.
    keep_flash_attention: bool = False

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
            "n_threads_batch": self.batch_threads or self.threads,
        }

    def with_flash_attention(self, on: bool) -> LoadPlan:
        """This plan with flash attention on or off; off on the processor, with ``NO_FLASH_UBATCH``."""
        ubatch = self.ubatch if on or self.gpu_layers else min(self.ubatch, NO_FLASH_UBATCH)
        return dataclasses.replace(self, flash_attention=on, ubatch=ubatch)

    @property
    def flash_attention_optional(self) -> bool:
        """Whether the speed probe may turn flash attention off: not past ``FLASH_ATTENTION_OPTIONAL_UP_TO``, nor
        where the forecast found the plan without it too large for the memory free (``keep_flash_attention``)."""
        return self.context_length <= FLASH_ATTENTION_OPTIONAL_UP_TO and not self.keep_flash_attention

    def tuning_key(self) -> dict[str, Any]:
        """What a measured ``Tuning`` depends on: another context, cache type, placement or probe measures
        again."""
        return {"probe": PROBE_VERSION, "context_length": self.context_length, "kv_type": self.kv_type,
                "gpu_layers": self.gpu_layers, "use_mmap": self.use_mmap, "extra_buffers": self.extra_buffers}


@dataclass(frozen=True)
class Tuning:
    """The fastest settings measured for one model and plan on this machine (``engine/tuning.py``)."""

    threads: int
    flash_attention: bool
    tokens_per_s: float
    prompt_tokens_per_s: float
    batch_threads: int | None = None
    measured: dict[str, float] = dataclasses.field(default_factory=dict)  # "fa/2": tokens per second, ...
    busy: bool = False  # other programs used the processor meanwhile: its thread count is not trusted or kept

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Tuning | None:
        try:
            return cls(threads=int(data["threads"]), flash_attention=bool(data["flash_attention"]),
                       tokens_per_s=float(data["tokens_per_s"]), prompt_tokens_per_s=float(data["prompt_tokens_per_s"]),
                       batch_threads=int(data["batch_threads"]) if data.get("batch_threads") else None,
                       measured={str(k): float(v) for k, v in dict(data.get("measured") or {}).items()},
                       busy=bool(data.get("busy", False)))
        except (KeyError, TypeError, ValueError):
            return None

    def applied_to(self, plan: LoadPlan) -> LoadPlan:
        plan = dataclasses.replace(plan.with_flash_attention(self.flash_attention), tune=False)
        if self.busy:
            return plan
        return dataclasses.replace(plan, threads=self.threads, batch_threads=self.batch_threads)

