"""Where a passage of a document is, in words people use: pages where the format has them, else sections, else
paragraph numbers. One way for the document's own locations, a task's parts and the results that point back."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol


class Located(Protocol):
    """A passage, or a document's paragraph: anything that knows its page and section."""

    @property
    def page(self) -> int | None: ...

    @property
    def heading(self) -> str | None: ...


HEADING_CHARS = 40  # a location names at most this much of a heading, so it has a known cost in a prompt


def _short(heading: str) -> str:
    heading = " ".join(heading.split())
    return heading if len(heading) <= HEADING_CHARS else heading[:HEADING_CHARS - 1].rstrip() + "…"


def span_location(passages: Sequence[Located], first: int, last: int) -> str:
    """Plain words for passages ``first..last``: pages when the format has them, else sections, else
    paragraph numbers."""
    span = passages[first:last + 1]
    pages = [p.page for p in span if p.page is not None]
    if pages:
        low, high = min(pages), max(pages)
        return f"page {low}" if low == high else f"pages {low}–{high}"
    headings = list(dict.fromkeys(_short(p.heading) for p in span if p.heading))
    if len(headings) == 1:
        return f"section “{headings[0]}”"
    if headings:
        return f"sections “{headings[0]}” to “{headings[-1]}”"
    return f"paragraph {first + 1}" if first == last else f"paragraphs {first + 1}–{last + 1}"
