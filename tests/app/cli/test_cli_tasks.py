"""`hearth summarize / translate / classify` as a person runs them: a real process, model and database."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from tests.helpers.command import hearth
from tests.helpers.document_builders import encrypted_pdf, text_pdf, word_document

STORY = "Lily and her dog played in the park. They found a red ball under a tree. "

pytestmark = pytest.mark.engine


def test_summarize_a_pdf_as_json(tmp_path: Path, test_model_path: Path) -> None:
    pdf = tmp_path / "stories.pdf"
    pdf.write_bytes(text_pdf([[STORY * 3, STORY * 2] for _ in range(12)]))
    result = hearth(tmp_path, "summarize", str(pdf), "--model", str(test_model_path), "--ctx", "512",
                    "--length", "points", "--focus", "the dog", "--seed", "1", "--json")
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["text"] and out["finish_reason"] == "done"
    assert out["covered_tokens"] == out["document_tokens"] > 1000
    assert out["chunks"] > 1 and out["levels"] >= 2
    assert out["model_tokens_processed"] >= out["document_tokens"]
    assert out["completion_tokens"] > 0 and out["tokens_per_s"] > 0 and out["peak_rss_bytes"] > 0
    assert out["parts"][0]["location"].startswith("page")
    assert "] Reading part 1 of" in result.stderr  # progress on stderr with --json too
    listed = hearth(tmp_path, "models", "list", "--json")  # the run went through the same home
    assert listed.returncode == 0


def test_translate_a_word_document(tmp_path: Path, test_model_path: Path) -> None:
    docx = word_document(tmp_path / "letter.docx", [("Heading 1", "Greeting"), ("", STORY), ("", STORY)])
    result = hearth(tmp_path, "translate", str(docx), "--to", "french", "--model", str(test_model_path), "--json")
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["text"] and out["source_language"] and out["levels"] == 1
    assert out["covered_tokens"] == out["document_tokens"]


def test_summarize_prints_text_and_a_progress_line(tmp_path: Path, test_model_path: Path) -> None:
    note = tmp_path / "note.md"
    note.write_text("# Note\n\n" + STORY + "\n\n" + STORY, encoding="utf-8")
    result = hearth(tmp_path, "summarize", str(note), "--model", str(test_model_path), "--length", "short")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip()
    assert "Reading the whole document" in result.stderr and "tokens processed" in result.stderr


def test_classify_a_csv_column_and_export(tmp_path: Path, test_model_path: Path) -> None:
    table = tmp_path / "feedback.csv"
    table.write_text("id,comment\n1,I was charged twice\n2,The app crashes\n3,Love it\n", encoding="utf-8")
    exported = tmp_path / "labelled.csv"
    result = hearth(tmp_path, "classify", "--labels", "billing,bug,praise", "--csv", str(table), "--column",
                    "comment", "--model", str(test_model_path), "--json", "--output", str(exported))
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)["results"]
    assert [r["input"] for r in rows] == ["I was charged twice", "The app crashes", "Love it"]
    assert all(len(r["labels"]) == 1 and r["labels"][0] in ("billing", "bug", "praise") for r in rows)
    assert all(abs(sum(r["confidence"].values()) - 1) < 1e-6 for r in rows)
    with exported.open(encoding="utf-8") as handle:
        written = list(csv.reader(handle))
    assert written[0] == ["input", "labels", "confidence billing", "confidence bug", "confidence praise"]
    assert len(written) == 4
    multi = hearth(tmp_path, "classify", "--labels", "happy,sad", "--text", "What a day", "--multi",
                   "--model", str(test_model_path))
    assert multi.returncode == 0, multi.stderr
    assert "What a day" in multi.stdout


@pytest.mark.parametrize(("name", "content", "expected"), [
    ("notes.exe", b"MZ\x90\x00", "cannot read"),
    ("junk.txt", bytes(range(256)) * 20, "text"),
    ("empty.md", b"", "empty"),
])
def test_unreadable_inputs_are_one_plain_sentence(tmp_path: Path, test_model_path: Path, name: str,
                                                 content: bytes, expected: str) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    result = hearth(tmp_path, "summarize", str(path), "--model", str(test_model_path))
    assert result.returncode == 1
    assert result.stderr.startswith("hearth: ") and name in result.stderr and expected in result.stderr.lower()
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_an_encrypted_pdf_asks_for_its_password(tmp_path: Path, test_model_path: Path) -> None:
    pdf = tmp_path / "secret.pdf"
    pdf.write_bytes(encrypted_pdf([[STORY]], user_password="open sesame"))
    refused = hearth(tmp_path, "summarize", str(pdf), "--model", str(test_model_path))
    assert refused.returncode == 1 and "password" in refused.stderr and "Traceback" not in refused.stderr
    opened = hearth(tmp_path, "summarize", str(pdf), "--model", str(test_model_path), "--password", "open sesame",
                    "--json")
    assert opened.returncode == 0, opened.stderr
    assert json.loads(opened.stdout)["document_tokens"] > 0


def test_classify_needs_a_column_for_a_csv(tmp_path: Path, test_model_path: Path) -> None:
    table = tmp_path / "t.csv"
    table.write_text("a,b\n1,2\n", encoding="utf-8")
    result = hearth(tmp_path, "classify", "--labels", "x,y", "--csv", str(table), "--model", str(test_model_path))
    assert result.returncode == 1 and "--column" in result.stderr
