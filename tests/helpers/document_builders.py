"""Documents written at test time, good and hostile: PDFs, Word files, zip bombs.

PDFs are written byte by byte from numbered objects (with a correct cross-reference table), so a test can
build exactly the broken structure it needs: a page tree that contains itself, an object that is a reference
to itself, a page tree that fans out to a billion pages. Text is drawn in Helvetica with WinAnsiEncoding,
one ``Tj`` per line, with an empty line between paragraphs as a word processor would leave.
"""

from __future__ import annotations

import io
import struct
import textwrap
import zipfile
from collections.abc import Sequence
from pathlib import Path

from pypdf import PdfReader, PdfWriter

__all__ = [
    "encrypted_pdf",
    "fan_out_pdf",
    "image_only_pdf",
    "lying_zip_docx",
    "many_pages_pdf",
    "operations_report",
    "pdf_from_objects",
    "self_containing_pages_pdf",
    "self_reference_pdf",
    "text_pdf",
    "typeset_pdf",
    "word_document",
    "zip_bomb_docx",
]

Page = Sequence[str | Sequence[str]]  # paragraphs: a string is wrapped, a list of strings is taken as its lines


def pdf_from_objects(objects: dict[int, bytes], *, root: int = 1) -> bytes:
    """A PDF file holding ``objects`` (number → body) with catalog ``root``."""
    out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets: dict[int, int] = {}
    for number in sorted(objects):
        offsets[number] = len(out)
        out += b"%d 0 obj\n%s\nendobj\n" % (number, objects[number])
    size = max(objects) + 1
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % size
    for number in range(1, size):
        out += b"%010d 00000 n \n" % offsets[number] if number in offsets else b"0000000000 65535 f \n"
    out += b"trailer\n<< /Size %d /Root %d 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (size, root, xref)
    return bytes(out)


def _stream(data: bytes, extra: bytes = b"") -> bytes:
    return b"<< /Length %d %s>>\nstream\n%s\nendstream" % (len(data), extra, data)


def _pdf_string(text: str) -> bytes:
    raw = text.encode("cp1252")
    return b"(" + raw.replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)") + b")"


def _content(paragraphs: Page) -> bytes:
    ops = [b"BT /F1 11 Tf 14 TL 72 760 Td"]
    for index, paragraph in enumerate(paragraphs):
        lines = textwrap.wrap(paragraph, 80) if isinstance(paragraph, str) else list(paragraph)
        if index:
            ops.append(b"T*")  # the empty line between paragraphs
        for line in lines:
            ops.append(_pdf_string(line) + b" Tj T*")
    ops.append(b"ET")
    return b"\n".join(ops)


