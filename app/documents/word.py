"""Word (.docx): the body's paragraphs and tables in order, its headings as sections (run in the isolated
child, after the zip is checked for a bomb without unpacking it). Not read: headers, footers, footnotes,
comments and text boxes."""

from __future__ import annotations

import re
import zipfile
from typing import Any

from app.documents.document import MAX_TEXT_CHARS, Paragraph
from app.documents.isolated import Parsed, Refusal, report_progress
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
    style_names, default_style = _paragraph_styles(document)
    blocks = list(document.iter_inner_content())
    paragraphs: list[Paragraph] = []
    heading: str | None = None
    chars = 0
    for index, block in enumerate(blocks):
        report_progress(index, len(blocks), "paragraphs")
        if isinstance(block, Table):
            texts = [_table_row_text(row) for row in block.rows]
        else:
            text = clean_block(block.text)
            style_id = block._p.style
            style = style_names.get(style_id, default_style) if style_id is not None else default_style
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


def _paragraph_styles(document: Any) -> tuple[dict[str, str], str | None]:
    """Each paragraph style's name by its id, and the default paragraph style's name, read once.

    python-docx's ``Paragraph.style`` looks the style up afresh for every paragraph, walking every style in the
    file (and converting each one's type from XML) to find the default: 95% of the time a long document took.
    The names are Word's own (``heading 1``, ``Title``), which the heading pattern matches in any case."""
    from docx.enum.style import WD_STYLE_TYPE

    names: dict[str, str] = {}
    default: str | None = None
    for style in document.styles.element.style_lst:
        if style.type != WD_STYLE_TYPE.PARAGRAPH or style.styleId is None:
            continue
        name = style.name_val or style.styleId
        names[style.styleId] = name
        if style.default:
            default = name
    return names, default


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
