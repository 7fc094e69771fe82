"""The child process that parses PDF, Word and web-page files, and the sentences for why it gave up.

Those parsers have to trust structure inside the file, so they run in a short-lived ``spawn`` process (like the
engine worker and the dry run) with a cap on its memory (where the OS allows one) and a wall-clock limit: a
reference loop, a zip bomb, a decompression bomb or a parser crash becomes a ``DamagedDocumentError``, never a
hung or dead app.

The limit scales with the document, so a long real one is not taken for an attack (a fixed 30 s refused a
1,000-page report): it starts from the file's size (``reading_limit_s``), and grows with the pages or paragraphs
once the parser has counted them and says so (``report_progress``), up to a hard ceiling. A parser that stops
moving (no page done for ``STALL_S``) is stopped as damaged or hostile; one still moving when the limit ends is
reading a document too large to read here, and the sentence says that, with its size.
"""

from __future__ import annotations

import logging
import math
import multiprocessing
import time
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

BASE_LIMIT_S = 30.0  # a small document of any kind, on a slow and busy machine
PER_MB_S = 2.0  # opening a large file (a PDF's cross-reference table, a Word file's XML) before anything is counted
PER_UNIT_S = {"pages": 0.25, "paragraphs": 0.01}  # about 5 times what a busy 2-core machine needs
CEILING_S = 300.0  # never more, whatever the document says about itself
STALL_S = 30.0  # no real page or paragraph takes this long
_REPORT_EVERY_S = 0.25



@dataclass(frozen=True)
class Parsed:
    paragraphs: tuple[Paragraph, ...]
    pages: int | None = None
    skipped_pages: int = 0
    warning: str | None = None


@dataclass(frozen=True)
class _Failure:
    """Why the child gave up, as data: exceptions with their own constructors do not cross a pipe well."""

    reason: str  # encrypted, no_text, empty, too_large, too_much_text, not_text, bomb, memory or damaged
    wrong_password: bool = False
    detail: str = ""  # for the log, not for people


@dataclass(frozen=True)
class _Progress:
    """From the child: ``done`` of ``total`` pages or paragraphs read."""

    done: int
    total: int
    unit: str  # "pages" or "paragraphs"


def reading_limit_s(size_bytes: int, count: int | None = None, unit: str | None = None) -> float:
    """How long reading a document of ``size_bytes`` (with ``count`` pages or paragraphs, once known) may take."""
    limit = BASE_LIMIT_S + PER_MB_S * size_bytes / 1e6
    if count is not None and unit is not None:
        limit += PER_UNIT_S.get(unit, 0.0) * count
    return min(limit, CEILING_S)


_reporter: Connection | None = None
_last_report = -math.inf


def report_progress(done: int, total: int, unit: str) -> None:
    """Called by a parser in the child as it goes (a no-op elsewhere): the first call says how large the
    document is, which sets its time limit; the later ones show it is still moving."""
    global _last_report
    if _reporter is None:
        return
    now = time.monotonic()
    if now - _last_report < _REPORT_EVERY_S:
        return
    _last_report = now
    _reporter.send(_Progress(done, total, unit))


class Refusal(Exception):
    def __init__(self, reason: str, *, wrong_password: bool = False, detail: str = "") -> None:
        super().__init__(reason)
        self.failure = _Failure(reason, wrong_password, detail)


def run_isolated(target: Callable[..., Any], args: tuple[Any, ...], *, file_name: str, kind: str,
                 timeout_s: float, memory_bytes: int = CHILD_MEMORY_BYTES,
                 limit_for: Callable[[int, str], float] | None = None, stall_s: float = STALL_S) -> Any:
    """``target(*args)`` in a fresh ``spawn`` process with at most ``memory_bytes`` of address space, and its
    result. It may take ``timeout_s`` seconds; once ``target`` reports how many pages or paragraphs there are
    (``report_progress``), ``limit_for(count, unit)`` replaces that, and ``stall_s`` without progress ends it.
    ``target`` must be importable at module level.

    Raises:
        DocumentTooLargeError: it was still reading, page after page, when its time ran out.
        DamagedDocumentError: the child took too long without progress (it is killed), died, or ran out of memory.
        DocumentError: the child's ``target`` refused the document (the matching subclass).
    """
    context = multiprocessing.get_context("spawn")
    receiver, sender = context.Pipe(duplex=False)
    process = context.Process(target=_child_main, args=(sender, target, args, memory_bytes),
                              name="hearth-document-reader", daemon=True)
    started = time.monotonic()
    try:
        process.start()
    finally:
        sender.close()
    outcome: Any = None
    progress: _Progress | None = None
    moved = started
    deadline = started + timeout_s
    answered = timed_out = stalled = False
    try:
        while True:
            stall_at = moved + stall_s if progress is not None else math.inf
            wait = min(deadline, stall_at) - time.monotonic()
            if wait <= 0:
                timed_out, stalled = True, stall_at < deadline
                break
            if not receiver.poll(wait):
                continue
            try:
                message = receiver.recv()
            except (EOFError, OSError):  # it died before answering
                break
            if isinstance(message, _Progress):
                if progress is None or message.done > progress.done:
                    moved = time.monotonic()
                if limit_for is not None and progress is None:
                    deadline = started + limit_for(message.total, message.unit)
                progress = message
                continue
            outcome, answered = message, True
            break
    finally:
        receiver.close()
        process.join(2 if answered else 0.1)
        if process.is_alive():
            process.kill()
            process.join(5)
    if not answered:
        elapsed = time.monotonic() - started
        log.warning("reading %s: the parser %s (exit code %s; %s)", file_name,
                    f"was stopped after {elapsed:.0f} s" if timed_out else "died", process.exitcode,
                    f"{progress.done} of {progress.total} {progress.unit}" if progress else "no progress reported")
        if timed_out and progress is not None and not stalled:
            raise DocumentTooLargeError(file_name, (
                f"“{file_name}” is too large to read here ({progress.total:,} {progress.unit}): Hearth had read "
                f"{progress.done:,} of them when its {elapsed:.0f} seconds for this document ran out. "
                "Split it into smaller parts, or save the part you need as a file of its own."))
        if timed_out:
            how_long = (f"no progress for {round(stall_s)} seconds at {progress.unit[:-1]} {progress.done + 1:,} "
                        f"of {progress.total:,}" if stalled and progress is not None else
                        f"over {round(deadline - started)} seconds")
            raise DamagedDocumentError(file_name, (
                f"Reading “{file_name}” took too long ({how_long}), so Hearth stopped. "
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
    global _reporter
    _reporter = conn
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


