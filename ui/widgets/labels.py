"""The labels every page builds its layout from, styled by name in resources/styles/hearth.qss."""

from __future__ import annotations

from PySide6.QtWidgets import QLabel, QSizePolicy


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
