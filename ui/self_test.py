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
from pathlib import Path

from app.self_test import CheckFailed, Say, checking, ok, run_core_checks

WINDOW_EXPOSE_TIMEOUT_S = 10.0
WINDOW_READY_TIMEOUT_S = 120.0  # a first start of a frozen app reads much of the bundle from disk


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
    """The window as ``run_app`` starts it (``start_window``): the time to its first paint counts from the process's
    start, as a person counts from their double-click; then its services, built off the GUI thread, must arrive."""
    with checking("window"):
        from PySide6.QtCore import QEventLoop, QTimer
        from PySide6.QtGui import QIcon
        from PySide6.QtWidgets import QApplication

        from app.paths import Paths
        from app.settings import Settings
        from ui.main import apply_style, resource_path, start_window
        from ui.qt.background import wait_for_background
        from ui.qt.first_paint import seconds_until_shown

        app = QApplication.instance() or QApplication([sys.argv[0]])
        assert isinstance(app, QApplication)
        app.setApplicationName("Hearth")
        apply_style(app)
        icon = QIcon(str(resource_path("icons", "hearth.svg")))
        if icon.pixmap(64, 64).isNull():
            raise CheckFailed("window", "the app icon could not be drawn (is Qt's SVG support installed?)")
        paths = Paths.under(home).ensure()
        waiting = QEventLoop()
        failures: list[BaseException] = []
        readiness: list[bool] = []

        def failed(error: BaseException) -> None:
            failures.append(error)
            waiting.quit()

        def ready() -> None:
            readiness.append(True)
            waiting.quit()

        window = start_window(paths, Settings.load(paths.settings_file), icon, failed=failed)
        window.ready.connect(ready)
        timer = QTimer(singleShot=True, interval=int(WINDOW_READY_TIMEOUT_S * 1000))
        timer.timeout.connect(waiting.quit)
        try:
            shown_after = seconds_until_shown(window, WINDOW_EXPOSE_TIMEOUT_S)
            if shown_after is None:
                raise CheckFailed("window", f"the window was not shown within {WINDOW_EXPOSE_TIMEOUT_S:g} s")
            if not readiness and not failures:
                timer.start()
                waiting.exec()
                timer.stop()
            if failures:
                raise failures[0]
            if not readiness:
                raise CheckFailed("window", f"the history, library and engine were not ready within "
                                            f"{WINDOW_READY_TIMEOUT_S:g} s")
        finally:
            window.close()
            window.deleteLater()
            app.processEvents()
            wait_for_background()  # what the closing window's last results started, before Qt is torn down
        ok(say, f"window shown in {shown_after:.2f} s after launch ({app.platformName()})")
