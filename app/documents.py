"""Text out of the documents people bring: PDF, Word (.docx), web pages, Markdown, plain text, or pasted text.

A document becomes a list of paragraphs in reading order, each with the PDF page it is on and the section
heading above it, so a summary or translation can say where something came from ("pages 3–5").

Documents come from anywhere, and PDF, DOCX and HTML parsers have to trust structure inside the file. So those
three are parsed in a short-lived child process (``spawn``, like the engine worker and the dry run) with a cap
on its memory (where the OS allows one) and a wall-clock timeout: a reference loop, a zip bomb, a decompression
bomb or a parser crash becomes a :class:`~app.errors.DamagedDocumentError`, never a hung or dead app. Word files
are also checked before parsing: a zip whose entries would unpack to far more than a real document is refused
without unpacking anything. Plain text and Markdown are read in this process; the file size limit bounds them.

Text files are decoded as UTF-8 (with or without a BOM), UTF-16/32 when a BOM says so, else Windows-1252;
bytes that are not text (NUL bytes, many control characters) are refused even when the file is named ``.txt``.

Not supported: OpenDocument (.odt) and RTF, which would each need another parser library for few users (save
them as .docx or PDF), legacy Word (.doc), password-protected Word files, and scanned PDFs (no OCR). From a Word
file only the body's paragraphs and tables are read: not headers, footers, footnotes, comments or text boxes.
"""

from __future__ import annotations

import codecs
import functools
import hashlib
import itertools
import logging
import math
import multiprocessing
import re
import warnings
import zipfile
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, NamedTuple

from app.errors import (
    DamagedDocumentError,
    DocumentError,
    DocumentNotFoundError,
    DocumentTooLargeError,
    EmptyDocumentError,
    EncryptedDocumentError,
    NoTextLayerError,
    UnsupportedDocumentError,
)
from app.tasks.spec import span_location
from app.words import format_bytes

log = logging.getLogger(__name__)

_KINDS = {".txt": "txt", ".md": "md", ".markdown": "md", ".pdf": "pdf", ".docx": "docx", ".html": "html",
          ".htm": "html"}
_KIND_LABELS = {"txt": "text", "md": "Markdown", "pdf": "PDF", "docx": "Word", "html": "web pages"}

SUPPORTED_SUFFIXES: tuple[str, ...] = tuple(_KINDS)
FILE_DIALOG_FILTER = "Documents (" + " ".join(f"*{suffix}" for suffix in SUPPORTED_SUFFIXES) + ")"

