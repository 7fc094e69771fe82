"""Renders the app icon from ``resources/icons/hearth.svg`` at build time, so no binary icon is kept in git.

Qt draws the PNGs (PySide6 is installed wherever Hearth is built); Pillow, from the ``package`` extra, packs
them into the Windows ``.ico`` and the macOS ``.icns``. Run alone: ``python packaging/icons.py [OUT_DIR]``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SVG = ROOT / "resources" / "icons" / "hearth.svg"
DEFAULT_OUT = ROOT / "build" / "icons"
PNG_SIZES = (16, 24, 32, 48, 64, 128, 256, 512, 1024)
ICO_SIZES = (16, 24, 32, 48, 64, 128, 256)


def png_path(out_dir: Path, size: int) -> Path:
    return out_dir / f"hearth-{size}.png"


def render(out_dir: Path = DEFAULT_OUT) -> Path:
    """Writes ``hearth-<size>.png`` for every size, ``hearth.ico`` and ``hearth.icns``; returns ``out_dir``."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QGuiApplication, QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer

    app = QGuiApplication.instance() or QGuiApplication([sys.argv[0]])
    renderer = QSvgRenderer(str(SVG))
    if not renderer.isValid():
        raise SystemExit(f"cannot read {SVG}")
    out_dir.mkdir(parents=True, exist_ok=True)
    for size in PNG_SIZES:
        image = QImage(size, size, QImage.Format.Format_ARGB32_Premultiplied)
        image.fill(Qt.GlobalColor.transparent)
        painter = QPainter(image)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        renderer.render(painter)
        painter.end()
        if not image.save(str(png_path(out_dir, size))):
            raise SystemExit(f"cannot write {png_path(out_dir, size)}")
    del app
    _pack(out_dir)
    return out_dir


def _pack(out_dir: Path) -> None:
    from PIL import Image

    with Image.open(png_path(out_dir, 256)) as image:
        image.save(out_dir / "hearth.ico", format="ICO", sizes=[(s, s) for s in ICO_SIZES])
    with Image.open(png_path(out_dir, 1024)) as image:
        image.save(out_dir / "hearth.icns", format="ICNS")


if __name__ == "__main__":
    print(render(Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_OUT))
