"""The `hearth` command's entry point: the window when run alone, the core's CLI with arguments.

It lives in ``ui/`` because the core never imports the UI; it imports Qt only when the window is wanted (or a PDF,
whose writer is Qt's), so `hearth models list` starts quickly and works without a display.
"""

from __future__ import annotations

import sys


def main() -> int:
    if getattr(sys, "frozen", False):  # elsewhere a no-op, and importing multiprocessing costs every start 10 ms
        import multiprocessing

        multiprocessing.freeze_support()
    from app.network import disable_telemetry

    disable_telemetry()  # before any library that reads these switches is imported
    if "--self-test" in sys.argv[1:]:
        from ui.self_test import run_self_test

        return run_self_test(sys.argv[1:])
    if len(sys.argv) > 1:
        from app.cli.main import main as cli_main

        return cli_main(sys.argv[1:], make_pdf=make_pdf)
    from ui.main import run_app

    return run_app()


def make_pdf(page: str, title: str) -> bytes:
    """Qt's PDF writer for the command line (``app.export.files.PdfMaker``), imported when a PDF is asked for."""
    from ui.export.pdf import make_pdf as qt_pdf

    return qt_pdf(page, title)


if __name__ == "__main__":
    sys.exit(main())
