"""A history database damaged as a failing disk damages one: its pages past the first overwritten with garbage, so
SQLite still recognises the file and finds the damage when it reads on."""

from __future__ import annotations

from pathlib import Path


def damage_pages(path: Path) -> None:
    """Overwrites every page of the closed database at ``path`` but the first (the header and the schema's root)."""
    data = bytearray(path.read_bytes())
    page_size = int.from_bytes(data[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    assert len(data) > page_size, "a database of one page has nothing to damage past its header"
    data[page_size:] = (b"\xde\xad\xbe\xef" * (len(data) // 4 + 1))[: len(data) - page_size]
    path.write_bytes(bytes(data))
