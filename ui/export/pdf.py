"""The export's HTML page (``app.export.html``) set on pages by Qt: as a PDF (Qt's own writer, so Hearth needs no
other PDF library) or on a printer. ``QTextDocument`` lays the page out and splits it across pages itself.

The command line has no window, and Qt sets text only with a GUI application: ``make_pdf`` starts one on the
offscreen platform when the process has none, so ``hearth history export --format pdf`` works without a display.
It can run on a worker thread (the window's exports do), since it paints on a PDF device only, never on screen.
"""

from __future__ import annotations

from PySide6.QtCore import QBuffer, QByteArray, QIODevice, QLocale, QMarginsF
from PySide6.QtGui import QGuiApplication, QPagedPaintDevice, QPageLayout, QPageSize, QPdfWriter, QTextDocument

from app import __version__

MARGIN_MM = 18
_application: list[QGuiApplication] = []  # the command line's own, kept alive for the rest of the process


def make_pdf(page: str, title: str) -> bytes:
    """The PDF of ``page`` (HTML), on the paper this computer's locale uses (Letter in the US, else A4)."""
    _ensure_gui_application()
    data = QByteArray()
    buffer = QBuffer(data)
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    writer = QPdfWriter(buffer)
    writer.setTitle(title)
    writer.setCreator(f"Hearth {__version__}")
    writer.setResolution(300)
    set_paper(writer)
    lay_out(page).print_(writer)
    del writer  # the file is finished when its writer goes
    buffer.close()
    return bytes(data.data())


def lay_out(page: str) -> QTextDocument:
    document = QTextDocument()
    document.setHtml(page)
    return document


def set_paper(device: QPagedPaintDevice) -> None:
    letter = QLocale().measurementSystem() == QLocale.MeasurementSystem.ImperialUSSystem
    size = QPageSize(QPageSize.PageSizeId.Letter if letter else QPageSize.PageSizeId.A4)
    device.setPageLayout(QPageLayout(size, QPageLayout.Orientation.Portrait,
                                     QMarginsF(MARGIN_MM, MARGIN_MM, MARGIN_MM, MARGIN_MM),
                                     QPageLayout.Unit.Millimeter))


def _ensure_gui_application() -> None:
    if QGuiApplication.instance() is None:
        _application.append(QGuiApplication(["hearth", "-platform", "offscreen"]))
