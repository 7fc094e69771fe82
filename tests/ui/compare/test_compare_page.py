"""The Compare page, driven as a person would: real Qt, real engine workers (one per model), two tiny real
models of different sizes, and a real history."""

from __future__ import annotations

import html
from dataclasses import replace
from pathlib import Path

import psutil
import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFileDialog
from pytestqt.qtbot import QtBot

from app.compare.figures import FIGURES, label, shown_entries
from app.history import ComparisonRecord
from ui.compare.compare_view import CompareView
from ui.compare.page import ComparePage
from ui.compare.result import schedule_words
from ui.main_window import COMPARE_PAGE, MainWindow

from tests.helpers.model_builders import llama_gqa
from tests.helpers.windows import MakeWindow

# A known memory speed (nothing measured in the background), short answers (the tests are about the page) and short
# task outputs (a quarter of the window).
pytestmark = [pytest.mark.engine,
              pytest.mark.window(bandwidth=20e9, max_tokens=48, context_length=512, settle=True)]

TIMEOUT = 120_000
PROMPT = "Once upon a time, there was a little dog named Max."
STORY = ("Tom liked to play in the garden with a red ball.\n\nOne day a big bird sat on the fence and sang a "
         "happy song.\n\nWhen the rain came, Tom and the bird hid under the old tree together.\n")

