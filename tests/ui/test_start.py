"""A start shows the window before the core's heavy libraries load, then fills it in: real Qt, a real history.

Nothing here times anything: what keeps a start quick is what it imports before the first paint, and that is
checked by name.
"""

from __future__ import annotations

import gc
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from app.history import HistoryStore, open_database
from app.paths import Paths
from app.settings import Settings
from ui.main import start_window
from ui.main_window import MainWindow
from ui.qt import background

from tests.helpers import ROOT

TIMEOUT = 60_000
# What the first paint must not wait for: each costs from tens to hundreds of milliseconds to import.
HEAVY = ("sqlalchemy", "alembic", "numpy", "gguf", "llama_cpp", "huggingface_hub", "jsonschema", "keyring", "pypdf",
         "docx", "httpx2", "yaml", "markdown_it", "pygments")

FIRST_PAINT = """
import sys

from PySide6.QtWidgets import QApplication

import ui.entry
import ui.main as start
from app.settings import Settings
from ui.qt.first_paint import is_shown

app = QApplication([])
start.apply_style(app)
window = start.MainWindow(settings=Settings())
window.show()
while not is_shown(window):
    app.processEvents()
print(" ".join(sorted({name.split(".")[0] for name in sys.modules} & set(sys.argv[1:]))))
"""


def _env(home: Path) -> dict[str, str]:
    return {**os.environ, "HEARTH_HOME": str(home), "QT_QPA_PLATFORM": "offscreen"}


