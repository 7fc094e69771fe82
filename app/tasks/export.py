"""A task's result as people take it away: text to copy, and files (Markdown, plain text, Word, CSV).

Files are written to a temporary file beside the target and renamed over it, so an interrupted save (a full
disk, a crash) never leaves half a file under the name the person chose. Word files are built with
python-docx from the result's light Markdown: ``#`` headings become Word headings, ``-`` and ``1.`` lines
become list items, ``**bold**`` and ``*italic*`` become formatted runs, and everything else a paragraph.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.errors import HearthError
from app.tasks.inputs import classified_csv
from app.tasks.spec import ClassifiedText, KeyPoint, TaskResult
from app.words import document_trimmed

SAVE_SUFFIXES = (".md", ".txt", ".docx")

_BULLET = re.compile(r"^(\s*)(?:[-*•+])\s+(.*\S)\s*$")
_NUMBERED = re.compile(r"^(\s*)\d{1,3}[.)]\s+(.*\S)\s*$")
_HEADING = re.compile(r"^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
_INLINE = re.compile(r"(\*\*[^*\n]+\*\*|__[^_\n]+__|\*[^*\n]+\*|_[^_\n]+_)")


class ExportError(HearthError):
    """A result could not be saved; the message names the file and says why."""


def result_text(result: TaskResult, link: Callable[[KeyPoint], str] | None = None) -> str:
    """What Copy and Save give for a result: a classification as tab-separated lines (label, text), anything
    else as its Markdown text, each key point (a list item, or a sentence when the model wrote paragraphs)
    followed by where it came from.

    Args:
        link: how to write a key point's source; by default " (pages 5–7)". The window passes one that makes
            a clickable link to the part.
    """
    if result.task == "classify":
        return "\n".join(f"{', '.join(row.labels) or '(none)'}\t{row.input}" for row in result.rows)
    if not result.points:
        return result.text
    write = link or (lambda point: f" ({point.location})")
    text, pieces, cursor = result.text, [], 0
    for point in result.points:  # in the order they are written, each found after the one before
        at = text.find(point.text, cursor)
        if at < 0:
            continue
        end = at + len(point.text)
        pieces += [text[cursor:end], write(point)]
        cursor = end
    pieces.append(text[cursor:])
    return "".join(pieces)


FIRST_MESSAGE_SHARE = 0.5  # of the context left after the answer's room: the rest is for the questions after it
TOKEN_MARGIN = 0.9  # tokens are estimated from the document's own characters per token: keep a tenth in hand


@dataclass(frozen=True)
class ChatStart:
    """The first message of a conversation about a result, and what to tell the person about it."""

    message: str
    note: str = ""  # the document was cut, left out, or not kept: "" when the message carries all of it


def written_as_list(text: str) -> bool:
    """Whether a summary is a list (its key points are its items) rather than paragraphs (its sentences)."""
    return any(_BULLET.match(line) or _NUMBERED.match(line) for line in text.splitlines())


def chat_start(task: str, source: str, text: str, options: str = "", *, document: str | None = None,
               context_length: int = 4096, max_tokens: int = 512, system_prompt: str = "",
               chars_per_token: float = 4.0) -> ChatStart:
    """The first message of a conversation about a result: the result, and the document it was made from, so
    the chat can answer about the document (a summary alone cannot say what it left out). The person sees in the
    chat exactly what the model is given.

    The message takes at most half of what the context holds besides the answer and the system prompt (the
    questions after it need room, and the oldest turn is the first left out when a conversation outgrows its
    context); a document longer than that is cut at a paragraph or a sentence, and the message says so.

    Args:
        source: the input in words: "“report.pdf”" for a file, "the pasted text" for text.
        document: the document's text; None when history did not keep it.
        context_length, max_tokens, system_prompt: those the chat will answer with.
        chars_per_token: the document's characters per token with the model (from the run's token count).
    """
    about = f" ({options})" if options else ""
    if task == "classify":  # the texts are in the result itself
        return ChatStart(f"Labels for {source}{about}, one text per line: its label, a tab, then the text."
                         f"\n\n{text}\n\nPlease read these results; I will ask you questions about them.")
    what = "Translation" if task == "translate" else "Summary"
    head = f"{what} of {source}{about}:\n\n{text}\n\n"
    if document is None:
        return ChatStart(f"{head}Please read this {what.lower()}; I will ask you questions about it.",
                         "The document's text was not kept in history, so the chat has the result only.")
    whole = document.strip()
    introduce = "The original:" if task == "translate" else "The document it summarizes:"
    close = f"Please read the document and its {what.lower()}; I will ask you questions about them."
    answer_room = min(max_tokens, context_length // 2)
    room = (context_length - answer_room) * FIRST_MESSAGE_SHARE - len(system_prompt) / chars_per_token
    room_chars = int(room * chars_per_token * TOKEN_MARGIN) - len(head) - len(introduce) - len(close) - 200
    kept = _cut(whole, room_chars)
    if len(kept) == len(whole):
        return ChatStart(f"{head}{introduce}\n\n{whole}\n\n{close}")
    note = document_trimmed(len(kept.split()), len(whole.split()))
    if not kept:
        return ChatStart(f"{head}Please read this {what.lower()}; I will ask you questions about it.", note)
    return ChatStart(f"{head}{introduce}\n\n{kept}\n\n[{note}]\n\n{close}", note)


def _cut(text: str, chars: int) -> str:
    """The start of ``text`` in at most ``chars`` characters, ending with a paragraph, or else a sentence, or else
    a word."""
    if len(text) <= chars:
        return text
    if chars <= 0:
        return ""
    head = text[:chars]
    for end in (head.rfind("\n\n"), max(head.rfind(". "), head.rfind(".\n")) + 1, head.rfind(" ")):
        if end > chars // 2:
            return head[:end].rstrip()
    return head.rstrip()


def save_text(path: Path | str, text: str, title: str | None = None) -> Path:
    """Save ``text`` (light Markdown) as a Markdown, plain text or Word file, chosen by the suffix of ``path``.

    ``title``, when given, opens the file as its heading (a Markdown ``#`` line, a first line in plain text,
    Word's Title style).

    Raises:
        ExportError: the suffix is not .md, .txt or .docx, or the file cannot be written.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in SAVE_SUFFIXES:
        raise ExportError(f"Hearth cannot save “{path.name}”: choose a name ending in .md, .txt or .docx.")
    if suffix == ".docx":
        write_atomically(path, lambda handle: _docx(text, title).save(handle))
        return path
    body = text.strip() + "\n"
    if title and suffix == ".md" and not _HEADING.match(body.splitlines()[0] if body.strip() else ""):
        body = f"# {title}\n\n{body}"
    elif title and suffix == ".txt":
        body = f"{title}\n\n{body}"
    data = body.encode("utf-8")
    write_atomically(path, lambda handle: handle.write(data))
    return path


def save_csv(path: Path | str, rows: Sequence[ClassifiedText], labels: Sequence[str]) -> Path:
    """Classification results as CSV (UTF-8 with a byte-order mark, so spreadsheet apps read accents right).

    Raises:
        ExportError: the file cannot be written.
    """
    path = Path(path)
    data = classified_csv(rows, labels).encode("utf-8-sig")
    write_atomically(path, lambda handle: handle.write(data))
    return path


def write_atomically(path: Path, write: Callable[[Any], object]) -> None:
    folder = path.parent
    try:
        descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=folder)
    except OSError as error:
        raise ExportError(f"Hearth could not save “{path.name}” in {folder}: {error.strerror or error}.") from None
    try:
        with os.fdopen(descriptor, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        with contextlib.suppress(OSError):  # a temporary file is private; the saved one is an ordinary file
            os.chmod(temporary, path.stat().st_mode & 0o777 if path.exists() else 0o644)
        os.replace(temporary, path)
    except OSError as error:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise ExportError(f"Hearth could not save “{path.name}”: {error.strerror or error}.") from None
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def _docx(text: str, title: str | None) -> Any:
    import docx

    document = docx.Document()
    if title:
        document.add_heading(title, level=0)
    paragraph_lines: list[str] = []

    def flush() -> None:
        if paragraph_lines:
            _add_runs(document.add_paragraph(), " ".join(line.strip() for line in paragraph_lines))
            paragraph_lines.clear()

    for line in text.splitlines():
        if not line.strip():
            flush()
        elif heading := _HEADING.match(line):
            flush()
            document.add_heading(_plain(heading.group(2)), level=len(heading.group(1)))
        elif item := _BULLET.match(line) or _NUMBERED.match(line):
            flush()
            nested = len(item.group(1).expandtabs(4)) >= 2
            style = ("List Bullet" if _BULLET.match(line) else "List Number") + (" 2" if nested else "")
            _add_runs(document.add_paragraph(style=style), item.group(2))
        else:
            paragraph_lines.append(line)
    flush()
    return document


def _add_runs(paragraph: Any, text: str) -> None:
    for piece in _INLINE.split(text):
        if not piece:
            continue
        if piece[:2] in ("**", "__") and piece[-2:] == piece[:2] and len(piece) > 4:
            paragraph.add_run(piece[2:-2]).bold = True
        elif piece[0] in "*_" and piece[-1] == piece[0] and len(piece) > 2:
            paragraph.add_run(piece[1:-1]).italic = True
        else:
            paragraph.add_run(piece)


def _plain(text: str) -> str:
    return _INLINE.sub(lambda match: match.group(0).strip("*_"), text)