@pytest.fixture(scope="module")
def second_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A second real tiny model, of another size than the test model."""
    return llama_gqa(tmp_path_factory.mktemp("models"), n_embd=256, n_layer=4)


def _compare_page(qtbot: QtBot, window: MainWindow, models: list[Path]) -> ComparePage:
    for count, model in enumerate(models, start=1):
        window.library.import_model(model, copy=False)
        qtbot.waitUntil(lambda count=count: window.library_model.rowCount() == count, timeout=TIMEOUT)
    window._show_page(COMPARE_PAGE)
    page = window.compare
    qtbot.waitUntil(lambda: page.view.model_list.count() == len(models), timeout=TIMEOUT)
    return page


def _tick_all(view: CompareView) -> None:
    for row in range(view.model_list.count()):
        view.model_list.item(row).setCheckState(Qt.CheckState.Checked)


def _run(qtbot: QtBot, window: MainWindow) -> ComparisonRecord:
    view = window.compare.view
    assert view.run_button.isEnabled(), view.run_button.toolTip()
    with qtbot.waitSignal(window.compare_bridge.compareEnded, timeout=TIMEOUT) as ended:
        qtbot.mouseClick(view.run_button, Qt.MouseButton.LeftButton)
    record: ComparisonRecord = ended.args[0]
    return record


def _titles(view: CompareView) -> list[str]:
    return [column.title.text() for column in view.panel.columns.values()]


def test_a_chat_comparison_shows_both_outputs_and_figures(qtbot: QtBot, make_window: MakeWindow,
                                                           test_model_path: Path, second_model: Path,
                                                           qtmodeltester: object) -> None:
    window = make_window()
    page = _compare_page(qtbot, window, [test_model_path, second_model])
    view = page.view
    assert not view.few_models.isVisible()
    assert not view.run_button.isEnabled() and "Tick 2 to 4 models" in view.run_button.toolTip()
    _tick_all(view)
    assert "Write a prompt" in view.run_button.toolTip() and not view.run_button.isEnabled()
    view.prompt.setPlainText(PROMPT)
    assert view.deterministic.isChecked() and view.seed.value() > 0

    texts: list[tuple[int, str]] = []
    window.compare_bridge.entryText.connect(lambda _cid, position, text: texts.append((position, text)))
    record = _run(qtbot, window)
    assert record.status == "done" and record.kind == "chat" and record.input_text == PROMPT
    assert record.settings["deterministic"] and record.settings["seed"] == view.seed.value()
    assert texts and {position for position, _ in texts} == {0, 1}  # both streamed
    entries = shown_entries(record)
    assert [e.model_name for e in entries] == [m.name for m in page.chosen_models()]  # the order ticked
    assert sorted(e.model_name for e in entries) == sorted(["stories260K · F32", "Llama Gqa · F16"])
    assert all(e.status == "done" and e.output for e in entries)

    panel = view.panel
    assert _titles(view) == [e.model_name for e in entries]
    for entry, column in zip(entries, panel.columns.values(), strict=True):
        assert column.output.toPlainText() == entry.output
        assert column.status.text() == "Done"
        assert column.figures.isVisible()
        speed = FIGURES[[f.key for f in FIGURES].index("tokens_per_s")].show(entry.metrics["tokens_per_s"])
        assert column.figure_labels["tokens_per_s"][1].text() == speed and speed.endswith(" tokens/s")
        memory = column.figure_labels["peak_rss_bytes"][1].text()
        assert memory.startswith("forecast ") and " · measured " in memory and "–" not in memory
        assert column.vote_button.isVisible() and column.vote_button.text() == f"{entry.model_name} is better"
    assert panel.chart.isVisible() and [row.label for row in panel.chart.rows] == [e.model_name for e in entries]
    assert panel.chart.chart_png().startswith(b"\x89PNG")
    assert not panel.notice.isVisible() and view.run_button.isVisible() and not view.stop_button.isVisible()
    if all(e.metrics.get("ran_with") == 1 for e in entries):  # they fitted in memory together
        assert panel.shared_note.isVisible() and "Ran at the same time as 1 other model" in panel.shared_note.text()

    assert record.settings["one_at_a_time"], "each model alone is the default"
    assert schedule_words(record, [[0], [1]], 5_200_000_000).startswith(
        "One after another: each model has the computer to itself")
    together = replace(record, settings={**record.settings, "one_at_a_time": False})
    assert schedule_words(together, [[0, 1]], 5_200_000_000) == (
        "Running both at once, as you asked: they fit in the 5.2 GB free. They share the processor, so each writes "
        "slower than it would alone.")
    assert schedule_words(together, [[0], [1]], 5_200_000_000).startswith(
        "One after another: not enough free memory to run them together")

    qtbot.waitUntil(lambda: view.history.model.rowCount() == 1, timeout=TIMEOUT)
    assert view.history.model.record(0).id == record.id  # type: ignore[union-attr]
    qtmodeltester.check(view.history.model)  # type: ignore[attr-defined]


def test_a_summarize_comparison_of_a_document(qtbot: QtBot, make_window: MakeWindow, test_model_path: Path,
                                              second_model: Path, tmp_path: Path) -> None:
    window = make_window()
    page = _compare_page(qtbot, window, [test_model_path, second_model])
    view = page.view
    _tick_all(view)
    qtbot.mouseClick(view.picker.buttons["summarize"], Qt.MouseButton.LeftButton)
    assert page.kind == "summarize" and view.form.isVisible() and not view.prompt.isVisible()
    assert "Open a document" in view.run_button.toolTip()
    notes = tmp_path / "garden.md"
    notes.write_text("# The garden\n\n" + STORY, encoding="utf-8")
    page.open_file(notes)
    qtbot.waitUntil(lambda: view.drop_zone.details.text().startswith("Markdown · "), timeout=TIMEOUT)
    assert view.run_button.isEnabled()

    record = _run(qtbot, window)
    assert record.status == "done" and record.kind == "summarize", [e.error for e in record.entries]
    assert record.input_name == "garden.md" and record.input_kind == "md" and "red ball" in record.input_text
    assert record.settings["task"]["length"] == "points"
    for entry, column in zip(shown_entries(record), view.panel.columns.values(), strict=True):
        assert entry.status == "done" and entry.output.strip()
        assert column.output.toPlainText() == entry.output and column.figures.isVisible()
    assert view.panel.title.text() == "Summarize: garden.md"


def test_blind_vote_reveals_names_and_the_leaderboard_keeps_it(qtbot: QtBot, make_window: MakeWindow,
                                                                 test_model_path: Path, second_model: Path,
                                                                 qtmodeltester: object) -> None:
    window = make_window()
    page = _compare_page(qtbot, window, [test_model_path, second_model])
    view = page.view
    _tick_all(view)
    view.prompt.setPlainText(PROMPT)
    view.blind.setChecked(True)
    record = _run(qtbot, window)
    assert record.blind and record.names_hidden and record.status == "done"
    assert _titles(view) == ["Model A", "Model B"]
    assert [row.label for row in view.panel.chart.rows] == ["Model A", "Model B"]
    assert all(row.peak_mb is None for row in view.panel.chart.rows)  # a model's size would show through
    shown_keys = {key for column in view.panel.columns.values() for key in column.figure_keys()}
    assert shown_keys and not shown_keys & {"load_s", "peak_rss_bytes", "estimate_bytes"}
    columns = list(view.panel.columns.values())
    assert [c.vote_button.text() for c in columns] == ["Model A is better", "Model B is better"]
    assert all(c.title.toolTip() == "Names are shown after you vote" for c in columns)
    assert view.panel.verdict.text() == "Names are shown after you vote."

    winner = shown_entries(record)[0]  # the column shown first, whichever model the shuffle put there
    qtbot.mouseClick(columns[0].vote_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: page.shown() is not None and page.shown().verdict is not None,  # type: ignore[union-attr]
                    timeout=TIMEOUT)
    saved = window.services.store.get_comparison(record.id)
    assert saved.verdict == "winner" and saved.winner_position == winner.position
    assert _titles(view) == [e.model_name for e in shown_entries(saved)]
    assert columns[0].vote_button.isChecked() and not columns[1].vote_button.isChecked()
    assert view.panel.verdict.text() == f"Better: {winner.model_name}."
    assert {"load_s", "peak_rss_bytes"} <= set(columns[0].figure_keys())  # revealed with the names
    assert all(row.peak_mb for row in view.panel.chart.rows)
    assert [row.label for row in view.panel.chart.rows] == [e.model_name for e in shown_entries(saved)]

    def leader(v: CompareView) -> tuple[str, int, int] | None:
        rows = v.leaderboard.model.rows()
        return (rows[0].model_name, rows[0].wins, rows[0].voted) if rows else None

    qtbot.waitUntil(lambda: leader(view) == (winner.model_name, 1, 1), timeout=TIMEOUT)
    qtmodeltester.check(view.leaderboard.model)  # type: ignore[attr-defined]

    qtbot.mouseClick(view.panel.tie_button, Qt.MouseButton.LeftButton)  # a vote can be changed
    qtbot.waitUntil(lambda: window.services.store.get_comparison(record.id).verdict == "tie", timeout=TIMEOUT)
    qtbot.waitUntil(lambda: view.panel.tie_button.isChecked() and not columns[0].vote_button.isChecked(),
                    timeout=TIMEOUT)
    qtbot.waitUntil(lambda: leader(view) is not None and leader(view)[1] == 0, timeout=TIMEOUT)  # type: ignore[index]
    qtbot.mouseClick(columns[0].vote_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: leader(view) == (winner.model_name, 1, 1), timeout=TIMEOUT)

    window.close()  # and start again on the same data
    again = make_window()
    qtbot.waitUntil(lambda: leader(again.compare.view) == (winner.model_name, 1, 1), timeout=TIMEOUT)
    qtbot.waitUntil(lambda: again.compare.view.history.model.rowCount() == 1, timeout=TIMEOUT)
    again.compare.view.history.list.setCurrentIndex(again.compare.view.history.model.index(0))
    assert _titles(again.compare.view) == [e.model_name for e in shown_entries(saved)]  # revealed for good


def test_stop_cancels_and_every_worker_is_gone(qtbot: QtBot, make_window: MakeWindow, test_model_path: Path,
                                               second_model: Path) -> None:
    window = make_window()
    window.settings.generation.max_tokens = 1800  # long answers, so Stop lands mid-answer
    window.settings.generation.context_length = 2048
    page = _compare_page(qtbot, window, [test_model_path, second_model])
    view = page.view
    _tick_all(view)
    view.prompt.setPlainText(PROMPT)
    view.together.setChecked(False)  # the second model waits for the first: Stop keeps it from starting
    with qtbot.waitSignal(window.compare_bridge.entryText, timeout=TIMEOUT):
        qtbot.mouseClick(view.run_button, Qt.MouseButton.LeftButton)
    assert view.stop_button.isVisible() and not view.run_button.isVisible() and not view.picker.isEnabled()
    with qtbot.waitSignal(window.compare_bridge.compareEnded, timeout=TIMEOUT) as ended:
        qtbot.keyClick(view.prompt, Qt.Key.Key_Escape)  # Esc stops on this page
    record: ComparisonRecord = ended.args[0]
    assert record.status == "cancelled"
    first, second = sorted(record.entries, key=lambda e: e.position)
    assert first.status == "cancelled" and first.metrics.get("worker_pid")
    assert second.status in ("waiting", "cancelled") and "worker_pid" not in second.metrics  # never started
    pids = [e.metrics["worker_pid"] for e in record.entries if e.metrics.get("worker_pid")]
    qtbot.waitUntil(lambda: not any(psutil.pid_exists(pid) for pid in pids), timeout=TIMEOUT)

    panel = view.panel
    assert panel.notice.isVisible() and panel.notice.text().startswith("Stopped.")
    assert [c.status.text() for c in panel.columns.values()] == ["Stopped", "Stopped"]
    assert view.run_button.isVisible() and view.run_button.isEnabled() and not view.stop_button.isVisible()
    assert window.services.store.get_comparison(record.id).status == "cancelled"


def test_save_report_writes_the_outputs_and_figures(qtbot: QtBot, make_window: MakeWindow, test_model_path: Path,
                                                    second_model: Path, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    window = make_window()
    page = _compare_page(qtbot, window, [test_model_path, second_model])
    view = page.view
    _tick_all(view)
    view.prompt.setPlainText(PROMPT)
    with qtbot.waitSignal(window.compare_bridge.compareEnded, timeout=TIMEOUT) as ended:
        qtbot.keyClick(view.prompt, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)  # runs on this page
    record: ComparisonRecord = ended.args[0]
    assert view.prompt.toPlainText() == PROMPT  # the shortcut ran it; no new line was typed
    asked: list[str] = []

    def save_dialog(_parent: object, _caption: str, suggested: str, filters: str) -> tuple[str, str]:
        asked.extend([suggested, filters])
        return str(tmp_path / "report"), "Web page (*.html)"

    monkeypatch.setattr(QFileDialog, "getSaveFileName", save_dialog)
    qtbot.mouseClick(view.panel.save_button, Qt.MouseButton.LeftButton)
    target = tmp_path / "report.html"
    qtbot.waitUntil(target.exists, timeout=TIMEOUT)
    assert asked[1] == "Web page (*.html);;Markdown (*.md)" and Path(asked[0]).name.startswith("Comparison – ")
    report = target.read_text(encoding="utf-8")
    for entry in record.entries:
        assert html.escape(entry.output) in report and html.escape(entry.model_name) in report
        assert f"<td>{html.escape(FIGURES[2].show(entry.metrics['tokens_per_s']))}</td>" in report
    assert "Peak memory (measured)" in report and "data:image/png;base64," in report

    page.save_report(tmp_path / "report.md")
    qtbot.waitUntil((tmp_path / "report.md").exists, timeout=TIMEOUT)
    assert "| Speed |" in (tmp_path / "report.md").read_text(encoding="utf-8")


def test_run_again_fills_the_form_from_a_saved_comparison(qtbot: QtBot, make_window: MakeWindow,
                                                         test_model_path: Path, second_model: Path,
                                                         tmp_path: Path) -> None:
    window = make_window()
    page = _compare_page(qtbot, window, [test_model_path, second_model])
    view = page.view
    page.set_chosen([m.id for m in reversed(window.library_model.items())])  # not the list's order
    page.set_kind("summarize")
    view.options.length.setCurrentIndex(view.options.length.findData("short"))
    notes = tmp_path / "garden.md"
    notes.write_text(STORY, encoding="utf-8")
    page.open_file(notes)
    qtbot.waitUntil(view.run_button.isEnabled, timeout=TIMEOUT)
    view.deterministic.setChecked(False)
    view.seed.setValue(4242)
    first = _run(qtbot, window)
    assert first.status == "done" and first.entries[0].model_name == "stories260K · F32"

    # The person moves on: another kind, other models, another input.
    page.set_kind("chat")
    view.prompt.setPlainText("Something else")
    page.set_chosen([])
    view.deterministic.setChecked(True)
    view.seed.setValue(7)
    view.form.remove_file()
    notes.unlink()  # the document itself is gone: the comparison kept its text

    view.tabs.setCurrentIndex(1)
    qtbot.waitUntil(lambda: view.history.model.rowCount() == 1, timeout=TIMEOUT)
    view.history.list.setCurrentIndex(view.history.model.index(0))
    assert page.shown() is not None and page.shown().id == first.id  # type: ignore[union-attr]
    qtbot.mouseClick(view.panel.again_button, Qt.MouseButton.LeftButton)
    assert view.tabs.currentIndex() == 0 and page.kind == "summarize"
    assert [m.name for m in page.chosen_models()] == [e.model_name for e in sorted(first.entries,
                                                                                   key=lambda e: e.position)]
    assert view.options.length.currentData() == "short"
    assert view.drop_zone.headline.text() == "garden.md" and "From the saved comparison" in \
        view.drop_zone.details.text()
    assert not view.deterministic.isChecked() and view.seed.value() == 4242
    assert view.run_button.isEnabled(), view.run_button.toolTip()

    again = _run(qtbot, window)
    assert again.id != first.id and again.status == "done"
    assert again.input_name == "garden.md" and again.input_text == first.input_text
    assert again.settings["task"] == first.settings["task"] and again.settings["seed"] == 4242
    assert [e.model_name for e in again.entries] == [e.model_name for e in first.entries]
    assert label(again, again.entries[0]) == again.entries[0].model_name


def test_too_few_models_says_so(qtbot: QtBot, make_window: MakeWindow, test_model_path: Path) -> None:
    window = make_window()
    page = _compare_page(qtbot, window, [test_model_path])
    view = page.view
    assert view.few_models.isVisible() and "your library has 1 model" in view.few_label.text()
    assert not view.run_button.isEnabled() and "Add at least 2 models" in view.run_button.toolTip()
    qtbot.mouseClick(view.discover_button, Qt.MouseButton.LeftButton)
    assert window.stack.currentWidget() is window.discover.view


def test_a_base_model_column_says_so_once_names_are_shown(qtbot: QtBot, make_window: MakeWindow,
                                                          test_model_path: Path, real_model_path: Path) -> None:
    from app.gguf.kind import BASE_MODEL_NOTE

    window = make_window()
    page = _compare_page(qtbot, window, [test_model_path, real_model_path])
    models = window.library_model.items()
    store = window.services.store

    def compared(blind: bool) -> ComparisonRecord:
        record = store.start_comparison("chat", title="T", settings={"blind": blind, "shown_order": [0, 1]},
                                        input_name="", input_kind="prompt", input_text=PROMPT, machine={},
                                        models=[(m.name, m.path, m.file_size) for m in models])
        for entry in record.entries:
            store.update_entry(record.id, entry.position, status="done", output="…", metrics={"tokens_per_s": 9.0})
        return store.finish_comparison(record.id, "done")

    def notes() -> dict[str, bool]:
        return {column.title.text(): column.base_note.isVisibleTo(column) for column in page.panel.columns.values()}

    page.show_comparison(compared(blind=False))
    assert notes() == {"stories260K · F32": True, "SmolLM2 135M Instruct · Q4_1": False}
    column = next(c for c in page.panel.columns.values() if c.base_note.isVisibleTo(c))
    assert column.base_note.text() == BASE_MODEL_NOTE
    blind = compared(blind=True)
    page.show_comparison(blind)
    assert notes() == {"Model A": False, "Model B": False}  # it would tell which model wrote which answer
    page.show_comparison(store.vote(blind.id, "tie"))
    assert notes() == {"stories260K · F32": True, "SmolLM2 135M Instruct · Q4_1": False}
    choices = [page.view.model_list.item(row).text() for row in range(page.view.model_list.count())]
    assert {text.split("\n")[0]: "base model" in text for text in choices} == {
        "stories260K · F32": True, "SmolLM2 135M Instruct · Q4_1": False}
