"""The Tasks page, driven as a person would: real Qt, the real engine and tiny model, a real history."""

from __future__ import annotations

import csv
import os
import signal
from datetime import UTC, datetime
from pathlib import Path

import pytest
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent, QGuiApplication
from pytestqt.qtbot import QtBot

from app.history import TaskRunRecord
from app.outcomes import RunStatus
from app.paths import Paths
from app.task_session import RunEnded
from app.tasks.export import result_text
from app.tasks.spec import KeyPoint, Part, Progress, TaskResult
from ui.main_window import TASKS_PAGE, MainWindow
from ui.tasks.page import TasksPage
from ui.tasks.tasks_view import TasksView

from tests.helpers.document_builders import operations_report, word_document
from tests.helpers.windows import MakeWindow

# A known memory speed: nothing is measured in the background, and plans come with a time estimate.
pytestmark = [pytest.mark.engine, pytest.mark.window(bandwidth=20e9, settle=True)]

TIMEOUT = 60_000
SENTENCES = [
    "The little cat named Tom liked to play in the garden with a red ball.",
    "One day a big bird sat on the fence and sang a happy song in the sun.",
    "Tom climbed the old tree slowly and said hello to the bird.",
    "Then the sky became dark, and the rain began to fall on the flowers.",
    "When the sun came back, they played together until the evening.",
]

def _tasks_page(qtbot: QtBot, window: MainWindow, model: Path | None) -> TasksPage:
    if model is not None:
        window.library.import_model(model, copy=True)
        qtbot.waitUntil(lambda: window.library_model.rowCount() == 1, timeout=TIMEOUT)
    window._show_page(TASKS_PAGE)
    return window.tasks


def _planned(qtbot: QtBot, view: TasksView, words: str) -> None:
    """Wait for the plan line of the input as it is now (not a stale one) to say ``words``."""
    qtbot.waitUntil(lambda: not view.plan_label.property("stale") and words in view.plan_label.text(),
                    timeout=TIMEOUT)


def _run(qtbot: QtBot, window: MainWindow) -> RunEnded:
    view = window.tasks.view
    with qtbot.waitSignal(window.task_bridge.runEnded, timeout=TIMEOUT) as ended:
        qtbot.mouseClick(view.run_button, Qt.MouseButton.LeftButton)
    event: RunEnded = ended.args[0]
    return event


def _story(paragraphs: int) -> str:
    return "\n\n".join(" ".join(SENTENCES[(i + j) % len(SENTENCES)] for j in range(3)) for i in range(paragraphs))


