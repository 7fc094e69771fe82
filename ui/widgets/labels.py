"""The labels every page builds its layout from, styled by name in resources/styles/hearth.qss."""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import Qt
from PySide6.QtGui import QFontMetrics
from PySide6.QtWidgets import QBoxLayout, QHBoxLayout, QLabel, QSizePolicy, QWidget


def section_title(text: str, *, fixed_height: bool = False) -> QLabel:
    """A section's heading ("Options", "Models"); ``fixed_height`` keeps it from growing in a column that
    stretches."""
    label = QLabel(text)
    label.setObjectName("sectionTitle")
    if fixed_height:
        label.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Fixed)
    return label


def wrapped(text: str, object_name: str | None = None) -> QLabel:
    """A label that wraps its words, named for the style sheet when ``object_name`` is given."""
    label = QLabel(text)
    label.setWordWrap(True)
    if object_name:
        label.setObjectName(object_name)
    return label


def page_header(title: str, picker: QWidget) -> tuple[QWidget, QHBoxLayout]:
    """The band at the top of a page with a picker (Tasks, Compare): its title, then the picker; the caller adds
    what goes on the right."""
    header = QWidget()
    header.setObjectName("taskHeader")
    row = QHBoxLayout(header)
    row.setContentsMargins(20, 10, 16, 10)
    label = QLabel(title)
    label.setObjectName("pageTitle")
    row.addWidget(label)
    row.addSpacing(12)
    row.addWidget(picker)
    row.addStretch(1)
    return header, row


@dataclass
class ResultHeading:
    """A result's title, the line under it, and a notice (hidden until there is something to say)."""

    title: QLabel
    subtitle: QLabel
    notice: QLabel


def result_heading(layout: QBoxLayout) -> ResultHeading:
    """Adds the heading every result panel starts with (a task's result, a comparison) to ``layout``."""
    heading = ResultHeading(wrapped("", "resultTitle"), wrapped("", "hint"), wrapped("", "taskNotice"))
    heading.notice.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    heading.notice.hide()
    for label in (heading.title, heading.subtitle, heading.notice):
        layout.addWidget(label)
    return heading


def show_notice(label: QLabel, text: str, kind: str = "info") -> None:
    """Say ``text`` in a heading's notice, coloured by ``kind`` (the style sheet's ``[kind="error"]`` and the like);
    an empty text hides it."""
    label.setText(text)
    label.setProperty("kind", kind)
    label.style().unpolish(label)
    label.style().polish(label)
    label.setVisible(bool(text))


def elide_words(text: str, metrics: QFontMetrics, width: int) -> str:
    """``text`` shortened to ``width`` pixels at a word's end ("SmolLM2 135M…"), never inside a word as Qt's own
    eliding does ("Smo…ct · Q4_1"); where even the first word does not fit, that word is cut. Give the full text
    in a tooltip beside it."""
    if metrics.horizontalAdvance(text) <= width:
        return text
    words = text.split()
    for count in range(len(words) - 1, 0, -1):
        shorter = " ".join(words[:count]).rstrip(" ·-") + "…"
        if metrics.horizontalAdvance(shorter) <= width:
            return shorter
    return metrics.elidedText(text, Qt.TextElideMode.ElideRight, width)
