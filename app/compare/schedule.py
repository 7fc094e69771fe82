"""Which models run at the same time: as many as fit in the memory free right now, in the order chosen."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Need:
    """One model's forecast (part 2's estimator), in the memory it will take."""

    ram_bytes: int
    vram_bytes: int = 0


def schedule(needs: Sequence[Need], ram_free: int, vram_free: int = 0, *, together: bool = True) -> list[list[int]]:
    """Split the models into groups run one after another; the models of a group run at the same time.

    Groups are consecutive, so the columns fill in the order the person chose. A model that does not fit
    even alone still gets a group of its own: the person chose it, and its forecast was shown (a bin-packing
    that reorders would save a group at most, with four models).

    Args:
        ram_free: the memory that may be used now (free memory less the reserve for the system).
        vram_free: the same on the graphics card; 0 when nothing is offloaded.
        together: False runs every model alone (fairer speed figures, slower overall).
    """
    groups: list[list[int]] = []
    ram = vram = 0
    for index, need in enumerate(needs):
        fits = (together and groups and ram + need.ram_bytes <= ram_free
                and vram + need.vram_bytes <= max(vram_free, 0))
        if fits:
            groups[-1].append(index)
            ram, vram = ram + need.ram_bytes, vram + need.vram_bytes
        else:
            groups.append([index])
            ram, vram = need.ram_bytes, need.vram_bytes
    return groups
