"""A few catalog models to start with, chosen for this computer (the welcome page shows them).

The catalog says how many parameters a model has and which quantization to download, but not how big that file
is: sizes live on the Hub, and asking costs a request per model that a first start, perhaps offline, should not
wait for. So the size is estimated here from the parameter count and the bits per weight of the recommended
quantization, as llama.cpp's quantize tool reports them for Llama 3 8B (mixed quantizations keep a few tensors
at higher precision, hence 4.9 bits per weight for Q4_K_M rather than its 4.5). The estimate is close for large
models and low for small ones, whose big embedding tables are often kept at higher precision (Qwen2.5 0.5B at
Q8_0: 0.53 GB estimated, 0.68 GB on the Hub). A suggestion must therefore fit with a quarter to spare
(``COMFORT``), which also leaves room for a longer conversation. Discover shows the real size and the full
forecast from the file's own header before anything is downloaded.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from app.forecast.estimate import Verdict, size_verdict
from app.hardware.machine import Machine
from app.hub.catalog import CatalogEntry

__all__ = ["BITS_PER_WEIGHT", "COMFORT", "Suggestion", "estimated_size", "family_group", "suggest"]

# llama-quantize's table: file size of Llama 3 8B (8.03e9 weights) in GiB, as bits per weight.
_LLAMA3_8B = 8.03e9
BITS_PER_WEIGHT: dict[str, float] = {
    name: gib * 2**30 * 8 / _LLAMA3_8B
    for name, gib in {
        "Q2_K": 2.96, "Q3_K_S": 3.41, "Q3_K_M": 3.74, "Q3_K_L": 4.03, "Q4_0": 4.34, "Q4_1": 4.78,
        "Q4_K_S": 4.37, "Q4_K_M": 4.58, "Q5_0": 5.21, "Q5_1": 5.65, "Q5_K_S": 5.21, "Q5_K_M": 5.33,
        "Q6_K": 6.14, "Q8_0": 7.96,
    }.items()
} | {"IQ4_XS": 4.5, "IQ4_NL": 4.75, "F16": 16.0, "BF16": 16.0, "F32": 32.0}

COMFORT = 1.25  # a suggested model must fit with this much more than its estimated file size


@dataclass(frozen=True)
class Suggestion:
    """A catalog model that fits this computer, with the estimated size of its recommended file."""

    entry: CatalogEntry
    file_size: int  # bytes, estimated (see the module's docstring)


def estimated_size(entry: CatalogEntry) -> int:
    """The recommended file's size in bytes, from the parameter count and the quantization's bits per weight.

    A quantization missing from the table counts its leading number of bits plus one (the scales and the
    tensors kept at higher precision), or 16 bits when it names none."""
    quant = entry.recommended_quant.upper()
    bits = BITS_PER_WEIGHT.get(quant)
    if bits is None:
        leading = re.search(r"(\d+)", quant)
        bits = int(leading.group(1)) + 1.0 if leading else 16.0
    return round(entry.parameters * bits / 8)


def family_group(entry: CatalogEntry) -> str:
    """The maker's line a family belongs to: "Qwen2.5" and "Qwen3" are both "qwen", "Phi-3.5" and "Phi-4" "phi"."""
    match = re.match(r"[A-Za-z]+", entry.family)
    return (match.group(0) if match else entry.family).lower()


def suggest(catalog: Iterable[CatalogEntry], machine: Machine, count: int = 3) -> list[Suggestion]:
    """Up to ``count`` chat models from ``catalog`` that fit ``machine`` comfortably, best first.

    A model qualifies when its recommended file, estimated a quarter larger than it is likely to be, still
    "Runs well" by ``size_verdict``: in memory free now (or on a graphics card Hearth can use), with the
    reserves the forecast keeps for the system. Gated models are left out, since they need a Hugging Face
    account and token before the first download.

    The best quality that fits comes first. The catalog has no measure of quality, so the parameter count
    stands in for it, rounded to two figures: within one size class the family line listed first in the
    catalog comes first, and within a line the newest family ("Phi-4" before "Phi-3.5"). Variety comes next:
    one model per family line while others are left, then the best of the rest if fewer than ``count``
    lines fit. Fewer than ``count`` (or none) come back when fewer fit; the caller says so.

    Args:
        catalog: catalog entries (a ``Catalog`` iterates over all of its models; other kinds are skipped).
        machine: this computer.
        count: how many to return at most.
    """
    fitting: list[tuple[tuple[float, int, float, int], Suggestion]] = []
    first_of_line: dict[str, int] = {}
    for order, entry in enumerate(catalog):
        first_of_line.setdefault(family_group(entry), order)
        if entry.kind != "chat" or entry.gated:
            continue
        size = estimated_size(entry)
        if size_verdict(round(size * COMFORT), machine) is not Verdict.RUNS_WELL:
            continue
        size_class = float(f"{entry.parameters:.2g}")
        key = (-size_class, first_of_line[family_group(entry)], -_version(entry.family), order)
        fitting.append((key, Suggestion(entry, size)))
    ranked = [suggestion for _, suggestion in sorted(fitting, key=lambda item: item[0])]

    chosen: list[Suggestion] = []
    lines: set[str] = set()
    for suggestion in ranked:
        if len(chosen) < count and family_group(suggestion.entry) not in lines:
            chosen.append(suggestion)
            lines.add(family_group(suggestion.entry))
    for suggestion in ranked:
        if len(chosen) < count and suggestion not in chosen:
            chosen.append(suggestion)
    return sorted(chosen, key=ranked.index)


def _version(family: str) -> float:
    """The number in a family's name ("Qwen2.5": 2.5, "Gemma 3": 3), 0 when it has none."""
    match = re.search(r"\d+(?:\.\d+)?", family)
    return float(match.group(0)) if match else 0.0
