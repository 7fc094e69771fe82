"""The main window, a shell that composes the pages: the sidebar (the page buttons and the chat page's list of
conversations), the stack of pages, the menus and the status bar. It routes what one page asks of another (a task's
result to a new chat, a download to the library, a model to load), shows errors, saves the settings, and closes
everything in order. The pages do the work, each in its own package (``ui/chat``, ``ui/library``, ``ui/discover``,
``ui/welcome``, ``ui/tasks``, ``ui/compare``, ``ui/privacy``); a page never imports another: what passes between
two pages goes through a signal connected here. Loading a model is ``ModelLoader``'s, whoever asks for it.

A start shows the window before the core is ready: the widgets first (``MainWindow(settings=...)``), then the
services, built off the GUI thread, are attached (``attach``) and the lists fill in. So this module and the pages it
imports import only Qt and plain records at the top; the core's heavy modules (the forecast, the hardware probes,
the bridges to the engine) are imported where they are used, all of which runs after ``attach``, when the services
have loaded them. The Tasks and Compare pages are built after the first paint (``LazyPage``).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QByteArray, Qt, QTimer, QUrl, Signal
from PySide6.QtGui import QAction, QCloseEvent, QDesktopServices, QIcon, QKeySequence
from PySide6.QtWidgets import (
    QApplication,
    QButtonGroup,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QMenu,
    QMessageBox,
    QPushButton,
    QSplitter,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from app import __version__, network
from app.errors import HearthError
from app.history.records import HitKind, SearchHit
from app.settings import Settings
from ui.chat.page import ChatPage
from ui.discover.page import DiscoverPage
from ui.export.exporter import (
    Choice,
    Exporter,
    comparison_choice,
    conversation_choice,
    folder_choice,
    task_run_choice,
)
from ui.history.keeper import HistoryKeeper
from ui.library.page import LibraryPage
from ui.model_loader import ModelLoader
from ui.privacy.page import PrivacyPage
from ui.qt.background import BackgroundOp, wait_for_background
from ui.qt.collector import GuiThreadCollector
from ui.qt.input_gate import InputGate
from ui.qt.lazy_page import LazyPage
from ui.qt.qt_models import LibraryModel
from ui.server.page import ServerPage
from ui.services import Services
from ui.welcome.page import WelcomePage

if TYPE_CHECKING:
    from app.hub.catalog import CatalogEntry
    from ui.compare.page import ComparePage
    from ui.qt.bridge import CompareBridge, DownloadBridge, EngineBridge, TaskBridge
    from ui.tasks.page import TasksPage

log = logging.getLogger(__name__)

PAGES = ("Chats", "Models", "Discover", "Tasks", "Compare")
DISCOVER_PAGE = 2
TASKS_PAGE = 3
COMPARE_PAGE = 4
BACKUP_FIRST_MS = 20_000  # the first backup check, once the start has settled
BACKUP_EVERY_MS = 6 * 3600 * 1000
FRAME_MS = 16  # one frame at 60 Hz


class MainWindow(QMainWindow):
    """``MainWindow(services)`` is ready at once (tests); a start makes ``MainWindow(settings=...)``, shows it and
    calls ``attach`` when the services are built, and until then the window takes no input (``InputGate``)."""

    ready = Signal()  # the services are attached: the window acts on input from now on
    reopenRequested = Signal(str, object)  # a backup was restored: a new window, with a sentence or an error to show

    services: Services
    loader: ModelLoader
    bridge: EngineBridge
    task_bridge: TaskBridge
    compare_bridge: CompareBridge
    download_bridge: DownloadBridge

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
        self._restore_geometry()
        self._closing = False
        self._attached = False
        self._moved_splitters: set[str] = set()

        app = QApplication.instance()
        if app is not None:
            GuiThreadCollector.install(app)
        self.library_model = LibraryModel()  # the library, shared by every page that chooses a model
        self.privacy = PrivacyPage(self.settings, self)
        self.server = ServerPage(self.settings, self)
        self.exporter = Exporter(self)
        self.keeper = HistoryKeeper(self)
        self._build()
        self._build_menus()
        self._build_welcome()
        self._keep_splitters(self.stack)
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
        self.bridge = EngineBridge(services.engine, services.runner, self)
        self.task_bridge = TaskBridge(services.tasks, self)
        self.compare_bridge = CompareBridge(services.compare, self)
        self.download_bridge = DownloadBridge(services.downloads, self)
        self.discover.attach(services, self.download_bridge)
        self.welcome.attach(services)
        self.keeper.attach(services, self._let_go_of_history)
        self.privacy.attach(services)
        self.server.attach(services)
        self.exporter.attach(services)
        self.library.attach(services, self.bridge)
        self.loader = ModelLoader(services, self.bridge, lambda: self.library.worker_baseline, self)
        self.chat.attach(services, self.bridge, self.loader, self.library_model)
        self.offline_action.setChecked(network.is_offline())
        self.offline_label.setVisible(self.settings.work_offline)
        self._connect()
        self.chat.load_conversations(select_first=True)
        self.library.refresh_models(select_id=self.settings.last_model_id)
        self.library.refresh_remote()
        QTimer.singleShot(1500, self.library.measure_bandwidth)
        QTimer.singleShot(BACKUP_FIRST_MS, self._keep_backups)
        self._backup_timer = QTimer(self, interval=BACKUP_EVERY_MS)  # a window open for days backs up each day
        self._backup_timer.timeout.connect(self._keep_backups)
        self._backup_timer.start()
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

        self.stack = QStackedWidget()  # the pages, in the order of their buttons (their ids are the indexes)
        self.stack.addWidget(self.chat.view)
        self.library = LibraryPage(self.library_model, self.settings, self)
        self.stack.addWidget(self.library.view)
        self.discover = DiscoverPage(self.settings, self)
        self.stack.addWidget(self.discover.view)
        self._tasks_page = LazyPage(self._make_tasks_page, self._tasks_ready)
        self.stack.addWidget(self._tasks_page)
        self._compare_page = LazyPage(self._make_compare_page, self._compare_ready)
        self.stack.addWidget(self._compare_page)
        row.addWidget(self.stack, 1)
        self.setCentralWidget(central)

        self.offline_label = QLabel("Offline")
        self.offline_label.setToolTip("Hearth makes no network requests (File → Work offline).")
        self.statusBar().addPermanentWidget(self.offline_label)
        self.offline_label.setVisible(self.settings.work_offline)
        self.server_label = QPushButton("Local server on")
        self.server_label.setObjectName("messageAction")
        self.server_label.setToolTip("Other programs can use your models (File → Local server…)")
        self.server_label.clicked.connect(self.server.show_dialog)
        self.server_label.hide()
        self.statusBar().addPermanentWidget(self.server_label)
        self.statusBar().addPermanentWidget(self.chat.undo_button)

    @property
    def tasks(self) -> TasksPage:
        return self._tasks_page.content()

    @property
    def compare(self) -> ComparePage:
        return self._compare_page.content()

    def _make_tasks_page(self) -> TasksPage:
        from ui.tasks.page import TasksPage

        services = self.services
        page = TasksPage(
            store=services.store, engine=services.engine, session=services.tasks, settings=self.settings,
            settings_file=services.paths.settings_file, library_model=self.library_model,
            engine_bridge=self.bridge, task_bridge=self.task_bridge, parent=self, staged=True)
        return page

    def _tasks_ready(self, page: TasksPage) -> None:
        page.loadRequested.connect(self.loader.load)
        page.chatRequested.connect(self.chat.chat_about)
        page.statusMessage.connect(self.statusBar().showMessage)
        self._keep_splitters(page.view)

    def _make_compare_page(self) -> ComparePage:
        from ui.compare.page import ComparePage

        return ComparePage(
            store=self.services.store, comparer=self.services.compare, settings=self.settings,
            library_model=self.library_model, bridge=self.compare_bridge, parent=self, staged=True)

    def _compare_ready(self, page: ComparePage) -> None:
        page.discoverRequested.connect(lambda: self._show_page(DISCOVER_PAGE))
        page.addModelRequested.connect(self.library.add_model)
        page.statusMessage.connect(self.statusBar().showMessage)
        self._keep_splitters(page.view)

    def build_pages(self, then: Callable[[], None] | None = None) -> None:
        """Builds the pages a start leaves out of the first paint, a stage per event-loop turn (so that no turn is
        long), then calls ``then``; after it a first visit finds them ready. Otherwise each is built when first
        shown."""
        if self._closing:
            return
        page = next((page for page in (self._tasks_page, self._compare_page) if not page.is_built()), None)
        if page is not None:
            page.step()
            # Not 0: Qt runs a zero single shot before the timers that are due, so input and painting would wait
            # for every stage; a frame's wait lets them in between.
            QTimer.singleShot(FRAME_MS, lambda: self.build_pages(then))
        elif then is not None:
            then()

    # --- routing: what the pages ask of the window and of each other ---

    def _connect(self) -> None:
        self.nav_group.idClicked.connect(self.stack.setCurrentIndex)
        chat, library, discover, loader, privacy = self.chat, self.library, self.discover, self.loader, self.privacy
        server = self.server
        for page in (chat, library, discover, loader, privacy, server):
            page.failed.connect(self.show_error)
        for page in (chat, library, discover, loader, privacy, server):
            page.statusMessage.connect(self.statusBar().showMessage)
        for page in (chat, library, loader, privacy, server):
            page.settingsChanged.connect(self._save_settings)
        self.exporter.failed.connect(self.show_error)
        chat.exportRequested.connect(lambda record: self.exporter.show_choices(
            [conversation_choice(record.id, record.title)]))
        chat.sidebar.folders.exportRequested.connect(lambda folder: self.exporter.show_choices([folder_choice(folder)]))
        self.exporter.statusMessage.connect(self.statusBar().showMessage)
        server.turnChanged.connect(chat.served_turn)
        self.keeper.failed.connect(self.show_error)
        self.keeper.statusMessage.connect(self.statusBar().showMessage)
        self.keeper.imported.connect(self._history_imported)
        self.keeper.reopenRequested.connect(self.reopenRequested)
        server.conversationKept.connect(chat.refresh_conversation)
        server.runningChanged.connect(self.server_label.setVisible)
        server.turnChanged.connect(lambda holding: self.server_label.setText(
            "Local server answering…" if holding else "Local server on"))
        chat.showRequested.connect(lambda: self._show_page(0))
        chat.foundElsewhere.connect(self._found_elsewhere)
        chat.view.model_bar.addModelRequested.connect(library.add_model)
        library.modelsListed.connect(chat.set_models)
        library.chatRequested.connect(chat.chat_with)
        loader.dropped.connect(self._pending_dropped)
        discover.modelAdded.connect(library.model_added)
        discover.view.addFromDiskRequested.connect(library.add_model)
        privacy.offlineChanged.connect(self.offline_action.setChecked)
        privacy.offlineChanged.connect(self.offline_label.setVisible)
        privacy.offlineChanged.connect(discover.offline_changed)
        discover.offlineRequested.connect(privacy.set_offline)

    def _pending_dropped(self, _pending: object, reason: str | None) -> None:
        """The model will not load: a task run waiting for it is not started (the chat takes its message back)."""
        if self._tasks_page.is_built():
            self.tasks.pending_dropped(reason)

    # --- menus and pages ---

    def _build_menus(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        self._action(file_menu, "&New chat", QKeySequence.StandardKey.New, self.chat.new_conversation)
        self._action(file_menu, "&Add a model from disk…", "Ctrl+I", self.library.add_model)
        file_menu.addSeparator()
        self._action(file_menu, "&Export…", "Ctrl+Shift+E", self.export_shown)
        self._action(file_menu, "&Print…", QKeySequence.StandardKey.Print, self.print_shown)
        file_menu.addSeparator()
        self.offline_action = self._action(file_menu, "Work &offline", None, self.privacy.set_offline)
        self.offline_action.setCheckable(True)
        self.offline_action.setChecked(self.settings.work_offline)  # asking huggingface_hub waits for attach
        self._action(file_menu, "&Privacy: network requests…", None, self.privacy.show_dialog)
        self._action(file_menu, "Hugging Face &token…", None, self.privacy.edit_token)
        self._action(file_menu, "Local &server…", None, self.server.show_dialog)
        file_menu.addSeparator()
        import_action = self._action(file_menu, "&Import history…", None, self.keeper.import_history)
        self.keeper.importing.connect(lambda running: import_action.setEnabled(not running))
        self._action(file_menu, "&Back up the history now", None, self.keeper.back_up_now)
        restore = self._action(file_menu, "&Restore from a backup…", None, self.keeper.show_backups)
        self.keeper.importing.connect(lambda running: restore.setEnabled(not running))  # not under an import
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
        self._action(chat_menu, "Searc&h the history…", "Ctrl+Shift+F", self.search_history)
        find = QAction("Find in the history", self)
        find.setShortcut(QKeySequence.StandardKey.Find)  # Ctrl+F, where the conversations are
        find.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        find.triggered.connect(self.search_history)
        chat.sidebar.addAction(find)
        self._action(chat_menu, "Re&name conversation…", "F2", chat.rename_current)
        self._action(chat_menu, "&Pin or unpin the conversation", "Ctrl+Shift+P", chat.pin_current)
        self._action(chat_menu, "New &folder…", None, lambda: chat.sidebar.folders.new_folder())
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
        view_menu.addSeparator()
        larger = self._action(view_menu, "&Larger text in the conversation", "Ctrl+=", lambda: self.chat.zoom(1))
        larger.setShortcuts([QKeySequence("Ctrl+="), QKeySequence("Ctrl++")])  # with or without Shift
        self._action(view_menu, "S&maller text in the conversation", "Ctrl+-", lambda: self.chat.zoom(-1))
        self._action(view_menu, "&Usual text size", "Ctrl+0", lambda: self.chat.zoom(0))
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

    def _keep_backups(self) -> None:
        """Today's and this week's checked copies of the history, if they are not made yet (``app.history.backups``)."""
        from app.history.backups import keep_up

        paths = self.services.paths
        BackgroundOp(self, keep_up, paths.database, paths.backups_dir).run()  # a failure: the window says why

    def _let_go_of_history(self) -> None:
        """Before a restore (``HistoryKeeper``): everything that works on the history stops, as on closing, the store
        lets go of the file, and the window takes no more input; a new window opens on the restored history
        (``reopenRequested``), and closing this one then stops nothing twice."""
        self._gate = InputGate(self)
        self._backup_timer.stop()
        self.loader.closing = True
        self._attached = False
        self._shut_down(self.services)
        self.services.store.close()

    def _history_imported(self) -> None:
        """Records were added: each list of them that is built reads the history again."""
        self.chat.load_conversations()
        self.chat.sidebar.folders.reload()
        if self._tasks_page.is_built():
            self.tasks.history.refresh()
        if self._compare_page.is_built():
            self.compare.history.refresh()

    def export_shown(self) -> None:
        """File → Export…: what is shown, then the folder chosen in the sidebar, if one is."""
        shown, folder = self._shown_choice(), self.chat.sidebar.folders.current()
        self.exporter.show_choices([*([shown] if shown else []), *([folder_choice(folder)] if folder else [])])

    def print_shown(self) -> None:
        self.exporter.print_(self._shown_choice())

    def _shown_choice(self) -> Choice | None:
        """What Export and Print take: the run or comparison on its page, else the conversation open in the chat."""
        page = self.stack.currentIndex()
        if page == TASKS_PAGE and self._tasks_page.is_built() and self.tasks.shown_run is not None:
            return task_run_choice(self.tasks.shown_run)
        comparison = self.compare.shown() if page == COMPARE_PAGE and self._compare_page.is_built() else None
        if comparison is not None:
            return comparison_choice(comparison)
        current = self.chat.current
        return conversation_choice(current.id, current.title) if current is not None else None

    def search_history(self) -> None:
        self._show_page(0)
        self.chat.sidebar.search.focus()

    def _found_elsewhere(self, hit: SearchHit) -> None:
        """A task run or a comparison the history's search found, on its own page."""
        if hit.kind is HitKind.TASK:
            self._show_page(TASKS_PAGE)
            self.tasks.open_run(hit.item)
        else:
            self._show_page(COMPARE_PAGE)
            self.compare.open_comparison(hit.item)

    def _show_page(self, index: int) -> None:
        self.stack.setCurrentIndex(index)
        self.nav_group.button(index).setChecked(True)

    def _page_changed(self, index: int) -> None:
        """The Tasks and Compare menus act on their pages only; elsewhere they are off, so Esc and Ctrl+Enter keep
        their usual jobs (on the welcome page, Esc leaves the page)."""
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

    # --- the welcome page ---

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
        w.memorySpeedWanted.connect(functools.partial(self.library.measure_bandwidth, now=True))
        self.library.memorySpeedMeasured.connect(w.memory_speed_measured)
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
        self._show_page(DISCOVER_PAGE)
        self.discover.show_entry(entry.repo)

    # --- errors, settings, the rest ---

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

    def _open_folder(self, folder: Path) -> None:
        QDesktopServices.openUrl(QUrl.fromLocalFile(str(folder)))

    def _about(self) -> None:
        QMessageBox.about(self, "About Hearth",
                          f"<b>Hearth {__version__}</b><p>Run small language models on your own computer. "
                          "Everything stays on this computer.</p>"
                          f"<p>History: {self.services.paths.database}<br>Models: {self.services.paths.models_dir}"
                          f"<br>Logs: {self.services.paths.logs_dir}</p>")

    # --- the window's size and its splitters, kept from one start to the next ---

    def _restore_geometry(self) -> None:
        """Where the window was when it last closed, and its size. Qt's restoreGeometry moves a window whose screen
        is gone (or that would not fit on the screen it finds) onto a screen that is there."""
        if self.settings.window_geometry and not self.restoreGeometry(_bytes(self.settings.window_geometry)):
            log.warning("the saved window geometry is unusable; the window opens at its usual size")

    def _keep_splitters(self, root: QWidget) -> None:
        """Each named splitter under ``root`` as the user last left it; the ones moved are saved on closing (one
        never moved, or never shown this time, keeps what was saved: a hidden splitter has no real sizes)."""
        for splitter in root.findChildren(QSplitter):
            name = splitter.objectName()
            if not name:
                continue
            saved = self.settings.splitter_states.get(name)
            if saved:
                splitter.restoreState(_bytes(saved))
            splitter.splitterMoved.connect(lambda _position, _index, name=name: self._moved_splitters.add(name))

    def _remember_shape(self) -> None:
        self.settings.window_geometry = _text(self.saveGeometry())
        for splitter in self.findChildren(QSplitter):
            if splitter.objectName() in self._moved_splitters:
                self.settings.splitter_states[splitter.objectName()] = _text(splitter.saveState())

    # --- closing ---

    def closeEvent(self, event: QCloseEvent) -> None:
        """Save a streaming answer, stop the worker in order, and let background saves finish (the settings with
        the window's size among them)."""
        self._closing = True
        self._remember_shape()
        self.hide()
        if self._attached:
            self.loader.closing = True
            self._save_settings()
            self._shut_down(self.services)
        wait_for_background()
        super().closeEvent(event)

    def _shut_down(self, services: Services) -> None:
        self.server.shutdown()
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


def _text(data: QByteArray) -> str:
    return bytes(data.toBase64().data()).decode("ascii")


def _bytes(text: str) -> QByteArray:
    return QByteArray.fromBase64(text.encode("ascii"))