def _pages_pdf(contents: list[bytes], *, resources: bytes = b"", extra: dict[int, bytes] | None = None) -> bytes:
    """Catalog 1, page tree 2, font 3, then each page and its content stream."""
    objects = {3: b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>"}
    kids = []
    for index, content in enumerate(contents):
        page, stream = 10 + 2 * index, 11 + 2 * index
        kids.append(b"%d 0 R" % page)
        objects[page] = (b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents %d 0 R "
                         b"/Resources << /Font << /F1 3 0 R >> %s>> >>" % (stream, resources))
        objects[stream] = _stream(content)
    objects[1] = b"<< /Type /Catalog /Pages 2 0 R >>"
    objects[2] = b"<< /Type /Pages /Kids [%s] /Count %d >>" % (b" ".join(kids), len(kids))
    objects.update(extra or {})
    return pdf_from_objects(objects)


def text_pdf(pages: Sequence[Page]) -> bytes:
    """A PDF with a text layer: one entry of ``pages`` per page, each a list of paragraphs."""
    return _pages_pdf([_content(page) for page in pages])


_TO_UNICODE = (b"/CIDInit /ProcSet findresource begin 12 dict begin begincmap /CMapName /Hearth def "
               b"1 begincodespacerange <00> <FF> endcodespacerange 1 beginbfrange <20> <7E> <0020> endbfrange "
               b"endcmap CMapName currentdict /CMap defineresource pop end end")


def typeset_pdf(pages: Sequence[Page], seed: int = 0) -> bytes:
    """A text PDF as word processors write one, which takes a reader several times the work of :func:`text_pdf`:
    every line is a ``TJ`` array of kerned pieces of a few letters, fonts carry a ``ToUnicode`` map and widths,
    and lines switch between a regular and a bold font."""
    import random

    rng = random.Random(seed)

    def kerned(line: str) -> bytes:
        pieces: list[bytes] = []
        start = 0
        while start < len(line):
            size = rng.randint(1, 5)
            pieces += [_pdf_string(line[start:start + size]), b"%d" % rng.randint(-30, 30)]
            start += size
        return b"[" + b" ".join(pieces[:-1]) + b"] TJ"

    contents = []
    for page in pages:
        ops = [b"BT /F1 11 Tf 14 TL 72 760 Td"]
        for index, paragraph in enumerate(page):
            if index:
                ops.append(b"T*")
            for line in textwrap.wrap(paragraph, 80) if isinstance(paragraph, str) else list(paragraph):
                ops.append(b"/F%d 11 Tf " % rng.choice((1, 1, 1, 2)) + kerned(line) + b" T*")
        ops.append(b"ET")
        contents.append(b"\n".join(ops))
    widths = b" ".join(b"%d" % rng.randint(200, 700) for _ in range(95))
    objects = {1: b"<< /Type /Catalog /Pages 2 0 R >>",
               3: b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding /ToUnicode 5 0 R "
                  b"/FirstChar 32 /LastChar 126 /Widths [" + widths + b"] >>",
               4: b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica-Bold /Encoding /WinAnsiEncoding "
                  b"/ToUnicode 5 0 R >>",
               5: _stream(_TO_UNICODE)}
    kids = []
    for index, content in enumerate(contents):
        page, stream = 10 + 2 * index, 11 + 2 * index
        kids.append(b"%d 0 R" % page)
        objects[page] = (b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents %d 0 R "
                         b"/Resources << /Font << /F1 3 0 R /F2 4 0 R >> >> >>" % stream)
        objects[stream] = _stream(content)
    objects[2] = b"<< /Type /Pages /Kids [%s] /Count %d >>" % (b" ".join(kids), len(kids))
    return pdf_from_objects(objects)


def image_only_pdf(pages: int = 2) -> bytes:
    """What a scanner writes: every page is one picture and there is no text at all."""
    pixels = bytes(range(0, 256, 4)) * 64  # 64 × 64 grey ramp
    image = _stream(pixels, b"/Type /XObject /Subtype /Image /Width 64 /Height 64 /ColorSpace /DeviceGray "
                            b"/BitsPerComponent 8 ")
    draw = b"q 468 0 0 648 72 72 cm /Im1 Do Q"
    return _pages_pdf([draw] * pages, resources=b"/XObject << /Im1 4 0 R >> ", extra={4: image})


def many_pages_pdf(count: int) -> bytes:
    """``count`` real pages that all draw the same content stream: a big page count in a small file."""
    objects = {1: b"<< /Type /Catalog /Pages 2 0 R >>",
               3: b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
               4: _stream(b"BT /F1 11 Tf 72 700 Td (One of many pages.) Tj ET")}
    pages = range(10, 10 + count)
    for number in pages:
        objects[number] = (b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
                           b"/Resources << /Font << /F1 3 0 R >> >> >>")
    objects[2] = b"<< /Type /Pages /Kids [%s] /Count %d >>" % (b" ".join(b"%d 0 R" % n for n in pages), count)
    return pdf_from_objects(objects)


def encrypted_pdf(pages: Sequence[Page], *, user_password: str, owner_password: str = "owner") -> bytes:
    """``text_pdf(pages)`` encrypted with AES-128, as pypdf's writer does it; an empty user password opens it
    without asking, like a PDF that only restricts printing."""
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(text_pdf(pages))))
    writer.encrypt(user_password=user_password, owner_password=owner_password, algorithm="AES-128")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def self_containing_pages_pdf() -> bytes:
    """A page tree whose only kid is the page tree itself."""
    return pdf_from_objects({1: b"<< /Type /Catalog /Pages 2 0 R >>",
                             2: b"<< /Type /Pages /Kids [2 0 R] /Count 1 >>"})


def self_reference_pdf() -> bytes:
    """A page tree whose /Kids is an object that is nothing but a reference to itself."""
    return pdf_from_objects({1: b"<< /Type /Catalog /Pages 2 0 R >>",
                             2: b"<< /Type /Pages /Kids 5 0 R /Count 1 >>",
                             5: b"5 0 R"})


