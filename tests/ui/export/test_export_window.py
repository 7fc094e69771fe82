"""Export and print in the window, and Qt's PDF writer behind them: the dialog driven as a person would (File →
Export…, a format, a place to save), the file read back (the PDF with pypdf, the Word file with python-docx), a
failure said in the dialog, the task run and the comparison on show, printing, and the command line's PDF."""

from __future__ import annotations

import os
import subprocess
import tempfile
import unicodedata
from pathlib import Path

import docx
import pypdf
import pytest
from PySide6.QtCore import Qt, QTimer
from PySide6.QtPrintSupport import QPrinter
from PySide6.QtWidgets import QDialog, QFileDialog, QWidget
from pytestqt.qtbot import QtBot

from app.cli.main import main as cli_main
from app.export.content import readable
from app.export.files import Selection, document_of
from app.export.formats import ExportFormat
from app.export.html import html_page
from ui import entry
from ui.export.export_dialog import FORMATS, ExportDialog
from ui.export.pdf import make_pdf
from ui.main_window import MainWindow

from tests.app.export.history import ANSWER, OLD_ANSWER, QUESTION, SUMMARY, Saved, saved_history
from tests.helpers import ROOT
from tests.helpers.command import HEARTH
from tests.helpers.windows import TIMEOUT, MakeWindow

pytestmark = pytest.mark.gui

SHOTS = Path(os.environ.get("HEARTH_SCREENSHOTS", tempfile.gettempdir()))


def pdf_text(path: Path) -> str:
    """The words of a PDF as pypdf reads them, ligatures and Qt's spacing between words made plain."""
    text = "".join(page.extract_text() for page in pypdf.PdfReader(path).pages)
    return " ".join(unicodedata.normalize("NFKC", text).split())


def plain(text: str) -> str:
    return " ".join(text.split())


@pytest.fixture
def saved(tmp_path: Path) -> Saved:
    """The history the window opens (``make_window`` uses this home)."""
    history = saved_history(tmp_path / "home")
    history.store.close()
    return history


def opened(qtbot: QtBot, make_window: MakeWindow) -> MainWindow:
    window = make_window()
    qtbot.waitUntil(lambda: window.chat.current is not None, timeout=TIMEOUT)
    return window


def dialog_of(qtbot: QtBot, window: MainWindow) -> ExportDialog:
    qtbot.waitUntil(lambda: window.exporter.dialog is not None and window.exporter.dialog.isVisible(),
                    timeout=TIMEOUT)
    assert window.exporter.dialog is not None
    return window.exporter.dialog


def closed(qtbot: QtBot, window: MainWindow) -> None:
    qtbot.waitUntil(lambda: window.exporter.dialog is None, timeout=TIMEOUT)


def save_as(monkeypatch: pytest.MonkeyPatch, path: Path) -> list[tuple[str, str]]:
    """Save pressed in the save dialog on ``path``; what the dialog was asked with (suggested name, filter)."""
    asked: list[tuple[str, str]] = []

    def choose(_parent: QWidget, _caption: str, suggested: str, filters: str) -> tuple[str, str]:
        asked.append((suggested, filters))
        return str(path), filters

    monkeypatch.setattr(QFileDialog, "getSaveFileName", choose)
    return asked


def choose_format(dialog: ExportDialog, fmt: ExportFormat) -> None:
    dialog.formats.button(FORMATS.index(fmt)).click()


def test_the_pdf_is_qts_and_reads_back(saved: Saved, tmp_path: Path, qtbot: QtBot) -> None:
    from app.history import HistoryStore, open_database
    from app.paths import Paths

    store = HistoryStore(open_database(Paths.under(tmp_path / "home").database))
    text = readable(document_of(store, Selection.conversations([saved.chat])))
    (tmp_path / "chat.pdf").write_bytes(make_pdf(html_page(text, paper=True), text.title))
    read = pdf_text(tmp_path / "chat.pdf")
    assert read.startswith("Reading files") and plain(QUESTION) in read  # the script as text, never run
    assert 'frompathlibimportPathtext=Path("notes.txt").read_text()' in "".join(read.split())  # coloured in pieces
    assert "Way Speed pathlib quick open() quick too" in read and OLD_ANSWER not in read
    assert pypdf.PdfReader(tmp_path / "chat.pdf").metadata.title == "Reading files"


