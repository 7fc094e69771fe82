"""Will this model run here, with these settings, and how fast: memory and speed before loading.

Two tiers, as the study in ``shared/notes/memory-forecast.md`` recommends:

- **analytic**: llama.cpp's allocation rules as formulas over the GGUF header (weights per layer from the
  tensor table, KV cache per layer, compute and output buffers, the engine's own overhead). Instant, runs
  anywhere.
- **exact**: a dry run of the installed llama.cpp (``app.forecast.dry_run``) replaces the KV and compute figures
  with the sizes llama.cpp itself computed for this build and device, and proves the architecture loads.

Memory is forecast as two figures. **Resident** is what the operating system really gives the engine worker
at its peak: mapped model pages, the KV cache (zeroed at creation, so resident at once), the compute buffer
as a full micro-batch touches it, the engine's own tables. **Reserved** adds what is allocated but never
touched: logits rows beyond the one Hearth reads. Linux and macOS never back untouched pages, so the verdict,
"estimated X, used Y" and the longest context that fits all use the resident figure. By default llama.cpp and
llama-cpp-python reserve logits for a whole micro-batch (512 MiB each for a 262k vocabulary), which Windows
would count against its commit limit; Hearth reserves one row (``LoadPlan.max_outputs``, and the worker's
``_shrink_logits_array``), so the two figures agree within a few megabytes on every platform, and details
mention the reserved figure only where a plan makes them differ.

The forecast is for one ``LoadPlan``, the same settings the engine will load with. Verdicts compare the
need with the memory free right now and the total, keeping reserves for the system and other apps.
"""

from __future__ import annotations

import enum
import math
import sys
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

from app.engine.load_plan import KV_BYTES_PER_ELEMENT, LoadPlan, Tuning
from app.engine.saved_states import memory_budget_for
from app.forecast.dry_run import DryRun
from app.gguf.facts import ModelFacts
from app.hardware.machine import Machine
from app.words import format_bytes, installed_memory

MIB = 1024 * 1024
GIB = 1024 * MIB
CELL_PADDING = 256
# The engine worker before any model (Python, numpy and llama_cpp imported), until this machine's own worker
# has been measured (``Ready.rss_bytes``, kept by ``hardware.cache.engine_baseline``). Linux: measured here, 48 MiB
# in a virtualenv; the others are the Linux figure plus a margin until measured on them.
PROCESS_BASELINE = {"linux": 50 * MIB, "darwin": 60 * MIB, "win32": 60 * MIB}.get(sys.platform, 60 * MIB)
# What llama.cpp keeps beside its logged buffers once a model is loaded, measured on Linux as the worker's peak
# less its baseline and every logged buffer, over generated vocabularies of 32k-262k tokens of both tokenizer
# families and real models (benchmarks/estimator_accuracy.py): the token table and its lookup map, the BPE merge
# ranks, the per-layer tensor and graph metadata, the sampler's candidate array.
RUNTIME_BASE = 8 * MIB
RUNTIME_PER_TOKEN = 160
RUNTIME_PER_MERGE = 130
RUNTIME_PER_LAYER = 64 * 1024
GPU_CONTEXT_OVERHEAD = 300 * MIB  # CUDA/ROCm context and BLAS workspace per device (none on Metal)
WORDS_PER_TOKEN = 0.75
SLOW_WORDS_PER_S = 3.0  # a model whose fastest forecast is below this "Runs, but slowly"
EFFICIENCY = (0.45, 0.85)  # share of measured read bandwidth llama.cpp reaches when generating
LAYER_OVERHEAD_S = (0.3e-3, 0.1e-3)  # per layer and token on a CPU, beyond reading weights (study §8)

# Which layers use a sliding window, when the file does not say: llama.cpp's set_swa_pattern(period) per
# architecture; the last layer of each period is global.
SWA_PERIOD = {"gemma2": 2, "gemma3": 6, "cohere2": 4, "gpt-oss": 2, "llama4": 4, "exaone4": 4}
# Architectures whose memory rules the tests check against llama.cpp.
TESTED_ARCHITECTURES = {"llama", "qwen2", "qwen3", "qwen3moe", "gemma2", "gemma3", "mistral", "phi3"}

