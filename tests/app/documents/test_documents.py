"""Reading documents: content, pages, headings and locations, and every way a file can be refused.

Every document is written by the test (``document_builders``); hostile ones really go through the parser
process, so these tests also show that a bad file is refused within the reader's own limits (its caps on size,
pages, text, memory and time), by what it says, never by a stopwatch.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import pickle
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

import app.documents.reader as documents
from app.documents.document import MAX_PDF_PAGES, Document, Paragraph
from app.documents.isolated import run_isolated
from app.documents.reader import FILE_DIALOG_FILTER, SUPPORTED_SUFFIXES, document_from_text, read_document
from app.documents.word import parse_word
from app.errors import (
    DamagedDocumentError,
    DocumentError,
    DocumentNotFoundError,
    DocumentTooLargeError,
    EmptyDocumentError,
    EncryptedDocumentError,
    HearthError,
    NoTextLayerError,
    UnsupportedDocumentError,
)

from tests.helpers.document_builders import (
    encrypted_pdf,
    fan_out_pdf,
    image_only_pdf,
    lying_zip_docx,
    many_pages_pdf,
    self_containing_pages_pdf,
    self_reference_pdf,
    text_pdf,
    word_document,
    zip_bomb_docx,
)

LONG = ("The supplier shall deliver the goods in good order and on time, and shall tell the buyer at once of any "
        "delay that it can foresee, with the reasons for it and the new date.")
REPORT = [
    ["Annual report", LONG, ["Our results were un-", "expected this year: sales of docu-", "ment scanners doubled."]],
    ["Second page, with a café and a naïve reader.", "A short closing line."],
    [LONG],
]


NOTE = "Hello, this is a plain note about the garden.\n\nDéjà vu: the naïve café by the river, again."
RUSSIAN = "Привет! Это простой текст о погоде и о саде, который мы любим.\n\nЗавтра будет дождь."
FRENCH = "Ça va très bien, merci. L'été est arrivé à Noël, déjà !\n\nÀ bientôt."


def write(path: Path, data: bytes | str) -> Path:
    if isinstance(data, str):
        data = data.encode("utf-8")
    path.write_bytes(data)
    return path


def _readers() -> list[multiprocessing.process.BaseProcess]:
    """The document reader's parser processes still running (``active_children`` also reaps finished ones)."""
    return [child for child in multiprocessing.active_children() if child.name == "hearth-document-reader"]


def refused(error_type: type[DocumentError], path: Path, *, password: str | None = None) -> DocumentError:
    """The error reading ``path`` raises; it must be of ``error_type`` and name the file."""
    with pytest.raises(error_type) as caught:
        read_document(path, password=password)
    assert path.name in str(caught.value)
    assert caught.value.file_name == path.name
    return caught.value


# --- PDF ---------------------------------------------------------------------------------------------------------


def test_a_pdf_reads_as_paragraphs_with_their_pages(tmp_path: Path) -> None:
    path = write(tmp_path / "report.pdf", text_pdf(REPORT))
    document = read_document(path)
    assert (document.name, document.kind, document.pages) == ("report.pdf", "pdf", 3)
    assert [(p.text, p.page) for p in document.paragraphs] == [
        ("Annual report", 1),
        (LONG, 1),  # wrapped over two lines in the PDF, joined with a space
        ("Our results were unexpected this year: sales of document scanners doubled.", 1),
        ("Second page, with a café and a naïve reader.", 2),
        ("A short closing line.", 2),
        (LONG, 3),
    ]
    assert all(p.heading is None for p in document.paragraphs)
    assert document.size_bytes == path.stat().st_size
    assert document.text == "\n\n".join(p.text for p in document.paragraphs)
    assert document.sha256 == hashlib.sha256(document.text.encode("utf-8")).hexdigest()
    assert document.location(0, 5) == "pages 1–3"
    assert document.location(3, 4) == "page 2"
    assert document.location(1, 1) == "page 1"