MAX_FILE_BYTES = 50 * 1024 * 1024
MAX_TEXT_CHARS = 20_000_000  # far beyond anything a small model can work through, but bounds what comes back
MAX_PDF_PAGES = 10_000
CHILD_MEMORY_BYTES = 1536 * 1024 * 1024
MAX_UNPACKED_BYTES = 512 * 1024 * 1024  # all entries of a .docx together, as the zip declares them
MAX_ZIP_ENTRIES = 10_000
MAX_COMPRESSION_RATIO = 200  # Word's XML packs 5–30 times; a zip bomb of zeros about 1000 times

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
        words as ``app.tasks.spec.span_location``), then paragraph numbers.
        """
        if not 0 <= first <= last < len(self.paragraphs):
            raise ValueError(f"paragraphs {first}..{last} are outside 0..{len(self.paragraphs) - 1}")
        return span_location(self.paragraphs, first, last)


def read_document(path: Path | str, *, password: str | None = None, timeout_s: float = 30.0) -> Document:
    """Read the text of the document at ``path``.

    Blocks for up to ``timeout_s`` (plus a moment to start the parser process): call it off the GUI thread.

    Args:
        path: a file whose suffix is one of :data:`SUPPORTED_SUFFIXES` (any case).
        password: the password of an encrypted PDF; ignored for other files.
        timeout_s: how long parsing a PDF, Word file or web page may take before it is stopped.

    Raises:
        UnsupportedDocumentError: not a supported type (by its name, or a legacy or protected Word file).
        DocumentNotFoundError: there is no such file.
        DocumentTooLargeError: over :data:`MAX_FILE_BYTES`, more text than :data:`MAX_TEXT_CHARS` or more
            pages than :data:`MAX_PDF_PAGES`.
        EmptyDocumentError: no text in it.
        EncryptedDocumentError: the PDF needs a password, or ``password`` is wrong.
        NoTextLayerError: a PDF whose pages are only images.
        DamagedDocumentError: corrupt, not what its name says, hostile, too slow, or the parser died.
        DocumentError: any other reason the file cannot be opened (a folder, no permission).
    """
    if timeout_s <= 0:
        raise ValueError("timeout_s must be positive")
    path = Path(path).expanduser()
    name = path.name
    kind = _KINDS.get(path.suffix.lower())
    if kind is None:
        raise UnsupportedDocumentError(name, f"Hearth cannot read “{name}”: {_supported_types()}")
    try:
        size = path.stat().st_size
        if path.is_dir():
            raise DocumentError(name, f"“{name}” is a folder, not a document.")
        if size > MAX_FILE_BYTES:
            raise DocumentTooLargeError(name, f"“{name}” is too large to open ({format_bytes(size)}; "
                                              f"Hearth opens documents up to {format_bytes(MAX_FILE_BYTES)}).")
        if size == 0:
            raise EmptyDocumentError(name, f"“{name}” is empty.")
        with path.open("rb") as file:
            head = file.read(MAX_FILE_BYTES + 1 if kind in ("txt", "md") else 8192)
    except FileNotFoundError:
        raise DocumentNotFoundError(name) from None
    except PermissionError:
        raise DocumentError(name, f"Hearth is not allowed to open “{name}”. Check the file's permissions.") from None
    except OSError as error:
        raise DocumentError(name, f"Hearth could not open “{name}” ({error.strerror or error}).") from None

    if kind in ("txt", "md"):
        if len(head) > MAX_FILE_BYTES:  # it grew since stat()
            raise DocumentTooLargeError(name)
        text = decode_text(head)
        if text is None:
            raise DamagedDocumentError(name, f"“{name}” is not a text document: it holds binary data.")
        _check_text_size(name, len(text))
        paragraphs = markdown_paragraphs(text) if kind == "md" else text_paragraphs(text)
        return _document(name, kind, paragraphs, size, None)

    _check_magic(name, kind, head, path)
    parsers: dict[str, Callable[[str, str | None], _Parsed]] = {
        "pdf": _parse_pdf, "docx": _parse_docx, "html": _parse_html}
    parser = parsers[kind]
    parsed = run_isolated(parser, (str(path), password), file_name=name, kind=kind, timeout_s=timeout_s)
    if parsed.skipped_pages:
        log.warning("%s: skipped %d page(s) whose text could not be read", name, parsed.skipped_pages)
    return _document(name, kind, parsed.paragraphs, size, parsed.pages)


def document_from_text(text: str, name: str = PASTED_NAME) -> Document:
    """A document from pasted text. Markdown headings in it are recognised, as in a ``.md`` file.

    Raises:
        EmptyDocumentError: nothing but white space.
        DocumentTooLargeError: more than :data:`MAX_TEXT_CHARS` characters.
    """
    _check_text_size(name, len(text))
    encoded = text.encode("utf-8", "replace")  # a lone surrogate from a clipboard becomes "?"
    paragraphs = markdown_paragraphs(_normalise(encoded.decode("utf-8")))
    if not paragraphs:
        raise EmptyDocumentError(name, "There is no text to work with: the pasted text is empty."
                                 if name == PASTED_NAME else f"“{name}” has no text in it.")
    return Document(name=name, kind="pasted", paragraphs=tuple(paragraphs), size_bytes=len(encoded), pages=None)


def _document(name: str, kind: str, paragraphs: Iterable[Paragraph], size: int, pages: int | None) -> Document:
    paragraphs = tuple(paragraphs)
    if not paragraphs:
        raise EmptyDocumentError(name)
    return Document(name=name, kind=kind, paragraphs=paragraphs, size_bytes=size, pages=pages)


def _supported_types() -> str:
    by_label: dict[str, list[str]] = {}
    for suffix, kind in _KINDS.items():
        by_label.setdefault(_KIND_LABELS[kind], []).append(suffix)
    parts = [f"{label} ({', '.join(suffixes)})" for label, suffixes in by_label.items()]
    return "it opens " + ", ".join(parts[:-1]) + f" and {parts[-1]} files."


def _check_text_size(name: str, chars: int) -> None:
    if chars > MAX_TEXT_CHARS:
        raise DocumentTooLargeError(name, f"“{name}” holds more text than Hearth can work with "
                                          f"(over {MAX_TEXT_CHARS:,} characters). Split it into smaller parts.")


_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"


def _check_magic(name: str, kind: str, head: bytes, path: Path) -> None:
    """Refuse what is plainly not the type its name says before starting a parser for it."""
    if kind == "pdf" and b"%PDF-" not in head[:1024]:
        raise DamagedDocumentError(name, f"“{name}” is not really a PDF file, or it is damaged.")
    if kind == "docx":
        if head.startswith(_OLE_MAGIC):
            # Office wraps a password-protected .docx in an OLE file; an old .doc is one too.
            protected = "EncryptedPackage".encode("utf-16-le") in path.read_bytes()
            raise UnsupportedDocumentError(name, (
                f"“{name}” is a password-protected Word document, which Hearth cannot open. "
                "Save a copy without a password and open that.") if protected else (
                f"“{name}” is an older Word document (.doc), which Hearth cannot read. "
                "Save it as .docx or PDF and open that."))
        if not head.startswith(b"PK\x03\x04"):
            raise DamagedDocumentError(name, f"“{name}” is not really a Word document, or it is damaged.")


# --- text and Markdown -----------------------------------------------------------------------------------------

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
    return _normalise(text)


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


def _normalise(text: str) -> str:
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


# --- the child process -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Parsed:
    paragraphs: tuple[Paragraph, ...]
    pages: int | None = None
    skipped_pages: int = 0


@dataclass(frozen=True)
class _Failure:
    """Why the child gave up, as data: exceptions with their own constructors do not cross a pipe well."""

    reason: str  # encrypted, no_text, empty, too_large, too_much_text, not_text, bomb, memory or damaged
    wrong_password: bool = False
    detail: str = ""  # for the log, not for people


class _Refusal(Exception):
    def __init__(self, reason: str, *, wrong_password: bool = False, detail: str = "") -> None:
        super().__init__(reason)
        self.failure = _Failure(reason, wrong_password, detail)


def run_isolated(target: Callable[..., Any], args: tuple[Any, ...], *, file_name: str, kind: str,
                 timeout_s: float, memory_bytes: int = CHILD_MEMORY_BYTES) -> Any:
    """``target(*args)`` in a fresh ``spawn`` process with at most ``memory_bytes`` of address space and
    ``timeout_s`` seconds, and its result. ``target`` must be importable at module level.

    Raises:
        DamagedDocumentError: the child took too long (it is killed), died, or ran out of memory.
        DocumentError: the child's ``target`` refused the document (the matching subclass).
    """
    context = multiprocessing.get_context("spawn")
    receiver, sender = context.Pipe(duplex=False)
    process = context.Process(target=_child_main, args=(sender, target, args, memory_bytes),
                              name="hearth-document-reader", daemon=True)
    try:
        process.start()
    finally:
        sender.close()
    outcome: Any = None
    answered = timed_out = False
    try:
        if receiver.poll(timeout_s):
            try:
                outcome = receiver.recv()
                answered = True
            except (EOFError, OSError):  # it died before answering
                pass
        else:
            timed_out = True
    finally:
        receiver.close()
        process.join(2 if answered else 0.1)
        if process.is_alive():
            process.kill()
            process.join(5)
    if not answered:
        log.warning("reading %s: the parser %s (exit code %s)", file_name,
                    f"was stopped after {timeout_s:g} s" if timed_out else "died", process.exitcode)
        if timed_out:
            raise DamagedDocumentError(file_name, (
                f"Reading “{file_name}” took too long (over {timeout_s:g} seconds), so Hearth stopped. "
                "The file may be damaged, or made to cause trouble."))
        raise DamagedDocumentError(file_name, (
            f"Reading “{file_name}” failed: the reader stopped unexpectedly. "
            "The file may be damaged, or made to cause trouble."))
    if isinstance(outcome, _Failure):
        raise _error_for(outcome, file_name, kind)
    return outcome


def _error_for(failure: _Failure, name: str, kind: str) -> DocumentError:
    if failure.detail:
        log.info("reading %s: %s (%s)", name, failure.reason, failure.detail)
    type_name = {"pdf": "a PDF file", "docx": "a Word document", "html": "a web page"}.get(kind, "a document")
    match failure.reason:
        case "encrypted":
            return EncryptedDocumentError(name, wrong_password=failure.wrong_password)
        case "no_text":
            return NoTextLayerError(name)
        case "empty":
            return EmptyDocumentError(name)
        case "too_large":
            return DocumentTooLargeError(name, f"“{name}” has more pages than Hearth can read "
                                               f"(the limit is {MAX_PDF_PAGES:,}). Split it into smaller parts.")
        case "too_much_text":
            return DocumentTooLargeError(name, f"“{name}” holds more text than Hearth can work with "
                                               f"(over {MAX_TEXT_CHARS:,} characters). Split it into smaller parts.")
        case "not_text":
            return DamagedDocumentError(name, f"“{name}” is not {type_name}: it holds binary data.")
        case "bomb":
            return DamagedDocumentError(name, (
                f"“{name}” was not opened: it would unpack to far more data than a real document holds. "
                "The file may be damaged, or made to cause trouble."))
        case "memory":
            return DamagedDocumentError(name, (
                f"Reading “{name}” needed more memory than a document should, so Hearth stopped. "
                "The file may be damaged, or made to cause trouble."))
        case _:
            return DamagedDocumentError(name, f"“{name}” could not be read: it looks damaged, "
                                              f"or it is not really {type_name}.")


def _child_main(conn: Connection, target: Callable[..., Any], args: tuple[Any, ...], memory_bytes: int) -> None:
    _limit_resources(memory_bytes)
    warnings.simplefilter("ignore")
    logging.disable(logging.CRITICAL)  # pypdf reports oddities through logging; the parent logs the outcome
    outcome: Any
    try:
        outcome = target(*args)
    except _Refusal as refusal:
        outcome = refusal.failure
    except MemoryError:
        outcome = _Failure("memory")
    except Exception as error:  # whatever a parser raises on a bad file, it is a bad file
        outcome = _Failure("damaged", detail=f"{type(error).__name__}: {error}"[:500])
    try:
        conn.send(outcome)
    except MemoryError:
        conn.send(_Failure("memory"))
    conn.close()


def _limit_resources(memory_bytes: int) -> None:
    try:
        import resource
    except ImportError:  # Windows: the timeout still applies
        return
    for limit, value in ((resource.RLIMIT_AS, memory_bytes), (resource.RLIMIT_CORE, 0)):
        try:
            soft, hard = resource.getrlimit(limit)
            if soft != resource.RLIM_INFINITY:
                value = min(value, soft)
            if hard != resource.RLIM_INFINITY:
                value = min(value, hard)
            resource.setrlimit(limit, (value, hard))
        except (ValueError, OSError):  # macOS refuses RLIMIT_AS
            pass


# --- PDF -------------------------------------------------------------------------------------------------------


def _parse_pdf(path: str, password: str | None) -> _Parsed:
    from pypdf import PasswordType, PdfReader

    reader = PdfReader(path, strict=False)
    if reader.is_encrypted and reader.decrypt("") == PasswordType.NOT_DECRYPTED:
        if not password:
            raise _Refusal("encrypted")
        if reader.decrypt(password) == PasswordType.NOT_DECRYPTED:
            raise _Refusal("encrypted", wrong_password=True)
    count = len(reader.pages)
    if count > MAX_PDF_PAGES:
        raise _Refusal("too_large", detail=f"{count} pages")
    if count == 0:
        raise _Refusal("empty")
    pages: list[list[PdfLine]] = []
    chars = skipped = 0
    for page in reader.pages:
        try:
            lines = _pdf_lines(page)
        except MemoryError:
            raise
        except Exception:  # one unreadable page (a broken font, a bad stream) should not cost the others
            skipped += 1
            lines = []
        chars += sum(len(line.text) for line in lines)
        if chars > MAX_TEXT_CHARS:
            raise _Refusal("too_much_text")
        pages.append(lines)
    if not any(line.text for lines in pages for line in lines):
        if skipped:
            raise _Refusal("damaged", detail=f"no page of {count} could be read")
        raise _Refusal("no_text")
    typical = _typical_line_length(line.text for lines in pages for line in lines if line.text)
    paragraphs = [Paragraph(text, page=number)
                  for number, lines in enumerate(pages, start=1)
                  for text in pdf_paragraphs(lines, typical)]
    return _Parsed(tuple(paragraphs), pages=count, skipped_pages=skipped)


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
        for index, piece in enumerate(_normalise(text).split("\n")):
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


# --- DOCX ------------------------------------------------------------------------------------------------------


def _check_zip(path: str) -> None:
    """Refuse a zip bomb from the sizes its directory declares, before anything is unpacked (zipfile never
    unpacks more than an entry declares, so the declared sizes bound the real ones)."""
    try:
        with zipfile.ZipFile(path) as archive:
            entries = archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError) as error:
        raise _Refusal("damaged", detail=f"not a zip: {error}") from None
    if len(entries) > MAX_ZIP_ENTRIES:
        raise _Refusal("bomb", detail=f"{len(entries)} entries")
    total = 0
    for entry in entries:
        total += entry.file_size
        ratio = entry.file_size / max(entry.compress_size, 1)
        if entry.file_size > 1024 * 1024 and ratio > MAX_COMPRESSION_RATIO:
            raise _Refusal("bomb", detail=f"{entry.filename}: {entry.file_size} bytes, packed {ratio:.0f} times")
    if total > MAX_UNPACKED_BYTES:
        raise _Refusal("bomb", detail=f"{total} bytes unpacked")


_DOCX_HEADING = re.compile(r"(heading \d|title)$", re.IGNORECASE)


def _parse_docx(path: str, _password: str | None = None) -> _Parsed:
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
            text = _clean_block(block.text)
            style = block.style.name if block.style is not None else None
            if text and style and _DOCX_HEADING.match(style):
                heading = " ".join(text.split())
            texts = [text]
        for text in texts:
            if text:
                chars += len(text)
                if chars > MAX_TEXT_CHARS:
                    raise _Refusal("too_much_text")
                paragraphs.append(Paragraph(text, heading=heading))
    if not paragraphs:
        raise _Refusal("empty")
    return _Parsed(tuple(paragraphs))


def _table_row_text(row: Any) -> str:
    """A table row as one paragraph, its cells separated by " | " (a merged cell counted once)."""
    cells: list[str] = []
    seen: list[Any] = []
    for cell in row.cells:
        if any(cell._tc is other for other in seen):
            continue
        seen.append(cell._tc)
        if text := " ".join(_clean_block(cell.text).split("\n")):
            cells.append(text)
    return " | ".join(cells)


def _clean_block(text: str) -> str:
    """One paragraph's text: normalised, no blank lines inside, stripped."""
    return "\n".join(line.rstrip() for line in _normalise(text).split("\n") if line.strip()).strip()


# --- HTML ------------------------------------------------------------------------------------------------------

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
            text = _clean_block(raw)
        else:
            text = "\n".join(" ".join(line.split()) for line in raw.split("\n") if line.strip())
        if text:
            self._add(text)

    def _add(self, text: str) -> None:
        self.chars += len(text)
        if self.chars > MAX_TEXT_CHARS:
            raise _Refusal("too_much_text")
        self.paragraphs.append(Paragraph(text, heading=self._heading))


def _parse_html(path: str, _password: str | None = None) -> _Parsed:
    data = Path(path).read_bytes()
    declared = _META_CHARSET.search(data[:4096])
    text = decode_text(data, declared.group(1).decode("ascii", "replace") if declared else None)
    if text is None:
        raise _Refusal("not_text")
    parser = _HtmlText()
    parser.feed(text)
    parser.close()
    if not parser.paragraphs:
        raise _Refusal("empty")
    return _Parsed(tuple(parser.paragraphs))
