"""Builds the app's objects (the one place that does, for the window) and runs the Qt event loop."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from PySide6.QtCore import QTimer
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication, QMessageBox

from app import credentials, network
from app.catalog import CatalogError, cached_or_builtin
from app.chat import ChatRunner
from app.compare.runner import Comparer
from app.downloads import DownloadManager
from app.engine import EngineClient
from app.errors import HearthError
from app.hardware import detect, with_memory_now
from app.history import HistoryStore, open_database
from app.library import Library
from app.load_tracker import LoadTracker
from app.logs import configure_logging, enable_crash_log, take_crash_report
from app.paths import Paths, resources_dir
from app.settings import Settings
from app.tasks.session import TaskSession
from ui.main_window import MainWindow, Services

log = logging.getLogger(__name__)

def resource_path(*parts: str) -> Path:
    return resources_dir() / Path(*parts)


def build_services(paths: Paths) -> Services:
    """Open history and settings, look at the hardware (bandwidth from the cache only: measuring takes a
    second and happens later, off the GUI thread) and make the engine; raises HistoryError if the history
    cannot open."""
    settings = Settings.load(paths.settings_file)
    store = HistoryStore(open_database(paths.database))
    network.configure(store.add_network_request)
    if settings.work_offline:
        network.set_offline(True)
    store.mark_unfinished_as_interrupted()
    store.mark_unfinished_task_runs_as_interrupted()
    store.mark_unfinished_comparisons_as_interrupted()
    store.purge_deleted()
    engine = EngineClient(log_file=paths.log_file)
    downloads = DownloadManager(paths.models_dir / ".downloads", paths.models_dir, token=credentials.get_token())
    downloads.restore()
    try:
        catalog = cached_or_builtin(paths.cache_dir)
    except CatalogError:
        log.exception("the built-in catalog is unusable")
        catalog = None
    machine = detect(cache_dir=paths.cache_dir)
    compare = Comparer(store, lambda: with_memory_now(machine), log_file=paths.log_file,
                       gpu_layers=lambda: settings.gpu_layers, threads=lambda: settings.threads)
    services = Services(paths=paths, settings=settings, store=store, library=Library(store, paths.models_dir),
                        engine=engine, runner=ChatRunner(store, engine), tracker=LoadTracker(store, engine),
                        machine=machine, downloads=downloads, catalog=catalog,
                        tasks=TaskSession(store, engine, save_text=lambda: settings.save_document_text),
                        compare=compare)
    # The window replaces the machine once its memory speed is measured; forecasts use the newest one.
    compare.machine = lambda: with_memory_now(services.machine)
    return services


def apply_style(app: QApplication) -> None:
    app.setStyle("Fusion")
    style = resource_path("styles", "hearth.qss")
    if style.is_file():
        app.setStyleSheet(style.read_text(encoding="utf-8"))


def open_window(services: Services, icon: QIcon | None = None) -> MainWindow:
    """The window as a start opens it: shown, with the welcome page on a first start (the tests open it so too)."""
    window = MainWindow(services, icon)
    window.show()
    window.offer_welcome()
    return window


def run_app(argv: list[str] | None = None) -> int:
    paths = Paths.from_environment().ensure()
    configure_logging(paths)
    crash = take_crash_report(paths)
    enable_crash_log(paths)
    app = QApplication.instance() or QApplication(argv if argv is not None else sys.argv)
    assert isinstance(app, QApplication)
    app.setApplicationName("Hearth")
    app.setOrganizationName("Hearth")
    app.setDesktopFileName("io.hearth.Hearth")  # Wayland matches the window to its menu entry and icon by this
    apply_style(app)
    icon = QIcon(str(resource_path("icons", "hearth.svg")))
    app.setWindowIcon(icon)
    try:
        services = build_services(paths)
    except HearthError as error:
        QMessageBox.critical(None, "Hearth cannot open its history", str(error))
        return 1
    window = open_window(services, icon)
    if crash:
        QTimer.singleShot(300, lambda: _show_crash(window, crash))
    log.info("Hearth started; data in %s", paths.database.parent)
    return app.exec()


def _show_crash(window: MainWindow, report: str) -> None:
    box = QMessageBox(QMessageBox.Icon.Warning, "Hearth closed unexpectedly last time",
                      "Hearth stopped unexpectedly the last time it ran. Your conversations were saved. The "
                      "technical details below can help us fix it.", parent=window)
    box.setDetailedText(report[-8000:])
    box.exec()
