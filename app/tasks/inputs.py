"""Turn what a person gives a task (a document, lines of text, a CSV column) into a task's passages and the
record history keeps of it; and classify results back out as CSV."""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from app.documents.document import Document
from app.errors import HearthError
from app.tasks.spec import ClassifiedText, Label, Passage

MAX_ROWS = 100_000


@dataclass(frozen=True)
class Source:
    """What a run reads, as history records it."""

    name: str
    kind: str  # "pdf", "docx", "txt", "md", "html", "pasted", "csv", "lines"
    size_bytes: int
    text: str

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()


class InputError(HearthError):
    """The texts to classify cannot be read as given."""


def passages_of(document: Document) -> tuple[Passage, ...]:
    return tuple(Passage(p.text, p.page, p.heading) for p in document.paragraphs)


def source_of(document: Document) -> Source:
    return Source(document.name, document.kind, document.size_bytes, document.text)


def rows_from_lines(text: str) -> list[str]:
    """One text per non-empty line."""
    rows = [line.strip() for line in text.splitlines() if line.strip()]
    if not rows:
        raise InputError("There is no text to classify: write one text per line.")
    return _limited(rows)


def rows_from_csv(path: Path, column: str) -> list[str]:
    """The non-empty cells of ``column`` (a header name, or a 1-based number) of a CSV file."""
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise InputError(f"“{path.name}” cannot be opened: {error.strerror or error}.") from error
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = raw.decode("cp1252", errors="replace")
    try:
        dialect: type[csv.Dialect] | csv.Dialect = csv.Sniffer().sniff(text[:8192], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    reader = csv.reader(io.StringIO(text), dialect)
    header = next(reader, None)
    if not header:
        raise InputError(f"“{path.name}” is empty.")
    names = [name.strip() for name in header]
    if column in names:
        index = names.index(column)
    elif column.isdigit() and 1 <= int(column) <= len(names):
        index = int(column) - 1
    else:
        raise InputError(f"“{path.name}” has no column “{column}”. Its columns are: {', '.join(names)}.")
    rows = [row[index].strip() for row in reader if len(row) > index and row[index].strip()]
    if not rows:
        raise InputError(f"The column “{names[index]}” of “{path.name}” has no text in it.")
    return _limited(rows)


def csv_columns(path: Path) -> list[str]:
    """The header of a CSV file, for a column picker."""
    try:
        with path.open(encoding="utf-8-sig", errors="replace", newline="") as handle:
            return [name.strip() for name in next(csv.reader(handle), [])]
    except OSError as error:
        raise InputError(f"“{path.name}” cannot be opened: {error.strerror or error}.") from error


def _limited(rows: list[str]) -> list[str]:
    if len(rows) > MAX_ROWS:
        raise InputError(f"There are {len(rows):,} texts; Hearth classifies at most {MAX_ROWS:,} at a time.")
    return rows


def rows_source(rows: Sequence[str], name: str, kind: str) -> Source:
    text = "\n".join(rows)
    return Source(name, kind, len(text.encode("utf-8")), text)


def parse_labels(text: str) -> tuple[Label, ...]:
    """Labels as a person writes them: separated by commas or one per line, each optionally followed by
    ``: description`` (on its own line only, since a description may contain commas)."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    items = lines if len(lines) > 1 else [part.strip() for part in text.split(",") if part.strip()]
    labels: list[Label] = []
    for item in items:
        name, _, description = item.partition(":") if len(lines) > 1 else (item, "", "")
        name = " ".join(name.split())
        if name and name not in [label.name for label in labels]:
            labels.append(Label(name, description.strip()))
    return tuple(labels)


def classified_csv(rows: Sequence[ClassifiedText], labels: Sequence[str]) -> str:
    """Input, chosen labels and one confidence column per label: opens in any spreadsheet."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["input", "labels", *(f"confidence {name}" for name in labels)])
    for row in rows:
        confidence = (f"{row.confidence.get(name, 0.0):.3f}" for name in labels)
        writer.writerow([row.input, "; ".join(row.labels), *confidence])
    return out.getvalue()
