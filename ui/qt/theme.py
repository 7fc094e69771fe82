"""Hearth's look in a light and a dark tone, chosen by the system's, with the system's text size.

The style sheet (``resources/styles/hearth.qss``) names colours (``$ink``, ``$panel`` …) and sizes text relative to
the system's (``1.4em``): Qt style sheets take neither variables nor relative font sizes, so the sheet is filled in
here, with ``string.Template`` for the colours. The application palette is set from the same colours, so widgets the
sheet does not style (edits, tables, plain labels) never paint the system's light text on the sheet's light panels.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from enum import StrEnum
from pathlib import Path
from string import Template

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QGuiApplication, QPalette

from app.outcomes import RunStatus


class Tone(StrEnum):
    LIGHT = "light"
    DARK = "dark"


@dataclass(frozen=True)
class Colors:
    """The colours of one tone, by what they are for (the names the style sheet uses)."""

    ink: str  # body text
    ink_strong: str  # titles
    ink_soft: str  # hints, figures
    ink_faint: str  # disabled text
    heading: str  # section titles, authors
    page: str  # the page behind everything
    panel: str  # bars and panels on the page
    surface: str  # text areas, cards, lists
    line: str
    line_soft: str
    line_faint: str
    border: str  # the border of what takes input
    button: str
    button_hover: str
    button_border: str
    button_faint_border: str
    hover: str  # a quiet hover behind a flat button
    track: str  # an empty progress bar
    accent: str
    accent_hover: str
    accent_border: str
    accent_ink: str  # text on the accent
    accent_soft: str  # a selection, the user's messages
    accent_soft_border: str
    accent_faint: str  # a disabled accent button
    accent_faint_border: str
    warn: str
    warn_ink: str
    warn_border: str
    error: str
    error_ink: str
    error_border: str
    error_text: str
    error_line: str
    good: str  # runs well, the best figure
    slow: str
    tight: str
    bad: str
    interrupted: str
    measured: str  # the chart's measured bars
    focus: str  # the focus ring
    sidebar: str
    sidebar_ink: str
    sidebar_hint: str
    sidebar_line: str
    sidebar_hover: str
    brand: str


LIGHT = Colors(
    ink="#2b2622", ink_strong="#1d140d", ink_soft="#85715e", ink_faint="#a59a8f", heading="#6b4b2e",
    page="#fffdf9", panel="#fbf6f0", surface="#ffffff", line="#e8dccf", line_soft="#ece2d6", line_faint="#f3ebe2",
    border="#d8c7b5", button="#fffaf4", button_hover="#f7ede1", button_border="#c9b8a6", button_faint_border="#e0d6cb",
    hover="#f2e6d8", track="#efe4d8", accent="#f28c28", accent_hover="#f59c45", accent_border="#d9731a",
    accent_ink="#1d140d", accent_soft="#fdebd6", accent_soft_border="#f3d3ae", accent_faint="#f6e3cc",
    accent_faint_border="#ecd3b5", warn="#fff3cd", warn_ink="#5c4400", warn_border="#f0d98c", error="#fdecea",
    error_ink="#8a1c1c", error_border="#f0b7b5", error_text="#b3261e", error_line="#d9534f", good="#2e7d32",
    slow="#8a6d00", tight="#b35c00", bad="#c62828", interrupted="#b35c00", measured="#8d5a2b", focus="#1a73e8",
    sidebar="#2b2118", sidebar_ink="#f4e9dc", sidebar_hint="#bba995", sidebar_line="#4a3a2c",
    sidebar_hover="#3a2d22", brand="#ffd166")

DARK = Colors(
    ink="#efe6dc", ink_strong="#fbf4ec", ink_soft="#b9a796", ink_faint="#857769", heading="#e8b98a",
    page="#1f1a16", panel="#29221c", surface="#241e19", line="#3e342b", line_soft="#3a3029", line_faint="#332a23",
    border="#5a4b3e", button="#2f2720", button_hover="#3a3028", button_border="#6a5848", button_faint_border="#44392f",
    hover="#3a3028", track="#3a3028", accent="#f28c28", accent_hover="#f59c45", accent_border="#d9731a",
    accent_ink="#1d140d", accent_soft="#4a3322", accent_soft_border="#6e4a2c", accent_faint="#4a3a2c",
    accent_faint_border="#5a4633", warn="#3d3318", warn_ink="#f3dc92", warn_border="#6b5a20", error="#3f1f1d",
    error_ink="#f6bcb6", error_border="#7a3430", error_text="#ff8a80", error_line="#e06c66", good="#8bcf8f",
    slow="#e3c552", tight="#ffb561", bad="#f28b82", interrupted="#ffb561", measured="#c9905a", focus="#8ab4f8",
    sidebar="#15110d", sidebar_ink="#f4e9dc", sidebar_hint="#bba995", sidebar_line="#3e3126",
    sidebar_hover="#2b2118", brand="#ffd166")

TONES = {Tone.LIGHT: LIGHT, Tone.DARK: DARK}
_current = LIGHT
_EM = re.compile(r"(\d+(?:\.\d+)?)em\b")


def colors() -> Colors:
    """The colours in use: for what paints itself (charts, rich text, item colours)."""
    return _current


def verdict_color(name: str) -> str:
    """A verdict's colour by the verdict's name (the tables are made before the forecast module is imported)."""
    c = _current
    return {"RUNS_WELL": c.good, "RUNS_SLOWLY": c.slow, "TIGHT": c.tight}.get(name, c.bad)


def status_color(status: RunStatus) -> str | None:
    """The colour of a run that did not end well, in the lists of runs; None for one that did."""
    c = _current
    return {RunStatus.FAILED: c.bad, RunStatus.INTERRUPTED: c.interrupted, RunStatus.CANCELLED: c.ink_soft}.get(status)


def system_tone(app: QGuiApplication) -> Tone:
    """The system's tone: what it says, or where it says nothing (Linux often), how light its windows are."""
    scheme = app.styleHints().colorScheme()
    if scheme == Qt.ColorScheme.Dark:
        return Tone.DARK
    if scheme == Qt.ColorScheme.Light:
        return Tone.LIGHT
    return Tone.DARK if app.palette().color(QPalette.ColorRole.Window).lightness() < 128 else Tone.LIGHT