def test_summarize_pasted_text_copy_and_save(qtbot: QtBot, make_window: MakeWindow, test_model_path: Path,
                                             tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    window = make_window()
    page = _tasks_page(qtbot, window, test_model_path)
    view = page.view
    qtbot.waitUntil(lambda: "write or paste" in view.run_button.toolTip(), timeout=TIMEOUT)
    assert not view.run_button.isEnabled()
    view.text_input.setPlainText(_story(4))
    _planned(qtbot, view, "reads it in one pass")
    assert view.plan_label.text().startswith("4 paragraphs · ") and " tokens · stories260K" in view.plan_label.text()
    qtbot.waitUntil(lambda: "· under a minute" in view.plan_label.text(), timeout=TIMEOUT)  # the forecast
    assert view.run_button.isEnabled() and view.model_status.text() == "Loads when you press Run"

    progress: list[tuple[Progress, str]] = []
    window.task_bridge.runProgress.connect(lambda _run, p: progress.append((p, view.progress_label.text())))
    event = _run(qtbot, window)  # the model is not loaded: the run waits for it, then starts
    assert event.record.status == "done" and event.result is not None and event.result.text
    assert progress and progress[0][0].label == "Reading the whole document"
    assert progress[0][1] == "Reading the whole document · step 1 of 1"
    assert view.run_button.isVisible() and not view.cancel_button.isVisible()
    assert "Loaded" in view.model_status.text()

    output = view.output
    assert output.title.text() == "Summary of the pasted text"
    assert output.summary_view.toPlainText().strip()
    assert output.metrics.text().startswith("Read all 4 paragraphs (") and "tokens processed" in output.metrics.text()
    qtbot.waitUntil(lambda: view.history.runs.rowCount() == 1, timeout=TIMEOUT)
    saved: TaskRunRecord = window.services.store.task_runs()[0]
    assert saved.status == "done" and saved.task == "summarize" and saved.input_kind == "pasted"

    qtbot.mouseClick(output.copy_button, Qt.MouseButton.LeftButton)
    assert QGuiApplication.clipboard().text() == result_text(event.result) and output.copy_button.text() == "Copied"
    target = tmp_path / "summary.md"
    page.save_result(target)
    qtbot.waitUntil(target.exists, timeout=TIMEOUT)
    saved_text = result_text(event.result).strip()  # with where each point came from
    assert target.read_text(encoding="utf-8") == f"# Summary of the pasted text\n\n{saved_text}\n"

    from PySide6.QtWidgets import QFileDialog

    offered: list[str] = []

    def choose(_parent: object, _title: str, _start: str, filters: str) -> tuple[str, str]:
        offered.append(filters)
        return str(tmp_path / "for-my-boss"), filters.split(";;")[0]  # Save pressed on what is offered first

    monkeypatch.setattr(QFileDialog, "getSaveFileName", choose)
    page.save_result_as()
    qtbot.waitUntil((tmp_path / "for-my-boss.docx").exists, timeout=TIMEOUT)
    assert offered[0].startswith("Word document (*.docx)")


def test_documents_open_as_a_drop_opens_them(qtbot: QtBot, make_window: MakeWindow, test_model_path: Path,
                                             tmp_path: Path) -> None:
    window = make_window()
    page = _tasks_page(qtbot, window, test_model_path)
    view = page.view
    report = word_document(tmp_path / "report.docx", [("Title", "Garden report"), ("Heading 1", "Spring"),
                                                      *(("", s) for s in SENTENCES)])
    page.open_file(report)
    qtbot.waitUntil(lambda: view.drop_zone.details.text().startswith("Word document · 7 paragraphs · "),
                    timeout=TIMEOUT)
    assert view.drop_zone.headline.text() == "report.docx" and not view.text_input.isVisible()
    _planned(qtbot, view, "tokens · stories260K · F32 reads it in one pass")
    assert view.plan_label.text().startswith("7 paragraphs · ")

    notes = tmp_path / "notes.md"
    notes.write_text("# Notes\n\nFirst thought.\n\nSecond thought.\n", encoding="utf-8")
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(notes))])
    drop = QDropEvent(QPointF(10, 10), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                      Qt.KeyboardModifier.NoModifier)
    view.dropEvent(drop)
    qtbot.waitUntil(lambda: view.drop_zone.details.text().startswith("Markdown · 3 paragraphs · "), timeout=TIMEOUT)

    odd = tmp_path / "minutes.odt"
    odd.write_bytes(b"PK\x03\x04 not really")
    page.open_file(odd)
    qtbot.waitUntil(view.input_error.isVisible, timeout=TIMEOUT)
    assert "“minutes.odt”" in view.input_error.text()
    _planned(qtbot, view, "")
    assert view.text_input.isVisible() and not view.run_button.isEnabled()


def test_cancel_keeps_the_parts_read(qtbot: QtBot, make_window: MakeWindow, test_model_path: Path) -> None:
    window = make_window()
    window.settings.generation.context_length = 512
    page = _tasks_page(qtbot, window, test_model_path)
    view = page.view
    view.text_input.setPlainText(_story(60))
    _planned(qtbot, view, " parts")
    with qtbot.waitSignal(window.task_bridge.runPart, timeout=TIMEOUT):
        qtbot.mouseClick(view.run_button, Qt.MouseButton.LeftButton)
    assert view.cancel_button.isVisible() and view.progress.isVisible()
    assert view.progress_label.text().startswith("Reading part ")
    with qtbot.waitSignal(window.task_bridge.runEnded, timeout=TIMEOUT) as ended:
        qtbot.keyClick(view.text_input, Qt.Key.Key_Escape)  # Esc cancels on this page
    event: RunEnded = ended.args[0]
    assert event.record.status == "cancelled" and event.result is not None and event.result.parts
    assert window.services.engine.loaded is not None and window.services.engine.loaded.context_length == 512
    parts = view.output.parts
    assert [p.index for p in parts] == [p.index for p in event.result.parts]
    assert "Part 1" in view.output.parts_view.toPlainText() and view.output.parts_box.isVisible()
    assert view.output.notice.text().startswith(f"Stopped after {len(parts)} of ")
    assert "stopped before the summary was written" in view.output.summary_view.toPlainText()


