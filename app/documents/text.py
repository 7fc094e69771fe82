"""Plain text and Markdown: bytes decoded as people's text files are, then split into paragraphs (Markdown's
headings kept as the sections they start).

Text files are decoded as UTF-8 (with or without a BOM), UTF-16/32 when a BOM says so, else Windows-1252;
bytes that are not text (NUL bytes, many control characters) are refused even when the file is named ``.txt``.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Iterable, Iterator

from app.documents.document import Paragraph

_BOMS = ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"), (codecs.BOM_UTF8, "utf-8-sig"),
         (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))
_MAX_CONTROL_SHARE = 0.05
_SUSPICIOUS = re.compile("[\x00-\x08\x0e-\x1a\x1c-\x1f\x7f-\x9f\ufffd]")  # control characters but ESC (coloured logs)


def decode_text(data: bytes, encoding: str | None = None) -> str | None:
    """``data`` as text with line endings normalised, or None if it is not text.

    A BOM decides the encoding; else ``encoding`` (from an HTML ``<meta>``), else UTF-8, else Windows-1252
    (Latin-1 where it has holes). NUL bytes outside UTF-16/32, or more than a few percent of control
    characters or undecodable bytes, mean binary data.
    """
    for bom, codec in _BOMS:
        if data.startswith(bom):
            text = data.decode(codec, errors="replace")
            break
    else:
        if b"\x00" in data:
            return None
        declared = _decode_declared(data, encoding) if encoding else None
        text = declared if declared is not None else _decode_undeclared(data)
    text = text.removeprefix("\ufeff")
    suspicious = len(text) - len(_SUSPICIOUS.sub("", text))
    if "\x00" in text or suspicious > _MAX_CONTROL_SHARE * len(text):
        return None
    return normalise(text)


def _decode_undeclared(data: bytes) -> str:
    for codec in ("utf-8", "cp1252"):
        try:
            return data.decode(codec)
        except UnicodeDecodeError:
            pass
    return data.decode("latin-1")  # cp1252 leaves five bytes undefined; Latin-1 takes them all


def _decode_declared(data: bytes, encoding: str) -> str | None:
    try:
        codec = codecs.lookup(encoding).name
    except LookupError:
        return None
    if codec in ("utf-16", "utf-16-le", "utf-16-be", "utf-32"):  # a <meta> cannot honestly say so in ASCII
        return None
    return data.decode(codec, errors="replace")


_LINE_BREAKS = (("\r\n", "\n"), ("\r", "\n"), ("\f", "\n\n"), ("\v", "\n"), ("\x85", "\n"), ("\u2028", "\n"),
                ("\u2029", "\n\n"))
_CONTROLS = re.compile("\x1b\\[[0-?]*[ -/]*[@-~]|[\x00-\x08\x0e-\x1f\x7f\ufeff]")  # colour codes of a log too


def normalise(text: str) -> str:
    """Unix line endings, page and paragraph separators as blank lines, no other control characters."""
    for old, new in _LINE_BREAKS:
        text = text.replace(old, new)
    return _CONTROLS.sub("", text)


def _blocks(lines: Iterable[str]) -> Iterator[list[str]]:
    block: list[str] = []
    for line in lines:
        if line.strip():
            block.append(line.rstrip())
        elif block:
            yield block
            block = []
    if block:
        yield block


def text_paragraphs(text: str) -> list[Paragraph]:
    """Plain text: blank lines separate paragraphs; line breaks inside one are kept (verse, addresses, lists)."""
    return [Paragraph("\n".join(block).strip()) for block in _blocks(text.split("\n"))]


_ATX_HEADING = re.compile(r" {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$")
_SETEXT_UNDERLINE = re.compile(r" {0,3}(=+|-+)[ \t]*$")
_FENCE = re.compile(r" {0,3}(`{3,}|~{3,})")


def markdown_paragraphs(text: str) -> list[Paragraph]:
    """Markdown: like plain text, but a heading (``#`` or underlined) is a paragraph of its own, with its
    marks kept so the structure survives a translation, and labels the paragraphs under it. A fenced code
    block stays one paragraph, blank lines and all, and nothing in it counts as a heading; so does YAML
    front matter at the top."""
    lines = text.split("\n")
    paragraphs: list[Paragraph] = []
    heading: str | None = None
    current: list[str] = []

    def flush() -> None:
        if current and (body := "\n".join(current).strip()):
            paragraphs.append(Paragraph(body, heading=heading))
        current.clear()

    index = 0
    if lines and lines[0].strip() == "---":
        end = next((i for i in range(1, len(lines)) if lines[i].strip() in ("---", "...")), None)
        if end is not None:
            current.extend(lines[:end + 1])
            flush()
            index = end + 1
    fence: str | None = None
    for line in lines[index:]:
        line = line.rstrip()
        if fence is not None:
            current.append(line)
            if line.strip().startswith(fence) and not line.strip().strip(fence[0]):
                fence = None
                flush()
            continue
        if opening := _FENCE.match(line):
            flush()
            fence = opening.group(1)
            current.append(line)
        elif atx := _ATX_HEADING.match(line):
            flush()
            heading = (atx.group(2) or "").strip() or heading
            paragraphs.append(Paragraph(line.strip(), heading=heading))
        elif current and _SETEXT_UNDERLINE.match(line):
            heading = " ".join(part.strip() for part in current)
            current.append(line)
            flush()
        elif not line.strip():
            flush()
        else:
            current.append(line)
    flush()
    return paragraphs


def clean_block(text: str) -> str:
    """One paragraph's text: normalised, no blank lines inside, stripped."""
    return "\n".join(line.rstrip() for line in normalise(text).split("\n") if line.strip()).strip()