def style_sheet(template: str, tone: Tone, base_point_size: float, icons: Path) -> str:
    """The sheet with the tone's colours, ``$icons`` as the icons' folder, and each ``Nem`` as N times the
    system's text size, in points."""
    sized = _EM.sub(lambda match: f"{float(match.group(1)) * base_point_size:.1f}pt", template)
    return Template(sized).substitute(asdict(TONES[tone]), icons=icons.as_posix())


def palette(tone: Tone) -> QPalette:
    c = TONES[tone]
    result = QPalette()
    roles = {
        QPalette.ColorRole.Window: c.page, QPalette.ColorRole.WindowText: c.ink, QPalette.ColorRole.Base: c.surface,
        QPalette.ColorRole.AlternateBase: c.panel, QPalette.ColorRole.Text: c.ink, QPalette.ColorRole.Button: c.button,
        QPalette.ColorRole.ButtonText: c.ink, QPalette.ColorRole.BrightText: c.ink_strong,
        QPalette.ColorRole.Highlight: c.accent, QPalette.ColorRole.HighlightedText: c.accent_ink,
        QPalette.ColorRole.ToolTipBase: c.panel, QPalette.ColorRole.ToolTipText: c.ink,
        QPalette.ColorRole.PlaceholderText: c.ink_faint, QPalette.ColorRole.Link: c.focus,
        QPalette.ColorRole.LinkVisited: c.heading,
        QPalette.ColorRole.Light: c.surface, QPalette.ColorRole.Midlight: c.line_faint, QPalette.ColorRole.Mid: c.line,
        QPalette.ColorRole.Dark: c.border, QPalette.ColorRole.Shadow: c.ink_faint,
    }
    for role, color in roles.items():
        result.setColor(role, QColor(color))
    for role in (QPalette.ColorRole.WindowText, QPalette.ColorRole.Text, QPalette.ColorRole.ButtonText):
        result.setColor(QPalette.ColorGroup.Disabled, role, QColor(c.ink_faint))
    return result


def apply(app: QGuiApplication, sheet: Path, tone: Tone | None = None) -> Tone:
    """Sets the palette and the filled-in sheet of the system's tone (or ``tone``) on ``app``; returns the tone."""
    global _current
    from PySide6.QtWidgets import QApplication

    tone = tone if tone is not None else system_tone(app)
    _current = TONES[tone]
    app.setPalette(palette(tone))
    if isinstance(app, QApplication) and sheet.is_file():
        icons = sheet.parent.parent / "icons"
        app.setStyleSheet(style_sheet(sheet.read_text(encoding="utf-8"), tone, app.font().pointSizeF(), icons))
    return tone
