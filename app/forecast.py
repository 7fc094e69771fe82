"""Will this model run here, with these settings, and how fast: memory and speed before loading.

Two tiers, as the study in ``shared/notes/memory-forecast.md`` recommends:

- **analytic**: llama.cpp's allocation rules as formulas over the GGUF header (weights per layer from the
  tensor table, KV cache per layer, compute and output buffers, fixed overheads). Instant, runs anywhere.
- **exact**: a dry run of the installed llama.cpp (``app.dry_run``) replaces the KV and compute figures
  with the sizes llama.cpp itself computed for this build and device, and proves the architecture loads.

The forecast is for one ``LoadPlan``, the same settings the engine will load with. Verdicts compare the
need with the memory free right now and the total, keeping reserves for the system and other apps.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

from app.dry_run import DryRun
from app.gguf_facts import ModelFacts
from app.hardware import Machine
from app.load_plan import KV_BYTES_PER_ELEMENT, LoadPlan
from app.units import format_bytes

MIB = 1024 * 1024
GIB = 1024 * MIB
CELL_PADDING = 256
PROCESS_BASELINE = 60 * MIB  # Python, numpy and llama_cpp in the worker before any model; calibrated later
GPU_CONTEXT_OVERHEAD = 300 * MIB  # CUDA/ROCm context and BLAS workspace per device (none on Metal)
WORDS_PER_TOKEN = 0.75
EFFICIENCY = (0.45, 0.85)  # share of measured read bandwidth llama.cpp reaches when generating
LAYER_OVERHEAD_S = (0.3e-3, 0.1e-3)  # per layer and token on a CPU, beyond reading weights (study §8)

# Which layers use a sliding window, when the file does not say: llama.cpp's set_swa_pattern(period) per
# architecture; the last layer of each period is global.
SWA_PERIOD = {"gemma2": 2, "gemma3": 6, "cohere2": 4, "gpt-oss": 2, "llama4": 4, "exaone4": 4}
# Architectures whose memory rules the tests check against llama.cpp.
TESTED_ARCHITECTURES = {"llama", "qwen2", "qwen3", "qwen3moe", "gemma2", "gemma3", "mistral", "phi3"}

REPACK_TYPES_X86 = {"Q4_0", "Q4_K", "IQ4_NL", "MXFP4"}
REPACK_TYPES_ARM = {"Q4_0", "Q4_K", "Q5_K", "Q6_K", "IQ4_NL", "Q8_0", "MXFP4"}


class Verdict(enum.Enum):
    RUNS_WELL = "Runs well"
    RUNS_SLOWLY = "Runs, but slowly"
    TIGHT = "Tight: close other apps first"
    TOO_LARGE = "Too large for this computer"
    UNSUPPORTED = "This version of Hearth cannot run this model"


@dataclass(frozen=True)
class Memory:
    """Bytes, split the way the window shows them."""

    weights_ram: int
    weights_vram: int
    kv_ram: int
    kv_vram: int
    compute_ram: int
    compute_vram: int
    output: int
    overhead_ram: int
    overhead_vram: int

    @property
    def ram_bytes(self) -> int:
        return self.weights_ram + self.kv_ram + self.compute_ram + self.output + self.overhead_ram

    @property
    def vram_bytes(self) -> int:
        return self.weights_vram + self.kv_vram + self.compute_vram + self.overhead_vram

    def to_dict(self) -> dict[str, int]:
        return {
            "weights_ram": self.weights_ram, "weights_vram": self.weights_vram, "kv_ram": self.kv_ram,
            "kv_vram": self.kv_vram, "compute_ram": self.compute_ram, "compute_vram": self.compute_vram,
            "output": self.output, "overhead_ram": self.overhead_ram, "overhead_vram": self.overhead_vram,
            "ram_bytes": self.ram_bytes, "vram_bytes": self.vram_bytes,
        }


@dataclass(frozen=True)
class Speed:
    low: float  # tokens per second
    high: float

    def words(self) -> str:
        low, high = self.low * WORDS_PER_TOKEN, self.high * WORDS_PER_TOKEN
        if high < 1:
            return "less than one word per second"
        return f"about {_round_speed(low)}–{_round_speed(high)} words per second"


@dataclass(frozen=True)
class Forecast:
    plan: LoadPlan
    memory: Memory
    confidence: str  # "exact", "analytic" or "unknown architecture"
    verdict: Verdict
    reason: str
    max_context: int
    max_gpu_layers: int
    speed: Speed | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "plan": self.plan.to_dict(), **self.memory.to_dict(), "breakdown": self.memory.to_dict(),
            "confidence": self.confidence, "verdict": self.verdict.value, "verdict_code": self.verdict.name,
            "reason": self.reason, "max_context": self.max_context, "max_gpu_layers": self.max_gpu_layers,
            "tokens_per_s": [self.speed.low, self.speed.high] if self.speed else None,
        }


# --- the parts --------------------------------------------------------------------------------------------


def pad(n: int, to: int = CELL_PADDING) -> int:
    return max(to, math.ceil(n / to) * to)


def sliding_layers(facts: ModelFacts) -> list[bool]:
    layers = facts.block_count or 0
    if not facts.sliding_window:
        return [False] * layers
    if facts.sliding_window_pattern:
        pattern = list(facts.sliding_window_pattern)
        return (pattern * math.ceil(layers / len(pattern)))[:layers]
    period = facts.sliding_window_period or SWA_PERIOD.get(facts.architecture)
    if period is None:
        return [False] * layers  # unknown layout: counted as full attention, an over-estimate
    return [il % period < period - 1 for il in range(layers)]


def kv_bytes_per_layer(facts: ModelFacts, plan: LoadPlan) -> list[int]:
    cells = pad(plan.context_length)
    ubatch = min(plan.ubatch, plan.batch)
    swa_cells = cells if plan.swa_full or not facts.sliding_window else \
        pad(min(cells, facts.sliding_window + ubatch))
    per_element = KV_BYTES_PER_ELEMENT[plan.kv_type]
    heads = facts.head_count_kv_per_layer or (facts.head_count_kv or facts.head_count or 1,) * (facts.block_count or 0)
    key = facts.key_length or 0
    value = 0 if facts.kv_lora_rank else (facts.value_length or 0)
    result = []
    for il, sliding in enumerate(sliding_layers(facts)):
        n_kv = heads[il] if il < len(heads) else heads[-1]
        if n_kv == 0:
            result.append(0)
            continue
        layer_cells = swa_cells if sliding else cells
        result.append(round(layer_cells * n_kv * (key + value) * per_element))
    return result


def compute_bytes(facts: ModelFacts, plan: LoadPlan) -> int:
    """llama.cpp's reserved graph buffer: the closed forms of the study (§2.5), within a few percent."""
    cells = pad(plan.context_length)
    n_ub = min(plan.ubatch, plan.batch, cells)
    n_embd = facts.embedding_length or 0
    n_vocab = facts.vocab_size or 0
    n_head = facts.head_count or 1
    n_ff = facts.feed_forward_length or 4 * n_embd
    if plan.flash_attention:
        size = 2 * cells * n_ub + 4 * n_ub * max(n_vocab + n_embd, 3 * n_ff + 4 * n_embd)
    else:
        size = max(4 * n_ub * (1 + 4 * n_embd + cells * (1 + n_head)), 4 * n_ub * (n_embd + n_vocab))
    if facts.expert_count:
        size += 4 * n_ub * (facts.expert_count + n_embd * (facts.expert_used_count or 1))
    return size