REPACK_TYPES_X86 = {"Q4_0", "Q4_K", "IQ4_NL", "MXFP4"}
REPACK_TYPES_ARM = {"Q4_0", "Q4_K", "Q5_K", "Q6_K", "IQ4_NL", "Q8_0", "MXFP4"}


# The parts of a model's memory in the words people read, everywhere they are said (the Models page, the load
# check, ``hearth inspect``); the keys are the names of the figures in ``Memory`` and in ``--json``.
MEMORY_PARTS = {
    "weights": "the model",  # its weights, read from the file
    "kv": "conversation memory",  # the KV cache: what the model holds of the conversation so far
    "compute": "working memory",  # llama.cpp's compute buffers
    "overhead": "the engine itself",  # the worker process, llama.cpp's tables and the output row
}


class Verdict(enum.Enum):
    RUNS_WELL = "Runs well"
    RUNS_SLOWLY = "Runs, but slowly"
    TIGHT = "Tight: close other apps first"
    TOO_LARGE = "Too large for this computer"
    UNSUPPORTED = "This version of Hearth cannot run this model"


class Confidence(enum.Enum):
    EXACT = "exact"  # llama.cpp sized this load in a dry run
    ANALYTIC = "analytic"  # formulas, for an architecture the tests check
    UNKNOWN_ARCHITECTURE = "unknown architecture"  # formulas, counting every layer as full attention

    @property
    def words(self) -> str:
        """How the figures were made, for people: the value is the name scripts read (``hearth inspect --json``)."""
        return {
            Confidence.EXACT: "Memory sized by llama.cpp itself, for these settings on this computer.",
            Confidence.ANALYTIC: "Memory worked out from the model file, by llama.cpp's rules.",
            Confidence.UNKNOWN_ARCHITECTURE: "Memory worked out from the model file, for a kind of model Hearth has "
                                             "not been checked with: take it as a rough guide.",
        }[self]


@dataclass(frozen=True)
class Memory:
    """Bytes, split the way the window shows them. ``ram_bytes`` is the resident peak while a conversation is
    answered ("estimated X, used Y"); the verdict adds the saved states (``ram_with_saved_states``).
    ``untouched_ram`` is allocated but never written, so only ``reserved_ram_bytes`` counts it."""

    weights_ram: int
    weights_vram: int
    kv_ram: int
    kv_vram: int
    compute_ram: int
    compute_vram: int
    output: int
    overhead_ram: int
    overhead_vram: int
    untouched_ram: int = 0
    # Other conversations' caches the worker keeps ready to continue (``engine/saved_states.py``): counted in the
    # verdict, not in ``ram_bytes``, the peak while one conversation is answered.
    saved_states: int = 0

    @property
    def ram_bytes(self) -> int:
        return self.weights_ram + self.kv_ram + self.compute_ram + self.output + self.overhead_ram

    @property
    def reserved_ram_bytes(self) -> int:
        return self.ram_bytes + self.untouched_ram

    @property
    def ram_with_saved_states(self) -> int:
        return self.ram_bytes + self.saved_states

    @property
    def vram_bytes(self) -> int:
        return self.weights_vram + self.kv_vram + self.compute_vram + self.overhead_vram

    def breakdown_words(self) -> str:
        """The split people read, the same in the window and the terminal, in ``MEMORY_PARTS``' words."""
        parts = {"weights": self.weights_ram + self.weights_vram, "kv": self.kv_ram + self.kv_vram,
                 "compute": self.compute_ram + self.compute_vram,
                 "overhead": self.overhead_ram + self.overhead_vram + self.output}
        return ", ".join(f"{MEMORY_PARTS[part]} {format_bytes(size)}" for part, size in parts.items())

    def saved_states_words(self) -> str:
        if not self.saved_states:
            return ""
        return f"Up to {format_bytes(self.saved_states)} more keeps your other conversations ready to continue."

    def reserved_words(self) -> str:
        """Said only where it differs from what is used: reserving just what is read, Hearth keeps the two
        within a few megabytes."""
        if self.untouched_ram < max(self.ram_bytes // 20, 16 * MIB):
            return ""
        return (f"The engine reserves {format_bytes(self.reserved_ram_bytes)}; "
                f"{format_bytes(self.untouched_ram)} of that is never written, so the operating system never "
                "provides it, and the verdict counts what is really used.")

    def to_dict(self) -> dict[str, int]:
        return {
            "weights_ram": self.weights_ram, "weights_vram": self.weights_vram, "kv_ram": self.kv_ram,
            "kv_vram": self.kv_vram, "compute_ram": self.compute_ram, "compute_vram": self.compute_vram,
            "output": self.output, "overhead_ram": self.overhead_ram, "overhead_vram": self.overhead_vram,
            "untouched_ram": self.untouched_ram, "saved_states": self.saved_states, "ram_bytes": self.ram_bytes,
            "reserved_ram_bytes": self.reserved_ram_bytes, "vram_bytes": self.vram_bytes,
        }


@dataclass(frozen=True)
class Speed:
    low: float  # tokens per second
    high: float
    measured: bool = False  # from this model's own answers on this machine, not from memory speed alone
    prompt_tokens_per_s: float | None = None  # measured when the model was first loaded here

    def words(self) -> str:
        low, high = self.low * WORDS_PER_TOKEN, self.high * WORDS_PER_TOKEN
        if high < 1:
            return "less than one word per second"
        return f"about {_round_speed(low)}–{_round_speed(high)} words per second"


@dataclass(frozen=True)
class Forecast:
    plan: LoadPlan
    memory: Memory
    confidence: Confidence
    verdict: Verdict
    reason: str
    max_context: int
    max_gpu_layers: int
    speed: Speed | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "plan": self.plan.to_dict(), **self.memory.to_dict(), "breakdown": self.memory.to_dict(),
            "confidence": self.confidence.value, "verdict": self.verdict.value, "verdict_code": self.verdict.name,
            "reason": self.reason, "max_context": self.max_context, "max_gpu_layers": self.max_gpu_layers,
            "tokens_per_s": [self.speed.low, self.speed.high] if self.speed else None,
        }

    def basis_words(self) -> str:
        return self.confidence.words


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


