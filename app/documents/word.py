"""Word (.docx): the body's paragraphs and tables in order, its headings as sections (run in the isolated
child, after the zip is checked for a bomb without unpacking it). Not read: headers, footers, footnotes,
comments and text boxes."""

from __future__ import annotations

import re
import zipfile
from typing import Any

from app.documents.document import MAX_TEXT_CHARS, Paragraph
from app.documents.isolated import Parsed, Refusal
from app.documents.text import clean_block

MAX_UNPACKED_BYTES = 512 * 1024 * 1024  # all entries of a .docx together, as the zip declares them
MAX_ZIP_ENTRIES = 10_000
MAX_COMPRESSION_RATIO = 200  # Word's XML packs 5–30 times; a zip bomb of zeros about 1000 times



def _check_zip(path: str) -> None:
    """Refuse a zip bomb from the sizes its directory declares, before anything is unpacked (zipfile never
    unpacks more than an entry declares, so the declared sizes bound the real ones)."""
    try:
        with zipfile.ZipFile(path) as archive:
            entries = archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError) as error:
        raise Refusal("damaged", detail=f"not a zip: {error}") from None
    if len(entries) > MAX_ZIP_ENTRIES:
        raise Refusal("bomb", detail=f"{len(entries)} entries")
    total = 0
    for entry in entries:
        total += entry.file_size
        ratio = entry.file_size / max(entry.compress_size, 1)
        if entry.file_size > 1024 * 1024 and ratio > MAX_COMPRESSION_RATIO:
            raise Refusal("bomb", detail=f"{entry.filename}: {entry.file_size} bytes, packed {ratio:.0f} times")
    if total > MAX_UNPACKED_BYTES:
        raise Refusal("bomb", detail=f"{total} bytes unpacked")


_DOCX_HEADING = re.compile(r"(heading \d|title)$", re.IGNORECASE)


def parse_word(path: str, _password: str | None = None) -> Parsed:
    _check_zip(path)
    import docx
    from docx.table import Table

    document = docx.Document(path)
    paragraphs: list[Paragraph] = []
    heading: str | None = None
    chars = 0
    for block in document.iter_inner_content():
        if isinstance(block, Table):
            texts = [_table_row_text(row) for row in block.rows]
        else:
            text = clean_block(block.text)
            style = block.style.name if block.style is not None else None
            if text and style and _DOCX_HEADING.match(style):
                heading = " ".join(text.split())
            texts = [text]
        for text in texts:
            if text:
                chars += len(text)
                if chars > MAX_TEXT_CHARS:
                    raise Refusal("too_much_text")
                paragraphs.append(Paragraph(text, heading=heading))
    if not paragraphs:
        raise Refusal("empty")
    return Parsed(tuple(paragraphs))


def _table_row_text(row: Any) -> str:
    """A table row as one paragraph, its cells separated by " | " (a merged cell counted once)."""
    cells: list[str] = []
    seen: list[Any] = []
    for cell in row.cells:
        if any(cell._tc is other for other in seen):
            continue
        seen.append(cell._tc)
        if text := " ".join(clean_block(cell.text).split("\n")):
            cells.append(text)
    return " | ".join(cells)
