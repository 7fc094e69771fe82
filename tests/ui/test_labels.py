"""Shared labels: a name too long for its room loses whole words, never the inside of one."""

from __future__ import annotations

from PySide6.QtGui import QFontMetrics
from PySide6.QtWidgets import QPushButton
from pytestqt.qtbot import QtBot

from ui.widgets.labels import elide_words


def test_a_long_name_is_shortened_at_a_word(qtbot: QtBot) -> None:
    button = QPushButton()
    qtbot.addWidget(button)
    metrics = QFontMetrics(button.font())
    name = "SmolLM2 135M Instruct · Q4_1"
    assert elide_words(name, metrics, metrics.horizontalAdvance(name)) == name
    room = metrics.horizontalAdvance("SmolLM2 135M Instr")
    assert elide_words(name, metrics, room) == "SmolLM2 135M…"  # not "SmolLM2 135M Ins…" nor "Smol…Q4_1"
    for width in range(metrics.horizontalAdvance("SmolLM2…"), metrics.horizontalAdvance(name), 7):
        short = elide_words(name, metrics, width)
        assert metrics.horizontalAdvance(short) <= width
        assert name.startswith(short.removesuffix("…")) and name[len(short) - 1] in " ·", short