def cpu_work_bytes(facts: ModelFacts, plan: LoadPlan) -> int:
    """The CPU backend's unlogged work buffer, large only without flash attention."""
    if plan.flash_attention:
        return 0
    return 2 * pad(plan.context_length) * min(plan.ubatch, plan.batch) * (facts.head_count or 1)


def repack_types(features: Iterable[str]) -> set[str]:
    names = {f.upper() for f in features}
    if "AVX2" in names:
        return REPACK_TYPES_X86 | ({"Q2_K"} if any(n.startswith("AVX512") for n in names) else set())
    if "NEON" in names and ({"DOTPROD", "I8MM"} & names):
        return REPACK_TYPES_ARM
    return set()


def repacked_bytes(facts: ModelFacts, gpu_layers: int, machine: Machine) -> int:
    """Bytes of CPU-side matrices llama.cpp copies into its repacked layout (kept beside a mapped file)."""
    if "REPACK" not in machine.cpu_build_options:
        return 0
    kinds = repack_types(machine.cpu_features)
    if not kinds:
        return 0
    first_gpu = _first_gpu_layer(facts, gpu_layers)
    total = 0
    for tensor in facts.tensors:
        if tensor.type_name not in kinds or len(tensor.shape) != 2 or not tensor.name.startswith("blk."):
            continue
        layer = int(tensor.name.split(".")[1])
        if layer < first_gpu:
            total += tensor.n_bytes
    return total