def _logit_rows(plan: LoadPlan) -> int:
    """Rows of logits llama.cpp reserves per micro-batch: ``n_outputs_max``, at most the micro-batch."""
    n_ub = min(plan.ubatch, plan.batch)
    return min(plan.max_outputs or n_ub, n_ub)


def compute_bytes(facts: ModelFacts, plan: LoadPlan) -> int:
    """llama.cpp's reserved graph buffer: the closed forms of the study (§2.5), within a few percent, for
    ``_logit_rows`` rows of logits. A prompt of a full micro-batch touches all of it but the logits rows
    Hearth does not ask for."""
    cells = pad(plan.context_length)
    n_ub = min(plan.ubatch, plan.batch, cells)
    n_embd = facts.embedding_length or 0
    n_vocab = facts.vocab_size or 0
    n_head = facts.head_count or 1
    n_ff = facts.feed_forward_length or 4 * n_embd
    logits = 4 * n_vocab * min(_logit_rows(plan), n_ub)
    if plan.flash_attention:
        masks = 2 * cells * n_ub
        if facts.sliding_window and not plan.swa_full and any(sliding_layers(facts)):
            masks += 2 * pad(min(cells, facts.sliding_window + n_ub)) * n_ub
        size = masks + max(logits + 4 * n_ub * n_embd, 4 * n_ub * (3 * n_ff + 4 * n_embd))
    else:
        size = max(4 * n_ub * (1 + 4 * n_embd + cells * (1 + n_head)), logits + 4 * n_ub * n_embd)
    if facts.expert_count:
        size += 4 * n_ub * (facts.expert_count + n_embd * (facts.expert_used_count or 1))
    return size


