"""Reading a document: the one way in for a file (``read_document``) or pasted text (``document_from_text``).

Plain text and Markdown are read in this process (the file size limit bounds them); PDF, Word and web pages
go to their format's parser in the isolated child process (``isolated``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from pathlib import Path

from app.documents.document import MAX_FILE_BYTES, MAX_TEXT_CHARS, PASTED_NAME, Document, Paragraph
from app.documents.isolated import Parsed, reading_limit_s, run_isolated
from app.documents.pdf import parse_pdf
from app.documents.text import decode_text, garbled_warning, markdown_paragraphs, normalise, text_paragraphs
from app.documents.web_page import parse_web_page
from app.documents.word import parse_word
from app.errors import (
    DamagedDocumentError,
    DocumentError,
    DocumentNotFoundError,
    DocumentTooLargeError,
    EmptyDocumentError,
    UnsupportedDocumentError,
)
from app.words import format_bytes

log = logging.getLogger(__name__)

_KINDS = {".txt": "txt", ".md": "md", ".markdown": "md", ".pdf": "pdf", ".docx": "docx", ".html": "html",
          ".htm": "html"}
_KIND_LABELS = {"txt": "text", "md": "Markdown", "pdf": "PDF", "docx": "Word", "html": "web pages"}

SUPPORTED_SUFFIXES: tuple[str, ...] = tuple(_KINDS)
FILE_DIALOG_FILTER = "Documents (" + " ".join(f"*{suffix}" for suffix in SUPPORTED_SUFFIXES) + ")"



def read_document(path: Path | str, *, password: str | None = None, timeout_s: float | None = None) -> Document:
    """Read the text of the document at ``path``.

    Blocks for up to its time limit (plus a moment to start the parser process): call it off the GUI thread.

    Args:
        path: a file whose suffix is one of :data:`SUPPORTED_SUFFIXES` (any case).
        password: the password of an encrypted PDF; ignored for other files.
        timeout_s: how long parsing a PDF, Word file or web page may take before it is stopped; by default a
            limit that grows with the file's size and its pages or paragraphs (``isolated.reading_limit_s``).

    Raises:
        UnsupportedDocumentError: not a supported type (by its name, or a legacy or protected Word file).
        DocumentNotFoundError: there is no such file.
        DocumentTooLargeError: over :data:`MAX_FILE_BYTES`, more text than :data:`MAX_TEXT_CHARS`, more
            pages than :data:`MAX_PDF_PAGES`, or more than can be read within the time limit.
        EmptyDocumentError: no text in it.
        EncryptedDocumentError: the PDF needs a password, or ``password`` is wrong.
        NoTextLayerError: a PDF whose pages are only images.
        DamagedDocumentError: corrupt, not what its name says, hostile, too slow, or the parser died.
        DocumentError: any other reason the file cannot be opened (a folder, no permission).
    """
    if timeout_s is not None and timeout_s <= 0:
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
        return _document(name, kind, paragraphs, size, None, garbled_warning(name, text))

    _check_magic(name, kind, head, path)
    parsers: dict[str, Callable[[str, str | None], Parsed]] = {
        "pdf": parse_pdf, "docx": parse_word, "html": parse_web_page}
    parser = parsers[kind]
    if timeout_s is None:
        parsed = run_isolated(parser, (str(path), password), file_name=name, kind=kind,
                              timeout_s=reading_limit_s(size),
                              limit_for=lambda count, unit: reading_limit_s(size, count, unit))
    else:
        parsed = run_isolated(parser, (str(path), password), file_name=name, kind=kind, timeout_s=timeout_s)
    if parsed.skipped_pages:
        log.warning("%s: skipped %d page(s) whose text could not be read", name, parsed.skipped_pages)
    return _document(name, kind, parsed.paragraphs, size, parsed.pages, parsed.warning)


def document_from_text(text: str, name: str = PASTED_NAME) -> Document:
    """A document from pasted text. Markdown headings in it are recognised, as in a ``.md`` file.

    Raises:
        EmptyDocumentError: nothing but white space.
        DocumentTooLargeError: more than :data:`MAX_TEXT_CHARS` characters.
    """
    _check_text_size(name, len(text))
    encoded = text.encode("utf-8", "replace")  # a lone surrogate from a clipboard becomes "?"
    paragraphs = markdown_paragraphs(normalise(encoded.decode("utf-8")))
    if not paragraphs:
        raise EmptyDocumentError(name, "There is no text to work with: the pasted text is empty."
                                 if name == PASTED_NAME else f"“{name}” has no text in it.")
    return Document(name=name, kind="pasted", paragraphs=tuple(paragraphs), size_bytes=len(encoded), pages=None)


def _document(name: str, kind: str, paragraphs: Iterable[Paragraph], size: int, pages: int | None,
              warning: str | None) -> Document:
    paragraphs = tuple(paragraphs)
    if not paragraphs:
        raise EmptyDocumentError(name)
    if warning:
        log.warning("%s: %s", name, warning)
    return Document(name=name, kind=kind, paragraphs=paragraphs, size_bytes=size, pages=pages, warning=warning)


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


