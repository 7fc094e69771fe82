"""A task's input from the form the Tasks and Compare pages both show: a document or a table (dropped or opened),
or the texts written in the box, with the task's options.

The rules live here once: what stops a run ("Choose the column that holds the texts"), and how what was given becomes
the task's passages and the record history keeps of it. The pages read the form off their widgets on the GUI thread
(``FormInput``) and call ``build`` off it: parsing a long pasted text takes a while.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from app.documents.document import PASTED_NAME, Document
from app.documents.reader import document_from_text
from app.errors import HearthError
from app.tasks import inputs
from app.tasks.inputs import Source
from app.tasks.spec import Classify, Passage, TaskInput, TaskKind, Translate
from app.words import plural

TYPED_NAME = "Typed texts"  # what history calls texts to classify written in the box


@dataclass(frozen=True)
class FormInput:
    """What the form holds, read off its widgets."""

    task: str  # "summarize", "translate" or "classify"
    kind: TaskKind  # the task with its options
    text: str = ""  # the text box, when no file is chosen
    document: Document | None = None  # an opened document
    table: str | None = None  # the name of an opened table (a CSV file), read a column at a time…
    rows: list[str] | None = None  # …and the chosen column's texts, once read
    reading: str | None = None  # the name of a file still being read


@dataclass(frozen=True)
class BuiltInput:
    """A run's input: the task, what history records of its input, and the input in words."""

    task: TaskInput
    source: Source
    whole: str  # "38 pages", "12 paragraphs", "40 texts"
    pages: int | None


def title_of(document: Document) -> str:
    """What the prompts call the document."""
    return Path(document.name).stem if document.name != PASTED_NAME else "the text"


def size_words(document: Document) -> str:
    """"38 pages" for a PDF, "12 paragraphs" otherwise."""
    if document.pages:
        return plural(document.pages, "page")
    return plural(len(document.paragraphs), "paragraph")


def reading_blocker(form: FormInput) -> str:
    return f"Reading “{form.reading}”…" if form.reading else ""


def options_blocker(kind: TaskKind) -> str:
    """Why the task's options cannot run ("" when they can)."""
    if isinstance(kind, Classify) and len(kind.labels) < 2:
        return "Write at least two labels to choose from, one per line."
    if isinstance(kind, Translate) and kind.source == kind.target:
        return f"The text is already in {kind.target}: choose another language to translate it into."
    return ""


def input_blocker(form: FormInput) -> str:
    """Why what was given cannot be read as the task's input, as far as the form tells without parsing it ("" when
    nothing stops it; parsing may still find it empty or too long)."""
    classify = isinstance(form.kind, Classify)
    if form.table is not None:
        if not classify:
            return (f"“{form.table}” is a table: choose Classify to label its rows, or open a document to "
                    f"{form.task} it.")
        return "" if form.rows is not None else "Choose the column that holds the texts."
    if form.document is None and not form.text.strip():
        return ("Write one text per line in the box, or open a CSV file." if classify
                else "Open a document, drop one here, or write or paste some text.")
    return ""


def build(form: FormInput) -> BuiltInput | str:
    """The input a run would read, or why there is none (in words for the person)."""
    why = reading_blocker(form) or options_blocker(form.kind) or input_blocker(form)
    if why:
        return why
    kind = form.kind
    try:
        if form.table is not None:
            assert isinstance(kind, Classify) and form.rows is not None
            return _rows(kind, form.rows, form.table, "csv")
        if form.document is not None:
            document = form.document
        else:
            if isinstance(kind, Classify):
                return _rows(kind, inputs.rows_from_lines(form.text), TYPED_NAME, "lines")
            document = document_from_text(form.text)
        if isinstance(kind, Classify):
            return _rows(kind, inputs.rows_from_lines(document.text), document.name, "lines")
    except HearthError as error:
        return str(error)
    task = TaskInput(kind, inputs.passages_of(document), title=title_of(document))
    return BuiltInput(task, inputs.source_of(document), size_words(document), document.pages)


def _rows(kind: Classify, rows: list[str], name: str, source_kind: str) -> BuiltInput:
    task = TaskInput(kind, tuple(Passage(row) for row in rows), title=name)
    return BuiltInput(task, inputs.rows_source(rows, name, source_kind), plural(len(rows), "text"), None)
