"""Exports from a real history on disk, each format read back as its readers would: Markdown as text, the web page
through Python's HTML parser, the Word document through python-docx, the JSON file through Hearth's own import.
The PDF is Qt's, so its tests are under tests/ui/export."""

from __future__ import annotations

import json
from html.parser import HTMLParser
from pathlib import Path

import docx
import pytest

from app.errors import HearthError
from app.export.files import NO_PDF, NotFound, Selection, document_of, record_fields, write_export
from app.export.formats import ExportFormat
from app.export.html import markdown_html
from app.export.word import MONOSPACE
from app.history import HistoryStore, open_database
from app.paths import Paths

from tests.app.export.history import (
    ANSWER,
    LEFT_OUTPUT,
    OLD_ANSWER,
    QUESTION,
    RIGHT_OUTPUT,
    SUMMARY,
    Saved,
    saved_history,
)


@pytest.fixture
def saved(tmp_path: Path) -> Saved:
    return saved_history(tmp_path / "home")


class Page(HTMLParser):
    """The parts of a web page the tests look at: every tag with its attributes, the text, and which text sits in
    which element."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.open: list[str] = []
        self.text: list[tuple[tuple[str, ...], str]] = []
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag not in ("meta", "br", "hr", "img", "input", "link"):
            self.open.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in self.open:
            del self.open[len(self.open) - 1 - self.open[::-1].index(tag):]

    def handle_data(self, data: str) -> None:
        self.text.append((tuple(self.open), data))

    def inside(self, tag: str) -> str:
        return "".join(data for where, data in self.text if tag in where)

    def all_text(self) -> str:
        return "".join(data for where, data in self.text if "style" not in where and "title" not in where)


def test_markdown_keeps_each_message_as_written_and_only_the_branch_shown(saved: Saved, tmp_path: Path) -> None:
    exported = write_export(saved.store, Selection.conversations([saved.chat]), ExportFormat.MARKDOWN,
                            tmp_path / "chat.md")
    text = (tmp_path / "chat.md").read_text(encoding="utf-8")
    assert text.startswith("# Reading files\n\n*") and "· Qwen*" in text
    assert "*System prompt: Answer briefly.*" in text
    assert f"## You\n\n{QUESTION}\n\n## Qwen\n\n{ANSWER}\n" in text
    assert OLD_ANSWER not in text  # a version not on the branch shown stays in the JSON file only
    assert exported.sentence("chat.md") == "Wrote the conversation “Reading files” to chat.md."


def test_the_web_page_lays_out_code_and_tables_and_never_runs_what_a_message_holds(saved: Saved,
                                                                                  tmp_path: Path) -> None:
    write_export(saved.store, Selection.conversations([saved.chat, saved.other_chat]), ExportFormat.HTML,
                 tmp_path / "chats.html")
    page = Page((tmp_path / "chats.html").read_text(encoding="utf-8"))
    tags = [tag for tag, _ in page.tags]
    assert "script" not in tags and "<script>alert('gotcha')</script>" in page.all_text()
    assert not [attrs for _, attrs in page.tags if "src" in attrs] and "link" not in tags  # nothing is fetched
    assert "from pathlib import Path" in page.inside("pre")
    coloured = [attrs["style"] for tag, attrs in page.tags if tag == "span" and attrs.get("style")]
    assert any("color" in style for style in coloured)  # Pygments' colours, inline so the file keeps them
    assert page.inside("th").startswith("WaySpeed") and "open()" in page.inside("td")
    assert [attrs["href"] for tag, attrs in page.tags if tag == "a"] == [
        "https://docs.python.org/3/library/pathlib.html"]
    assert [h for h in ("Reading files", "Trip to Paris") if h in page.inside("h1")] == ["Reading files",
                                                                                        "Trip to Paris"]
    assert "Cut off at its length limit." in page.all_text() and OLD_ANSWER not in page.all_text()
    assert "@media print" in page.inside("style") and page.inside("title") == "Hearth history"


def test_markdown_from_a_model_cannot_make_a_dangerous_link_or_fetch_a_picture() -> None:
    page = Page(markdown_html("[click](javascript:alert(1)) ![tracker](https://example.com/pixel.png) "
                              "<img src=x onerror=alert(1)>"))
    assert page.tags == [("p", {}), ("a", {"href": "https://example.com/pixel.png"})]  # a link, never fetched
    assert "[click](javascript:alert(1))" in page.all_text() and "<img src=x onerror=alert(1)>" in page.all_text()


def test_the_word_document_has_headings_lists_code_and_tables(saved: Saved, tmp_path: Path) -> None:
    write_export(saved.store, Selection.conversations([saved.chat]), ExportFormat.DOCX, tmp_path / "chat.docx")
    document = docx.Document(str(tmp_path / "chat.docx"))
    paragraphs = [(p.style.name if p.style is not None else "", p.text) for p in document.paragraphs]
    assert paragraphs[0] == ("Heading 1", "Reading files") and document.core_properties.title == "Reading files"
    assert ("Normal", QUESTION) in paragraphs  # as text: Word has nothing to run
    assert ("Normal", "Use pathlib:") in paragraphs
    code = next(p for p in document.paragraphs if p.text.startswith("from pathlib"))
    assert code.text == 'from pathlib import Path\ntext = Path("notes.txt").read_text()'
    assert {run.font.name for run in code.runs} == {MONOSPACE}
    assert ("List Bullet", "first, open it") in paragraphs and ("List Bullet 2", "nested point") in paragraphs
    assert ("Normal", "See the docs (https://docs.python.org/3/library/pathlib.html).") in paragraphs
    assert [[cell.text for cell in row.cells] for row in document.tables[0].rows] == [
        ["Way", "Speed"], ["pathlib", "quick"], ["open()", "quick too"]]
    assert all(run.bold for run in document.tables[0].rows[0].cells[0].paragraphs[0].runs)
    assert not any(OLD_ANSWER in text for _, text in paragraphs)


def test_a_task_run_says_what_it_read_with_which_model_and_what_it_made(saved: Saved, tmp_path: Path) -> None:
    exported = write_export(saved.store, Selection.task_run(saved.summary_run), ExportFormat.MARKDOWN,
                            tmp_path / "run.md")
    text = (tmp_path / "run.md").read_text(encoding="utf-8")
    assert text.startswith("# Summary of “lease.pdf”\n")
    for fact in ("| Task | Summarize · Key points |", "| Input | “lease.pdf” · 48.0 KB |", "| Model | SmolLM2 |",
                 "4.2 s · 32 tokens/s · peak memory 412.0 MB"):
        assert fact in text
    assert f"## Result\n\n{SUMMARY}\n" in text
    assert exported.sentence("run.md") == "Wrote the summary of “lease.pdf” to run.md."

    write_export(saved.store, Selection.task_run(saved.labels_run), ExportFormat.DOCX, tmp_path / "labels.docx")
    document = docx.Document(str(tmp_path / "labels.docx"))
    assert document.paragraphs[0].text == "Labels for the texts typed in"
    labels = document.tables[-1]
    assert [[cell.text for cell in row.cells] for row in labels.rows] == [
        ["Text", "Labels"], ["Your gas bill is due", "bill"], ["Dear aunt Mira", "letter"]]
    facts = {row.cells[0].text: row.cells[1].text for row in document.tables[0].rows}
    assert facts["Task"] == "Classify · One label each: bill, letter" and facts["Model"] == "SmolLM2"


def test_a_comparison_shows_the_prompt_each_answer_the_figures_and_the_verdict(saved: Saved,
                                                                               tmp_path: Path) -> None:
    write_export(saved.store, Selection.comparison(saved.comparison), ExportFormat.HTML, tmp_path / "c.html")
    page = Page((tmp_path / "c.html").read_text(encoding="utf-8"))
    text = page.all_text()
    assert page.inside("h1") == "Chat prompt comparison: Capital of France"
    assert "What is the capital of France?" in page.inside("pre")
    assert LEFT_OUTPUT in text and RIGHT_OUTPUT in text and "Verdict: Better: Gemma" in text
    assert "55.5 tokens/s" in page.inside("td") and "Speed" in page.inside("th")
    assert "16 GB of memory" in page.inside("li")

    write_export(saved.store, Selection.comparison(saved.comparison), ExportFormat.DOCX, tmp_path / "c.docx")
    document = docx.Document(str(tmp_path / "c.docx"))
    headings = [p.text for p in document.paragraphs if p.style is not None and p.style.name == "Heading 3"]
    assert headings == ["Qwen", "Gemma"]
    figures = [[cell.text for cell in row.cells] for row in document.tables[0].rows]
    assert figures[0] == ["", "Qwen", "Gemma"] and ["Speed", "42.0 tokens/s", "55.5 tokens/s"] in figures


def test_everything_is_every_conversation_run_and_comparison(saved: Saved, tmp_path: Path) -> None:
    exported = write_export(saved.store, Selection.everything(), ExportFormat.MARKDOWN, tmp_path / "all.md")
    text = (tmp_path / "all.md").read_text(encoding="utf-8")
    titles = [line for line in text.splitlines() if line.startswith("# ")]
    assert titles == ["# Reading files", "# Trip to Paris", "# Summary of “lease.pdf”",
                      "# Labels for the texts typed in", "# Chat prompt comparison: Capital of France"]
    assert "· Gemma · in “Travel”*" in text  # the folder a conversation is in
    assert exported.sentence("all.md") == "Wrote 2 conversations, 2 task runs and 1 comparison to all.md."


def test_the_json_file_is_the_history_file_and_reads_back(saved: Saved, tmp_path: Path) -> None:
    write_export(saved.store, Selection.everything(), ExportFormat.JSON, tmp_path / "all.json")
    other = HistoryStore(open_database(Paths.under(tmp_path / "other").ensure().database))
    imported = other.import_file(tmp_path / "all.json")
    assert (imported.conversations, imported.task_runs, imported.comparisons) == (2, 2, 1)

    write_export(saved.store, Selection.task_run(saved.summary_run), ExportFormat.JSON, tmp_path / "run.json")
    one = json.loads((tmp_path / "run.json").read_text(encoding="utf-8"))
    assert (one["conversations"], len(one["task_runs"]), one["comparisons"]) == ([], 1, [])
    assert HistoryStore(open_database(Paths.under(tmp_path / "third").ensure().database)) \
        .import_file(tmp_path / "run.json").task_runs == 1


def test_one_run_or_comparison_is_written_as_the_whole_history_file_has_it(saved: Saved) -> None:
    everything = saved.store.export()
    assert document_of(saved.store, Selection.task_run(saved.summary_run))["task_runs"] == [
        run for run in everything["task_runs"] if run["id"] == saved.summary_run]
    assert document_of(saved.store, Selection.comparison(saved.comparison))["comparisons"] == \
        everything["comparisons"]
    assert record_fields(saved.store.get_task_run(saved.labels_run))["status"] == "done"


def test_what_is_not_in_the_history_is_said_so(saved: Saved, tmp_path: Path) -> None:
    with pytest.raises(NotFound, match=r"^No conversation with the id 7, 99\.$"):
        write_export(saved.store, Selection.conversations([saved.chat, 99, 7]), ExportFormat.HTML, tmp_path / "x")
    saved.store.delete_task_run(saved.summary_run)  # waiting for its Undo: not exported
    with pytest.raises(NotFound, match=r"^That task run is no longer in the history\.$"):
        write_export(saved.store, Selection.task_run(saved.summary_run), ExportFormat.MARKDOWN, tmp_path / "x")
    with pytest.raises(NotFound, match=r"^That comparison is no longer in the history\.$"):
        write_export(saved.store, Selection.comparison(1234), ExportFormat.MARKDOWN, tmp_path / "x")
    assert not (tmp_path / "x").exists()


def test_a_file_that_cannot_be_written_is_named_and_nothing_half_written_is_left(saved: Saved,
                                                                                 tmp_path: Path) -> None:
    with pytest.raises(HearthError, match=r"^Hearth could not save “chat\.docx” in .*missing"):
        write_export(saved.store, Selection.everything(), ExportFormat.DOCX, tmp_path / "missing" / "chat.docx")
    with pytest.raises(HearthError) as refused:
        write_export(saved.store, Selection.everything(), ExportFormat.PDF, tmp_path / "all.pdf")
    assert str(refused.value) == NO_PDF and list(tmp_path.glob("*.pdf")) == []


def test_an_empty_history_exports_a_page_that_says_so(tmp_path: Path) -> None:
    store = HistoryStore(open_database(Paths.under(tmp_path / "home").ensure().database))
    exported = write_export(store, Selection.everything(), ExportFormat.MARKDOWN, tmp_path / "all.md")
    assert "Nothing to show: the history has no conversations yet." in (tmp_path / "all.md").read_text("utf-8")
    assert exported.sentence("all.md") == "Wrote 0 conversations, 0 task runs and 0 comparisons to all.md."


@pytest.mark.parametrize("name", ["notes.MD", "a.html", "b.docx", "c.pdf", "d.json"])
def test_a_file_name_says_its_format(name: str) -> None:
    assert ExportFormat.of_path(Path(name)) is ExportFormat(name.rsplit(".", 1)[1].lower())
    assert ExportFormat.of_path(Path("notes.txt")) is None
