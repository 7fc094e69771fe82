"""The child process that parses PDF, Word and web-page files, and the sentences for why it gave up.

Those parsers have to trust structure inside the file, so they run in a short-lived ``spawn`` process (like the
engine worker and the dry run) with a cap on its memory (where the OS allows one) and a wall-clock timeout: a
reference loop, a zip bomb, a decompression bomb or a parser crash becomes a ``DamagedDocumentError``, never a
hung or dead app.
"""

from __future__ import annotations

import logging
import multiprocessing
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from app.documents.document import MAX_PDF_PAGES, MAX_TEXT_CHARS, Paragraph
from app.errors import (
    DamagedDocumentError,
    DocumentError,
    DocumentTooLargeError,
    EmptyDocumentError,
    EncryptedDocumentError,
    NoTextLayerError,
)

log = logging.getLogger(__name__)

CHILD_MEMORY_BYTES = 1536 * 1024 * 1024



@dataclass(frozen=True)
class Parsed:
    paragraphs: tuple[Paragraph, ...]
    pages: int | None = None
    skipped_pages: int = 0


@dataclass(frozen=True)
class _Failure:
    """Why the child gave up, as data: exceptions with their own constructors do not cross a pipe well."""

    reason: str  # encrypted, no_text, empty, too_large, too_much_text, not_text, bomb, memory or damaged
    wrong_password: bool = False
    detail: str = ""  # for the log, not for people


class Refusal(Exception):
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
    except Refusal as refusal:
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


