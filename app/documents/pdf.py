"""PDF: the text of each page, its lines joined back into paragraphs (run in the isolated child)."""

from __future__ import annotations

import itertools
import math
import re
from collections import Counter
from collections.abc import Iterable
from typing import Any, NamedTuple

from app.documents.document import MAX_PDF_PAGES, MAX_TEXT_CHARS, Paragraph
from app.documents.isolated import Parsed, Refusal, report_progress
from app.documents.text import normalise


def parse_pdf(path: str, password: str | None) -> Parsed:
    from pypdf import PasswordType, PdfReader

    reader = PdfReader(path, strict=False)
    if reader.is_encrypted and reader.decrypt("") == PasswordType.NOT_DECRYPTED:
        if not password:
            raise Refusal("encrypted")
        if reader.decrypt(password) == PasswordType.NOT_DECRYPTED:
            raise Refusal("encrypted", wrong_password=True)
    count = len(reader.pages)
    if count > MAX_PDF_PAGES:
        raise Refusal("too_large", detail=f"{count} pages")
    if count == 0:
        raise Refusal("empty")
    pages: list[list[PdfLine]] = []
    chars = skipped = 0
    for index, page in enumerate(reader.pages):
        report_progress(index, count, "pages")
        try:
            lines = _pdf_lines(page)
        except MemoryError:
            raise
        except Exception:  # one unreadable page (a broken font, a bad stream) should not cost the others
            skipped += 1
            lines = []
        chars += sum(len(line.text) for line in lines)
        if chars > MAX_TEXT_CHARS:
            raise Refusal("too_much_text")
        pages.append(lines)
    if not any(line.text for lines in pages for line in lines):
        if skipped:
            raise Refusal("damaged", detail=f"no page of {count} could be read")
        raise Refusal("no_text")
    typical = _typical_line_length(line.text for lines in pages for line in lines if line.text)
    paragraphs = [Paragraph(text, page=number)
                  for number, lines in enumerate(pages, start=1)
                  for text in pdf_paragraphs(lines, typical)]
    return Parsed(tuple(paragraphs), pages=count, skipped_pages=skipped)


class PdfLine(NamedTuple):
    """A line of a PDF page as pypdf extracts it (stripped), with where it starts and its font size."""

    text: str
    x: float = 0.0
    y: float = 0.0
    size: float = 0.0


def _pdf_lines(page: Any) -> list[PdfLine]:
    """The page's text as lines, in pypdf's reading order, each with the position of its first glyph."""
    lines: list[PdfLine] = []
    parts: list[str] = []
    start: tuple[float, float] | None = None
    sizes: Counter[float] = Counter()  # characters per font size: a bullet's font does not make the line's

    def end_line() -> None:
        nonlocal start
        text = " ".join("".join(parts).split()) if start else ""
        lines.append(PdfLine(text, *start, sizes.most_common(1)[0][0]) if start and text else PdfLine(""))
        parts.clear()
        sizes.clear()
        start = None

    def visit(text: str, cm: list[float], tm: list[float], _font: Any, font_size: float) -> None:
        nonlocal start
        for index, piece in enumerate(normalise(text).split("\n")):
            if index:
                end_line()
            if piece.strip():
                if start is None:
                    start = (tm[4] * cm[0] + tm[5] * cm[2] + cm[4], tm[4] * cm[1] + tm[5] * cm[3] + cm[5])
                scale = math.hypot(tm[2] * cm[0] + tm[3] * cm[2], tm[2] * cm[1] + tm[3] * cm[3])
                sizes[round(abs(font_size) * scale, 1)] += len(piece.strip())
            parts.append(piece)

    page.extract_text(visitor_text=visit)
    end_line()
    return lines


def _typical_line_length(lines: Iterable[str]) -> int:
    """The length of a full line of body text: most lines of prose run to the right margin."""
    lengths = sorted(len(line) for line in lines)
    return lengths[int(len(lengths) * 0.8)] if lengths else 0


_LIST_ITEM = re.compile(r"([•◦▪‣●○■□–—*-]|\d{1,3}[.)])\s")
_SENTENCE_END = re.compile(r"[.!?:;…][\"'”’)\]]*$")


def pdf_paragraphs(lines: list[PdfLine], typical: int) -> list[str]:
    """Paragraphs from one PDF page's lines. PDF text has no paragraph marks, so they are read from the
    layout: a gap wider than the page's usual line spacing, a change of font size (a heading), an indented
    first line after a finished sentence, a list item, or a short line that ends a sentence (``typical`` is
    the length of a full line). Lines of a paragraph join with a space; a word hyphenated across lines is
    joined back."""
    spacing = _line_spacing(lines)
    margin = _left_margin(lines)
    paragraphs: list[str] = []
    current: list[str] = []
    previous: PdfLine | None = None
    for line in lines:
        if current and (not line.text or (previous and _starts_paragraph(previous, line, spacing, margin, typical))):
            paragraphs.append(_join_lines(current))
            current = []
        if line.text:
            current.append(line.text)
        previous = line if line.text else None
    if current:
        paragraphs.append(_join_lines(current))
    return paragraphs


def _line_spacing(lines: list[PdfLine]) -> float:
    text_lines = [line for line in lines if line.text]
    gaps = sorted(gap for above, below in itertools.pairwise(text_lines)
                  if (gap := above.y - below.y) > 0.5 * max(below.size, 1))
    return gaps[len(gaps) // 4] if gaps else 0.0  # low, as paragraph gaps can outnumber line gaps on a short page


def _left_margin(lines: list[PdfLine]) -> float:
    starts = Counter(round(line.x) for line in lines if line.text)
    return float(starts.most_common(1)[0][0]) if starts else 0.0


def _starts_paragraph(previous: PdfLine, line: PdfLine, spacing: float, margin: float, typical: int) -> bool:
    if _LIST_ITEM.match(line.text):
        return True
    em = max(line.size, previous.size, 1.0)
    gap = previous.y - line.y
    if gap < -0.5 * em:  # back up the page: the next column, or text drawn out of order
        return True
    if spacing and gap > 1.4 * spacing:
        return True
    if abs(line.size - previous.size) > 0.15 * em:
        return True
    ends_sentence = bool(_SENTENCE_END.search(previous.text))
    if ends_sentence and abs(previous.x - margin) < 0.5 * em and line.x - previous.x > 0.8 * em:
        return True  # an indented first line
    short = typical >= 20 and len(previous.text) < 0.75 * typical
    return short and (ends_sentence or (len(previous.text) < 0.5 * typical and not line.text[0].islower()))


def _join_lines(lines: list[str]) -> str:
    parts = [lines[0]]
    for line in lines[1:]:
        previous = parts[-1]
        if previous.endswith("\u00ad"):
            parts[-1] = previous[:-1]
        elif previous.endswith("-") and len(previous) > 1 and previous[-2].isalpha():
            if line[0].islower():  # "docu-" "ment": a word split at the margin
                parts[-1] = previous[:-1]
        else:
            parts.append(" ")
        parts.append(line)
    return "".join(parts)