def fan_out_pdf(levels: int = 9, width: int = 10) -> bytes:
    """A page tree of a few hundred bytes that names ``width ** levels`` pages: every node lists the next
    node ``width`` times, and the last level lists one real page ``width`` times."""
    objects = {1: b"<< /Type /Catalog /Pages 2 0 R >>",
               3: b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"}
    leaf = 3 + levels
    for level in range(levels):
        kids = b" ".join([b"%d 0 R" % (4 + level if level + 1 < levels else leaf)] * width)
        number = 2 if level == 0 else 3 + level
        objects[number] = b"<< /Type /Pages /Kids [%s] /Count %d >>" % (kids, width ** (levels - level))
    objects[leaf] = (b"<< /Type /Page /MediaBox [0 0 612 792] /Contents %d 0 R "
                     b"/Resources << /Font << /F1 3 0 R >> >> >>" % (leaf + 1))
    objects[leaf + 1] = _stream(b"BT /F1 11 Tf 72 700 Td (A page seen many times.) Tj ET")
    return pdf_from_objects(objects)


def word_document(path: Path, blocks: Sequence[tuple[str, str]], *,
                  table: Sequence[Sequence[str]] = ()) -> Path:
    """A .docx written by python-docx: ``blocks`` are (style, text) with style "Title", "Heading 1".."Heading 9"
    or "" for body text; ``table`` rows are appended as a table after them."""
    import docx

    document = docx.Document()
    for style, text in blocks:
        if style == "Title":
            document.add_heading(text, level=0)
        elif style.startswith("Heading "):
            document.add_heading(text, level=int(style.removeprefix("Heading ")))
        else:
            document.add_paragraph(text)
    if table:
        grid = document.add_table(rows=len(table), cols=len(table[0]))
        for row, values in zip(grid.rows, table, strict=True):
            for cell, value in zip(row.cells, values, strict=True):
                cell.text = value
    document.save(str(path))
    return path


def zip_bomb_docx(path: Path, unpacked_bytes: int = 64 * 1024 * 1024) -> Path:
    """A .docx-shaped zip whose document part is ``unpacked_bytes`` of zeros, packed about a thousand times;
    written in 1 MiB pieces, so building it never holds the whole thing."""
    zeros = bytes(1024 * 1024)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        archive.writestr("[Content_Types].xml", _CONTENT_TYPES)
        with archive.open("word/document.xml", "w", force_zip64=True) as entry:
            for _ in range(unpacked_bytes // len(zeros)):
                entry.write(zeros)
    return path


def lying_zip_docx(path: Path, declared_bytes: int = 0xFFFF_FFF0) -> Path:
    """A small .docx whose zip directory declares its document part ``declared_bytes`` long (about 4 GiB)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", _CONTENT_TYPES)
        archive.writestr("word/document.xml", b"<w:document/>" * 100)
    data = bytearray(buffer.getvalue())
    directory = data.rfind(b"PK\x01\x02")  # the last entry's central directory record: word/document.xml
    struct.pack_into("<I", data, directory + 24, declared_bytes)
    path.write_bytes(bytes(data))
    return path


_CONTENT_TYPES = (b'<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/'
                  b'2006/content-types"><Override PartName="/word/document.xml" ContentType="application/vnd.'
                  b'openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>')


def operations_report(first: int = 1, last: int = 40) -> str:
    """Markdown: "# Annual operations report 2025", then sections ``first`` to ``last`` of 40 ("## Section 12:
    Marketing in region 6" and one paragraph each, alike but for their figures). SmolLM2-135M summarizing it
    copies sections back and numbers sections past 40 (tests/data/degenerate/smollm2-answers.json)."""
    topics = ["budget", "staffing", "training", "safety", "suppliers", "customers", "marketing", "logistics",
              "IT systems", "facilities"]
    verbs = ["grew", "fell", "stayed flat", "was reorganised", "was reviewed"]
    managers = ["Ana", "Ben", "Chloe", "Dev", "Eli", "Fay", "Gus"]
    months = ["March", "June", "September", "December"]
    lines = ["# Annual operations report 2025", ""]
    for n in range(first, last + 1):
        topic, verb, region = topics[(n - 1) % len(topics)], verbs[(n * 3) % len(verbs)], n % 7 + 1
        lines += [f"## Section {n}: {topic.title()} in region {region}", "",
                  f"In region {region}, {topic} {verb} during the year. The team led by manager {managers[n % 7]} "
                  f"recorded {n * 37 % 500 + 20} incidents and {n * 13 % 90 + 5} improvements. The board asked for a "
                  f"follow-up by {months[n % 4]} and approved a spend of {n * 1200 % 50000 + 3000} euros. Staff "
                  f"feedback on {topic} was {'positive' if n % 3 else 'mixed'}, and the next review is planned for "
                  f"section {n} of next year's report.", ""]
    return "\n".join(lines)