def test_classify_fills_the_table_and_exports_csv(qtbot: QtBot, make_window: MakeWindow, test_model_path: Path,
                                                  tmp_path: Path, qtmodeltester: object) -> None:
    window = make_window()
    page = _tasks_page(qtbot, window, test_model_path)
    view = page.view
    page.set_task("classify")
    view.text_input.setPlainText("I love this garden\nThe rain ruined my day\n")
    _planned(qtbot, view, "")
    assert "at least two labels" in view.run_button.toolTip()
    view.options.labels.setPlainText("happy: a cheerful text\nsad")
    _planned(qtbot, view, "labels them one by one")
    assert "model call" not in view.plan_label.text()
    assert view.plan_label.text().startswith("2 texts · ")
    event = _run(qtbot, window)
    assert event.record.status == "done"
    table = view.output.classified
    assert table.rowCount() == 2 and view.output.table.isVisible()
    assert all(row.labels and set(row.labels) <= {"happy", "sad"} for row in table.rows())
    assert table.index(1, 0).data() == "The rain ruined my day"
    assert "happy:" in table.index(0, 2).data(Qt.ItemDataRole.ToolTipRole)
    qtmodeltester.check(table)  # type: ignore[attr-defined]
    qtmodeltester.check(view.history.runs)  # type: ignore[attr-defined]

    target = tmp_path / "labels.csv"
    page.export_csv(target)
    qtbot.waitUntil(target.exists, timeout=TIMEOUT)
    rows = list(csv.reader(target.read_text(encoding="utf-8-sig").splitlines()))
    assert rows[0] == ["input", "labels", "confidence happy", "confidence sad"]
    assert [r[0] for r in rows[1:]] == ["I love this garden", "The rain ruined my day"]


def test_translate_shows_both_texts(qtbot: QtBot, make_window: MakeWindow, test_model_path: Path) -> None:
    window = make_window()
    page = _tasks_page(qtbot, window, test_model_path)
    view = page.view
    page.set_task("translate")
    view.options.source.setCurrentText("English")
    view.options.target.setCurrentText("English")
    view.text_input.setPlainText(_story(2))
    _planned(qtbot, view, "")
    assert "already in English" in view.run_button.toolTip() and not view.run_button.isEnabled()
    view.options.target.setCurrentText("French")
    _planned(qtbot, view, "translates it in one pass")
    event = _run(qtbot, window)
    assert event.record.status == "done"
    output = view.output
    assert output.source_view.isVisible() and output.translation_view.isVisible()
    assert output.source_view.toPlainText() == _story(2)
    assert output.translation_view.toPlainText() == event.result.text  # type: ignore[union-attr]
    assert output.source_caption.text() == "Original (English)"
    assert output.subtitle.text().startswith("English to French · stories260K")


def test_open_in_chat_starts_a_conversation_with_the_result(qtbot: QtBot, make_window: MakeWindow,
                                                           test_model_path: Path) -> None:
    window = make_window()
    window.settings.generation.max_tokens = 8
    page = _tasks_page(qtbot, window, test_model_path)
    view = page.view
    view.text_input.setPlainText(_story(2))
    _planned(qtbot, view, "one pass")
    event = _run(qtbot, window)
    assert event.result is not None
    with qtbot.waitSignal(window.bridge.answerFinished, timeout=TIMEOUT):
        qtbot.mouseClick(view.output.chat_button, Qt.MouseButton.LeftButton)
    assert window.stack.currentIndex() == 0 and window.chats_tab.isChecked()
    qtbot.waitUntil(lambda: window.chat.conversations.rowCount() == 1, timeout=TIMEOUT)
    assert window.chat.current is not None
    messages = window.services.store.messages(window.chat.current.id)
    assert [m.role for m in messages] == ["user", "assistant"]
    assert messages[0].content.startswith("Summary of the pasted text (Key points):\n\n")
    assert result_text(event.result) in messages[0].content
    assert "The document it summarizes:\n\nThe little cat named Tom liked to play" in messages[0].content
    assert window.chat.current.title.startswith("Summary of the pasted text")


