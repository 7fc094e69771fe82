"""Builds the app's objects (the one place that does, for the window) and runs the Qt event loop.

A start shows the window first and builds the services right after its first paint, off the GUI thread: opening
the history (SQLAlchemy, Alembic), the catalog, the hardware probes and the engine client import most of what
Hearth needs, about a second's worth, and none of it is needed to draw the window. So this module imports only what
the first paint needs; ``build_services`` imports the core itself, on the thread that runs it.
"""

from __future__ import annotations

import functools
import logging
import os
import sys
from collections import deque
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QMessageLogContext, QTimer, QtMsgType, qInstallMessageHandler
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication, QMessageBox

from app.errors import HearthError
from app.launch_clock import seconds_since_launch
from app.logs import add_to_crash_log, configure_logging, enable_crash_log, note_window_shown, take_crash_report
from app.paths import Paths, resources_dir
from app.settings import Settings
from ui.main_window import MainWindow
from ui.qt import theme
from ui.qt.background import BackgroundOp, present_failures_with, wait_for_background
from ui.qt.collector import GuiThreadCollector
from ui.qt.first_paint import after_first_paint, seconds_until_shown
from ui.qt.theme import Tone
from ui.services import Services

log = logging.getLogger(__name__)

EXIT_AFTER_START = "HEARTH_EXIT_AFTER_START"  # for benchmarks/cold_start.py: print the start's figures, then quit
WINDOW_SHOWN_TIMEOUT_S = 10.0
PAGES_AFTER_MS = 300  # after the lists have filled in
NOTE_MS = 20_000  # how long the status bar says what a restore did
CLOSED_WINDOW_GOES_MS = 2000  # a window closed for the one reopened after a restore is deleted this much later
AFTER_LAST_WINDOW_MS = 30_000  # how long the end of a run waits for background work the closing window started

_reopened: set[MainWindow] = set()


def resource_path(*parts: str) -> Path:
    return resources_dir() / Path(*parts)


def build_services(paths: Paths, settings: Settings | None = None) -> Services:
    """Open history and settings (unless the ``settings`` already read are given), look at the hardware (bandwidth
    from the cache only: measuring takes a second and happens later, off the GUI thread) and make the engine;
    raises HistoryError if the history cannot open (``DamagedHistoryError`` when it fails its check). Slow (it
    imports most of the core): off the GUI thread.

    The history is checked before it is opened for writing (``app.history.backups.look_over``), on a thread of its
    own while the core is imported: SQLite reads the file without holding the GIL, so on a large history the check
    (about 90 ms at 100,000 messages) ends within the imports' time rather than after it."""
    from concurrent.futures import ThreadPoolExecutor

    from app.history.backups import look_over

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="history-check") as checking:
        checked = checking.submit(look_over, paths.database, paths.backups_dir)
        from app import network
        from app.chat import ChatRunner
        from app.compare.runner import Comparer
        from app.engine import EngineClient
        from app.forecast.load_tracker import LoadTracker
        from app.hardware.detect import detect, with_memory_now
        from app.history import HistoryStore, open_database
        from app.hub import credentials
        from app.hub.catalog import CatalogError, cached_or_builtin
        from app.hub.downloads import DownloadManager
        from app.library import Library
        from app.remote.computers import Computers
        from app.remote.worker import RemoteWorkers
        from app.task_session import TaskSession

        settings = settings if settings is not None else Settings.load(paths.settings_file)
        checked.result()
    store = HistoryStore(open_database(paths.database, paths.backups_dir))
    network.configure(store.add_network_request)
    if settings.work_offline:
        network.set_offline(True)
    store.mark_unfinished_as_interrupted()
    store.mark_unfinished_task_runs_as_interrupted()
    store.mark_unfinished_comparisons_as_interrupted()
    store.purge_deleted()
    computers = Computers(settings)
    engine = EngineClient(log_file=paths.log_file, states_dir=paths.kv_states_dir, registry_dir=paths.engines_dir,
                          elsewhere=RemoteWorkers(computers))
    downloads = DownloadManager(paths.models_dir / ".downloads", paths.models_dir, token=credentials.get_token())
    downloads.restore()
    try:
        catalog = cached_or_builtin(paths.cache_dir)
    except CatalogError:
        log.exception("the built-in catalog is unusable")
        catalog = None
    machine = detect(cache_dir=paths.cache_dir)
    compare = Comparer(store, lambda: with_memory_now(machine), log_file=paths.log_file,
                       gpu_layers=lambda: settings.gpu_layers, threads=lambda: settings.threads, computers=computers)
    services = Services(paths=paths, settings=settings, store=store, library=Library(store, paths.models_dir, catalog),
                        engine=engine, runner=ChatRunner(store, engine),
                        tracker=LoadTracker(store, engine, paths.cache_dir, machine),
                        machine=machine, downloads=downloads, catalog=catalog,
                        tasks=TaskSession(store, engine, save_text=lambda: settings.save_document_text),
                        compare=compare, computers=computers)
    # The window replaces the machine once its memory speed is measured; forecasts use the newest one.
    compare.machine = lambda: with_memory_now(services.machine)
    return services


