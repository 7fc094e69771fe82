"""Stand-ins for a document parser in the isolated child, with a pace of their own: how Hearth treats a reader that
is slow but steady (a long real document), one that never ends (still moving when time runs out) and one that
stops moving (a hostile file). Module-level functions, so a ``spawn`` child can import them."""

from __future__ import annotations

import time

from app.documents.isolated import Parsed, report_progress


def steady(pages: int, seconds_per_page: float) -> Parsed:
    for page in range(pages):
        report_progress(page, pages, "pages")
        time.sleep(seconds_per_page)
    return Parsed((), pages=pages)


def stuck(pages: int, after: int) -> Parsed:
    for page in range(after):
        report_progress(page, pages, "pages")
        time.sleep(0.3)  # past the reports' throttle, so each one is sent
    time.sleep(600)
    return Parsed((), pages=pages)