LEASE = """Lease of the flat at 14 Harbour Street, Brightwater

The tenant, Mira Solberg, rents the flat from the landlord, Tomas Everly, from 1 March 2026 for two years.

The rent is 1,150 euros a month, paid on the first working day of each month into the landlord's account at \
Coastal Bank. A deposit of 2,300 euros is held by the Brightwater Deposit Service.

The landlord repairs the roof, the boiler and the windows within fourteen days of being told. The tenant looks \
after the garden and may keep one cat, but no dogs.

Either side may end the lease with three months' notice in writing after the first year."""


def _saved_summary(tmp_path: Path, document: str, summary: str, document_tokens: int, name: str) -> None:
    """A summary run of ``document`` in the history the window will open, as a run by SmolLM2 leaves it."""
    from app.history import HistoryStore, open_database

    store = HistoryStore(open_database(Paths.under(tmp_path / "home").ensure().database))
    run_id = store.start_task_run("summarize", parameters={"length": "short"}, input_name=name, input_kind="md",
                                  input_bytes=len(document), input_sha256="0" * 64, input_text=document,
                                  model_name="SmolLM2", model_path=None)
    result = TaskResult("summarize", summary, "done", chunks=1, levels=1, document_tokens=document_tokens,
                        covered_tokens=document_tokens)
    store.finish_task_run(run_id, status="done", output=summary, result=result.to_dict(), metrics={})


def _open_saved_run_in_chat(qtbot: QtBot, window: MainWindow, model: Path) -> list[str]:
    """Shows the one saved run, presses Open in chat, and waits for the answer (the chat loads the model first);
    returns what the status bar said meanwhile."""
    view = _tasks_page(qtbot, window, model).view
    qtbot.waitUntil(lambda: view.history.runs.rowCount() == 1, timeout=TIMEOUT)
    view.history.list.setCurrentIndex(view.history.runs.index(0))
    said: list[str] = []
    window.statusBar().messageChanged.connect(said.append)
    with qtbot.waitSignal(window.bridge.answerFinished, timeout=TIMEOUT):
        qtbot.mouseClick(view.output.chat_button, Qt.MouseButton.LeftButton)
    return said


@pytest.mark.window(context_length=2048, max_tokens=24)
def test_open_in_chat_carries_the_document_so_the_chat_can_answer_about_it(
        qtbot: QtBot, make_window: MakeWindow, real_model_path: Path, tmp_path: Path) -> None:
    """With the real SmolLM2: the conversation's first prompt holds the document (whole, as it fits), not only the
    summary, and the model reads all of it."""
    from app.engine.completion import VocabModel

    tokens = len(VocabModel(str(real_model_path), 2048).tokenize(LEASE))
    _saved_summary(tmp_path, LEASE, "Mira Solberg rents the flat for 1,150 euros a month.", tokens, "lease.md")
    window = make_window()
    _open_saved_run_in_chat(qtbot, window, real_model_path)
    assert window.chat.current is not None
    question, answer = window.services.store.messages(window.chat.current.id)
    assert question.content.startswith("Summary of “lease.md” (One paragraph):\n\nMira Solberg rents the flat")
    assert f"The document it summarizes:\n\n{LEASE}\n\n" in question.content and "left out" not in question.content
    assert answer.finish_reason in ("stop", "length") and not answer.context_dropped and not answer.error
    assert answer.prompt_tokens is not None and answer.prompt_tokens > tokens  # it read all of it


@pytest.mark.window(context_length=1024, max_tokens=16)
def test_open_in_chat_cuts_a_long_document_to_the_context_and_says_so(
        qtbot: QtBot, make_window: MakeWindow, real_model_path: Path, tmp_path: Path) -> None:
    """A 40-section report (3,529 tokens with SmolLM2) does not fit a 1,024-token chat: its start goes with the
    summary, the message and the status bar say how much, and the model still reads the whole message."""
    report = operations_report()
    _saved_summary(tmp_path, report, "The report covers forty sections of operations.", 3529, "report.md")
    window = make_window()
    said = _open_saved_run_in_chat(qtbot, window, real_model_path)
    assert window.chat.current is not None
    question, answer = window.services.store.messages(window.chat.current.id)
    kept = question.content.split("The document it summarizes:\n\n")[1].split("\n\n[")[0]
    assert report.startswith(kept) and "## Section 3:" in kept and "## Section 40:" not in kept
    note = f"Only the first {len(kept.split()):,} of {len(report.split()):,} words of the document fit the model's"
    assert note in question.content and any(message.startswith(note) for message in said)
    assert answer.finish_reason in ("stop", "length") and not answer.context_dropped and not answer.error