def test_the_first_paint_imports_none_of_the_heavy_libraries(tmp_path: Path) -> None:
    """Everything ``hearth`` imports before it shows its window (the entry point, the start module, the window and
    its pages), in a fresh interpreter: none of the libraries the history, the engine or the Hub need."""
    result = subprocess.run([sys.executable, "-c", FIRST_PAINT, *HEAVY], cwd=ROOT, env=_env(tmp_path / "home"),
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == []


@pytest.fixture
def started(qtbot: QtBot, tmp_path: Path) -> Iterator[tuple[MainWindow, list[BaseException]]]:
    """A window started as ``run_app`` starts it, on a history that already holds one conversation."""
    paths = Paths.under(tmp_path / "home").ensure()
    database = open_database(paths.database)
    HistoryStore(database).create_conversation("An earlier chat", {})
    database.engine.dispose()
    failures: list[BaseException] = []
    window = start_window(paths, Settings.load(paths.settings_file), failed=failures.append)
    qtbot.addWidget(window)
    yield window, failures
    window.close()
    qtbot.waitUntil(lambda: not background._running, timeout=TIMEOUT)
    from app import network

    network.configure(None)
    gc.collect()  # here, on the GUI thread: a closed window must not be collected on a worker thread


def test_a_start_shows_the_window_then_fills_it_in(qtbot: QtBot, started: tuple[MainWindow, list[BaseException]]
                                                   ) -> None:
    window, failures = started
    assert not background._running  # nothing is built before the first paint
    composer = window.chat.view.composer
    qtbot.keyClicks(composer, "too early")
    assert composer.toPlainText() == ""  # until the window can act on input, it takes none
    chat = window.chat
    assert chat.conversations.rowCount() == 0 and not chat.sidebar.no_chats.isVisible()  # no "no conversations" yet

    with qtbot.waitSignal(window.ready, timeout=TIMEOUT):
        pass
    qtbot.waitUntil(lambda: window.chat.conversations.rowCount() == 1, timeout=TIMEOUT)
    assert window.chat.conversations.record(0).title == "An earlier chat"  # type: ignore[union-attr]
    assert failures == []
    qtbot.keyClicks(composer, "now")
    assert composer.toPlainText() == "now"
    qtbot.waitUntil(lambda: window._tasks_page.is_built() and window._compare_page.is_built(), timeout=TIMEOUT)


def test_pages_built_on_demand_show_at_once(qtbot: QtBot, started: tuple[MainWindow, list[BaseException]]) -> None:
    window, _ = started
    with qtbot.waitSignal(window.ready, timeout=TIMEOUT):
        pass
    qtbot.mouseClick(window.compare_tab, Qt.MouseButton.LeftButton)
    assert window._compare_page.is_built() and window.compare.view.isVisible()


def test_closing_before_the_services_come_starts_nothing(qtbot: QtBot, tmp_path: Path) -> None:
    failures: list[BaseException] = []
    window = start_window(Paths.under(tmp_path / "home").ensure(), Settings(), failed=failures.append)
    qtbot.addWidget(window)
    qtbot.waitUntil(lambda: bool(background._running), timeout=TIMEOUT)  # the services are being built
    window.close()
    qtbot.waitUntil(lambda: not background._running, timeout=TIMEOUT)  # and have come, to a closed window
    assert not window._attached and failures == []
    assert window.stack.currentIndex() == 0  # no welcome page offered on a closed window


def test_a_history_that_cannot_open_says_so_in_plain_words(qtbot: QtBot, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    from ui.history.damaged import DamagedHistoryBox

    paths = Paths.under(tmp_path / "home").ensure()
    paths.database.parent.mkdir(parents=True, exist_ok=True)
    paths.database.write_bytes(b"these are not the bytes of a database" * 100)
    shown: list[str] = []
    monkeypatch.setattr(DamagedHistoryBox, "exec", lambda box: shown.append(box.text()) or 0)  # closed: Quit
    failures: list[BaseException] = []
    window = start_window(paths, Settings(), failed=failures.append)
    qtbot.addWidget(window)
    qtbot.waitUntil(lambda: bool(failures), timeout=TIMEOUT)
    assert "damaged or is not a database" in str(failures[0]) and str(paths.database) in str(failures[0])
    assert shown == ["Hearth's history file is damaged or is not a database, so Hearth did not open it, to keep the "
                     "damage from spreading."]
    assert paths.database.read_bytes().startswith(b"these are not")  # untouched
    window.close()


RUN_APP = """
import sys

from PySide6.QtWidgets import QMessageBox

from ui.main import run_app


def critical(parent, title, text, *args, **kwargs):
    print("critical:", title, "|", text, flush=True)
    return QMessageBox.StandardButton.Ok


def shown(box):
    print("box:", box.text(), "|", box.detailedText().strip(), flush=True)
    return 0


QMessageBox.critical = critical
QMessageBox.exec = shown
sys.exit(run_app([sys.argv[0]]))
"""


def _run_app(home: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", RUN_APP], cwd=ROOT, env={**_env(home), **env},
                          capture_output=True, text=True, timeout=300, check=False)


def test_run_app_shows_a_history_it_cannot_open_in_a_message_box_and_exits(tmp_path: Path) -> None:
    paths = Paths.under(tmp_path / "home").ensure()
    paths.database.parent.mkdir(parents=True, exist_ok=True)
    paths.database.write_bytes(b"not a database" * 100)

    result = _run_app(tmp_path / "home")

    assert result.returncode == 1, result.stdout + result.stderr
    assert "box: Hearth's history file is damaged or is not a database" in result.stdout
    assert "SQLite's check found: file is not a database" in result.stdout
    assert "critical:" not in result.stdout  # said once, in the box that offered the way out


def test_run_app_shows_last_times_crash_and_reports_its_start(tmp_path: Path) -> None:
    """With ``HEARTH_EXIT_AFTER_START`` (benchmarks/cold_start.py), the real start prints its figures and closes."""
    paths = Paths.under(tmp_path / "home").ensure()
    paths.logs_dir.mkdir(parents=True, exist_ok=True)
    paths.crash_log.write_text("Fatal Python error: Segmentation fault\n", encoding="utf-8")

    result = _run_app(tmp_path / "home", HEARTH_EXIT_AFTER_START="1")

    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("window shown in ") and lines[0].endswith(" s after launch"), lines
    assert "box: Hearth stopped unexpectedly the last time it ran." in result.stdout
    assert "Fatal Python error: Segmentation fault" in result.stdout
    assert lines[-1].startswith("ready in ") and lines[-1].endswith(" s after launch"), lines


QT_SAYS = 'Could not find the Qt platform plugin "nonexistent"'


def test_a_first_start_without_its_qt_plugin_keeps_qts_words_and_reports_no_crash_next_time(tmp_path: Path) -> None:
    """Qt aborts when it cannot load its platform plugin (here one that does not exist; on a desktop, a missing system
    library): its own words say why, and Python's trace of the abort only "Fatal Python error: Aborted"."""
    paths = Paths.under(tmp_path / "home")
    failed = _run_app(tmp_path / "home", QT_QPA_PLATFORM="nonexistent")
    assert failed.returncode != 0 and QT_SAYS in failed.stderr  # on the terminal, as Qt prints it
    crash = paths.crash_log.read_text(encoding="utf-8")
    assert QT_SAYS in crash and "no Qt platform plugin could be initialized" in crash
    assert "Fatal Python error: Aborted" in crash

    mended = _run_app(tmp_path / "home", HEARTH_EXIT_AFTER_START="1")
    assert mended.returncode == 0, mended.stdout + mended.stderr
    assert "box:" not in mended.stdout  # a first start that never showed a window has no crash to report
    assert QT_SAYS in paths.crash_log.with_suffix(".previous.log").read_text(encoding="utf-8")
    assert QT_SAYS in paths.log_file.read_text(encoding="utf-8")


def test_a_later_start_without_its_qt_plugin_is_reported_with_qts_words(tmp_path: Path) -> None:
    paths = Paths.under(tmp_path / "home").ensure()
    open_database(paths.database).engine.dispose()  # Hearth has run here before
    failed = _run_app(tmp_path / "home", QT_QPA_PLATFORM="nonexistent")
    assert failed.returncode != 0

    result = _run_app(tmp_path / "home", HEARTH_EXIT_AFTER_START="1")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "box: Hearth stopped unexpectedly the last time it ran." in result.stdout
    assert QT_SAYS in result.stdout and "Fatal Python error: Aborted" in result.stdout


def test_a_start_that_ends_normally_leaves_no_crash_to_report(tmp_path: Path) -> None:
    first = _run_app(tmp_path / "home", HEARTH_EXIT_AFTER_START="1")
    second = _run_app(tmp_path / "home", HEARTH_EXIT_AFTER_START="1")
    assert first.returncode == second.returncode == 0, second.stdout + second.stderr
    assert "box:" not in first.stdout + second.stdout



SLOW_BACKGROUND = """
import time

from PySide6.QtCore import QThreadPool

from ui.qt.background import BackgroundOp

_work = BackgroundOp._work


def slow_work(self):
    time.sleep(0.5)
    _work(self)


BackgroundOp._work = slow_work
"""


def test_work_still_running_when_the_window_closes_ends_before_the_run_does(tmp_path: Path) -> None:
    """Results that come back as the window closes start more work (the library's forecasts after its list).
    With every job slower, that work outlives the window; the run waits for it rather than tearing Qt and Python
    down under it (which crashed now and then, and the next start reported the crash)."""
    script = (RUN_APP.replace("from ui.main import run_app", SLOW_BACKGROUND + "\nfrom ui.main import run_app")
              .replace("sys.exit(run_app([sys.argv[0]]))",
                       "code = run_app([sys.argv[0]])\n"
                       "print('still running:', QThreadPool.globalInstance().activeThreadCount(), flush=True)\n"
                       "sys.exit(code)"))
    env = {**_env(tmp_path / "home"), "HEARTH_EXIT_AFTER_START": "1"}
    first = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True,
                           timeout=300, check=False)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "still running: 0" in first.stdout, first.stdout
    second = _run_app(tmp_path / "home", HEARTH_EXIT_AFTER_START="1")
    assert second.returncode == 0 and "box:" not in second.stdout, second.stdout + second.stderr
