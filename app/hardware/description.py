"""The machine in plain words, for people who are not programmers: one sentence per fact, in the order they
matter for models (the welcome page, the Models page, ``hearth hw``)."""

from __future__ import annotations

from app.hardware.machine import GIB, Gpu, Machine
from app.words import plural

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
    cores = plural(machine.physical_cores, 'core')
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