def test_the_file_type_is_found_whatever_the_case_of_its_suffix(tmp_path: Path) -> None:
    document = read_document(write(tmp_path / "SCAN.PDF", text_pdf([["Hello there."]])), password="ignored")
    assert document.text == "Hello there."


def test_an_encrypted_pdf_asks_for_its_password_and_says_when_it_is_wrong(tmp_path: Path) -> None:
    path = write(tmp_path / "secret.pdf", encrypted_pdf([["Only for the board."]], user_password="s3cret"))
    asked = refused(EncryptedDocumentError, path)
    assert isinstance(asked, EncryptedDocumentError) and not asked.wrong_password
    assert "password" in str(asked)
    wrong = refused(EncryptedDocumentError, path, password="guess")
    assert isinstance(wrong, EncryptedDocumentError) and wrong.wrong_password
    assert "not correct" in str(wrong)
    assert read_document(path, password="s3cret").text == "Only for the board."


def test_a_pdf_that_only_restricts_printing_opens_without_a_password(tmp_path: Path) -> None:
    path = write(tmp_path / "locked.pdf", encrypted_pdf([["Read me freely."]], user_password=""))
    assert read_document(path).text == "Read me freely."


def test_a_pdf_with_too_many_pages_is_too_large(tmp_path: Path) -> None:
    error = refused(DocumentTooLargeError, write(tmp_path / "phone-book.pdf", many_pages_pdf(MAX_PDF_PAGES + 1)))
    assert "pages" in str(error)


def test_a_scanned_pdf_has_no_text_layer(tmp_path: Path) -> None:
    error = refused(NoTextLayerError, write(tmp_path / "scan.pdf", image_only_pdf()))
    assert "no text layer" in str(error) and "OCR" in str(error)


