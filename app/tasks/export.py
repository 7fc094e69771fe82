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
from pathlib import Path
from typing import Any

from app.errors import HearthError
from app.tasks.inputs import classified_csv
from app.tasks.spec import ClassifiedText, KeyPoint, TaskResult

SAVE_SUFFIXES = (".md", ".txt", ".docx")

_BULLET = re.compile(r"^(\s*)(?:[-*•+])\s+(.*\S)\s*$")
_NUMBERED = re.compile(r"^(\s*)\d{1,3}[.)]\s+(.*\S)\s*$")
_HEADING = re.compile(r"^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
_INLINE = re.compile(r"(\*\*[^*\n]+\*\*|__[^_\n]+__|\*[^*\n]+\*|_[^_\n]+_)")
_POINT_LINE = re.compile(r"^\s*(?:[-*•]|\d+[.)])\s+\S")


class ExportError(HearthError):
    """A result could not be saved; the message names the file and says why."""


def result_text(result: TaskResult, link: Callable[[KeyPoint], str] | None = None) -> str:
    """What Copy and Save give for a result: a classification as tab-separated lines (label, text), anything
    else as its Markdown text, each key point followed by where it came from.

    Args:
        link: how to write a key point's source; by default " (pages 5–7)". The window passes one that makes
            a clickable link to the part.
    """
    if result.task == "classify":
        return "\n".join(f"{', '.join(row.labels) or '(none)'}\t{row.input}" for row in result.rows)
    if not result.points:
        return result.text
    write = link or (lambda point: f" ({point.location})")
    points = iter(result.points)
    lines = []
    for line in result.text.splitlines():
        point = next(points, None) if _POINT_LINE.match(line) else None
        lines.append(line.rstrip() + write(point) if point is not None else line)
    return "\n".join(lines)


def chat_message(task: str, source: str, text: str, options: str = "") -> str:
    """The first message of a conversation about a result: the result itself, said to be one, so the person
    sees in the chat exactly what the model was given, and can ask about it.

    Args:
        source: the input in words: "“report.pdf”" for a file, "the pasted text" for text.
    """
    about = f" ({options})" if options else ""
    if task == "classify":
        return (f"Labels for {source}{about}, one text per line: its label, a tab, then the text."
                f"\n\n{text}\n\nPlease read these results; I will ask you questions about them.")
    what = "Translation" if task == "translate" else "Summary"
    return (f"{what} of {source}{about}:\n\n{text}\n\nPlease read this {what.lower()}; I will ask you "
            "questions about it.")


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