def test_delete_a_run_then_undo(qtbot: QtBot, make_window: MakeWindow, test_model_path: Path) -> None:
    window = make_window()
    page = _tasks_page(qtbot, window, test_model_path)
    view = page.view
    view.text_input.setPlainText(_story(1))
    _planned(qtbot, view, "one pass")
    event = _run(qtbot, window)
    history = view.history
    qtbot.waitUntil(lambda: history.runs.rowCount() == 1 and history.delete_button.isEnabled(), timeout=TIMEOUT)
    qtbot.mouseClick(history.delete_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: history.runs.rowCount() == 0, timeout=TIMEOUT)
    assert view.history.undo_bar.isVisible() and view.history.empty.isVisible()
    assert view.output.stack.currentIndex() == 0  # the deleted run is no longer shown
    assert window.services.store.task_runs() == []
    qtbot.mouseClick(view.history.undo_bar.button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: view.history.runs.rowCount() == 1, timeout=TIMEOUT)
    assert not view.history.undo_bar.isVisible() and window.services.store.task_runs()[0].id == event.run_id
    assert view.output.title.text() == "Summary of the pasted text"


def test_a_worker_crash_mid_run_is_reported_with_the_parts_done(
        qtbot: QtBot, make_window: MakeWindow, test_model_path: Path) -> None:
    window = make_window()
    window.settings.generation.context_length = 512
    page = _tasks_page(qtbot, window, test_model_path)
    view = page.view
    view.text_input.setPlainText(_story(60))
    _planned(qtbot, view, " parts")
    with qtbot.waitSignal(window.task_bridge.runPart, timeout=TIMEOUT):
        qtbot.mouseClick(view.run_button, Qt.MouseButton.LeftButton)
    assert window.services.engine.pid is not None
    with qtbot.waitSignal(window.task_bridge.runEnded, timeout=TIMEOUT) as ended:
        os.kill(window.services.engine.pid, signal.SIGKILL)
    assert ended.args[0].record.status == "interrupted"
    assert view.output.notice.text().startswith("Interrupted: The model engine stopped unexpectedly")
    assert "What was done before is shown." in view.output.notice.text() and view.output.parts
    assert view.run_button.isVisible()
    qtbot.waitUntil(lambda: view.model_status.text() == "Loads when you press Run", timeout=TIMEOUT)


def test_without_a_model_run_says_what_to_do(qtbot: QtBot, make_window: MakeWindow) -> None:
    window = make_window()
    page = _tasks_page(qtbot, window, None)
    view = page.view
    view.text_input.setPlainText("Some text to summarize.")
    _planned(qtbot, view, "Add a model first")
    assert not view.run_button.isEnabled() and view.run_button.toolTip().startswith("Add a model first")
    assert not view.model_combo.isEnabled() and view.model_combo.currentText() == "No models yet"


def test_a_key_point_leads_to_the_part_it_came_from(qtbot: QtBot) -> None:
    from ui.tasks.results import ResultPanel

    panel = ResultPanel()
    qtbot.addWidget(panel)
    parts = tuple(Part(i, f"pages {2 * i - 1}–{2 * i}", 2 * i - 2, 2 * i - 1, 100, f"What part {i} says.")
                  for i in (1, 2, 3))
    result = TaskResult("summarize", "The gist:\n- Rain fell less\n- Rivers ran low", "done", parts=parts,
                        points=(KeyPoint("Rain fell less", 1, "pages 1–2"), KeyPoint("Rivers ran low", 3, "pages 5–6")),
                        chunks=3, levels=2)
    panel.show_result("summarize", "Summary of “report.pdf”", "", result, source_text=None, multi=False, metrics="")
    assert 'href="part:3"' in panel.summary_view.toHtml()
    assert panel.summary_view.toPlainText() == "The gist:\nRain fell less — pages 1–2\nRivers ran low — pages 5–6"
    panel.summary_view.anchorClicked.emit(QUrl("part:3"))
    assert panel.highlighted_part == 3 and "What part 3 says." in panel.parts_view.toPlainText()
    assert panel.parts_view.toHtml().count("#fdebd6") == 1  # one part is shaded
    panel.summary_view.anchorClicked.emit(QUrl("https://example.com"))  # other links do nothing
    assert panel.highlighted_part == 3


