"""An export written to a file: what was chosen (``Selection``) is read from the history as Hearth's history file
(``app.history.exchange``), made into the chosen format, and written whole or not at all (a temporary file renamed
over the target, ``app.tasks.export.write_atomically``).

Every format starts from that one document, so a Word file and a JSON file of the same choice say the same. The PDF
is the HTML page set by Qt's own PDF writer, which the core cannot import: the window and ``ui/entry.py`` hand in
``make_pdf``.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import Enum, StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.errors import HearthError, HistoryError
from app.export.formats import ExportFormat
from app.words import plural

if TYPE_CHECKING:
    from app.history import ComparisonRecord, HistoryStore, TaskRunRecord

PdfMaker = Callable[[str, str], bytes]  # (the HTML page, its title) -> a PDF file, by Qt's writer (ui/export/pdf.py)

NO_PDF = ("Hearth cannot write a PDF here: that needs Qt, the window's toolkit, which did not start. Export a web "
          "page (HTML) and print it to PDF from a browser, or a Word document.")


class Scope(StrEnum):
    CONVERSATIONS = "conversations"
    FOLDER = "folder"  # its conversations when the export is written
    EVERYTHING = "everything"  # every conversation, task run and comparison
    TASK_RUN = "task_run"
    COMPARISON = "comparison"


class NotFound(HistoryError):
    """What was chosen is not in the history (any more): the message says which."""


@dataclass(frozen=True)
class Selection:
    """What to export. A folder is the conversations in it when the export is written (its id in ``ids``)."""

    scope: Scope
    ids: tuple[int, ...] = ()

    @classmethod
    def conversations(cls, ids: Iterable[int]) -> Selection:
        return cls(Scope.CONVERSATIONS, tuple(dict.fromkeys(ids)))

    @classmethod
    def folder(cls, folder_id: int) -> Selection:
        return cls(Scope.FOLDER, (folder_id,))

    @classmethod
    def everything(cls) -> Selection:
        return cls(Scope.EVERYTHING)

    @classmethod
    def task_run(cls, run_id: int) -> Selection:
        return cls(Scope.TASK_RUN, (run_id,))

    @classmethod
    def comparison(cls, comparison_id: int) -> Selection:
        return cls(Scope.COMPARISON, (comparison_id,))


@dataclass(frozen=True)
class Exported:
    path: Path
    format: ExportFormat
    title: str  # the file's: of the one item in it, or "Hearth history"
    what: str  # "3 conversations", "the summary of “lease.pdf”"

    def sentence(self, where: str) -> str:
        """"Wrote 3 conversations to ``where``." (the command line gives the path, the window the file's name)."""
        return f"Wrote {self.what} to {where}."


def write_export(store: HistoryStore, selection: Selection, fmt: ExportFormat, path: Path, *,
                 make_pdf: PdfMaker | None = None) -> Exported:
    """Writes ``selection`` as ``fmt`` to ``path``; slow for a large history, so the window calls it off its thread.

    Raises:
        NotFound: a conversation, run or comparison chosen is not in the history.
        HearthError: the file cannot be written (a sentence that names it), or a PDF is asked for without
            ``make_pdf``.
    """
    from app.tasks.export import write_atomically

    document = document_of(store, selection)
    data, title = render(document, fmt, make_pdf=make_pdf)
    write_atomically(path, lambda handle: handle.write(data))
    return Exported(path, fmt, title, _what(selection, document, title))


def paper_page(store: HistoryStore, selection: Selection) -> tuple[str, str]:
    """The HTML page to print ``selection`` from (Qt sets it on the printer's pages), and its title."""
    from app.export.content import readable
    from app.export.html import html_page

    text = readable(document_of(store, selection))
    return html_page(text, paper=True), text.title


def document_of(store: HistoryStore, selection: Selection) -> dict[str, Any]:
    """Hearth's history file holding exactly what ``selection`` names."""
    if selection.scope is Scope.EVERYTHING:
        return store.export(None, tasks_and_comparisons=True)
    if selection.scope is Scope.FOLDER:
        ids = store.conversation_ids(selection.ids[0])
        if not ids:
            raise NotFound("That folder has no conversations to export.")
        selection = Selection.conversations(ids)
    document = store.export(list(selection.ids) if selection.scope is Scope.CONVERSATIONS else [],
                            tasks_and_comparisons=False)
    if selection.scope is Scope.CONVERSATIONS:
        missing = sorted(set(selection.ids) - {c["id"] for c in document["conversations"]})
        if missing:
            raise NotFound(f"No conversation with the id {', '.join(str(i) for i in missing)}.")
    elif selection.scope is Scope.TASK_RUN:
        run = _alive(store.get_task_run, selection.ids[0], "That task run is no longer in the history.")
        document["task_runs"] = [record_fields(run)]
    else:
        comparison = _alive(store.get_comparison, selection.ids[0], "That comparison is no longer in the history.")
        document["comparisons"] = [{**record_fields(comparison),
                                    "entries": [record_fields(entry) for entry in comparison.entries]}]
    return document


def render(document: dict[str, Any], fmt: ExportFormat, *, make_pdf: PdfMaker | None = None) -> tuple[bytes, str]:
    """The file's bytes, and the title the readable formats give it."""
    from app.export.content import readable

    text = readable(document)
    if fmt is ExportFormat.JSON:
        return json.dumps(document, indent=2, ensure_ascii=False).encode("utf-8") + b"\n", text.title
    if fmt is ExportFormat.MARKDOWN:
        from app.export.markdown import markdown_text

        return markdown_text(text).encode("utf-8"), text.title
    if fmt is ExportFormat.DOCX:
        from app.export.word import word_bytes

        return word_bytes(text), text.title
    from app.export.html import html_page

    if fmt is ExportFormat.HTML:
        return html_page(text).encode("utf-8"), text.title
    if make_pdf is None:
        raise HearthError(NO_PDF)
    return make_pdf(html_page(text, paper=True), text.title), text.title


def record_fields(record: TaskRunRecord | ComparisonRecord | Any) -> dict[str, Any]:
    """A task run, a comparison or one of its entries as the history file has it (``app.history.exchange``): its
    fields with times in ISO 8601, without its deletion time or its children."""
    out: dict[str, Any] = {}
    for field in dataclasses.fields(record):
        if field.name in ("deleted_at", "entries"):
            continue
        value = getattr(record, field.name)
        out[field.name] = value.isoformat() if isinstance(value, datetime) else \
            value.value if isinstance(value, Enum) else value
    return out


def _alive(get: Callable[[int], Any], item_id: int, missing: str) -> Any:
    try:
        record = get(item_id)
    except HistoryError as error:
        raise NotFound(missing) from error
    if record.deleted_at is not None:
        raise NotFound(missing)
    return record


def _what(selection: Selection, document: dict[str, Any], title: str) -> str:
    conversations = document["conversations"]
    if selection.scope is Scope.EVERYTHING:
        return (f"{plural(len(conversations), 'conversation')}, {plural(len(document['task_runs']), 'task run')} "
                f"and {plural(len(document['comparisons']), 'comparison')}")
    if selection.scope is Scope.TASK_RUN:
        return f"the {title[:1].lower()}{title[1:]}"  # "the summary of “lease.pdf”"
    if selection.scope is Scope.COMPARISON:
        return f"the comparison “{document['comparisons'][0]['title']}”"
    if len(conversations) == 1:
        return f"the conversation “{conversations[0]['title']}”"
    return plural(len(conversations), "conversation")
