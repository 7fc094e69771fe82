"""A document as Hearth holds it: its paragraphs in reading order, each with its page and section, and the
limits on what is read from a file (each format's reader keeps to them, in the child process too)."""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass

from app.documents.location import span_location

MAX_FILE_BYTES = 50 * 1024 * 1024
MAX_TEXT_CHARS = 20_000_000  # far beyond anything a small model can work through, but bounds what comes back
MAX_PDF_PAGES = 10_000

PASTED_NAME = "Pasted text"


@dataclass(frozen=True)
class Paragraph:
    """One paragraph: stripped, never empty. A heading is a paragraph too, and is its own ``heading``."""

    text: str
    page: int | None = None  # 1-based PDF page; None for other formats
    heading: str | None = None  # the nearest section heading at or above it

    def __post_init__(self) -> None:
        if not self.text or self.text != self.text.strip():
            raise ValueError("a paragraph is stripped and never empty")


@dataclass(frozen=True)
class Document:
    """A document's text as paragraphs in reading order; never empty (an empty document is an error)."""

    name: str  # the file's name, or "Pasted text"
    kind: str  # "pdf", "docx", "txt", "md", "html" or "pasted"
    paragraphs: tuple[Paragraph, ...]
    size_bytes: int  # the file's size; for pasted text its UTF-8 length
    pages: int | None = None  # PDF page count
    warning: str | None = None  # read, but something about it is doubtful (text that does not read like text)

    def __post_init__(self) -> None:
        if not self.paragraphs:
            raise ValueError("a document has at least one paragraph")

    @functools.cached_property
    def text(self) -> str:
        """The paragraphs joined by blank lines."""
        return "\n\n".join(paragraph.text for paragraph in self.paragraphs)

    @functools.cached_property
    def sha256(self) -> str:
        """Hex SHA-256 of :attr:`text` as UTF-8: the same text gives the same hash, whatever file it came in."""
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()

    def location(self, first: int, last: int) -> str:
        """Where paragraphs ``first`` to ``last`` are, in words: "pages 3–5", "page 2", "section “Obligations”",
        "sections “Scope” to “Payment”" or "paragraphs 4–9".

        ``first`` and ``last`` are 0-based indexes into :attr:`paragraphs`, both included; the words count
        from 1, as people do. Pages win where there are pages, then the sections the range is in (the same
        words as ``app.documents.location.span_location``), then paragraph numbers.
        """
        if not 0 <= first <= last < len(self.paragraphs):
            raise ValueError(f"paragraphs {first}..{last} are outside 0..{len(self.paragraphs) - 1}")
        return span_location(self.paragraphs, first, last)

