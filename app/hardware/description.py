"""The machine in plain words, for people who are not programmers: one sentence per fact, in the order they
matter for models (the welcome page, the Models page, ``hearth hw``)."""

from __future__ import annotations

from app.hardware.machine import Gpu, Machine
from app.words import format_bytes, installed_memory, plural

_HEADLINE_FEATURES = (("AVX2", "AVX2"), ("AVX512", "AVX-512"), ("AMX_INT8", "AMX"), ("NEON", "NEON"),
                      ("DOTPROD", "DotProd"), ("I8MM", "I8MM"), ("SVE", "SVE"), ("SME", "SME"))
_X86_BASICS = frozenset({"SSE3", "SSSE3", "AVX", "F16C", "FMA"})


def describe(machine: Machine, *, memory_speed: bool = True) -> list[str]:
    """Sentences for people who are not programmers, one fact each, in the order they matter for models.

    ``memory_speed=False`` leaves out the last one, the measured memory speed (the welcome page, shown before
    it is measured, keeps to memory, processor and graphics)."""
    sentences = [
        f"{installed_memory(machine.memory_total)} of memory, {format_bytes(machine.memory_available)} free right now.",
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


def _processor_sentence(machine: Machine) -> str:
    cores = plural(machine.physical_cores, 'core')
    if machine.logical_cores != machine.physical_cores:
        cores += f" ({machine.logical_cores} threads)"
    headline = [label for name, label in _HEADLINE_FEATURES if name in machine.cpu_features]
    return f"Processor: {', '.join([machine.cpu_name, cores, *headline])}."


def _gpu_sentence(gpu: Gpu, machine: Machine) -> str:
    if gpu.unified and gpu.memory_total:
        size = (f", which shares the computer's {installed_memory(machine.memory_total)} of memory; up to "
                f"{installed_memory(gpu.memory_total)} of it can hold a model")
    else:
        size = f" with {installed_memory(gpu.memory_total)}" if gpu.memory_total else ""
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
