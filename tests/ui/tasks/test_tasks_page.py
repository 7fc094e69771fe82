"""The Tasks page, driven as a person would: real Qt, the real engine and tiny model, a real history."""

from __future__ import annotations

import csv
import os
import signal
from pathlib import Path

import pytest
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent, QGuiApplication
from pytestqt.qtbot import QtBot

from app.history import TaskRunRecord
from app.paths import Paths
from app.task_session import RunEnded
from app.tasks.export import result_text
from app.tasks.spec import KeyPoint, Part, Progress, TaskResult
from ui.main_window import TASKS_PAGE, MainWindow
from ui.tasks.page import TasksPage
from ui.tasks.tasks_view import TasksView

from tests.helpers.document_builders import word_document
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
    assert target.read_text(encoding="utf-8") == f"# Summary of the pasted text\n\n{event.result.text.strip()}\n"

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
    assert window.chat.current.title.startswith("Summary of the pasted text")


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
