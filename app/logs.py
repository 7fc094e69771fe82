"""Logging to the log file, and native crash traces to a crash log shown on the next start."""

from __future__ import annotations

import faulthandler
import logging
import logging.handlers
from typing import IO

from app.paths import Paths

_crash_file: IO[str] | None = None


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


def enable_crash_log(paths: Paths) -> None:
    """Write a native traceback to the crash log if the process dies inside C code (Qt, SQLite)."""
    global _crash_file
    if _crash_file is None:
        paths.logs_dir.mkdir(parents=True, exist_ok=True)
        _crash_file = paths.crash_log.open("a", encoding="utf-8")
        faulthandler.enable(_crash_file)


def take_crash_report(paths: Paths) -> str | None:
    """The crash log left by the last run, if it holds anything; it is moved aside so it shows once."""
    crash = paths.crash_log
    try:
        text = crash.read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return None
    if not text or _crash_file is not None:
        return None
    crash.replace(crash.with_suffix(".previous.log"))
    return text