def _first_gpu_layer(facts: ModelFacts, gpu_layers: int) -> int:
    layers = facts.block_count or 0
    offloaded = layers + 1 if gpu_layers < 0 else min(gpu_layers, layers + 1)
    return max(layers + 1 - offloaded, 0)


def weights_split(facts: ModelFacts, gpu_layers: int) -> tuple[int, int]:
    """(CPU, GPU) weight bytes under llama.cpp's placement: the output layer goes first, then the last blocks;
    the token embedding always stays on the CPU (a tied output matrix is duplicated onto the GPU)."""
    layers = facts.block_count or 0
    offloaded = 0 if gpu_layers == 0 else (layers + 1 if gpu_layers < 0 else min(gpu_layers, layers + 1))
    first_gpu = layers + 1 - offloaded
    cpu = facts.input_bytes + sum(b for il, b in enumerate(facts.layer_bytes) if il < first_gpu)
    gpu = sum(b for il, b in enumerate(facts.layer_bytes) if il >= first_gpu)
    tied_copy = _token_embedding_bytes(facts) if facts.tied_embeddings else 0
    if offloaded >= 1:
        gpu += facts.output_bytes + tied_copy
    else:
        cpu += facts.output_bytes
    return cpu, gpu


def _token_embedding_bytes(facts: ModelFacts) -> int:
    return sum(t.n_bytes for t in facts.tensors if t.name.startswith("token_embd."))


