"""Web pages (.html): the text of block elements in order, headings as sections, scripts and styles left out
(run in the isolated child)."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

from app.documents.document import MAX_TEXT_CHARS, Paragraph
from app.documents.isolated import Parsed, Refusal
from app.documents.text import clean_block, decode_text, garbled_warning

_META_CHARSET = re.compile(rb"""<meta[^>]{0,200}?charset\s*=\s*["']?\s*([-\w.:]+)""", re.IGNORECASE)
_BLOCK_TAGS = frozenset({
    "address", "article", "aside", "blockquote", "body", "caption", "dd", "details", "dialog", "div", "dl", "dt",
    "fieldset", "figcaption", "figure", "footer", "form", "header", "hgroup", "hr", "li", "main", "nav", "ol", "p",
    "pre", "section", "summary", "table", "tbody", "tfoot", "thead", "tr", "ul"})
_HEADING_TAGS = frozenset({"h1", "h2", "h3", "h4", "h5", "h6"})
_SKIPPED_TAGS = frozenset({"script", "style", "template", "noscript", "title", "svg", "math", "iframe", "object",
                           "canvas", "select", "button"})


class _HtmlText(HTMLParser):
    """Visible text of a page: block elements become paragraphs, h1–h6 become headings (paragraphs that also
    label what follows), table cells in a row are joined by " | ", scripts and styles are dropped."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.paragraphs: list[Paragraph] = []
        self.chars = 0
        self._heading: str | None = None
        self._buffer: list[str] = []
        self._skip = 0
        self._pre = 0
        self._in_heading = False
        self._cell_break = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIPPED_TAGS:
            self._skip += 1
        elif tag in _HEADING_TAGS:
            self._flush()
            self._in_heading = True
        elif tag == "br":
            self._buffer.append("\n")
        elif tag in ("td", "th"):
            self._cell_break = True
        elif tag in _BLOCK_TAGS and not self._in_heading:
            self._flush()
            if tag == "pre":
                self._pre += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIPPED_TAGS:
            self._skip = max(0, self._skip - 1)
        elif tag in _HEADING_TAGS and self._in_heading:
            text = " ".join("".join(self._buffer).split())
            self._buffer.clear()
            self._in_heading = False
            if text:
                self._heading = text
                self._add(text)
        elif tag in _BLOCK_TAGS and not self._in_heading:
            self._flush()
            if tag == "pre":
                self._pre = max(0, self._pre - 1)

    def handle_data(self, data: str) -> None:
        if self._skip:
            return
        if self._cell_break and data.strip():
            if "".join(self._buffer).strip():
                self._buffer.append(" | ")
            self._cell_break = False
        self._buffer.append(data if self._pre else re.sub(r"\s+", " ", data))

    def close(self) -> None:
        super().close()
        self._flush()
        self._in_heading = False
        self._flush()

    def _flush(self) -> None:
        if self._in_heading:
            return
        raw = "".join(self._buffer)
        self._buffer.clear()
        self._cell_break = False
        if self._pre:
            text = clean_block(raw)
        else:
            text = "\n".join(" ".join(line.split()) for line in raw.split("\n") if line.strip())
        if text:
            self._add(text)

    def _add(self, text: str) -> None:
        self.chars += len(text)
        if self.chars > MAX_TEXT_CHARS:
            raise Refusal("too_much_text")
        self.paragraphs.append(Paragraph(text, heading=self._heading))


def parse_web_page(path: str, _password: str | None = None) -> Parsed:
    data = Path(path).read_bytes()
    declared = _META_CHARSET.search(data[:4096])
    text = decode_text(data, declared.group(1).decode("ascii", "replace") if declared else None)
    if text is None:
        raise Refusal("not_text")
    parser = _HtmlText()
    parser.feed(text)
    parser.close()
    if not parser.paragraphs:
        raise Refusal("empty")
    return Parsed(tuple(parser.paragraphs), warning=garbled_warning(Path(path).name, text))
