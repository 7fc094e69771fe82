"""Saving task results: Markdown, plain text, Word (read back with python-docx) and CSV, written atomically."""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path

import docx
import pytest

from app.errors import HearthError
from app.tasks.export import ExportError, chat_message, result_text, save_csv, save_text
from app.tasks.spec import ClassifiedText, KeyPoint, TaskResult

SUMMARY = """# Main findings

The report looks at **three** years of *rainfall*.

- Rain fell less in summer
- Rivers ran low in **August**
  - two of them dried up
1. First numbered
2. Second numbered

A closing paragraph
that spans two lines."""


def test_markdown_gets_the_title_as_its_heading(tmp_path: Path) -> None:
    path = save_text(tmp_path / "summary.md", "Some text.", "Summary of “report.pdf”")
    assert path.read_text(encoding="utf-8") == "# Summary of “report.pdf”\n\nSome text.\n"
    save_text(path, SUMMARY, "Ignored: the text has its own heading")
    assert path.read_text(encoding="utf-8") == SUMMARY + "\n"


def test_plain_text_starts_with_the_title(tmp_path: Path) -> None:
    path = save_text(tmp_path / "résumé.TXT", "Line one.\nLine two.", "Translation")
    assert path.read_text(encoding="utf-8") == "Translation\n\nLine one.\nLine two.\n"
    if os.name == "posix":
        assert path.stat().st_mode & 0o777 == 0o644  # an ordinary file, not the temporary file's private mode


def test_word_file_has_headings_lists_and_formatting(tmp_path: Path) -> None:
    path = save_text(tmp_path / "summary.docx", SUMMARY, "Summary of report.pdf")
    paragraphs = [(p.style.name, p.text) for p in docx.Document(str(path)).paragraphs]
    assert paragraphs == [
        ("Title", "Summary of report.pdf"),
        ("Heading 1", "Main findings"),
        ("Normal", "The report looks at three years of rainfall."),
        ("List Bullet", "Rain fell less in summer"),
        ("List Bullet", "Rivers ran low in August"),
        ("List Bullet 2", "two of them dried up"),
        ("List Number", "First numbered"),
        ("List Number", "Second numbered"),
        ("Normal", "A closing paragraph that spans two lines."),
    ]
    runs = docx.Document(str(path)).paragraphs[2].runs
    assert [(r.text, bool(r.bold), bool(r.italic)) for r in runs] == [
        ("The report looks at ", False, False), ("three", True, False), (" years of ", False, False),
        ("rainfall", False, True), (".", False, False)]


def test_an_unknown_suffix_is_refused_plainly(tmp_path: Path) -> None:
    with pytest.raises(ExportError, match=r"“notes\.rtf”.*\.md, \.txt or \.docx") as raised:
        save_text(tmp_path / "notes.rtf", "text")
    assert isinstance(raised.value, HearthError)
    assert list(tmp_path.iterdir()) == []


def test_a_failed_save_leaves_the_old_file_and_no_temporary_file(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "summary.md"
    path.write_text("old", encoding="utf-8")

    def full_disk(_src: str, _dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", full_disk)
    with pytest.raises(ExportError, match="No space left on device"):
        save_text(path, "new text")
    assert path.read_text(encoding="utf-8") == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["summary.md"]


def test_a_missing_folder_is_an_export_error(tmp_path: Path) -> None:
    with pytest.raises(ExportError, match=r"could not save “out\.docx”"):
        save_text(tmp_path / "gone" / "out.docx", "text")


def test_csv_has_a_header_and_opens_in_spreadsheets(tmp_path: Path) -> None:
    rows = [ClassifiedText("Great, thanks!", ("praise",), {"praise": 0.9, "complaint": 0.1}),
            ClassifiedText("Late again, “as usual”", ("complaint",), {"praise": 0.2, "complaint": 0.8})]
    path = save_csv(tmp_path / "labels.csv", rows, ["praise", "complaint"])
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    table = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    assert table == [["input", "labels", "confidence praise", "confidence complaint"],
                     ["Great, thanks!", "praise", "0.900", "0.100"],
                     ["Late again, “as usual”", "complaint", "0.200", "0.800"]]


def test_result_text_says_where_each_key_point_came_from() -> None:
    result = TaskResult("summarize", "Key points:\n- Rain fell less\n- Rivers ran low\nThat is all.",
                        "done", points=(KeyPoint("Rain fell less", 1, "pages 1–3"),
                                        KeyPoint("Rivers ran low", 2, "pages 4–6")))
    assert result_text(result) == ("Key points:\n- Rain fell less (pages 1–3)\n- Rivers ran low (pages 4–6)\n"
                                   "That is all.")
    linked = result_text(result, lambda point: f" [{point.location}](part:{point.part})")
    assert "- Rivers ran low [pages 4–6](part:2)" in linked


def test_result_text_of_a_classification_is_tab_separated() -> None:
    result = TaskResult("classify", "", "done", rows=(ClassifiedText("a text", ("x", "y"), {"x": 0.5, "y": 0.5}),
                                                       ClassifiedText("other", (), {"x": 0.5, "y": 0.5})))
    assert result_text(result) == "x, y\ta text\n(none)\tother"


def test_chat_message_names_the_document_and_carries_the_result() -> None:
    message = chat_message("summarize", "“report.pdf”", "- one\n- two", "Key points")
    assert message.startswith("Summary of “report.pdf” (Key points):\n\n- one\n- two\n\n")
    assert chat_message("classify", "the texts typed in", "x\ta").startswith(
        "Labels for the texts typed in, one text per line: its label, a tab, then the text.\n\nx\ta\n\n")
