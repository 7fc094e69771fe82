"""Plain text and Markdown: bytes decoded as people's text files are, then split into paragraphs (Markdown's
headings kept as the sections they start).

The encoding comes from the content: a BOM first (unless the text it gives is gibberish: a UTF-8 file saved behind
a stray UTF-16 mark), else the one an HTML ``<meta>`` declares, else UTF-8 when the bytes are valid UTF-8, else
what charset-normalizer finds (preferring Windows-1252 where it fits as well, since the detector cannot tell
Western European code pages apart on short texts). Bytes that are not text (NUL bytes, many control characters)
are refused even when the file is named ``.txt``; text that decodes but does not read like text is kept, with a
warning (``garbled_warning``).
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
GARBLED_MESS = 0.25  # charset-normalizer's mess ratio: prose scores under 0.1, a wrong decoding well over 1
_SAMPLE_CHARS = 4096


def decode_text(data: bytes, encoding: str | None = None) -> str | None:
    """``data`` as text with line endings normalised, or None if it is not text.

    ``encoding`` is what an HTML ``<meta>`` declares, if anything (see the module's docstring for the order).
    NUL bytes outside UTF-16/32, or more than a few percent of control characters or undecodable bytes, mean
    binary data.
    """
    for bom, codec in _BOMS:
        if data.startswith(bom):
            text = data.decode(codec, errors="replace")
            if mess(text) > GARBLED_MESS and b"\x00" not in data[len(bom):]:  # a mark that lies about the rest
                body = _decode_content(data[len(bom):], encoding)
                text = body if mess(body) < mess(text) else text
            break
    else:
        if b"\x00" in data:
            return None
        text = _decode_content(data, encoding)
    text = text.removeprefix("\ufeff")
    suspicious = len(text) - len(_SUSPICIOUS.sub("", text))
    if "\x00" in text or suspicious > _MAX_CONTROL_SHARE * len(text):
        return None
    return normalise(text)


def mess(text: str) -> float:
    """How little ``text`` reads like text (charset-normalizer's mess ratio: 0 for clean prose), from a few
    samples across it so a long file costs no more than a short one."""
    from charset_normalizer.md import mess_ratio

    if len(text) > 3 * _SAMPLE_CHARS:
        middle = len(text) // 2
        text = "\n".join((text[:_SAMPLE_CHARS], text[middle:middle + _SAMPLE_CHARS], text[-_SAMPLE_CHARS:]))
    return float(mess_ratio(text, maximum_threshold=1.0))


def garbled_warning(name: str, text: str) -> str | None:
    """A warning when the text Hearth read does not read like text (a wrong or unusual encoding), else None."""
    if mess(text) <= GARBLED_MESS:
        return None
    return (f"Parts of “{name}” do not read like text: it may use an encoding Hearth could not recognise. "
            "Check the preview; a summary or translation of garbled text is garbled too.")


def _decode_content(data: bytes, declared: str | None) -> str:
    decoded = _decode_declared(data, declared) if declared else None
    if decoded is not None:
        return decoded
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    from charset_normalizer import from_bytes

    matches = list(from_bytes(data))
    western = next((m for m in matches if "cp1252" in m.could_be_from_charset), None)
    if western is not None or matches:
        return str(western or matches[0])
    for codec in ("cp1252", "latin-1"):  # cp1252 leaves five bytes undefined; Latin-1 takes them all
        try:
            return data.decode(codec)
        except UnicodeDecodeError:
            pass
    raise AssertionError("Latin-1 decodes every byte")


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
