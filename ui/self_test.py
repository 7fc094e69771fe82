"""``hearth --self-test [--model PATH]``: does this installed copy of Hearth work on this computer?

Meant for the frozen app above all (CI runs it on every bundle, and support can ask a person to run it): it opens
the real window headless, then runs the core checks of ``app/self_test.py``. Everything happens in a temporary
folder that is removed at the end, with the network switched off and no credential store consulted, so a
person's models, history, settings and keychain are never read or written.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from app.self_test import CheckFailed, Say, checking, ok, run_core_checks, seconds_since_launch

WINDOW_EXPOSE_TIMEOUT_S = 10.0


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="hearth --self-test",
                                     description="Check that Hearth works on this computer, then exit.")
    parser.add_argument("--self-test", action="store_true", required=True)
    parser.add_argument("--model", type=Path, help="a .gguf model to load and generate a few tokens with")
    return parser.parse_args(argv)


def run_self_test(argv: list[str], say: Say | None = None) -> int:
    """Exit status 0 when every check passed, 1 (after a ``FAIL`` line) when one did not."""
    args = parse_args(argv)
    say = say or _console()
    _isolate()
    with tempfile.TemporaryDirectory(prefix="hearth-self-test-", ignore_cleanup_errors=True) as tmp:
        home = Path(tmp)
        os.environ["HEARTH_HOME"] = str(home / "home")
        try:
            check_window(home / "home", say)
            run_core_checks(home / "core", say, model=args.model.expanduser() if args.model else None)
        except CheckFailed as failure:
            say(f"FAIL {failure.check}: {failure.reason}")
            return 1
    say("self-test passed")
    return 0


def _console() -> Say:
    """Each line flushed at once, so a native crash cannot swallow the ones before it. A windowed Hearth.exe has no
    standard output unless it was redirected; then the lines go to the console of whoever started it, if any."""
    stream = sys.stdout
    if stream is None and sys.platform == "win32":
        import ctypes

        if ctypes.windll.kernel32.AttachConsole(-1):  # ATTACH_PARENT_PROCESS
            stream = open("CONOUT$", "w", encoding="utf-8")  # noqa: SIM115 (kept open until the process ends)
    if stream is None:
        return lambda line: None

    def say(line: str) -> None:
        print(line, file=stream, flush=True)

    return say


def _isolate() -> None:
    """Before Qt or any core module starts: a headless platform unless one was chosen, no keychain (the null
    backend answers "no token" without asking the system), and no network."""
    if not os.environ.get("QT_QPA_PLATFORM"):
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
    os.environ["PYTHON_KEYRING_BACKEND"] = "keyring.backends.null.Keyring"
    from app import network

    network.set_offline(True)


def check_window(home: Path, say: Say) -> None:
    """The window as ``run_app`` builds it, on its own services; the time counts from the process's start, as a
    person counts from their double-click."""
    with checking("window"):
        from PySide6.QtCore import QEventLoop
        from PySide6.QtGui import QIcon
        from PySide6.QtWidgets import QApplication

        from app.paths import Paths
        from ui.main import apply_style, build_services, resource_path
        from ui.main_window import MainWindow

        app = QApplication.instance() or QApplication([sys.argv[0]])
        assert isinstance(app, QApplication)
        app.setApplicationName("Hearth")
        apply_style(app)
        icon = QIcon(str(resource_path("icons", "hearth.svg")))
        if icon.pixmap(64, 64).isNull():
            raise CheckFailed("window", "the app icon could not be drawn (is Qt's SVG support installed?)")
        services = build_services(Paths.under(home).ensure())
        window = MainWindow(services, icon)
        try:
            window.show()
            deadline = time.monotonic() + WINDOW_EXPOSE_TIMEOUT_S
            handle = window.windowHandle()
            while handle is None or not handle.isExposed():
                if time.monotonic() > deadline:
                    raise CheckFailed("window", f"the window was not shown within {WINDOW_EXPOSE_TIMEOUT_S:g} s")
                app.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 50)
                handle = window.windowHandle()
            shown_after = seconds_since_launch()
        finally:
            window.close()
            window.deleteLater()
            app.processEvents()
        ok(say, f"window shown in {shown_after:.2f} s after launch ({app.platformName()})")