def apply_style(app: QApplication, tone: Tone | None = None) -> Tone:
    """Fusion, and Hearth's colours in the system's tone (or ``tone``) at the system's text size."""
    app.setStyle("Fusion")
    return theme.apply(app, resource_path("styles", "hearth.qss"), tone)


def start_window(paths: Paths, settings: Settings, icon: QIcon | None = None, *,
                 failed: Callable[[BaseException], None],
                 said: tuple[str, BaseException | None] = ("", None)) -> MainWindow:
    """The window as a start opens it: shown at once, then, right after its first paint, the services are built off
    the GUI thread and attached as ``open_window`` attaches them (``MainWindow.ready`` says when). ``failed`` gets
    the error instead if they cannot be built: a ``HearthError`` when the history cannot open. A moment later the
    pages left out of the first paint are built, and what the start made is set aside from garbage collection.

    A history that fails its check is not opened: the window says so and offers the newest good backup, or a new
    history (``ui.history.damaged``); once either is done the services are built again, and if the person quits
    instead, ``failed`` gets the ``DamagedHistoryError``. After File → Restore from a backup…, a new window is
    started this same way on the restored history (``MainWindow.reopenRequested``, ``ui.history.keeper`` says why)
    and this one closes; ``said`` is what the new one says once ready: a sentence, or an error to show."""
    window = MainWindow(icon=icon, settings=settings)
    window.show()
    note, problem = said

    def ready(services: Services) -> None:
        _fill(window, services)
        if problem is not None:
            window.show_error(problem)
        elif note:
            window.statusBar().showMessage(note, NOTE_MS)
        QTimer.singleShot(PAGES_AFTER_MS, lambda: window.build_pages(then=GuiThreadCollector.settle))

    def build() -> None:
        BackgroundOp(window, build_services, paths, settings).success(ready).failure(not_built).run()

    def not_built(error: BaseException) -> None:
        from app.history.backups import DamagedHistoryError

        if not isinstance(error, DamagedHistoryError):
            failed(error)
            return
        from ui.history.damaged import offer_a_way_out

        offer_a_way_out(window, error, paths, mended=mended, failed=failed, gave_up=lambda: failed(error))

    def mended(words: str) -> None:
        nonlocal note
        note = words
        build()

    def reopen(words: str, error: BaseException | None) -> None:
        again = start_window(paths, settings, icon, failed=failed, said=(words, error))  # before this one closes
        _reopened.add(again)  # its only owner, until it is deleted in turn
        again.destroyed.connect(functools.partial(_reopened.discard, again))
        window.close()
        # Not at once: results that came back as it closed may have queued work of its pages for the next turns.
        QTimer.singleShot(CLOSED_WINDOW_GOES_MS, window, window.deleteLater)

    window.reopenRequested.connect(reopen)
    after_first_paint(window, build)
    return window


def open_window(services: Services, icon: QIcon | None = None) -> MainWindow:
    """The window as a start opens it, with services already built (the tests open it so): shown, then filled, with
    the welcome page on a first start."""
    window = MainWindow(icon=icon, settings=services.settings)
    window.show()
    _fill(window, services)
    return window


def _fill(window: MainWindow, services: Services) -> None:
    window.attach(services)
    present_failures_with(window.show_error)  # a background op with no failure of its own says it here
    window.destroyed.connect(functools.partial(present_failures_with, None))
    window.offer_welcome()


