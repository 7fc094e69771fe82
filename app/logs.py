"""Logging to the log file, and native crash traces to a crash log shown on the next start.

The crash log holds one run. Its first line says when that run started and whether it was a first start, a line
is added once its window was shown, and the rest is only ever written when the run dies: Python's traceback from
``faulthandler``, and what the toolkit said just before it gave up (``add_to_crash_log``; Qt's message about a
missing platform plugin is the only useful line of such a crash). Lines of Hearth's own start with ``# ``.
"""

from __future__ import annotations

import faulthandler
import logging
import logging.handlers
from datetime import datetime
from typing import IO

from app import __version__
from app.paths import Paths

log = logging.getLogger(__name__)

_crash_file: IO[str] | None = None
_OWN = "# "  # a line of Hearth's own in the crash log; any other line is the crash
_FIRST_START = "first start"
_SHOWN = "# The window was shown"


def configure_logging(paths: Paths, *, verbose: bool = False) -> None:
    handler: logging.Handler
    try:
        paths.logs_dir.mkdir(parents=True, exist_ok=True)
        handler = logging.handlers.RotatingFileHandler(paths.log_file, maxBytes=2_000_000, backupCount=3,
                                                       encoding="utf-8")
    except OSError:  # a read-only or full disk: Hearth still starts, and says what is wrong where it matters
        handler = logging.NullHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers = [h for h in root.handlers if not isinstance(h, logging.handlers.RotatingFileHandler)]
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    # A log file that cannot be written (a full or read-only disk) must not print a traceback on every log call
    # over the one sentence that says what is wrong.
    logging.raiseExceptions = False


def enable_crash_log(paths: Paths, *, first_start: bool = False) -> None:
    """Write a native traceback to the crash log if the process dies inside C code (Qt, SQLite).

    Args:
        first_start: Hearth has never opened here before (no history yet): a crash before the window is shown is
            then not reported on the next start (see ``take_crash_report``).
    """
    global _crash_file
    if _crash_file is None:
        paths.logs_dir.mkdir(parents=True, exist_ok=True)
        _crash_file = paths.crash_log.open("a", encoding="utf-8")
        first = f"; {_FIRST_START}" if first_start else ""
        _write(f"{_OWN}Hearth {__version__} started {datetime.now():%Y-%m-%d %H:%M:%S}{first}")
        faulthandler.enable(_crash_file)


def note_window_shown() -> None:
    """The window is on screen: from now on a crash has something to report."""
    _write(f"{_SHOWN} at {datetime.now():%H:%M:%S}.")


def add_to_crash_log(text: str) -> None:
    """Keep ``text`` in the crash log at once: for what a toolkit says just before it ends the process."""
    _write(text)


def _write(text: str) -> None:
    if _crash_file is not None:
        _crash_file.write(text.rstrip("\n") + "\n")
        _crash_file.flush()


def take_crash_report(paths: Paths) -> str | None:
    """The crash log left by the last run, if that run crashed; it is moved aside (``crash.previous.log``) so it
    shows once.

    Nothing is reported for a run that ended normally (the log holds only Hearth's own lines), nor for a crash of a
    first start before its window was shown: there is nothing the person could have lost, and a start that cannot
    show a window (a missing system library, Qt's platform plugin) says why on the terminal and fails again the
    same way until it is mended; such a crash is written to the log file instead."""
    crash = paths.crash_log
    try:
        text = crash.read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return None
    if not text or _crash_file is not None:
        return None
    crash.replace(crash.with_suffix(".previous.log"))
    lines = text.splitlines()
    if not any(line.strip() and not line.startswith(_OWN) for line in lines):
        return None
    first_start = _FIRST_START in lines[0] if lines[0].startswith(_OWN) else False
    if first_start and not any(line.startswith(_SHOWN) for line in lines):
        log.warning("The last start, a first start, ended before its window was shown:\n%s", text)
        return None
    return text