def test_a_run_cut_off_by_a_crash_shows_as_interrupted(qtbot: QtBot, make_window: MakeWindow, tmp_path: Path) -> None:
    from app.history import HistoryStore, open_database

    paths = Paths.under(tmp_path / "home").ensure()
    store = HistoryStore(open_database(paths.database))
    store.start_task_run("summarize", parameters={"length": "short"}, input_name="report.pdf", input_kind="pdf",
                         input_bytes=1000, input_sha256="0" * 64, input_text=None, model_name="Tiny",
                         model_path=None)  # the app died here: the run stays "running" in the database
    window = make_window()  # starting again marks it interrupted
    page = _tasks_page(qtbot, window, None)
    view = page.view
    qtbot.waitUntil(lambda: view.history.runs.rowCount() == 1, timeout=TIMEOUT)
    assert "interrupted" in view.history.runs.index(0).data()
    view.history.list.setCurrentIndex(view.history.runs.index(0))
    assert view.output.title.text() == "Summary of “report.pdf”"
    assert view.output.notice.text() == "Interrupted: Hearth stopped before the task finished. Nothing was kept."
    assert not view.output.copy_button.isEnabled() and not view.output.chat_button.isEnabled()


def test_a_password_protected_pdf_asks_for_its_password(qtbot: QtBot, make_window: MakeWindow, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from PySide6.QtWidgets import QInputDialog, QLineEdit

    from tests.helpers.document_builders import encrypted_pdf

    asked: list[tuple[str, QLineEdit.EchoMode]] = []
    answers = iter([("wrong", True), ("secret", True)])

    def answer(_parent: object, _title: str, label: str, echo: QLineEdit.EchoMode) -> tuple[str, bool]:
        asked.append((label, echo))
        return next(answers)

    monkeypatch.setattr(QInputDialog, "getText", answer)
    window = make_window()
    page = _tasks_page(qtbot, window, None)
    view = page.view
    pdf = tmp_path / "locked.pdf"
    pdf.write_bytes(encrypted_pdf([["Page one text."], ["Page two text."]], user_password="secret"))
    page.open_file(pdf)
    qtbot.waitUntil(lambda: view.drop_zone.details.text().startswith("PDF · 2 pages · "), timeout=TIMEOUT)
    assert [echo for _, echo in asked] == [QLineEdit.EchoMode.Password] * 2
    assert "“locked.pdf” is protected with a password" in asked[0][0]
    assert "not correct" in asked[1][0]


def test_classify_a_csv_column_and_the_page_shortcuts(qtbot: QtBot, make_window: MakeWindow, test_model_path: Path,
                                                      tmp_path: Path) -> None:
    window = make_window()
    window._show_page(0)
    with qtbot.waitActive(window, timeout=TIMEOUT):
        window.activateWindow()
    qtbot.keyClick(window.chat.view.composer, Qt.Key.Key_4, Qt.KeyboardModifier.ControlModifier)
    assert window.stack.currentIndex() == TASKS_PAGE and window.tasks_tab.isChecked()
    assert not window.stop_action.isEnabled()  # Esc cancels the task here, not the chat's answer
    page = _tasks_page(qtbot, window, test_model_path)
    view = page.view
    table = tmp_path / "reviews.csv"
    table.write_text("id,review\n1,Lovely garden\n2,\n3,Too much rain\n", encoding="utf-8")
    page.open_file(table)
    qtbot.waitUntil(lambda: view.drop_zone.column.count() == 2, timeout=TIMEOUT)
    _planned(qtbot, view, "")
    assert view.run_button.toolTip().startswith("“reviews.csv” is a table: choose Classify")
    page.set_task("classify")
    view.options.labels.setPlainText("happy, sad")
    view.drop_zone.column.textActivated.emit("review")
    qtbot.waitUntil(lambda: view.drop_zone.details.text() == "Table · 2 texts in the column “review”",
                    timeout=TIMEOUT)
    _planned(qtbot, view, "2 texts · ")
    with qtbot.waitSignal(window.task_bridge.runEnded, timeout=TIMEOUT) as ended:
        qtbot.keyClick(view.options.labels, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)  # Run
    assert ended.args[0].record.input_kind == "csv" and view.output.classified.rowCount() == 2
    window._show_page(0)
    assert window.stop_action.isEnabled()


def test_a_context_too_small_is_said_before_running(qtbot: QtBot, make_window: MakeWindow,
                                                    test_model_path: Path) -> None:
    window = make_window()
    window.settings.generation.context_length = 256
    page = _tasks_page(qtbot, window, test_model_path)
    view = page.view
    view.text_input.setPlainText(_story(3))
    _planned(qtbot, view, "too small to summarize")
    assert view.plan_label.property("problem") is True
    assert view.plan_label.text().startswith("The context window (256 tokens) is too small")
    assert window.services.engine.loaded is None  # the plan reads only the model's vocabulary


def test_the_bar_moves_while_a_part_is_read_and_written(qtbot: QtBot, make_window: MakeWindow,
                                                        test_model_path: Path) -> None:
    window = make_window()
    window.settings.generation.context_length = 512
    page = _tasks_page(qtbot, window, test_model_path)
    view = page.view
    view.text_input.setPlainText(_story(30))
    _planned(qtbot, view, " parts")
    seen: list[tuple[Progress, int, int, str]] = []
    window.task_bridge.runProgress.connect(lambda _run, p: seen.append(
        (p, view.progress.value(), view.progress.maximum(), view.progress_label.text())))
    _run(qtbot, window)
    starts = {p.step: value for p, value, _, _ in seen if not (p.read or p.written)}
    within = [(p, value) for p, value, _, _ in seen if p.read or p.written]
    assert len(starts) > 3 and within
    assert any(starts[p.step] < value < starts.get(p.step + 1, 1000) for p, value in within)  # between two steps
    labels = [label for _, _, _, label in seen]
    assert any(label.startswith("Reading part 2 of ") and " · read " in label and label.endswith(" tokens")
               for label in labels)
    assert any(" · wrote 16 tokens" in label for label in labels)
    assert all(maximum == 1000 for _, _, maximum, _ in seen)


def test_a_part_that_went_wrong_is_marked_and_the_result_says_so(qtbot: QtBot) -> None:
    from ui.tasks.results import ResultPanel
    from ui.tasks.run_models import status_notice

    panel = ResultPanel()
    qtbot.addWidget(panel)
    panel.resize(900, 700)
    parts = (Part(1, "sections “Section 29” to “Section 38”", 0, 20, 900,
                  "- The team led by Ben recorded 93 incidents."),
             Part(2, "sections “Section 38” to “Section 40”", 20, 26, 400, "Section 39: IT Systems in region 5\n\n"
                  "In region 5, IT systems stayed flat during the year.", "restating"))
    result = TaskResult("summarize", "- The team led by Ben recorded 93 incidents.", "done", parts=parts, chunks=2,
                        levels=2, document_tokens=1300, covered_tokens=900)
    panel.show_result("summarize", "Summary of “report.md”", "", result, source_text=None, multi=False,
                      metrics="Summarized 900 of 1,300 tokens (1 of 2 parts; 1 went wrong)")
    record = TaskRunRecord(id=1, created_at=datetime.now(UTC), finished_at=None, task="summarize",
                           status=RunStatus.DONE, parameters={}, input_name="report.md", input_kind="md",
                           input_bytes=1, input_sha256="", input_text=None, output=result.text,
                           result=result.to_dict(), model_name="SmolLM2", model_path=None, metrics={}, error=None,
                           deleted_at=None)
    panel.set_notice(*status_notice(record, result))
    assert panel.notice.text() == ("Part 2 of 2 went wrong (the model began copying out the text it was given), so "
                                   "the summary leaves it out.")
    parts_text = panel.parts_view.toPlainText()
    assert "Stopped: the model began copying out the text it was given. Left out of the result." in parts_text
    assert parts_text.count("Stopped:") == 1 and panel.parts_box.isVisibleTo(panel)
    assert panel.summary_view.toPlainText() == "The team led by Ben recorded 93 incidents."
    from ui.tasks.run_models import status_words

    assert status_words(record) == "incomplete"


def test_key_points_written_as_paragraphs_lead_to_their_parts(qtbot: QtBot) -> None:
    from ui.tasks.results import ResultPanel

    panel = ResultPanel()
    qtbot.addWidget(panel)
    parts = tuple(Part(i, f"pages {2 * i - 1}–{2 * i}", 2 * i - 2, 2 * i - 1, 100, f"What part {i} says.")
                  for i in (1, 2))
    text = "The year was dry. Rain fell less than ever.\n\nRivers ran low, and the farmers were paid for it."
    result = TaskResult("summarize", text, "done", parts=parts, chunks=2, levels=2, points=(
        KeyPoint("The year was dry.", 1, "pages 1–2"), KeyPoint("Rain fell less than ever.", 1, "pages 1–2"),
        KeyPoint("Rivers ran low, and the farmers were paid for it.", 2, "pages 3–4")))
    panel.show_result("summarize", "Summary of “report.pdf”", "", result, source_text=None, multi=False, metrics="")
    html = panel.summary_view.toHtml()
    assert html.count('href="part:1"') == 2 and html.count('href="part:2"') == 1
    assert panel.summary_view.toPlainText() == ("The year was dry. (part 1) Rain fell less than ever. (part 1)\n"
                                                "Rivers ran low, and the farmers were paid for it. (part 2)")
    panel.summary_view.anchorClicked.emit(QUrl("part:2"))
    assert panel.highlighted_part == 2


@pytest.mark.window(context_length=1024)
def test_a_run_whose_summary_went_wrong_shows_what_the_model_wrote_and_why(
        qtbot: QtBot, make_window: MakeWindow, real_model_path: Path) -> None:
    """A real run: SmolLM2, asked for the key points of sections 37 to 40 of the report (seed 1), copies them out;
    the run is saved and shown with no summary, the copy under its part, and a footer that does not say it read
    the document."""
    import threading

    from app.documents.reader import document_from_text
    from app.tasks import inputs
    from app.tasks.spec import Summarize, TaskInput

    window = make_window()
    page = _tasks_page(qtbot, window, real_model_path)
    engine, tasks = window.services.engine, window.services.tasks
    document = document_from_text(operations_report(37))
    task = TaskInput(Summarize("points"), inputs.passages_of(document), title="report", temperature=0.2, seed=1,
                     max_output_tokens=96)
    ended: list[RunEnded] = []

    def run() -> None:  # as the command line does it, off the GUI thread
        engine.load_blocking(real_model_path, context_length=1024)
        ended.append(tasks.run_blocking(task, inputs.source_of(document), model_name="SmolLM2"))

    threading.Thread(target=run, daemon=True).start()
    view = page.view
    qtbot.waitUntil(lambda: bool(ended) and view.history.runs.rowCount() == 1, timeout=TIMEOUT)
    assert view.history.runs.index(0).data().endswith(" · no summary")
    view.history.list.setCurrentIndex(view.history.runs.index(0))
    output = view.output
    assert output.notice.text() == ("There is no summary: the model began copying out the text it was given. Run it "
                                    "again, or try a larger model.")
    shown = output.summary_view.toPlainText()
    assert shown.startswith("No summary. What the model wrote before it was stopped:\n")
    assert "## Section 37: Marketing in region 3" in shown and not output.parts_box.isVisible()
    footer = output.metrics.text()
    assert footer.startswith("Read all of it (") and " in one pass; no summary · " in footer
    assert not output.copy_button.isEnabled() and not output.chat_button.isEnabled()  # nothing to take away


def test_a_base_model_is_said_so_where_the_task_is_planned(qtbot: QtBot, make_window: MakeWindow,
                                                           test_model_path: Path, tmp_path: Path) -> None:
    """stories260K has no chat template and no instruct name: a base model, which summarizes poorly. The same
    model with a chat template is not one, and the plan says nothing of it."""
    from app.gguf.kind import BASE_MODEL_TASK_WARNING

    from tests.helpers.gguf_fixtures import with_chat_template

    window = make_window()
    page = _tasks_page(qtbot, window, test_model_path)
    view = page.view
    view.text_input.setPlainText(_story(4))
    _planned(qtbot, view, "reads it in one pass")
    assert view.plan_label.text().endswith(BASE_MODEL_TASK_WARNING)

    window.library.import_model(with_chat_template(test_model_path, tmp_path), copy=True)
    qtbot.waitUntil(lambda: view.model_combo.count() == 2, timeout=TIMEOUT)
    chat = next(i for i in range(2) if not view.model_combo.itemData(i).is_base_model)
    view.model_combo.setCurrentIndex(chat)
    _planned(qtbot, view, "reads it in one pass")
    assert BASE_MODEL_TASK_WARNING not in view.plan_label.text()