def runtime_bytes(facts: ModelFacts) -> int:
    """The engine's own memory for this model beyond llama.cpp's buffers (see ``RUNTIME_BASE``)."""
    return (RUNTIME_BASE + RUNTIME_PER_TOKEN * (facts.vocab_size or 0) + RUNTIME_PER_MERGE * facts.merges_count
            + RUNTIME_PER_LAYER * (facts.block_count or 0))


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
               baseline: int | None = None) -> Memory:
    """Args:
        baseline: the engine worker's resident memory before any model (``Ready.rss_bytes``); by default the
            one last measured on this machine, else a typical one.
    """
    baseline = baseline or machine.engine_baseline_bytes or PROCESS_BASELINE
    gpu_layers = plan.gpu_layers if machine.offload_backends else 0
    weights_cpu, weights_gpu = weights_split(facts, gpu_layers)
    if plan.use_mmap and not gpu_layers:
        # The whole mapping is resident (Linux populates it at load; every page is read by the first prompt
        # elsewhere), the header's token table included.
        weights_cpu = max(weights_cpu, facts.file_size)
    kv = kv_bytes_per_layer(facts, plan)
    first_gpu = _first_gpu_layer(facts, gpu_layers) if gpu_layers else len(kv)
    kv_cpu, kv_gpu = sum(kv[:first_gpu]), sum(kv[first_gpu:])
    compute = compute_bytes(facts, plan)
    # Only the last token's logits are ever written, so a buffer reserved for more rows is touched as if it
    # had one; the rest is reserved but never resident.
    untouched_rows = compute - compute_bytes(facts, replace(plan, max_outputs=1))
    compute_host = 0  # with layers on a GPU: the part of the compute buffers kept in the computer's memory
    if dry is not None and dry.ok:
        if dry.buffers.kv_total and kv_cpu + kv_gpu:
            scale = dry.buffers.kv_total / (kv_cpu + kv_gpu)
            kv_cpu, kv_gpu = round(kv_cpu * scale), dry.buffers.kv_total - round(kv_cpu * scale)
        if dry.buffers.compute:
            compute = dry.buffers.compute_total
            if gpu_layers:  # the GPU's buffers on the card; its "_Host" ones (pinned) and the CPU's in memory
                compute_host = sum(size for name, size in dry.buffers.compute.items()
                                   if name.startswith("CPU") or name.endswith("_Host"))
    repacked = repacked_bytes(facts, gpu_layers, machine) \
        if plan.use_mmap and plan.extra_buffers else 0
    on_gpu = gpu_layers != 0 and bool(machine.usable_gpus)
    unified = on_gpu and machine.usable_gpus[0].unified
    # On a GPU the whole compute buffer is allocated device memory, touched or not. The binding's own logits
    # array, shrunk to one row by the worker (``_shrink_logits_array``), is never written either.
    untouched_compute = 0 if on_gpu else min(untouched_rows, compute)
    return Memory(
        weights_ram=weights_cpu + repacked, weights_vram=weights_gpu,
        kv_ram=kv_cpu, kv_vram=kv_gpu,
        compute_ram=(compute_host if on_gpu else compute - untouched_compute) + cpu_work_bytes(facts, plan),
        compute_vram=compute - compute_host if on_gpu else 0,
        output=4 * (facts.vocab_size or 0),
        overhead_ram=baseline + runtime_bytes(facts),
        overhead_vram=(0 if unified else GPU_CONTEXT_OVERHEAD) if on_gpu else 0,
        untouched_ram=untouched_compute + 4 * (facts.vocab_size or 0),
        saved_states=memory_budget_for(kv_cpu + kv_gpu),
    )


def decide_plan(facts: ModelFacts, machine: Machine, *, context_length: int | None = None,
                gpu_layers: int | None = None, kv_type: str = "f16", threads: int | None = None,
                tuning: Tuning | None = None, tune: bool = False) -> LoadPlan:
    """The settings Hearth loads with: explicit context, flash attention, no full-size sliding-window cache,
    mmap only where repacked weights would not double the resident memory, and no more threads than physical
    cores.

    Args:
        threads: the person's own choice, kept as it is; None lets measurement decide.
        tuning: what an earlier load of this model with the same plan measured (``remembered_tuning``).
        tune: with no tuning, have this load measure one (``LoadPlan.tune``).
    """
    trained = facts.context_length or 4096
    context = min(context_length or min(trained, 4096), trained)
    cores = machine.physical_cores or machine.logical_cores or 1
    plan = LoadPlan(context_length=context, gpu_layers=0, kv_type=kv_type, threads=threads or cores,
                    batch_threads=threads or cores)
    if gpu_layers is None:
        gpu_layers = fitting_gpu_layers(facts, machine, plan)
    elif not machine.offload_backends:
        gpu_layers = 0
    extra_buffers = not any(f.upper().startswith("AMX") for f in machine.cpu_features)
    cpu_weights, _ = weights_split(facts, gpu_layers)
    repacked = repacked_bytes(facts, gpu_layers, machine) if extra_buffers else 0
    use_mmap = not (cpu_weights and repacked > 0.1 * cpu_weights)
    plan = replace(plan, gpu_layers=gpu_layers, use_mmap=use_mmap, extra_buffers=extra_buffers)
    if tuning is not None:
        tuned = tuning.applied_to(plan)
        plan = replace(tuned, threads=threads, batch_threads=threads) if threads else tuned
    elif tune:
        plan = replace(plan, threads=threads, batch_threads=threads, tune=True)
        if plan.flash_attention_optional and not _fits_now(facts, machine, plan.with_flash_attention(False)):
            plan = replace(plan, keep_flash_attention=True)
    return with_memory_forecast(facts, machine, plan)