def test_export_a_conversation_from_the_file_menu(qtbot: QtBot, make_window: MakeWindow, saved: Saved,
                                                  tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    window = opened(qtbot, make_window)
    current = window.chat.current
    assert current is not None
    qtbot.keyClick(window, Qt.Key.Key_E, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    dialog = dialog_of(qtbot, window)
    assert [button.text() for button in dialog.what.buttons()] == [
        f"The conversation “{current.title}”", "Everything: every conversation, task run and comparison"]
    assert dialog.what.checkedId() == 0 and dialog.format() is ExportFormat.PDF
    dialog.grab().save(str(SHOTS / "hearth-export-dialog.png"))

    choose_format(dialog, ExportFormat.DOCX)
    asked = save_as(monkeypatch, tmp_path / "for-my-notes")  # no suffix typed: the format's is added
    qtbot.mouseClick(dialog.export_button, Qt.MouseButton.LeftButton)
    closed(qtbot, window)
    assert Path(asked[0][0]).name == f"{current.title}.docx" and asked[0][1] == "Word document (*.docx)"
    paragraphs = [p.text for p in docx.Document(str(tmp_path / "for-my-notes.docx")).paragraphs]
    assert paragraphs[0] == current.title
    assert window.statusBar().currentMessage() == \
        f"Wrote the conversation “{current.title}” to “for-my-notes.docx”."


def test_the_whole_history_as_a_pdf_with_the_dialog_working_meanwhile(
        qtbot: QtBot, make_window: MakeWindow, saved: Saved, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    window = opened(qtbot, make_window)
    window.export_shown()
    dialog = dialog_of(qtbot, window)
    dialog.what.button(1).click()
    save_as(monkeypatch, tmp_path / "everything.pdf")
    qtbot.mouseClick(dialog.export_button, Qt.MouseButton.LeftButton)
    assert dialog.progress.isVisible() and not dialog.export_button.isEnabled()  # the window goes on meanwhile
    assert dialog.status.text() == "Writing “everything.pdf”…"
    closed(qtbot, window)
    read = pdf_text(tmp_path / "everything.pdf")
    for title in ("Reading files", "Trip to Paris", "Summary of “lease.pdf”", "Capital of France"):
        assert title in read
    assert window.statusBar().currentMessage() == \
        "Wrote 2 conversations, 2 task runs and 1 comparison to “everything.pdf”."


def test_a_file_that_cannot_be_written_is_said_in_the_dialog_which_stays(
        qtbot: QtBot, make_window: MakeWindow, saved: Saved, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    window = opened(qtbot, make_window)
    window.export_shown()
    dialog = dialog_of(qtbot, window)
    choose_format(dialog, ExportFormat.HTML)
    save_as(monkeypatch, tmp_path / "gone" / "chat.html")
    qtbot.mouseClick(dialog.export_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dialog.export_button.isEnabled(), timeout=TIMEOUT)
    assert dialog.isVisible() and dialog.failure.isVisible() and not dialog.status.isVisible()
    assert dialog.failure.text().startswith("Hearth could not save “chat.html” in ")
    assert not dialog.progress.isVisible() and dialog.cancel_button.text() == "Cancel"
    dialog.grab().save(str(SHOTS / "hearth-export-failed.png"))

    save_as(monkeypatch, tmp_path / "chat.html")  # another place: it works this time
    qtbot.mouseClick(dialog.export_button, Qt.MouseButton.LeftButton)
    closed(qtbot, window)
    assert (tmp_path / "chat.html").read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


def test_the_folder_chosen_is_offered_and_exports_its_chats(qtbot: QtBot, make_window: MakeWindow, saved: Saved,
                                                            tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    window = opened(qtbot, make_window)
    panel = window.chat.sidebar.folders
    qtbot.waitUntil(lambda: len(panel.folders) == 1, timeout=TIMEOUT)
    panel.choose(panel.folders[0].id)
    window.export_shown()  # File → Export… with the folder "Travel" chosen in the sidebar
    dialog = dialog_of(qtbot, window)
    offered = [button.text() for button in dialog.what.buttons()]
    assert offered[1:] == ["The folder “Travel”", "Everything: every conversation, task run and comparison"]
    next(b for b in dialog.what.buttons() if b.text() == "The folder “Travel”").click()
    choose_format(dialog, ExportFormat.MARKDOWN)
    asked = save_as(monkeypatch, tmp_path / "Travel.md")
    qtbot.mouseClick(dialog.export_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil((tmp_path / "Travel.md").exists, timeout=TIMEOUT)
    text = (tmp_path / "Travel.md").read_text(encoding="utf-8")
    assert Path(asked[0][0]).name == "Travel.md" and "# Trip to Paris" in text and ANSWER not in text
    qtbot.waitUntil(lambda: window.statusBar().currentMessage() == "Wrote the conversation “Trip to Paris” to "
                    "“Travel.md”.", timeout=TIMEOUT)
    closed(qtbot, window)

    window.chat.sidebar.folders.exportRequested.emit(panel.folders[0])  # its right-click menu
    dialog = dialog_of(qtbot, window)
    assert dialog.what.checkedButton().text() == "The folder “Travel”"


def test_the_task_run_and_the_comparison_on_show_are_offered(qtbot: QtBot, make_window: MakeWindow, saved: Saved,
                                                             tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    window = opened(qtbot, make_window)
    window._show_page(3)
    window.tasks.open_run(saved.summary_run)
    qtbot.waitUntil(lambda: window.tasks.shown_run is not None, timeout=TIMEOUT)
    window.export_shown()
    dialog = dialog_of(qtbot, window)
    assert dialog.what.checkedButton().text() == "The task run shown: Summary of “lease.pdf”"
    choose_format(dialog, ExportFormat.MARKDOWN)
    save_as(monkeypatch, tmp_path / "run.md")
    qtbot.mouseClick(dialog.export_button, Qt.MouseButton.LeftButton)
    closed(qtbot, window)
    assert SUMMARY in (tmp_path / "run.md").read_text(encoding="utf-8")

    window._show_page(4)
    window.compare.open_comparison(saved.comparison)
    qtbot.waitUntil(lambda: window.compare.shown() is not None, timeout=TIMEOUT)
    window.export_shown()
    dialog = dialog_of(qtbot, window)
    assert dialog.what.checkedButton().text() == "The comparison “Capital of France”"
    asked = save_as(monkeypatch, tmp_path / "comparison.pdf")
    qtbot.mouseClick(dialog.export_button, Qt.MouseButton.LeftButton)  # the format chosen last time: Markdown
    closed(qtbot, window)
    assert Path(asked[0][0]).name == "Comparison – Capital of France.md"
    assert "It is Paris, on the Seine." in (tmp_path / "comparison.pdf.md").read_text(encoding="utf-8")


def test_print_the_conversation_shown(qtbot: QtBot, make_window: MakeWindow, saved: Saved, tmp_path: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Qt's print dialog, with "Print to file" chosen: what is printed is read back from that file."""
    target = tmp_path / "printed.pdf"

    class PrintToFile(QDialog):
        def __init__(self, printer: QPrinter, parent: QWidget) -> None:
            super().__init__(parent)
            printer.setOutputFileName(str(target))

        def show(self) -> None:
            QTimer.singleShot(0, self.accept)  # Print pressed

    monkeypatch.setattr("ui.export.exporter.QPrintDialog", PrintToFile)
    window = opened(qtbot, make_window)
    current = window.chat.current
    assert current is not None
    qtbot.keyClick(window, Qt.Key.Key_P, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: window.statusBar().currentMessage() == f"Printed “{current.title}” to “printed.pdf”.",
                    timeout=TIMEOUT)
    assert pdf_text(target).startswith(current.title)


def test_the_command_line_writes_a_pdf_through_qt(saved: Saved, tmp_path: Path, qtbot: QtBot,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEARTH_HOME", str(tmp_path / "home"))
    assert cli_main(["history", "export", "--conversation", str(saved.chat), "-o", str(tmp_path / "chat.pdf")],
                    make_pdf=entry.make_pdf) == 0
    assert pdf_text(tmp_path / "chat.pdf").startswith("Reading files")


def test_the_command_line_pdf_needs_no_display(saved: Saved, tmp_path: Path) -> None:
    away = {"QT_QPA_PLATFORM", "DISPLAY", "WAYLAND_DISPLAY"}
    env = {**{k: v for k, v in os.environ.items() if k not in away}, "HEARTH_HOME": str(tmp_path / "home")}
    done = subprocess.run([*HEARTH, "history", "export", "--task-run", str(saved.summary_run), "-o",
                           str(tmp_path / "run.pdf")], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert pdf_text(tmp_path / "run.pdf").startswith("Summary of “lease.pdf”")