def bytes_per_token(facts: ModelFacts, plan: LoadPlan) -> int:
    """What generating one token reads: every block weight in use, the output matrix, and the KV cache at
    half the context (a typical point in a conversation)."""
    blocks = 0
    for tensor in facts.tensors:
        if not tensor.name.startswith("blk."):
            continue
        if "_exps" in tensor.name and facts.expert_count:
            blocks += tensor.n_bytes * (facts.expert_used_count or 1) // facts.expert_count
        else:
            blocks += tensor.n_bytes
    head = _token_embedding_bytes(facts) if facts.tied_embeddings else facts.output_bytes
    kv_half = sum(kv_bytes_per_layer(facts, replace(plan, context_length=max(plan.context_length // 2, 1))))
    return blocks + head + kv_half


# --- the forecast -----------------------------------------------------------------------------------------


def memory_for(facts: ModelFacts, plan: LoadPlan, machine: Machine, dry: DryRun | None = None,
               baseline: int = PROCESS_BASELINE) -> Memory:
    gpu_layers = plan.gpu_layers if machine.offload_backends else 0
    weights_cpu, weights_gpu = weights_split(facts, gpu_layers)
    kv = kv_bytes_per_layer(facts, plan)
    first_gpu = _first_gpu_layer(facts, gpu_layers) if gpu_layers else len(kv)
    kv_cpu, kv_gpu = sum(kv[:first_gpu]), sum(kv[first_gpu:])
    compute = compute_bytes(facts, plan)
    if dry is not None and dry.ok:
        if dry.buffers.kv_total and kv_cpu + kv_gpu:
            scale = dry.buffers.kv_total / (kv_cpu + kv_gpu)
            kv_cpu, kv_gpu = round(kv_cpu * scale), dry.buffers.kv_total - round(kv_cpu * scale)
        if dry.buffers.compute:
            compute = dry.buffers.compute_total
    repacked = repacked_bytes(facts, gpu_layers, machine) \
        if plan.use_mmap and plan.extra_buffers else 0
    misc = 8 * MIB + 150 * (facts.vocab_size or 0)
    on_gpu = gpu_layers != 0 and bool(machine.usable_gpus)
    unified = on_gpu and machine.usable_gpus[0].unified
    return Memory(
        weights_ram=weights_cpu + repacked, weights_vram=weights_gpu,
        kv_ram=kv_cpu, kv_vram=kv_gpu,
        compute_ram=(0 if on_gpu else compute) + cpu_work_bytes(facts, plan), compute_vram=compute if on_gpu else 0,
        output=4 * (facts.vocab_size or 0),
        overhead_ram=baseline + misc,
        overhead_vram=(0 if unified else GPU_CONTEXT_OVERHEAD) if on_gpu else 0,
    )


def decide_plan(facts: ModelFacts, machine: Machine, *, context_length: int | None = None,
                gpu_layers: int | None = None, kv_type: str = "f16", threads: int | None = None) -> LoadPlan:
    """The settings Hearth loads with: explicit context, flash attention, no full-size sliding-window cache,
    and mmap only where repacked weights would not double the resident memory."""
    trained = facts.context_length or 4096
    context = min(context_length or min(trained, 4096), trained)
    plan = LoadPlan(context_length=context, gpu_layers=0, kv_type=kv_type, threads=threads)
    if gpu_layers is None:
        gpu_layers = fitting_gpu_layers(facts, machine, plan)
    elif not machine.offload_backends:
        gpu_layers = 0
    extra_buffers = not any(f.upper().startswith("AMX") for f in machine.cpu_features)
    cpu_weights, _ = weights_split(facts, gpu_layers)
    repacked = repacked_bytes(facts, gpu_layers, machine) if extra_buffers else 0
    use_mmap = not (cpu_weights and repacked > 0.1 * cpu_weights)
    return replace(plan, gpu_layers=gpu_layers, use_mmap=use_mmap, extra_buffers=extra_buffers)


def ram_budget(machine: Machine) -> tuple[int, int]:
    """(what may be used now, what may ever be used): reserves for the system and the apps already open."""
    reserve_now = max(GIB, machine.memory_total // 10)
    reserve_system = max(2 * GIB, machine.memory_total * 15 // 100)
    return machine.memory_available - reserve_now, machine.memory_total - reserve_system


def vram_budget(machine: Machine) -> int:
    if not machine.usable_gpus or not machine.offload_backends:
        return 0
    gpu = machine.usable_gpus[0]
    margin = max(512 * MIB, gpu.memory_total // 20)
    return gpu.memory_free - margin


def fitting_gpu_layers(facts: ModelFacts, machine: Machine, plan: LoadPlan) -> int:
    budget = vram_budget(machine)
    if budget <= 0:
        return 0
    for layers in range((facts.block_count or 0) + 1, 0, -1):
        if memory_for(facts, replace(plan, gpu_layers=layers), machine).vram_bytes <= budget:
            return layers
    return 0


def largest_context(facts: ModelFacts, machine: Machine, plan: LoadPlan) -> int:
    """The longest context, in steps of 256 up to the trained length, that fits without being tight."""
    trained = facts.context_length or plan.context_length
    now, _ = ram_budget(machine)
    vram = vram_budget(machine)

    def fits(context: int) -> bool:
        memory = memory_for(facts, replace(plan, context_length=context), machine)
        return memory.ram_bytes <= now and (memory.vram_bytes == 0 or memory.vram_bytes <= vram)

    low, high = 0, max(trained // CELL_PADDING, 1)
    while low < high:
        middle = (low + high + 1) // 2
        if fits(middle * CELL_PADDING):
            low = middle
        else:
            high = middle - 1
    return min(low * CELL_PADDING, trained)


def expected_speed(facts: ModelFacts, plan: LoadPlan, machine: Machine,
                   measured_efficiency: float | None = None) -> Speed | None:
    bandwidth = machine.bandwidth_bytes_per_s
    if not bandwidth:
        return None
    per_token = bytes_per_token(facts, plan)
    if per_token <= 0:
        return None
    low_eff, high_eff = EFFICIENCY if measured_efficiency is None else \
        (measured_efficiency * 0.9, min(measured_efficiency * 1.1, 1.0))
    layers = facts.block_count or 0
    slow = per_token / (low_eff * bandwidth) + layers * LAYER_OVERHEAD_S[0]
    fast = per_token / (high_eff * bandwidth) + layers * LAYER_OVERHEAD_S[1]
    return Speed(low=1 / slow, high=1 / fast)


def forecast(facts: ModelFacts, machine: Machine, plan: LoadPlan, dry: DryRun | None = None,
             measured_efficiency: float | None = None, baseline: int = PROCESS_BASELINE) -> Forecast:
    """Args:
        baseline: the engine worker's resident memory before any model (``Ready.rss_bytes``) when known.
        measured_efficiency: the share of bandwidth earlier generations on this machine reached.
    """
    memory = memory_for(facts, plan, machine, dry, baseline)
    confidence = "exact" if dry is not None and dry.ok else (
        "analytic" if facts.architecture in TESTED_ARCHITECTURES else "unknown architecture")
    max_layers = fitting_gpu_layers(facts, machine, plan)
    speed = expected_speed(facts, plan, machine, measured_efficiency)
    verdict, reason = _verdict(facts, machine, plan, memory, speed, dry)
    return Forecast(plan=plan, memory=memory, confidence=confidence, verdict=verdict, reason=reason,
                    max_context=largest_context(facts, machine, plan), max_gpu_layers=max_layers, speed=speed)


def _verdict(facts: ModelFacts, machine: Machine, plan: LoadPlan, memory: Memory, speed: Speed | None,
             dry: DryRun | None) -> tuple[Verdict, str]:
    if dry is not None and not dry.ok:
        return Verdict.UNSUPPORTED, dry.message or "llama.cpp could not read this model."
    need = memory.ram_bytes
    now, ever = ram_budget(machine)
    if need > ever or (memory.vram_bytes and memory.vram_bytes > vram_budget(machine) > 0
                       and plan.gpu_layers > fitting_gpu_layers(facts, machine, plan)):
        return Verdict.TOO_LARGE, (f"It needs {format_bytes(need)} of memory; this computer has "
                                   f"{format_bytes(machine.memory_total)} in all.")
    if need > now:
        return Verdict.TIGHT, (f"It needs {format_bytes(need)} and {format_bytes(machine.memory_available)} is "
                               "free right now.")
    layers = (facts.block_count or 0) + 1
    if 0 < plan.gpu_layers < layers and machine.offload_backends:
        return Verdict.RUNS_SLOWLY, (f"Only {plan.gpu_layers} of its {layers} layers fit on the graphics card; "
                                     "the rest run on the processor.")
    if speed is not None and speed.high * WORDS_PER_TOKEN < 3:
        return Verdict.RUNS_SLOWLY, f"This computer's memory is slow for a model this size: {speed.words()}."
    where = "on the graphics card" if plan.gpu_layers and machine.offload_backends else "on the processor"
    return Verdict.RUNS_WELL, f"It fits in memory and runs {where}."


def _round_speed(value: float) -> str:
    if value >= 100:
        return f"{round(value, -1):.0f}"
    return f"{value:.0f}" if value >= 10 else f"{value:.1f}"


def size_verdict(file_size: int, machine: Machine) -> Verdict:
    """A first answer from the file size alone, for lists of files not yet read: weights plus a typical
    context and the engine; the full forecast replaces it once the header is read."""
    need = file_size + file_size // 10 + PROCESS_BASELINE + 256 * MIB
    now, ever = ram_budget(machine)
    vram = vram_budget(machine)
    if vram > 0 and need - PROCESS_BASELINE <= vram:
        return Verdict.RUNS_WELL
    if need > ever:
        return Verdict.TOO_LARGE
    return Verdict.TIGHT if need > now else Verdict.RUNS_WELL