def _fits_now(facts: ModelFacts, machine: Machine, plan: LoadPlan, baseline: int | None = None) -> bool:
    """Whether ``plan`` fits the memory free now without being tight."""
    memory = memory_for(facts, plan, machine, baseline=baseline)
    return memory.ram_with_saved_states <= ram_budget(machine)[0] and (
        memory.vram_bytes == 0 or memory.vram_bytes <= vram_budget(machine))


def with_memory_forecast(facts: ModelFacts, machine: Machine, plan: LoadPlan) -> LoadPlan:
    """``plan`` carrying the memory its load is forecast to allocate (``LoadPlan.memory_forecast``): made again
    whenever a plan changes after ``decide_plan`` (a shorter context that fits, fewer layers on the card).

    A load that measures its settings may remake its context without flash attention when the probe finds that
    faster (``LoadPlan.tune``), so its cap is the larger of the two plans'."""
    allocated = allocated_bytes(facts, memory_for(facts, plan, machine), plan)
    if plan.tune and plan.flash_attention and plan.flash_attention_optional:
        without = plan.with_flash_attention(False)
        allocated = max(allocated, allocated_bytes(facts, memory_for(facts, without, machine), without))
    return replace(plan, memory_forecast=allocated)


def allocated_bytes(facts: ModelFacts, memory: Memory, plan: LoadPlan) -> int:
    """What the engine worker allocates for a load, the figure its memory cap counts: every resident and reserved
    byte of the forecast, and the other conversations' saved states, but not the mapped model file (the page
    cache's, not the process's) nor the worker's own baseline (counted by the worker when it sets the cap)."""
    mapped = facts.file_size if plan.use_mmap and not plan.gpu_layers else 0
    baseline = memory.overhead_ram - runtime_bytes(facts)
    return max(memory.reserved_ram_bytes + memory.saved_states - mapped - baseline, 0)


def remembered_tuning(records: Iterable[Any], path: str, plan: LoadPlan) -> Tuning | None:
    """The newest settings measured for this model file with a plan like ``plan`` (load records, newest
    first) on a quiet machine, or None: then the load measures them."""
    key = plan.tuning_key()
    for record in records:
        tuning = record.measured.get("tuning")
        if record.model_path == path and tuning and record.measured.get("tuning_key") == key \
                and not tuning.get("busy"):
            return Tuning.from_dict(tuning)
    return None


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


def largest_context(facts: ModelFacts, machine: Machine, plan: LoadPlan, baseline: int | None = None) -> int:
    """The longest context, in steps of 256 up to the trained length, that fits without being tight."""
    trained = facts.context_length or plan.context_length

    def fits(context: int) -> bool:
        return _fits_now(facts, machine, replace(plan, context_length=context), baseline)

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
             measured_efficiency: float | None = None, baseline: int | None = None) -> Forecast:
    """Args:
        baseline: the engine worker's resident memory before any model (``Ready.rss_bytes``) when known; else
            the one last measured on this machine.
        measured_efficiency: the share of bandwidth earlier generations on this machine reached.
    """
    memory = memory_for(facts, plan, machine, dry, baseline)
    confidence = Confidence.EXACT if dry is not None and dry.ok else (
        Confidence.ANALYTIC if facts.architecture in TESTED_ARCHITECTURES else Confidence.UNKNOWN_ARCHITECTURE)
    max_layers = fitting_gpu_layers(facts, machine, plan)
    speed = expected_speed(facts, plan, machine, measured_efficiency)
    verdict, reason = _verdict(facts, machine, plan, memory, speed, dry)
    return Forecast(plan=plan, memory=memory, confidence=confidence, verdict=verdict, reason=reason,
                    max_context=largest_context(facts, machine, plan, baseline), max_gpu_layers=max_layers, speed=speed)


