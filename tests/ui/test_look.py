"""How the window looks and answers the keyboard: a light and a dark system palette, the system's text size, a
1024×700 screen, Tab through every page and a visible focus ring. The screenshots are saved (``HEARTH_SHOTS``, else
the test's folder) to be looked at."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QRect, Qt
from PySide6.QtGui import QColor, QFont, QImage, QPalette
from PySide6.QtTest import QTest
from PySide6.QtWidgets import (
    QAbstractButton,
    QAbstractItemView,
    QApplication,
    QCheckBox,
    QComboBox,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QTableView,
    QWidget,
)
from pytestqt.qtbot import QtBot

from app.hub.search import HubFailure
from app.paths import resources_dir
from ui.main import apply_style
from ui.main_window import COMPARE_PAGE, DISCOVER_PAGE, TASKS_PAGE, MainWindow
from ui.qt import theme
from ui.qt.theme import Tone

from tests.helpers.windows import MakeWindow

pytestmark = [pytest.mark.engine, pytest.mark.window(bandwidth=20e9, settle=True)]
TIMEOUT = 60_000
SHEET = resources_dir() / "styles" / "hearth.qss"
PAGES = {0: "chats", 1: "models", DISCOVER_PAGE: "discover", TASKS_PAGE: "tasks", COMPARE_PAGE: "compare"}


def _system_palette(tone: Tone) -> QPalette:
    """A system palette as Windows or macOS gives one in that mode (the window's colours must not depend on it)."""
    palette = QPalette()
    dark = tone is Tone.DARK
    for role, color in ((QPalette.ColorRole.Window, "#2d2d2d" if dark else "#efefef"),
                        (QPalette.ColorRole.WindowText, "#f0f0f0" if dark else "#101010"),
                        (QPalette.ColorRole.Base, "#1e1e1e" if dark else "#ffffff"),
                        (QPalette.ColorRole.Text, "#f0f0f0" if dark else "#101010"),
                        (QPalette.ColorRole.Button, "#3a3a3a" if dark else "#e8e8e8"),
                        (QPalette.ColorRole.ButtonText, "#f0f0f0" if dark else "#101010")):
        palette.setColor(role, QColor(color))
    return palette


@pytest.fixture
def styled(qapp: QApplication) -> Iterator[QApplication]:
    """The application styled as a start styles it; unstyled again after the test, as the other tests expect."""
    palette, font, sheet, style = qapp.palette(), qapp.font(), qapp.styleSheet(), qapp.style().name()
    yield qapp
    qapp.setStyleSheet(sheet)
    qapp.setPalette(palette)
    qapp.setFont(font)
    qapp.setStyle(style)
    theme.apply(qapp, Path("/nonexistent"), Tone.LIGHT)
    qapp.setPalette(palette)


def _shots(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("HEARTH_SHOTS", tmp_path))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _pixels(image: QImage) -> np.ndarray:
    image = image.convertToFormat(QImage.Format.Format_RGB32)
    raw = np.frombuffer(image.constBits(), dtype=np.uint8, count=image.sizeInBytes())
    return raw.reshape(image.height(), image.bytesPerLine() // 4, 4)[:, :image.width(), 2::-1].astype(float)


def _luminance(rgb: np.ndarray) -> np.ndarray:
    c = rgb / 255.0
    linear = np.where(c <= 0.03928, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    return np.asarray(linear @ np.array([0.2126, 0.7152, 0.0722]))


def _text_contrast(pixels: np.ndarray) -> float:
    """WCAG contrast between a crop's most common colour (its background) and its ink (the pixel farthest from it)."""
    flat = pixels.reshape(-1, 3)
    colours, counts = np.unique(flat, axis=0, return_counts=True)
    background = _luminance(colours[counts.argmax()][None, :])[0]
    lum = _luminance(flat)
    lighter, darker = np.maximum(lum, background), np.minimum(lum, background)
    return float(((lighter + 0.05) / (darker + 0.05)).max())


def _texts(root: QWidget) -> Iterator[tuple[QWidget, str]]:
    for widget in root.findChildren(QWidget):
        if not widget.isVisible() or not widget.isEnabled() or widget.width() < 8 or widget.height() < 8:
            continue
        shows_text = isinstance(widget, QAbstractButton) or (isinstance(widget, QLabel) and widget.pixmap().isNull())
        if shows_text and widget.text().strip():  # type: ignore[attr-defined]
            yield widget, widget.text()  # type: ignore[attr-defined]


def _open_with_a_model(qtbot: QtBot, make_window: MakeWindow, model: Path) -> MainWindow:
    window = make_window()
    window.resize(1024, 700)
    window.library.import_model(model, copy=True)
    qtbot.waitUntil(lambda: window.library_model.rowCount() == 1, timeout=TIMEOUT)
    return window


def _show(qtbot: QtBot, window: MainWindow, page: int) -> None:
    window._show_page(page)
    if page == 1:
        window.library.view.table.selectRow(0)
    qtbot.wait(50)


@pytest.mark.parametrize("tone", [Tone.LIGHT, Tone.DARK])
def test_every_text_reads_clearly_in_the_systems_tone(qtbot: QtBot, make_window: MakeWindow, styled: QApplication,
                                                      test_model_path: Path, tmp_path: Path, tone: Tone) -> None:
    styled.setPalette(_system_palette(tone))
    assert apply_style(styled) is tone  # the system's tone is followed, read from its palette where it says nothing
    window = _open_with_a_model(qtbot, make_window, test_model_path)
    shots = _shots(tmp_path)
    faint: list[str] = []
    for page, name in PAGES.items():
        _show(qtbot, window, page)
        image = window.grab().toImage()
        image.save(str(shots / f"{tone}-{name}-1024x700.png"))
        pixels = _pixels(image)
        for widget, text in _texts(window):
            seen = widget.visibleRegion().boundingRect()  # a label half out of a scrolled area: the half in sight
            rect = QRect(widget.mapTo(window, seen.topLeft()), seen.size()).intersected(window.rect())
            if rect.height() < widget.height():
                continue  # cut by a scrolled area's edge: its crop may hold no whole letter
            crop = pixels[rect.top():rect.bottom() + 1, rect.left():rect.right() + 1]
            contrast = _text_contrast(crop)
            if contrast < 3.0:
                faint.append(f"{name}: {type(widget).__name__} {widget.objectName()!r} {text[:40]!r} {contrast:.2f}")
    assert not faint, "text hard to read:\n" + "\n".join(faint)


def test_every_rule_sets_text_and_background_together() -> None:
    """A rule that sets only one of them leaves the other to the system, whose tone may be the opposite one."""
    rules = re.findall(r"([^{}]+)\{([^{}]*)\}", re.sub(r"/\*.*?\*/", "", SHEET.read_text(encoding="utf-8"), flags=re.S))
    half: list[str] = []
    for selector, body in rules:
        names = {part.split(":")[0].strip() for part in body.split(";") if ":" in part}
        if "::" in selector or ":disabled" in selector or ":checked" in selector or ":hover" in selector \
                or ":focus" in selector or "[" in selector:
            continue  # a state or a part of a widget whose rule sets both
        if ("color" in names) != bool(names & {"background", "background-color"}):
            half.append(selector.strip())
    assert not half, f"rules setting only one of text and background: {half}"


def test_the_systems_text_size_is_kept(styled: QApplication, make_window: MakeWindow) -> None:
    font = QFont(styled.font())
    font.setPointSizeF(14.0)
    styled.setFont(font)
    apply_style(styled, Tone.LIGHT)
    window = make_window()
    body = window.library.view.findChild(QLabel, "hint")
    title = window.library.view.findChild(QLabel, "pageTitle")
    assert body is not None and title is not None
    assert body.font().pointSizeF() == pytest.approx(14.0)
    assert title.font().pointSizeF() == pytest.approx(14.0 * 1.43, abs=0.1)


def test_the_window_fits_1024_by_700_on_every_page(qtbot: QtBot, make_window: MakeWindow, styled: QApplication,
                                                   test_model_path: Path, tmp_path: Path) -> None:
    """Tasks, once it shows a result, used to ask for 1,134 pixels."""
    apply_style(styled, Tone.LIGHT)
    window = _open_with_a_model(qtbot, make_window, test_model_path)
    _show(qtbot, window, TASKS_PAGE)
    view = window.tasks.view
    window.tasks.set_task("classify")
    view.text_input.setPlainText("I love this garden, and the long sentences that it writes when it is sunny\n"
                                 "The rain ruined my day\n")
    view.options.labels.setPlainText("happy: a cheerful text\nsad")
    qtbot.waitUntil(view.run_button.isEnabled, timeout=TIMEOUT)
    with qtbot.waitSignal(window.task_bridge.runEnded, timeout=TIMEOUT):
        qtbot.mouseClick(view.run_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(view.output.table.isVisible, timeout=TIMEOUT)
    window.discover.view.show_problem("No network: the Hugging Face Hub cannot be reached. Check the connection "
                                      "and try again, or work offline with the models you have.",
                                      HubFailure.NO_NETWORK)  # the widest the page gets: a notice with its buttons
    for page, name in PAGES.items():
        _show(qtbot, window, page)
        window.resize(1024, 700)
        qtbot.wait(50)
        hint = window.minimumSizeHint()
        assert hint.width() <= 1024 and hint.height() <= 700, f"{name} asks for {hint.width()}×{hint.height()}"
        assert (window.width(), window.height()) == (1024, 700), name
        window.grab().save(str(_shots(tmp_path) / f"fit-{name}-1024x700.png"))


def _focusable(root: QWidget) -> list[QWidget]:
    return [w for w in root.findChildren(QWidget)
            if w.isVisible() and w.isEnabled() and w.focusPolicy() & Qt.FocusPolicy.TabFocus
            and w.focusProxy() is None and w.window() is root]


@pytest.mark.parametrize("page", list(PAGES))
def test_tab_reaches_every_control_and_leaves_each(qtbot: QtBot, make_window: MakeWindow, styled: QApplication,
                                                   test_model_path: Path, page: int) -> None:
    """Tab walks the whole window, the page's own controls included, and nothing (the Models table) keeps it."""
    apply_style(styled, Tone.LIGHT)
    window = _open_with_a_model(qtbot, make_window, test_model_path)
    _show(qtbot, window, page)
    window.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is window, timeout=TIMEOUT)
    wanted = _focusable(window)
    assert wanted
    wanted[0].setFocus(Qt.FocusReason.TabFocusReason)
    visited: list[QWidget] = []
    for _ in range(3 * len(wanted)):
        current = QApplication.focusWidget()
        assert current is not None
        visited.append(current)
        QTest.keyClick(current, Qt.Key.Key_Tab)
    missed = [f"{type(w).__name__} {w.objectName()!r} {getattr(w, 'text', lambda: '')()!r}"
              for w in wanted if w not in visited and not _arrows_reach(w, visited)]
    assert not missed, f"Tab never reaches: {missed}"


def _arrows_reach(button: QWidget, visited: list[QWidget]) -> bool:
    """A choice of one in a group (a segmented picker, the page buttons) is one stop for Tab, as radio buttons
    are; the arrow keys move along it from the button Tab reached."""
    group = button.group() if isinstance(button, QAbstractButton) else None
    if group is None or not group.exclusive():
        return False
    stops = [b for b in group.buttons() if b in visited]
    if not stops:
        return False
    stops[0].setFocus(Qt.FocusReason.TabFocusReason)
    for _ in group.buttons():
        if QApplication.focusWidget() is button:
            return True
        QTest.keyClick(QApplication.focusWidget(), Qt.Key.Key_Right)
    return QApplication.focusWidget() is button


@pytest.mark.parametrize("kind", [QPushButton, QComboBox, QLineEdit, QPlainTextEdit, QTableView, QCheckBox])
def test_the_focus_ring_shows(qtbot: QtBot, styled: QApplication, kind: type[QWidget]) -> None:
    for tone in Tone:
        apply_style(styled, tone)
        host = QWidget()
        qtbot.addWidget(host)
        host.resize(300, 160)
        widget = kind(host)
        if isinstance(widget, (QAbstractButton, QLineEdit)):
            widget.setText("Something")
        if isinstance(widget, QComboBox):
            widget.addItem("Something")
        widget.setGeometry(20, 20, 200, 100 if isinstance(widget, QAbstractItemView | QPlainTextEdit) else 30)
        other = QPushButton("Other", host)
        other.move(20, 130)
        host.show()
        host.activateWindow()
        qtbot.waitUntil(lambda: QApplication.activeWindow() is host, timeout=TIMEOUT)  # noqa: B023
        other.setFocus()
        qtbot.wait(20)
        before = widget.grab().toImage()
        widget.setFocus(Qt.FocusReason.TabFocusReason)
        qtbot.waitUntil(widget.hasFocus, timeout=TIMEOUT)
        qtbot.wait(20)
        after = widget.grab().toImage()
        changed = np.abs(_pixels(before) - _pixels(after)).sum(axis=2) > 60
        assert changed.sum() > 2 * (widget.width() + widget.height()), f"{kind.__name__} shows no focus in {tone}"
