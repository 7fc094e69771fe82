"""Saving task results: Markdown, plain text, Word (read back with python-docx) and CSV, written atomically."""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path

import docx
import pytest

from app.errors import HearthError
from app.tasks.export import ExportError, chat_start, result_text, save_csv, save_text
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


def test_result_text_links_sentences_when_the_model_wrote_paragraphs() -> None:
    text = "The rain fell less this year. Rivers ran low in the south.\n\nFarmers were paid for the losses."
    result = TaskResult("summarize", text, "done", points=(
        KeyPoint("The rain fell less this year.", 1, "pages 1–3"),
        KeyPoint("Rivers ran low in the south.", 2, "page 4"),
        KeyPoint("Farmers were paid for the losses.", 3, "pages 5–6")))
    assert result_text(result) == ("The rain fell less this year. (pages 1–3) Rivers ran low in the south. "
                                   "(page 4)\n\nFarmers were paid for the losses. (pages 5–6)")


def test_chat_start_carries_the_result_and_the_whole_document_when_it_fits() -> None:
    document = "The tenant pays rent on the first day.\n\nThe landlord repairs the roof."
    start = chat_start("summarize", "“lease.pdf”", "- Rent is due on the 1st", "Key points", document=document,
                       context_length=4096, max_tokens=512)
    assert start.message.startswith("Summary of “lease.pdf” (Key points):\n\n- Rent is due on the 1st\n\n")
    assert f"The document it summarizes:\n\n{document}\n\n" in start.message
    assert start.message.endswith("I will ask you questions about them.") and start.note == ""
    translated = chat_start("translate", "the pasted text", "Le loyer…", "English to French", document=document)
    assert translated.message.startswith("Translation of the pasted text (English to French):\n\nLe loyer…")
    assert f"The original:\n\n{document}" in translated.message


def test_chat_start_cuts_a_long_document_to_the_context_and_says_so() -> None:
    paragraph = "The board met and approved the plan for the region, with a spend of four thousand euros."
    document = "\n\n".join(f"Section {n}. {paragraph}" for n in range(1, 401))  # about 8,000 tokens
    start = chat_start("summarize", "“report.pdf”", "- The plan was approved", document=document,
                       context_length=2048, max_tokens=512, system_prompt="You are a helpful assistant.",
                       chars_per_token=4.5)
    kept = start.message.split("The document it summarizes:\n\n")[1].split("\n\n[")[0]
    assert document.startswith(kept) and kept.endswith("euros.")  # cut after a paragraph
    assert len(start.message) / 4.5 < (2048 - 512) / 2  # half of what the context holds beside the answer
    words = len(kept.split())
    assert start.note == (f"Only the first {words:,} of {len(document.split()):,} words of the document fit the "
                          "model's context window; the rest is left out.")
    assert f"[{start.note}]" in start.message
    tiny = chat_start("summarize", "“report.pdf”", "- The plan was approved", document=document, context_length=64)
    assert "The document" not in tiny.message and "left out" in tiny.note


def test_chat_start_says_when_the_document_was_not_kept() -> None:
    start = chat_start("summarize", "“report.pdf”", "- one", document=None)
    assert start.message == ("Summary of “report.pdf”:\n\n- one\n\nPlease read this summary; I will ask you "
                             "questions about it.")
    assert "not kept" in start.note
    labels = chat_start("classify", "the texts typed in", "x\ta", document="a")
    assert labels.message.startswith(
        "Labels for the texts typed in, one text per line: its label, a tab, then the text.\n\nx\ta\n\n")
    assert labels.note == ""  # the texts are in the result
