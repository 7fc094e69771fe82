"""The Library page: importing a model, and what each model needs on this computer; real Qt, engine and database."""

from __future__ import annotations

from pathlib import Path

import pytest
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
