"""The document form shows what Hearth read from a file, and says so when the text does not read like text."""

from __future__ import annotations

import random
from pathlib import Path

from pytestqt.qtbot import QtBot

from ui.widgets.document_form import DocumentForm


def test_a_document_that_does_not_read_like_text_shows_its_warning(qtbot: QtBot, tmp_path: Path) -> None:
    form = DocumentForm()
    qtbot.addWidget(form)
    rng = random.Random(1)
    odd = tmp_path / "odd.txt"
    odd.write_bytes(bytes(rng.randrange(0xA0, 0x100) if index % 6 else 0x20 for index in range(3000)))
    form.open_file(odd)
    qtbot.waitUntil(lambda: form.file is not None, timeout=30_000)
    details = form.drop_zone.details.text()
    assert details.startswith("Text · ") and "“odd.txt” do not read like text" in details

    fine = tmp_path / "fine.txt"
    fine.write_text("A plain note about the garden.\n\nNothing odd in it.", encoding="utf-8")
    form.open_file(fine)
    qtbot.waitUntil(lambda: form.file is not None and form.file.path == fine, timeout=30_000)
    assert "do not read like text" not in form.drop_zone.details.text()
