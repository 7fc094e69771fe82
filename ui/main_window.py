"""The main window: sidebar (chats and models), the chat, library, discover and tasks pages.

It wires views to the core: every database or file call goes through ``BackgroundOp``, every model call
through the engine client, and results come back as signals. Nothing here waits.

A start shows the window before the core is ready: the widgets first (``MainWindow(settings=...)``), then the
services, built off the GUI thread, are attached (``attach``) and the lists fill in. So this module imports only
Qt and plain records at the top; the core's heavy modules (the forecast, the hardware probes, the bridges to the
engine) are imported where they are used, all of which runs after ``attach``, when the services have loaded them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Qt, QTimer, QUrl, Signal
from PySide6.QtGui import QAction, QCloseEvent, QDesktopServices, QIcon, QKeySequence
from PySide6.QtWidgets import (
    QApplication,
    QButtonGroup,
    QGridLayout,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QLineEdit,
    QMainWindow,
    QMenu,
    QMessageBox,
    QPushButton,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from app import __version__, credentials, network
from app.errors import HearthError
from app.settings import Settings
from ui.chat.page import ChatPage
from ui.discover.page import DiscoverPage
from ui.library.page import LibraryPage
from ui.model_loader import ModelLoader
from ui.privacy_dialog import PrivacyDialog
from ui.qt.background import BackgroundOp, wait_for_background
from ui.qt.collector import GuiThreadCollector
from ui.qt.input_gate import InputGate
from ui.qt.lazy_page import LazyPage
from ui.qt.qt_models import LibraryModel
from ui.services import Services
from ui.welcome.page import WelcomePage

if TYPE_CHECKING:
    from app.catalog import CatalogEntry
    from app.chat import ChatRunner
    from app.engine import EngineClient
    from app.history import HistoryStore
    from ui.compare.page import ComparePage
    from ui.qt.bridge import CompareBridge, EngineBridge, TaskBridge
    from ui.tasks.page import TasksPage

log = logging.getLogger(__name__)

UNDO_SECONDS = 10
BANDWIDTH_TRIES = 6  # waits for a quiet machine to measure memory speed, half a minute apart
BANDWIDTH_RETRY_MS = 30_000
PAGES = ("Chats", "Models", "Discover", "Tasks", "Compare")
TASKS_PAGE = 3
COMPARE_PAGE = 4


class MainWindow(QMainWindow):
    """``MainWindow(services)`` is ready at once (tests); a start makes ``MainWindow(settings=...)``, shows it and
    calls ``attach`` when the services are built, and until then the window takes no input (``InputGate``)."""

    ready = Signal()  # the services are attached: the window acts on input from now on

    services: Services
    store: HistoryStore
    engine: EngineClient
    runner: ChatRunner
    loader: ModelLoader
    bridge: EngineBridge
    task_bridge: TaskBridge
    compare_bridge: CompareBridge

    def __init__(self, services: Services | None = None, icon: QIcon | None = None, *,
                 settings: Settings | None = None) -> None:
        super().__init__()
        settings = services.settings if services is not None else settings
        assert settings is not None, "a window needs its services, or at least the settings to show until they come"
        self.settings = settings
        self.setWindowTitle("Hearth")
        if icon is not None:
            self.setWindowIcon(icon)
        self.resize(1180, 780)
        self._closing = False
        self._attached = False

        app = QApplication.instance()
        if app is not None:
            GuiThreadCollector.install(app)
        self.library_model = LibraryModel()
        self._build()
        self._build_menus()
        self._build_welcome()
        self.stack.currentChanged.connect(self._page_changed)
        self._page_changed(self.stack.currentIndex())
        self._gate: InputGate | None = None
        if services is not None:
            self.attach(services)
        else:
            self._gate = InputGate(self)

    def attach(self, services: Services) -> None:
        """Wires the window to the core and fills it: conversations, models, downloads, the catalog."""
        from ui.qt.bridge import CompareBridge, DownloadBridge, EngineBridge, TaskBridge

        assert not self._attached and services.settings is self.settings
        if self._closing:  # closed while they were being built: nothing was started with them yet
            self._shut_down(services)
            return
        self._attached = True
        self.services = services
        self.store, self.engine, self.runner = services.store, services.engine, services.runner
        self.bridge = EngineBridge(self.engine, self.runner, self)
        self.task_bridge = TaskBridge(services.tasks, self)
        self.compare_bridge = CompareBridge(services.compare, self)
        self.download_bridge = DownloadBridge(services.downloads, self)
        self.library.attach(services, self.bridge)
        self.loader = ModelLoader(services, self.bridge, lambda: self.library.worker_baseline, self)
        self.chat.attach(services, self.bridge, self.loader, self.library_model)
        self.discover.attach(services, self.download_bridge)
        self.welcome.attach(services)
        self.offline_action.setChecked(network.is_offline())
        self.offline_label.setVisible(self.settings.work_offline)
        self._connect()
        self.chat.refresh_conversations(select_first=True)
        self.library.refresh_models(select_id=self.settings.last_model_id)
        QTimer.singleShot(1500, self.library.measure_bandwidth)
        QTimer.singleShot(2000, self.discover.update_catalog)
        if self._gate is not None:
            self._gate.open()
            self._gate = None
        self.ready.emit()

    # --- layout ---

    def _build(self) -> None:
        central = QWidget()
        row = QHBoxLayout(central)
        row.setContentsMargins(0, 0, 0, 0)
        row.setSpacing(0)

        sidebar = QWidget()
        sidebar.setObjectName("navigationPanel")
        sidebar.setFixedWidth(260)
        side = QVBoxLayout(sidebar)
        side.setContentsMargins(12, 12, 12, 12)
        brand = QLabel("Hearth")
        brand.setObjectName("brand")
        side.addWidget(brand)
        nav = QGridLayout()
        nav.setSpacing(6)
        self.chats_tab, self.models_tab, self.discover_tab, self.tasks_tab, self.compare_tab = (
            QPushButton(name) for name in PAGES)
        self.nav_group = QButtonGroup(self)
        for i, button in enumerate((self.chats_tab, self.models_tab, self.discover_tab, self.tasks_tab,
                                    self.compare_tab)):
            button.setCheckable(True)
            button.setObjectName("navButton")
            button.setToolTip(f"{PAGES[i]} (Ctrl+{i + 1})")
            self.nav_group.addButton(button, i)
            alone = i == len(PAGES) - 1 and i % 2 == 0  # an odd one out spans the row, so no gap is left
            nav.addWidget(button, i // 2, i % 2, 1, 2 if alone else 1)
        self.chats_tab.setChecked(True)
        side.addLayout(nav)
        self.chat = ChatPage(self.settings, self)
        side.addWidget(self.chat.sidebar, 1)
        row.addWidget(sidebar)

        self.stack = QStackedWidget()
        self.stack.addWidget(self.chat.view)
        self.library = LibraryPage(self.library_model, self.settings, self)
        self.stack.addWidget(self.library.view)
        self.discover = DiscoverPage(self.settings, self)
        self.stack.addWidget(self.discover.view)
        self._tasks_page = LazyPage(self._make_tasks_page)
        self.stack.addWidget(self._tasks_page)
        self._compare_page = LazyPage(self._make_compare_page)
        self.stack.addWidget(self._compare_page)
        row.addWidget(self.stack, 1)
        self.setCentralWidget(central)

        self.offline_label = QLabel("Offline")
        self.offline_label.setToolTip("Hearth makes no network requests (File → Work offline).")
        self.statusBar().addPermanentWidget(self.offline_label)
        self.offline_label.setVisible(self.settings.work_offline)
        self.statusBar().addPermanentWidget(self.chat.undo_button)

    @property
    def tasks(self) -> TasksPage:
        return self._tasks_page.content()

    @property
    def compare(self) -> ComparePage:
        return self._compare_page.content()

    def _make_tasks_page(self) -> TasksPage:
        from ui.tasks.page import TasksPage

        page = TasksPage(
            store=self.store, engine=self.engine, session=self.services.tasks, settings=self.settings,
            settings_file=self.services.paths.settings_file, library_model=self.library_model,
            engine_bridge=self.bridge, task_bridge=self.task_bridge, parent=self)
        page.loadRequested.connect(self.loader.load)
        page.chatRequested.connect(self.chat.chat_about)
        page.statusMessage.connect(self.statusBar().showMessage)
        return page

    def _make_compare_page(self) -> ComparePage:
        from ui.compare.page import ComparePage

        page = ComparePage(
            store=self.store, comparer=self.services.compare, settings=self.settings,
            library_model=self.library_model, bridge=self.compare_bridge, parent=self)
        page.discoverRequested.connect(lambda: self._show_page(PAGES.index("Discover")))
        page.addModelRequested.connect(self.library.add_model)
        page.statusMessage.connect(self.statusBar().showMessage)
        return page

    def build_pages(self, then: Callable[[], None] | None = None) -> None:
        """Builds the pages a start leaves out of the first paint, one per event-loop turn (so that no turn is long),
        then calls ``then``; after it a first visit finds them ready. Otherwise each is built when first shown."""
        if self._closing:
            return
        page = next((page for page in (self._tasks_page, self._compare_page) if not page.is_built()), None)
        if page is not None:
            page.content()
            QTimer.singleShot(0, lambda: self.build_pages(then))
        elif then is not None:
            then()

    def _connect(self) -> None:
        self.nav_group.idClicked.connect(self.stack.setCurrentIndex)
        chat, loader = self.chat, self.loader
        chat.showRequested.connect(lambda: self._show_page(0))
        chat.failed.connect(self.show_error)
        chat.statusMessage.connect(self.statusBar().showMessage)
        chat.settingsChanged.connect(self._save_settings)
        library = self.library
        library.modelsListed.connect(chat.set_models)
        library.chatRequested.connect(chat.chat_with)
        library.failed.connect(self.show_error)
        library.statusMessage.connect(self.statusBar().showMessage)
        chat.view.model_bar.addModelRequested.connect(library.add_model)
        loader.failed.connect(self.show_error)
        loader.settingsChanged.connect(self._save_settings)
        loader.dropped.connect(self._pending_dropped)
        discover = self.discover
        discover.modelAdded.connect(library.model_added)
        discover.failed.connect(self.show_error)
        discover.statusMessage.connect(self.statusBar().showMessage)
        discover.view.addFromDiskRequested.connect(library.add_model)


    def _build_menus(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        self._action(file_menu, "&New chat", QKeySequence.StandardKey.New, self.chat.new_conversation)
        self._action(file_menu, "&Add a model from disk…", "Ctrl+I", self.library.add_model)
        file_menu.addSeparator()
        self.offline_action = self._action(file_menu, "Work &offline", None, self.set_offline)
        self.offline_action.setCheckable(True)
        self.offline_action.setChecked(self.settings.work_offline)  # asking huggingface_hub waits for attach
        self._action(file_menu, "&Privacy: network requests…", None, self.show_privacy)
        self._action(file_menu, "Hugging Face &token…", None, self.edit_token)
        file_menu.addSeparator()
        self._action(file_menu, "Open the &data folder", None, lambda: self._open_folder(
            self.services.paths.database.parent))
        self._action(file_menu, "Open the &log folder", None, lambda: self._open_folder(
            self.services.paths.logs_dir))
        file_menu.addSeparator()
        self._action(file_menu, "&Quit", QKeySequence.StandardKey.Quit, self.close)
        chat_menu = self.menuBar().addMenu("&Chat")
        chat = self.chat
        self._action(chat_menu, "&Load the chosen model", "Ctrl+L", chat.load_selected)
        self.stop_action = self._action(chat_menu, "&Stop the answer", "Esc", chat.stop_answer)
        self._action(chat_menu, "&Regenerate the last answer", "Ctrl+R", chat.regenerate)
        self._action(chat_menu, "Conversation &settings…", "Ctrl+,", chat.edit_settings)
        chat_menu.addSeparator()
        self._action(chat_menu, "Re&name conversation…", "F2", chat.rename_current)
        self._action(chat_menu, "&Delete conversation", QKeySequence.StandardKey.Delete, chat.delete_current,
                     widget_only=chat.sidebar.list)
        tasks_menu = self.menuBar().addMenu("&Tasks")
        self._action(tasks_menu, "&Open a document…", QKeySequence.StandardKey.Open, self._open_task_document)
        # These act on the Tasks page only; elsewhere they are off, so Esc and Ctrl+Enter keep their usual jobs.
        # (The page is named at the time of the action: it is built after the first paint.)
        self.task_actions = [
            self._action(tasks_menu, "&Run the task", "Ctrl+Return", lambda: self.tasks.run()),
            self._action(tasks_menu, "&Cancel the task", "Esc", lambda: self.tasks.cancel()),
            self._action(tasks_menu, "&Copy the result", "Ctrl+Shift+C", lambda: self.tasks.copy_result()),
            self._action(tasks_menu, "&Save the result as…", "Ctrl+Shift+S", lambda: self.tasks.save_result_as()),
            self._action(tasks_menu, "Open the result in a c&hat", None, lambda: self.tasks.open_in_chat()),
        ]
        self.task_actions.append(QAction(self))
        self.task_actions[-1].setShortcut(QKeySequence("Ctrl+Enter"))  # Enter on the keypad
        self.task_actions[-1].triggered.connect(lambda: self.tasks.run())
        self.addAction(self.task_actions[-1])
        compare_menu = self.menuBar().addMenu("C&ompare")
        # Like the Tasks menu: on the Compare page only.
        self.compare_actions = [
            self._action(compare_menu, "&Run the comparison", "Ctrl+Return", lambda: self.compare.run()),
            self._action(compare_menu, "&Stop the comparison", "Esc", lambda: self.compare.stop()),
            self._action(compare_menu, "Save the &report…", "Ctrl+Shift+S", lambda: self.compare.save_report_as()),
            self._action(compare_menu, "Run &again with the same input", None, lambda: self.compare.run_again()),
        ]
        self.compare_actions.append(QAction(self))
        self.compare_actions[-1].setShortcut(QKeySequence("Ctrl+Enter"))  # Enter on the keypad
        self.compare_actions[-1].triggered.connect(lambda: self.compare.run())
        self.addAction(self.compare_actions[-1])
        view_menu = self.menuBar().addMenu("&View")
        for i, name in enumerate(PAGES):
            self._action(view_menu, f"&{name}", f"Ctrl+{i + 1}", lambda _checked=False, i=i: self._show_page(i))
        help_menu = self.menuBar().addMenu("&Help")
        self._action(help_menu, "&Welcome", None, self.show_welcome)
        self._action(help_menu, "&About Hearth", None, self._about)

    def _action(self, menu: QMenu, text: str, shortcut: Any, slot: Any, widget_only: QWidget | None = None) -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
        action.triggered.connect(slot)
        menu.addAction(action)
        if widget_only is not None:
            action.setShortcutContext(Qt.ShortcutContext.WidgetShortcut)
            widget_only.addAction(action)
        return action

    def _show_page(self, index: int) -> None:
        self.stack.setCurrentIndex(index)
        self.nav_group.button(index).setChecked(True)

    def _page_changed(self, index: int) -> None:
        """The Tasks and Compare menus act on their pages only; elsewhere they are off, so Esc and Ctrl+Enter keep
        their usual jobs (on the welcome page Esc leaves the page)."""
        on_welcome = self.stack.widget(index) is self.welcome.view
        for action in self.task_actions:
            action.setEnabled(index == TASKS_PAGE)
        for action in self.compare_actions:
            action.setEnabled(index == COMPARE_PAGE)
        self.stop_action.setEnabled(index not in (TASKS_PAGE, COMPARE_PAGE) and not on_welcome)
        self.welcome.page_changed(on_welcome)

    def _open_task_document(self) -> None:
        self._show_page(TASKS_PAGE)
        self.tasks.choose_file()

    # --- errors ---

    def show_error(self, error: BaseException) -> None:
        if isinstance(error, HearthError):
            self.chat.view.show_banner(str(error))
            self.statusBar().showMessage(str(error), 8000)
        else:
            log.error("unexpected error", exc_info=error)
            QMessageBox.critical(self, "Something went wrong",
                                 f"Hearth hit an unexpected problem: {error}\n\nDetails are in the log file: "
                                 f"{self.services.paths.log_file}")

    def _save_settings(self) -> None:
        settings, path = self.settings, self.services.paths.settings_file
        BackgroundOp(self, settings.save, path).failure(self.show_error).run()

    # --- models ---

    # --- privacy ---

    def set_offline(self, offline: bool) -> None:
        network.set_offline(offline)
        self.offline_action.setChecked(offline)
        self.offline_label.setVisible(offline)
        self.settings.work_offline = offline
        self._save_settings()
        self.statusBar().showMessage("Working offline: no network requests." if offline else "Online.", 4000)

    def edit_token(self) -> None:
        """Gated and private models need the person's Hugging Face token; it goes to the system's password
        store, never to Hearth's files."""
        token, ok = QInputDialog.getText(
            self, "Hugging Face token", "Paste a read token from huggingface.co/settings/tokens (leave empty to "
            "remove the saved one):", QLineEdit.EchoMode.Password)
        if not ok:
            return
        token = token.strip()

        def saved(_: object) -> None:
            self.services.downloads.token = token or None
            self.statusBar().showMessage("Token saved in the system's password store." if token else
                                         "Token removed.", 5000)

        def failed(error: BaseException) -> None:
            if isinstance(error, HearthError):
                QMessageBox.warning(self, "Hugging Face token", str(error))
            else:
                self.show_error(error)

        action = (lambda: credentials.set_token(token)) if token else credentials.clear_token
        BackgroundOp(self, action).success(saved).failure(failed).run()

    def show_privacy(self) -> None:
        dialog = PrivacyDialog(network.is_offline(), self)
        dialog.offlineToggled.connect(self.set_offline)
        BackgroundOp(dialog, self.store.network_requests).success(dialog.show_requests) \
            .failure(self.show_error).run()
        dialog.exec()

    # --- welcome ---

    def _build_welcome(self) -> None:
        """The welcome page goes last in the stack, after every page with a navigation button, so that the
        buttons' ids stay the pages' indexes."""
        self.welcome = WelcomePage(self.settings, self.library_model, self)
        self.stack.addWidget(self.welcome.view)
        w = self.welcome
        w.view.getRequested.connect(self._get_suggested)
        w.view.addFromDiskRequested.connect(self.library.add_model)
        w.view.closeRequested.connect(lambda: self._show_page(0))
        w.firstStart.connect(self._first_start)
        w.failed.connect(self.show_error)
        w.settingsChanged.connect(self._save_settings)
        self.offline_action.toggled.connect(w.refill)

    def offer_welcome(self) -> None:
        """At start: the welcome page, when the library is empty and the welcome was never left before."""
        if self._attached:  # not attached: closed before its services came
            self.welcome.offer()

    def _first_start(self) -> None:
        if not self._closing and self.stack.currentIndex() == 0:  # nothing chosen meanwhile
            self.show_welcome()

    def show_welcome(self) -> None:
        self.welcome.fill()
        self.nav_group.setExclusive(False)  # no navigation button stands for this page
        for button in self.nav_group.buttons():
            button.setChecked(False)
        self.nav_group.setExclusive(True)
        self.stack.setCurrentWidget(self.welcome.view)
        self.welcome.view.first_action().setFocus()

    def _get_suggested(self, entry: CatalogEntry) -> None:
        """Discover with the model's files listed and the recommended one chosen; Download goes on from there."""
        self._show_page(PAGES.index("Discover"))
        self.discover.show_entry(entry.repo)

    # --- misc ---

    def _open_folder(self, folder: Path) -> None:
        QDesktopServices.openUrl(QUrl.fromLocalFile(str(folder)))

    def _about(self) -> None:
        QMessageBox.about(self, "About Hearth",
                          f"<b>Hearth {__version__}</b><p>Run small language models on your own computer. "
                          "Everything stays on this computer.</p>"
                          f"<p>History: {self.services.paths.database}<br>Models: {self.services.paths.models_dir}"
                          f"<br>Logs: {self.services.paths.logs_dir}</p>")

    def closeEvent(self, event: QCloseEvent) -> None:
        """Save a streaming answer, stop the worker in order, and let background saves finish."""
        self._closing = True
        self.hide()
        if self._attached:
            self.loader.closing = True
            self._shut_down(self.services)
        wait_for_background()
        super().closeEvent(event)

    def _pending_dropped(self, _pending: object, reason: str | None) -> None:
        """The model will not load: a task run waiting for it is not started (the chat takes its message back)."""
        if self._tasks_page.is_built():
            self.tasks.pending_dropped(reason)

    def _shut_down(self, services: Services) -> None:
        if self._tasks_page.is_built():
            self.tasks.shutdown()
        self.library.shutdown()  # a half-copied model is removed; the import can be done again
        services.downloads.shutdown()  # partial downloads stay and continue next time
        services.runner.close()
        services.tasks.close()
        if self._compare_page.is_built():
            self.compare.shutdown()
        services.compare.close()  # stops every comparison worker; what they wrote is saved
        services.engine.shutdown()

