"""A few catalog models to start with, chosen for this computer (the welcome page shows them).

Each suggestion must run well here and answer at a useful speed. Both come from the forecast's first answers for
a file not yet read, from its size alone: ``size_verdict`` for memory and ``size_speed`` for speed. The size is
the catalog's figure for the recommended file (``file_size``, known offline); a catalog without one gets an
estimate from the parameter count and the quantization's bits per weight, as llama.cpp's quantize tool reports
them for Llama 3 8B (mixed quantizations keep a few tensors at higher precision, hence 4.9 bits per weight for
Q4_K_M rather than its 4.5). A suggestion must fit with a quarter to spare (``COMFORT``), which also leaves room
for a longer conversation. Discover shows the exact size and the full forecast from the file's own header before
anything is downloaded.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from app.forecast.estimate import WORDS_PER_TOKEN, Speed, Verdict, size_speed, size_verdict
from app.hardware.machine import Machine
from app.hub.catalog import CatalogEntry

__all__ = [
    "BITS_PER_WEIGHT",
    "COMFORT",
    "USEFUL_WORDS_PER_S",
    "Suggestion",
    "answers_usefully",
    "download_size",
    "estimated_size",
    "family_group",
    "suggest",
]

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

COMFORT = 1.25  # a suggested model must fit with this much more than its file size
# An answer that comes faster than people read (about four words a second) never keeps them waiting; the
# forecast's cautious end of the range must reach it.
USEFUL_WORDS_PER_S = 5.0


@dataclass(frozen=True)
class Suggestion:
    """A catalog model that fits this computer: the size of its recommended file and how fast it should answer
    here (None until this computer's memory speed is measured)."""

    entry: CatalogEntry
    file_size: int  # bytes, approximate (see the module's docstring)
    speed: Speed | None = None


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


def download_size(entry: CatalogEntry) -> int:
    """The recommended file's size: the catalog's figure, or an estimate for a catalog that has none."""
    return entry.file_size if entry.file_size is not None else estimated_size(entry)


def answers_usefully(speed: Speed | None) -> bool:
    """Whether even the cautious end of ``speed`` keeps up with a reader; an unknown speed cannot rule a model out."""
    return speed is None or speed.low * WORDS_PER_TOKEN >= USEFUL_WORDS_PER_S


def family_group(entry: CatalogEntry) -> str:
    """The maker's line a family belongs to: "Qwen2.5" and "Qwen3" are both "qwen", "Phi-3.5" and "Phi-4" "phi"."""
    match = re.match(r"[A-Za-z]+", entry.family)
    return (match.group(0) if match else entry.family).lower()


def suggest(catalog: Iterable[CatalogEntry], machine: Machine, count: int = 3) -> list[Suggestion]:
    """Up to ``count`` chat models from ``catalog`` that run well on ``machine`` and answer at a useful speed there,
    best first.

    A model qualifies when its recommended file, taken a quarter larger than it is, still runs by ``size_verdict``
    ("Runs well", or "Runs, but slowly"): in memory free now (or on a graphics card Hearth can use), with the
    reserves the forecast keeps for the system. Gated models are left out, since they need a Hugging Face account
    and token before the first download.

    Among those, the models that answer at a useful speed here (``answers_usefully``) come first, the best quality
    first. The catalog has no measure of quality, so the parameter count stands in for it, rounded to two figures:
    within one size class the family line listed first in the catalog comes first, and within a line the newest
    family ("Phi-4" before "Phi-3.5"). Variety comes next: one model per family line while others are left, then the
    best of the rest. Only when fewer than ``count`` answer usefully do slower ones fill the places, the fastest
    (smallest) first, so that a small or slow computer is offered the catalog's small, fast models rather than
    large, slow ones. Fewer than ``count`` (or none) come back when fewer fit; the caller says so.

    Args:
        catalog: catalog entries (a ``Catalog`` iterates over all of its models; other kinds are skipped).
        machine: this computer; without a measured memory speed, speed decides nothing.
        count: how many to return at most.
    """
    useful: list[tuple[tuple[float, int, float, int], Suggestion]] = []
    slow: list[tuple[tuple[int, int], Suggestion]] = []
    first_of_line: dict[str, int] = {}
    for order, entry in enumerate(catalog):
        first_of_line.setdefault(family_group(entry), order)
        if entry.kind != "chat" or entry.gated:
            continue
        size = download_size(entry)
        if size_verdict(round(size * COMFORT), machine) not in (Verdict.RUNS_WELL, Verdict.RUNS_SLOWLY):
            continue  # speed is weighed below
        suggestion = Suggestion(entry, size, size_speed(size, machine))
        if answers_usefully(suggestion.speed):
            size_class = float(f"{entry.parameters:.2g}")
            useful.append(((-size_class, first_of_line[family_group(entry)], -_version(entry.family), order),
                           suggestion))
        else:
            slow.append(((size, order), suggestion))
    ranked = [suggestion for _, suggestion in sorted(useful, key=lambda item: item[0])]

    chosen: list[Suggestion] = []
    lines: set[str] = set()
    for suggestion in ranked:
        if len(chosen) < count and family_group(suggestion.entry) not in lines:
            chosen.append(suggestion)
            lines.add(family_group(suggestion.entry))
    for suggestion in ranked:
        if len(chosen) < count and suggestion not in chosen:
            chosen.append(suggestion)
    chosen.sort(key=ranked.index)
    fastest_first = [suggestion for _, suggestion in sorted(slow, key=lambda item: item[0])]
    return chosen + fastest_first[:count - len(chosen)]


def _version(family: str) -> float:
    """The number in a family's name ("Qwen2.5": 2.5, "Gemma 3": 3), 0 when it has none."""
    match = re.search(r"\d+(?:\.\d+)?", family)
    return float(match.group(0)) if match else 0.0
