"""The Library page: importing a model, and what each model needs on this computer; real Qt, engine and database."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from tests.helpers.windows import TIMEOUT, MakeWindow, import_model

pytestmark = pytest.mark.engine


def test_a_bad_file_is_refused_with_a_message(
        qtbot: QtBot, make_window: MakeWindow, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from PySide6.QtWidgets import QMessageBox

    shown: list[str] = []
    monkeypatch.setattr(QMessageBox, "warning", lambda _parent, _title, text, *a: shown.append(text))
    window = make_window()
    bad = tmp_path / "notes.gguf"
    bad.write_text("not a model")
    window.library.import_model(bad, copy=True)
    qtbot.waitUntil(lambda: bool(shown), timeout=TIMEOUT)
    assert "is not a GGUF model file" in shown[0]
    assert window.library_model.rowCount() == 0


def test_library_shows_what_each_model_needs(qtbot: QtBot, make_window: MakeWindow, test_model_path: Path) -> None:
    window = make_window()
    import_model(qtbot, window, test_model_path)
    model = window.library_model
    qtbot.waitUntil(lambda: str(model.index(0, 1).data()).startswith("Runs well"), timeout=TIMEOUT)
    window._show_page(1)
    qtbot.waitUntil(lambda: "Memory with a" in window.library.view.details.text(), timeout=TIMEOUT)
    assert "Longest context that fits now" in window.library.view.details.text()


LONG_NAME = "Bedtime stories for the children, the small one that writes them quickly"


@pytest.mark.parametrize("size", [(1024, 700), (1600, 1000)], ids=["1024x700", "1600x1000"])
def test_the_table_fits_the_window_and_never_cuts_a_name(qtbot: QtBot, make_window: MakeWindow,
                                                         test_model_path: Path, tmp_path: Path,
                                                         size: tuple[int, int]) -> None:
    from PySide6.QtCore import QRect, Qt

    from tests.helpers.gguf_fixtures import with_chat_template

    window = make_window()
    import_model(qtbot, window, test_model_path)
    window.services.library.rename(window.library_model.items()[0].id, LONG_NAME)
    window.library.import_model(with_chat_template(test_model_path, tmp_path), copy=False)
    model = window.library_model
    qtbot.waitUntil(lambda: model.rowCount() == 2 and all(model.assessment(r.id) for r in model.items()),
                    timeout=TIMEOUT)
    window.resize(*size)
    window._show_page(1)
    table = window.library.view.table
    qtbot.waitUntil(lambda: table.isVisible() and table.viewport().width() > 0, timeout=TIMEOUT)
    qtbot.wait(50)  # the rows take their wrapped height in the next layout pass
    assert table.horizontalHeader().length() <= table.viewport().width()  # nothing to scroll sideways to
    metrics = table.fontMetrics()
    for row in range(model.rowCount()):
        index = model.index(row, 0)
        cell = table.visualRect(index).adjusted(4, 0, -4, 0)
        needed = metrics.boundingRect(QRect(0, 0, cell.width(), 10_000), Qt.TextFlag.TextWordWrap,
                                      str(index.data()))
        assert needed.width() <= cell.width() and needed.height() <= cell.height(), index.data()
    assert str(model.index(0, 0).data()) == LONG_NAME


def test_a_rename_is_shown_everywhere_and_kept(qtbot: QtBot, make_window: MakeWindow, test_model_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    from PySide6.QtWidgets import QInputDialog

    window = make_window()
    import_model(qtbot, window, test_model_path)
    [record] = window.library_model.items()
    assert record.name == "stories260K · F32"
    asked: list[str] = []

    def answer(_parent: object, _title: str, label: str, _mode: object, text: str) -> tuple[str, bool]:
        asked.append(text)
        return "Bedtime stories", True

    monkeypatch.setattr(QInputDialog, "getText", answer)
    window._show_page(1)
    qtbot.mouseClick(window.library.view.rename_button, Qt.MouseButton.LeftButton)
    bar = window.chat.view.model_bar
    qtbot.waitUntil(lambda: bar.combo.itemText(0) == "Bedtime stories", timeout=TIMEOUT)
    assert asked == ["stories260K · F32"]
    assert window.library_model.items()[0].name == "Bedtime stories"
    assert window.compare.view.model_list.item(0).text().startswith("Bedtime stories\n")
    assert window.tasks.view.model_combo.itemText(0).startswith("Bedtime stories")
    assert "Bedtime stories" in window.library.view.details.text()
    file = Path(record.path)
    window.close()

    again = make_window()  # a restart
    qtbot.waitUntil(lambda: again.chat.view.model_bar.combo.itemText(0) == "Bedtime stories", timeout=TIMEOUT)
    assert file.is_file() and Path(again.library_model.items()[0].path) == file


def test_the_window_and_the_terminal_say_a_model_in_the_same_plain_words(
        qtbot: QtBot, make_window: MakeWindow, real_model_path: Path, tmp_path: Path) -> None:
    from PySide6.QtGui import QTextDocument

    from app.forecast.estimate import MEMORY_PARTS
    from app.words import model_words

    from tests.helpers.command import hearth

    window = make_window()
    import_model(qtbot, window, real_model_path)
    window._show_page(1)
    view = window.library.view
    qtbot.waitUntil(lambda: "Memory with a" in view.details.text(), timeout=TIMEOUT)
    document = QTextDocument()
    document.setHtml(view.details.text())
    shown = document.toPlainText()
    printed = hearth(tmp_path / "terminal", "inspect", str(real_model_path)).stdout
    main_part = printed.split("Technical details:")[0]
    record = window.library_model.items()[0]
    about = model_words(parameter_count=record.parameter_count, quantization=record.quantization,
                        file_size=record.file_size, context_length=record.context_length,
                        has_chat_template=record.has_chat_template)
    for text in (shown, main_part):
        assert "SmolLM2 135M Instruct · Q4_1" in text and about in text
        assert all(f"{words} " in text for words in MEMORY_PARTS.values())
        for jargon in ("Forecast:", "analytic", "Confidence", "weights", "context memory", "runtime", "KV"):
            assert jargon not in text, jargon
    assert not view.technical.isVisibleTo(view)  # the jargon waits behind "Technical details"
    view.technical_button.click()
    assert view.technical.isVisibleTo(view)
    technical = view.technical.text()
    assert "30 layers" in technical and "by llama.cpp's rules" in technical
    assert "30 layers" in printed.split("Technical details:")[1]