@pytest.mark.parametrize("builder", [
    pytest.param(lambda: text_pdf(REPORT)[:len(text_pdf(REPORT)) // 2], id="truncated"),
    pytest.param(self_containing_pages_pdf, id="page-tree-contains-itself"),
    pytest.param(self_reference_pdf, id="object-refers-to-itself"),
    pytest.param(fan_out_pdf, id="billion-page-tree"),
    pytest.param(lambda: b"%PDF-1.7\n" + random.Random(1).randbytes(20_000), id="junk-after-header"),
    pytest.param(lambda: random.Random(2).randbytes(20_000), id="junk"),
])
def test_a_broken_or_hostile_pdf_is_refused_by_the_reader_itself(tmp_path: Path, builder: Callable[[], bytes]) -> None:
    """Each is read under the reader's own limits (its page cap, and the parser process's time and memory caps)
    and refused for what it is: not stopped at the time limit, not taking the parser process down."""
    error = refused(DamagedDocumentError, write(tmp_path / "bad.pdf", builder()))
    assert "not really a PDF file" in str(error), error  # not "took too long", "stopped unexpectedly", "memory"


# --- Word --------------------------------------------------------------------------------------------------------


def test_a_word_document_keeps_headings_and_tables(tmp_path: Path) -> None:
    path = word_document(tmp_path / "contract.docx", [
        ("Title", "Supply contract"),
        ("", "Made between the parties named below."),
        ("Heading 1", "Obligations"),
        ("", "The supplier delivers."),
        ("", "The buyer pays."),
        ("Heading 2", "Payment terms"),
        ("", "Within 30 days."),
    ], table=[["Item", "Price"], ["Tea", "4 €"]])
    document = read_document(path)
    assert (document.kind, document.pages) == ("docx", None)
    assert [(p.text, p.heading, p.page) for p in document.paragraphs] == [
        ("Supply contract", "Supply contract", None),
        ("Made between the parties named below.", "Supply contract", None),
        ("Obligations", "Obligations", None),
        ("The supplier delivers.", "Obligations", None),
        ("The buyer pays.", "Obligations", None),
        ("Payment terms", "Payment terms", None),
        ("Within 30 days.", "Payment terms", None),
        ("Item | Price", "Payment terms", None),
        ("Tea | 4 €", "Payment terms", None),
    ]
    assert document.location(2, 4) == "section “Obligations”"
    assert document.location(3, 3) == "section “Obligations”"
    assert document.location(1, 5) == "sections “Supply contract” to “Payment terms”"


def test_a_zip_bomb_is_refused_before_it_is_unpacked(tmp_path: Path) -> None:
    path = zip_bomb_docx(tmp_path / "bomb.docx")
    assert path.stat().st_size < 1024 * 1024
    error = refused(DamagedDocumentError, path)
    assert "unpack" in str(error)


def test_a_zip_that_declares_gigabytes_is_refused(tmp_path: Path) -> None:
    refused(DamagedDocumentError, lying_zip_docx(tmp_path / "liar.docx"))


def test_a_file_that_is_not_really_a_word_document_is_damaged(tmp_path: Path) -> None:
    refused(DamagedDocumentError, write(tmp_path / "notes.docx", "just some text"))
    whole = word_document(tmp_path / "whole.docx", [("", "Hello.")]).read_bytes()
    refused(DamagedDocumentError, write(tmp_path / "half.docx", whole[:len(whole) // 2]))


def test_legacy_and_protected_word_files_are_named_as_unsupported(tmp_path: Path) -> None:
    ole = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(600)
    assert ".doc" in str(refused(UnsupportedDocumentError, write(tmp_path / "old.docx", ole)))
    protected = ole + "EncryptedPackage".encode("utf-16-le")
    assert "password" in str(refused(UnsupportedDocumentError, write(tmp_path / "locked.docx", protected)))


# --- HTML --------------------------------------------------------------------------------------------------------

PAGE = """<!DOCTYPE html>
<html><head><meta charset="windows-1252"><title>Not shown</title>
<style>body { color: red }</style><script>var hidden = "<p>no</p>";</script></head>
<body>
<nav>Home</nav>
<h1>Guide &amp; notes</h1>
<p>First   paragraph
   spread over lines.</p>
<div>A div<br>with a break</div>
<h2>Details</h2>
<ul><li>One</li><li>Two</li></ul>
<table><tr><th>Name</th><th>Caf\xe9</th></tr><tr><td>A</td><td></td><td>C</td></tr></table>
<pre>code   keeps
  its spaces</pre>
<noscript>Enable scripts</noscript>
</body></html>"""


def test_a_web_page_keeps_headings_and_blocks_and_drops_scripts(tmp_path: Path) -> None:
    document = read_document(write(tmp_path / "guide.html", PAGE.encode("cp1252")))
    assert document.kind == "html"
    assert [(p.text, p.heading) for p in document.paragraphs] == [
        ("Home", None),
        ("Guide & notes", "Guide & notes"),
        ("First paragraph spread over lines.", "Guide & notes"),
        ("A div\nwith a break", "Guide & notes"),
        ("Details", "Details"),
        ("One", "Details"),
        ("Two", "Details"),
        ("Name | Café", "Details"),
        ("A | C", "Details"),
        ("code   keeps\n  its spaces", "Details"),
    ]
    assert document.location(2, 3) == "section “Guide & notes”"


def test_a_web_page_without_text_is_empty_and_binary_is_damaged(tmp_path: Path) -> None:
    refused(EmptyDocumentError, write(tmp_path / "blank.htm", "<html><script>x()</script><p>  </p></html>"))
    refused(DamagedDocumentError, write(tmp_path / "image.html", bytes(range(256)) * 10))


# --- text and Markdown -------------------------------------------------------------------------------------------


def test_markdown_headings_label_paragraphs_and_stay_in_the_text(tmp_path: Path) -> None:
    text = ("---\ntitle: Notes\n---\n\n# Obligations\nThe supplier delivers.\n\nThe buyer\npays.\n\n"
            "Payment terms\n-------------\n\nWithin 30 days.\n\n```sh\n# not a heading\n\necho hi\n```\n"
            "## Closing ##\n#hashtag is text\n")
    document = read_document(write(tmp_path / "notes.md", text.replace("\n", "\r\n")))
    assert document.kind == "md"
    assert [(p.text, p.heading) for p in document.paragraphs] == [
        ("---\ntitle: Notes\n---", None),
        ("# Obligations", "Obligations"),
        ("The supplier delivers.", "Obligations"),
        ("The buyer\npays.", "Obligations"),
        ("Payment terms\n-------------", "Payment terms"),
        ("Within 30 days.", "Payment terms"),
        ("```sh\n# not a heading\n\necho hi\n```", "Payment terms"),
        ("## Closing ##", "Closing"),
        ("#hashtag is text", "Closing"),
    ]
    assert "\r" not in document.text
    assert document.location(1, 3) == "section “Obligations”"
    assert document.location(0, 0) == "paragraph 1"  # the front matter, before any heading
    assert document.location(0, 2) == "section “Obligations”"
    assert document.location(3, 7) == "sections “Obligations” to “Closing”"


@pytest.mark.parametrize(("data", "expected"), [
    pytest.param("\ufeffCafé\r\n\r\nnaïve".encode(), "Café\n\nnaïve", id="utf-8-bom"),
    pytest.param("Café\n\nnaïve".encode("utf-16"), "Café\n\nnaïve", id="utf-16-bom"),
    pytest.param("Café\n\nnaïve".encode("utf-16-be").join([b"\xfe\xff", b""]), "Café\n\nnaïve", id="utf-16-be"),
    pytest.param("Café “quoted”\rold Mac".encode("cp1252"), "Café “quoted”\nold Mac", id="cp1252"),
    pytest.param(b"the first page\fthe second page, with a bell\x07", "the first page\n\nthe second page, with a bell",
                 id="form-feed-and-bell"),
    pytest.param(b"\xff\xfe" + NOTE.encode(), NOTE, id="utf-8-behind-a-stray-utf-16-mark"),
    pytest.param(b"\xfe\xff" + NOTE.encode(), NOTE, id="utf-8-behind-a-stray-utf-16-be-mark"),
    pytest.param(RUSSIAN.encode("cp1251"), RUSSIAN, id="cp1251-told-by-its-content"),
    pytest.param(FRENCH.encode("cp1252"), FRENCH, id="cp1252-french"),
])
def test_text_files_decode_in_their_encoding(tmp_path: Path, data: bytes, expected: str) -> None:
    document = read_document(write(tmp_path / "plain.txt", data))
    assert (document.kind, document.text, document.size_bytes) == ("txt", expected, len(data))
    assert all(p.heading is None and p.page is None for p in document.paragraphs)
    assert document.warning is None


def test_text_that_does_not_read_like_text_is_read_with_a_warning(tmp_path: Path) -> None:
    rng = random.Random(1)
    mojibake = bytes(rng.randrange(0xA0, 0x100) if index % 6 else 0x20 for index in range(3000))
    document = read_document(write(tmp_path / "odd.txt", mojibake))
    assert document.warning is not None and "“odd.txt” do not read like text" in document.warning
    page = read_document(write(tmp_path / "odd.html", b"<html><body><p>" + mojibake + b"</p></body></html>"))
    assert page.warning is not None and "“odd.html”" in page.warning


def test_binary_junk_named_txt_is_not_a_text_document(tmp_path: Path) -> None:
    error = refused(DamagedDocumentError, write(tmp_path / "junk.txt", random.Random(3).randbytes(4096)))
    assert "not a text document" in str(error)
    no_nul = bytes(b for b in random.Random(4).randbytes(8192) if b)
    refused(DamagedDocumentError, write(tmp_path / "junk2.txt", no_nul))


def test_empty_files_are_empty_documents(tmp_path: Path) -> None:
    for name in ("empty.txt", "empty.pdf", "empty.docx"):
        refused(EmptyDocumentError, write(tmp_path / name, b""))
    refused(EmptyDocumentError, write(tmp_path / "blank.md", " \n\t\r\n\n"))


# --- what is refused before parsing ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["setup.exe", "data.xyz", "README"])
def test_unsupported_types_say_what_is_supported(tmp_path: Path, name: str) -> None:
    error = refused(UnsupportedDocumentError, write(tmp_path / name, b"MZ\x90\x00"))
    assert ".pdf" in str(error) and ".docx" in str(error) and ".txt" in str(error)


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    refused(DocumentNotFoundError, tmp_path / "gone.pdf")


def test_a_folder_is_not_a_document(tmp_path: Path) -> None:
    (tmp_path / "folder.txt").mkdir()
    refused(DocumentError, tmp_path / "folder.txt")


def test_files_over_the_limit_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(documents, "MAX_FILE_BYTES", 1000)
    refused(DocumentTooLargeError, write(tmp_path / "big.pdf", b"%PDF-1.7\n" + bytes(1000)))
    assert read_document(write(tmp_path / "small.txt", "x" * 1000)).text == "x" * 1000
    monkeypatch.setattr(documents, "MAX_TEXT_CHARS", 10)
    error = refused(DocumentTooLargeError, write(tmp_path / "wordy.txt", "many words here"))
    assert "more text" in str(error)


# --- the parser process ------------------------------------------------------------------------------------------


def test_a_parse_that_runs_too_long_is_stopped() -> None:
    with pytest.raises(DamagedDocumentError, match="took too long") as caught:
        run_isolated(time.sleep, (60,), file_name="slow.pdf", kind="pdf", timeout_s=1.0)
    assert "slow.pdf" in str(caught.value) and "over 1 seconds" in str(caught.value)
    assert not _readers()  # stopped at its limit, not waited for: the parser process is gone


def test_a_real_parse_is_stopped_by_the_timeout(tmp_path: Path) -> None:
    path = write(tmp_path / "report.pdf", text_pdf(REPORT))
    with pytest.raises(DamagedDocumentError, match="took too long"):
        read_document(path, timeout_s=0.01)


def test_a_parser_that_dies_is_a_damaged_document() -> None:
    with pytest.raises(DamagedDocumentError, match="stopped unexpectedly") as caught:
        run_isolated(os.abort, (), file_name="crash.pdf", kind="pdf", timeout_s=20)
    assert "crash.pdf" in str(caught.value)


@pytest.mark.skipif(sys.platform != "linux", reason="RLIMIT_AS is enforced on Linux only")
def test_the_parser_cannot_take_more_than_its_memory_cap() -> None:
    with pytest.raises(DamagedDocumentError, match="more memory"):
        run_isolated(bytearray, (4 * 1024**3,), file_name="greedy.docx", kind="docx", timeout_s=20)


# --- pasted text, the data types and the errors ------------------------------------------------------------------


def test_pasted_text_is_a_document() -> None:
    document = document_from_text("# Brief\r\nSome text.\n\n\nMore — text. \udc00")
    assert (document.name, document.kind, document.pages) == ("Pasted text", "pasted", None)
    assert [(p.text, p.heading) for p in document.paragraphs] == [
        ("# Brief", "Brief"), ("Some text.", "Brief"), ("More — text. ?", "Brief")]
    assert document.size_bytes == len("# Brief\r\nSome text.\n\n\nMore — text. ?".encode())
    assert document_from_text("x", name="Clipboard").name == "Clipboard"
    with pytest.raises(EmptyDocumentError, match="pasted text is empty"):
        document_from_text(" \n\t ")


def test_location_checks_its_range() -> None:
    document = Document("a.txt", "txt", (Paragraph("one"), Paragraph("two")), 8)
    assert document.location(0, 1) == "paragraphs 1–2"
    for first, last in ((-1, 0), (1, 0), (0, 2)):
        with pytest.raises(ValueError):
            document.location(first, last)
    with pytest.raises(ValueError):
        Paragraph(" padded ")
    with pytest.raises(ValueError):
        Document("a.txt", "txt", (), 0)


def test_the_supported_types_match_the_file_dialog_filter() -> None:
    assert {".txt", ".md", ".markdown", ".pdf", ".docx", ".html", ".htm"} == set(SUPPORTED_SUFFIXES)
    assert FILE_DIALOG_FILTER.startswith("Documents (")
    assert all(f"*{suffix}" in FILE_DIALOG_FILTER for suffix in SUPPORTED_SUFFIXES)


def test_document_errors_are_hearth_errors_that_survive_pickling() -> None:
    error = EncryptedDocumentError("a.pdf", wrong_password=True)
    copy = pickle.loads(pickle.dumps(error))
    assert isinstance(copy, HearthError)
    assert (type(copy), str(copy), copy.file_name, copy.wrong_password) == (
        EncryptedDocumentError, str(error), "a.pdf", True)


def test_a_long_document_read_steadily_is_given_the_time_its_pages_need() -> None:
    """A real 1,000-page PDF took 45 s and was refused at a fixed 30 s as "damaged, or made to cause trouble"; here
    30 pages at a tenth of a second each outlast a 2 s start, and the limit grows with the pages counted."""
    from tests.helpers.slow_readers import steady

    parsed = run_isolated(steady, (30, 0.1), file_name="long.pdf", kind="pdf", timeout_s=2.0,
                          limit_for=lambda count, unit: 2.0 + 1.0 * count)
    assert parsed.pages == 30


def test_a_document_still_being_read_when_time_runs_out_is_called_too_large() -> None:
    from tests.helpers.slow_readers import steady

    with pytest.raises(DocumentTooLargeError) as caught:
        run_isolated(steady, (1000, 0.05), file_name="huge.pdf", kind="pdf", timeout_s=2.0,
                     limit_for=lambda count, unit: 3.0)
    assert "“huge.pdf” is too large to read here (1,000 pages)" in str(caught.value)
    assert "damaged" not in str(caught.value) and "trouble" not in str(caught.value)
    assert not _readers()


def test_a_reader_that_stops_moving_is_stopped_as_damaged() -> None:
    from tests.helpers.slow_readers import stuck

    with pytest.raises(DamagedDocumentError, match="no progress for 2 seconds at page 3 of 1,000") as caught:
        run_isolated(stuck, (1000, 3), file_name="loop.pdf", kind="pdf", timeout_s=120.0,
                     limit_for=lambda count, unit: 120.0, stall_s=2.0)
    assert "made to cause trouble" in str(caught.value)
    assert not _readers()


def test_the_time_limit_grows_with_the_document_up_to_a_ceiling() -> None:
    from app.documents.isolated import CEILING_S, reading_limit_s

    small = reading_limit_s(100_000)
    assert reading_limit_s(3_000_000, 1000, "pages") > reading_limit_s(3_000_000) > small
    assert reading_limit_s(1_000_000, 10_000, "paragraphs") > reading_limit_s(1_000_000)
    assert reading_limit_s(50_000_000, 10_000, "pages") == CEILING_S


def test_a_word_file_looks_each_style_up_once_not_per_paragraph(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """python-docx's per-paragraph style lookup walked every style of the file: 95% of a 10,000-paragraph read."""
    from docx.styles.styles import Styles

    lookups = {"count": 0}
    real_default = Styles.default

    def counted(self: Styles, style_type: object) -> object:
        lookups["count"] += 1
        return real_default(self, style_type)

    blocks = [("Heading 1" if index % 10 == 0 else "", f"Paragraph {index}.") for index in range(200)]
    path = word_document(tmp_path / "long.docx", blocks)
    monkeypatch.setattr(Styles, "default", counted)
    parsed = parse_word(str(path))
    assert len(parsed.paragraphs) == 200 and parsed.paragraphs[15].heading == "Paragraph 10."
    assert lookups["count"] <= 1