def _verdict(facts: ModelFacts, machine: Machine, plan: LoadPlan, memory: Memory, speed: Speed | None,
             dry: DryRun | None) -> tuple[Verdict, str]:
    if dry is not None and not dry.ok:
        return Verdict.UNSUPPORTED, dry.message or "llama.cpp could not read this model."
    need = memory.ram_with_saved_states
    now, ever = ram_budget(machine)
    if need > ever or (memory.vram_bytes and memory.vram_bytes > vram_budget(machine) > 0
                       and plan.gpu_layers > fitting_gpu_layers(facts, machine, plan)):
        return Verdict.TOO_LARGE, (f"It needs {format_bytes(need)} of memory; this computer has "
                                   f"{installed_memory(machine.memory_total)} in all.")
    if need > now:
        return Verdict.TIGHT, (f"It needs {format_bytes(need)} and {format_bytes(machine.memory_available)} is "
                               "free right now.")
    layers = (facts.block_count or 0) + 1
    if 0 < plan.gpu_layers < layers and machine.offload_backends:
        return Verdict.RUNS_SLOWLY, (f"Only {plan.gpu_layers} of its {layers} layers fit on the graphics card; "
                                     "the rest run on the processor.")
    if speed is not None and speed.high * WORDS_PER_TOKEN < SLOW_WORDS_PER_S:
        return Verdict.RUNS_SLOWLY, f"This computer's memory is slow for a model this size: {speed.words()}."
    where = "on the graphics card" if plan.gpu_layers and machine.offload_backends else "on the processor"
    return Verdict.RUNS_WELL, f"It fits in memory and runs {where}."


def _round_speed(value: float) -> str:
    if value >= 100:
        return f"{round(value, -1):.0f}"
    return f"{value:.0f}" if value >= 10 else f"{value:.1f}"


def size_verdict(file_size: int, machine: Machine) -> Verdict:
    """A first answer from the file size alone, for lists of files not yet read: weights plus a typical
    context and the engine; the full forecast replaces it once the header is read. As in the full forecast, a
    file that fits but that the processor reads too slowly (``size_speed``) "Runs, but slowly"."""
    need = file_size + file_size // 10 + PROCESS_BASELINE + 256 * MIB
    now, ever = ram_budget(machine)
    vram = vram_budget(machine)
    if vram > 0 and need - PROCESS_BASELINE <= vram:
        return Verdict.RUNS_WELL
    if need > ever:
        return Verdict.TOO_LARGE
    if need > now:
        return Verdict.TIGHT
    speed = size_speed(file_size, machine)
    slow = speed is not None and speed.high * WORDS_PER_TOKEN < SLOW_WORDS_PER_S
    return Verdict.RUNS_SLOWLY if slow else Verdict.RUNS_WELL


def size_speed(file_size: int, machine: Machine) -> Speed | None:
    """A first speed from the file size alone, beside ``size_verdict``, for lists of files not yet read: making a
    token reads about every weight once, so the file stands for what ``bytes_per_token`` counts from the header (a
    little more than is read where the token table is apart from the output matrix, a little less once a long
    conversation's cache is read too). On the graphics card's memory speed when the file fits there and that speed
    is known, else on main memory's measured speed; None until that is measured. The per-layer cost that
    ``expected_speed`` adds needs the header's layer count, and matters only for models small enough to be fast."""
    bandwidth = machine.bandwidth_bytes_per_s
    card = machine.usable_gpus[0] if machine.usable_gpus and machine.offload_backends else None
    if card is not None and card.bandwidth_bytes_per_s and file_size <= vram_budget(machine):
        bandwidth = card.bandwidth_bytes_per_s
    if not bandwidth or file_size <= 0:
        return None
    low_efficiency, high_efficiency = EFFICIENCY
    return Speed(low=low_efficiency * bandwidth / file_size, high=high_efficiency * bandwidth / file_size)