def run_app(argv: list[str] | None = None) -> int:
    paths = Paths.from_environment()
    first_start = not paths.database.exists()  # before anything is made: has Hearth ever opened here?
    paths.ensure()
    configure_logging(paths)
    crash = take_crash_report(paths)
    enable_crash_log(paths, first_start=first_start)
    install_qt_message_handler()
    app = QApplication.instance() or QApplication(argv if argv is not None else sys.argv)
    assert isinstance(app, QApplication)
    app.setApplicationName("Hearth")
    app.setOrganizationName("Hearth")
    app.setDesktopFileName("io.hearth.Hearth")  # Wayland matches the window to its menu entry and icon by this
    apply_style(app)
    app.styleHints().colorSchemeChanged.connect(lambda _scheme: apply_style(app))  # the system's dark mode switched
    icon = QIcon(str(resource_path("icons", "hearth.svg")))
    app.setWindowIcon(icon)
    window = start_window(paths, Settings.load(paths.settings_file), icon,
                          failed=lambda error: _cannot_start(error, paths))
    after_first_paint(window, note_window_shown)
    if os.environ.get(EXIT_AFTER_START):
        _exit_after_start(window)
    if crash:
        after_first_paint(window, lambda: _show_crash(window, crash))
    log.info("Hearth started; data in %s", paths.database.parent)
    code = app.exec()
    # Results that came back while the window closed may have started more work (a page's next list); Qt and
    # Python must not be torn down under it, or the run ends in a crash that the next start reports.
    if not wait_for_background(AFTER_LAST_WINDOW_MS):
        log.warning("background work was still running %d ms after the window closed", AFTER_LAST_WINDOW_MS)
    return code


_QT_LEVELS = {QtMsgType.QtDebugMsg: logging.DEBUG, QtMsgType.QtInfoMsg: logging.INFO,
              QtMsgType.QtWarningMsg: logging.WARNING, QtMsgType.QtCriticalMsg: logging.ERROR,
              QtMsgType.QtFatalMsg: logging.CRITICAL}


def install_qt_message_handler() -> None:
    """Qt's own messages go to the log file, and to the terminal as Qt prints them. A fatal one (no platform plugin
    could be loaded, a system library is missing) goes to the crash log too, with the warnings before it that say
    which: Qt aborts right after, and Python's trace of that says only "Fatal Python error: Aborted". Before the
    application object is made, so that its own start is covered."""
    recent: deque[str] = deque(maxlen=20)

    def handle(kind: QtMsgType, context: QMessageLogContext, message: str) -> None:
        category = context.category if context.category and context.category != "default" else ""
        line = f"{category}: {message}" if category else message
        if sys.stderr is not None:  # None in a windowed app
            print(line, file=sys.stderr, flush=True)
        log.log(_QT_LEVELS.get(kind, logging.WARNING), "Qt: %s", line)
        if kind is QtMsgType.QtFatalMsg:
            add_to_crash_log("\n".join([*recent, line]))
        elif kind in (QtMsgType.QtWarningMsg, QtMsgType.QtCriticalMsg):
            recent.append(line)

    qInstallMessageHandler(handle)


def _cannot_start(error: BaseException, paths: Paths) -> None:
    """The history cannot open (or something unexpected happened): said in a box, then Hearth ends. A damaged
    history was said already, by the box that offered the way out the person declined."""
    from app.history.backups import DamagedHistoryError

    parent = QApplication.activeWindow()
    if isinstance(error, DamagedHistoryError):
        pass
    elif isinstance(error, HearthError):
        QMessageBox.critical(parent, "Hearth cannot open its history", str(error))
    else:
        log.error("the services could not be built", exc_info=error)
        QMessageBox.critical(parent, "Hearth could not start",
                             f"Hearth hit an unexpected problem while starting: {error}\n\nDetails are in the log "
                             f"file: {paths.log_file}")
    QApplication.exit(1)


def _exit_after_start(window: MainWindow) -> None:
    """With ``HEARTH_EXIT_AFTER_START`` set (by benchmarks/cold_start.py), a start prints when its window was shown,
    measured as ``--self-test`` measures it, and when the window was ready, then closes as a person would.

    A switch in the environment rather than an option: ``hearth`` with arguments is the command line, and a start
    measured this way goes through exactly the code a double-click runs."""
    shown = seconds_until_shown(window, WINDOW_SHOWN_TIMEOUT_S)
    if shown is None:
        print(f"the window was not shown within {WINDOW_SHOWN_TIMEOUT_S:g} s", flush=True)
        QTimer.singleShot(0, lambda: QApplication.exit(1))
        return
    print(f"window shown in {shown:.3f} s after launch", flush=True)

    def ready() -> None:
        print(f"ready in {seconds_since_launch():.3f} s after launch", flush=True)
        window.close()

    window.ready.connect(ready)


def _show_crash(window: MainWindow, report: str) -> None:
    box = QMessageBox(QMessageBox.Icon.Warning, "Hearth closed unexpectedly last time",
                      "Hearth stopped unexpectedly the last time it ran. Your conversations were saved. The "
                      "technical details below can help us fix it.", parent=window)
    box.setDetailedText(report[-8000:])
    box.exec()
