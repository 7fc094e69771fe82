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
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QModelIndex, QPoint, Qt, QTimer, QUrl, Signal
from PySide6.QtGui import QAction, QCloseEvent, QDesktopServices, QIcon, QKeySequence
from PySide6.QtWidgets import (
    QAbstractItemView,
    QApplication,
    QButtonGroup,
    QFileDialog,
    QGridLayout,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QLineEdit,
    QListView,
    QMainWindow,
    QMenu,
    QMessageBox,
    QProgressDialog,
    QPushButton,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from app import __version__, credentials, hub, network
from app.errors import HearthError
from app.history import ConversationRecord, ModelRecord
from app.paths import Paths
from app.settings import GenerationSettings, Settings
from app.units import format_bytes
from ui.chat_view import ChatView
from ui.discover_view import DiscoverView
from ui.library_view import LibraryView
from ui.model_bar import ModelBar
from ui.privacy_dialog import PrivacyDialog
from ui.qt.background import BackgroundOp, wait_for_background
from ui.qt.collector import GuiThreadCollector
from ui.qt.input_gate import InputGate
from ui.qt.lazy_page import LazyPage
from ui.qt.qt_models import ConversationListModel, LibraryModel, RecordRole
from ui.settings_dialog import ConversationSettingsDialog
from ui.welcome_view import WelcomeView

if TYPE_CHECKING:
    from app.catalog import Catalog, CatalogEntry
    from app.chat import AnswerFinished, AnswerStarted, ChatRunner, ContextNotice
    from app.compare.runner import Comparer
    from app.downloads import DownloadManager, JobChanged
    from app.engine import EngineClient
    from app.engine import protocol as p
    from app.hardware import Machine
    from app.history import HistoryStore
    from app.library import Library
    from app.load_tracker import LoadTracker
    from app.model_check import Assessment
    from app.tasks.session import TaskSession
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


@dataclass
class Services:
    """Everything the window needs, built in one place (``ui/main.py``, or a test fixture)."""

    paths: Paths
    settings: Settings
    store: HistoryStore
    library: Library
    engine: EngineClient
    runner: ChatRunner
    tracker: LoadTracker
    machine: Machine
    downloads: DownloadManager
    catalog: Catalog | None
    tasks: TaskSession
    compare: Comparer


class MainWindow(QMainWindow):
    """``MainWindow(services)`` is ready at once (tests); a start makes ``MainWindow(settings=...)``, shows it and
    calls ``attach`` when the services are built, and until then the window takes no input (``InputGate``)."""

    ready = Signal()  # the services are attached: the window acts on input from now on

    services: Services
    store: HistoryStore
    library: Library
    engine: EngineClient
    runner: ChatRunner
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
        self.current: ConversationRecord | None = None
        self._pending: _PendingSend | None = None  # a message waiting for its model to load
        self._loading: ModelRecord | None = None
        self._deleted: list[int] = []
        self._closing = False
        self._attached = False
        self._import_cancels: set[threading.Event] = set()
        self._pager: hub.SearchPager | None = None
        self._worker_baseline = 0  # the engine's size in memory, for forecasts: known from attach on
        self._bandwidth_tries = 0
        self._bandwidth_timer = QTimer(self)
        self._bandwidth_timer.setSingleShot(True)
        self._bandwidth_timer.timeout.connect(self._measure_bandwidth)

        app = QApplication.instance()
        if app is not None:
            GuiThreadCollector.install(app)
        self.conversations = ConversationListModel()
        self.library_model = LibraryModel()
        self._build()
        self._build_menus()
        self._build_welcome()
        self._gate: InputGate | None = None
        if services is not None:
            self.attach(services)
        else:
            self._gate = InputGate(self)

    def attach(self, services: Services) -> None:
        """Wires the window to the core and fills it: conversations, models, downloads, the catalog."""
        from app.forecast import PROCESS_BASELINE
        from ui.qt.bridge import CompareBridge, DownloadBridge, EngineBridge, TaskBridge

        assert not self._attached and services.settings is self.settings
        if self._closing:  # closed while they were being built: nothing was started with them yet
            self._shut_down(services)
            return
        self._attached = True
        self.services = services
        self.store, self.library, self.engine, self.runner = (
            services.store, services.library, services.engine, services.runner)
        # The engine worker last measured here, replaced by this run's own once its worker has started.
        self._worker_baseline = services.machine.engine_baseline_bytes or PROCESS_BASELINE
        self.bridge = EngineBridge(self.engine, self.runner, self)
        self.task_bridge = TaskBridge(services.tasks, self)
        self.compare_bridge = CompareBridge(services.compare, self)
        self.download_bridge = DownloadBridge(services.downloads, self)
        self.discover_view.machine = services.machine
        if services.catalog is not None:
            self.discover_view.set_catalog(list(services.catalog.entries()))
        self.offline_action.setChecked(network.is_offline())
        self.offline_label.setVisible(self.settings.work_offline)
        self._connect()
        self.refresh_conversations(select_first=True)
        self.refresh_models(select_id=self.settings.last_model_id)
        QTimer.singleShot(1500, self._measure_bandwidth)
        QTimer.singleShot(2000, self._update_catalog)
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
        self.new_chat_button = QPushButton("+  New chat")
        self.new_chat_button.setObjectName("primary")
        self.new_chat_button.setToolTip("Start a new conversation (Ctrl+N)")
        side.addWidget(self.new_chat_button)
        self.conversation_list = QListView()
        self.conversation_list.setObjectName("conversationList")
        self.conversation_list.setModel(self.conversations)
        self.conversation_list.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.conversation_list.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.conversation_list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.conversation_list.setTextElideMode(Qt.TextElideMode.ElideRight)
        side.addWidget(self.conversation_list, 1)
        self.no_chats = QLabel("No conversations yet.")
        self.no_chats.setObjectName("hint")
        self.no_chats.hide()  # until the history says so
        side.addWidget(self.no_chats)
        row.addWidget(sidebar)

        self.stack = QStackedWidget()
        chat_page = QWidget()
        chat_layout = QVBoxLayout(chat_page)
        chat_layout.setContentsMargins(0, 0, 0, 0)
        chat_layout.setSpacing(0)
        self.model_bar = ModelBar()
        chat_layout.addWidget(self.model_bar)
        self.chat_view = ChatView()
        chat_layout.addWidget(self.chat_view, 1)
        self.stack.addWidget(chat_page)
        self.library_view = LibraryView(self.library_model)
        self.stack.addWidget(self.library_view)
        self.discover_view = DiscoverView()
        self.stack.addWidget(self.discover_view)
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
        self.undo_button = QPushButton("Undo")
        self.undo_button.hide()
        self.statusBar().addPermanentWidget(self.undo_button)
        self._undo_timer = QTimer(self, singleShot=True, interval=UNDO_SECONDS * 1000)
        self._undo_timer.timeout.connect(self._hide_undo)

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
        page.loadRequested.connect(lambda record, context: self.load_model(record, context_length=context))
        page.chatRequested.connect(self.chat_about)
        page.statusMessage.connect(self.statusBar().showMessage)
        return page

    def _make_compare_page(self) -> ComparePage:
        from ui.compare.page import ComparePage

        page = ComparePage(
            store=self.store, comparer=self.services.compare, settings=self.settings,
            library_model=self.library_model, bridge=self.compare_bridge, parent=self)
        page.discoverRequested.connect(lambda: self._show_page(PAGES.index("Discover")))
        page.addModelRequested.connect(self.add_model)
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
        self.new_chat_button.clicked.connect(self.new_conversation)
        self.conversation_list.selectionModel().currentChanged.connect(self._conversation_selected)
        self.conversation_list.customContextMenuRequested.connect(self._conversation_menu)
        self.chat_view.sendRequested.connect(self.send)
        self.chat_view.draftChanged.connect(self._read_ahead)
        self.chat_view.stopRequested.connect(self.stop_answer)
        self.chat_view.regenerateRequested.connect(self.regenerate)
        self.model_bar.loadRequested.connect(self.load_model)
        self.model_bar.unloadRequested.connect(self._unload)
        self.model_bar.settingsRequested.connect(self.edit_settings)
        self.model_bar.addModelRequested.connect(self.add_model)
        self.library_view.addRequested.connect(self.add_model)
        self.library_view.chatRequested.connect(self._chat_with)
        self.library_view.removeRequested.connect(self.remove_model)
        self.undo_button.clicked.connect(self._undo_delete)
        d = self.discover_view
        d.searchRequested.connect(self.search_hub)
        d.moreRequested.connect(self.more_results)
        d.repoChosen.connect(self.show_repo_files)
        d.downloadRequested.connect(self.download)
        d.fileChosen.connect(self.assess_remote_file)
        d.pauseRequested.connect(self.services.downloads.pause)
        d.resumeRequested.connect(self.services.downloads.resume)
        d.cancelRequested.connect(self.services.downloads.cancel)
        d.addFromDiskRequested.connect(self.add_model)
        self.download_bridge.jobChanged.connect(self._download_changed)
        for job in self.services.downloads.jobs():
            d.job_changed(job)

        b = self.bridge
        b.workerReady.connect(self._worker_ready)
        b.loadStarted.connect(self._load_started)
        b.loadProgress.connect(self.model_bar.load_progress)
        b.loadStage.connect(self.model_bar.load_stage)
        b.modelLoaded.connect(self._model_loaded)
        b.modelUnloaded.connect(lambda: self.model_bar.not_loaded())
        b.engineFailed.connect(self._engine_failed)
        b.workerExited.connect(self._worker_exited)
        b.answerStarted.connect(self._answer_started)
        b.answerDelta.connect(self._answer_delta)
        b.contextNotice.connect(self._context_notice)
        b.answerFinished.connect(self._answer_finished)

    def _build_menus(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        self._action(file_menu, "&New chat", QKeySequence.StandardKey.New, self.new_conversation)
        self._action(file_menu, "&Add a model from disk…", "Ctrl+I", self.add_model)
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
        self._action(chat_menu, "&Load the chosen model", "Ctrl+L", self._load_selected)
        self.stop_action = self._action(chat_menu, "&Stop the answer", "Esc", self.stop_answer)
        self._action(chat_menu, "&Regenerate the last answer", "Ctrl+R", self.regenerate)
        self._action(chat_menu, "Conversation &settings…", "Ctrl+,", self.edit_settings)
        chat_menu.addSeparator()
        self._action(chat_menu, "Re&name conversation…", "F2", self.rename_current)
        self._action(chat_menu, "&Delete conversation", QKeySequence.StandardKey.Delete, self.delete_current,
                     widget_only=self.conversation_list)
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
        self.stack.currentChanged.connect(self._page_changed)
        self._page_changed(self.stack.currentIndex())

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
        on_tasks = index == TASKS_PAGE
        for action in self.task_actions:
            action.setEnabled(on_tasks)
        for action in self.compare_actions:
            action.setEnabled(index == COMPARE_PAGE)
        self.stop_action.setEnabled(index not in (TASKS_PAGE, COMPARE_PAGE))

    def _open_task_document(self) -> None:
        self._show_page(TASKS_PAGE)
        self.tasks.choose_file()

    # --- errors ---

    def show_error(self, error: BaseException) -> None:
        if isinstance(error, HearthError):
            self.chat_view.show_banner(str(error))
            self.statusBar().showMessage(str(error), 8000)
        else:
            log.error("unexpected error", exc_info=error)
            QMessageBox.critical(self, "Something went wrong",
                                 f"Hearth hit an unexpected problem: {error}\n\nDetails are in the log file: "
                                 f"{self.services.paths.log_file}")

    # --- conversations ---

    def refresh_conversations(self, select_first: bool = False, select_id: int | None = None) -> None:
        def show(items: list[ConversationRecord]) -> None:
            keep = select_id if select_id is not None else (self.current.id if self.current else None)
            self.conversations.set_items(items)
            self.no_chats.setVisible(not items)
            row = self.conversations.row_of(keep) if keep is not None else -1
            if row < 0 and select_first and items:
                row = 0
            if row < 0:
                if not items:
                    self.current = None
                    self.chat_view.show_empty("Start a new chat with the button on the left, or just type below.")
                return
            record = self.conversations.record(row)
            self.conversation_list.setCurrentIndex(self.conversations.index(row))  # opens it if it is new
            if record is not None and self.current is not None and self.current.id == record.id:
                self.current = record  # the fresh copy: title and settings as saved

        BackgroundOp(self, self.store.list_conversations).success(show).failure(self.show_error).run()

    def _conversation_selected(self, current: QModelIndex, _previous: QModelIndex) -> None:
        record = current.data(RecordRole) if current.isValid() else None
        if record is not None and (self.current is None or record.id != self.current.id):
            self._open(record)

    def _open(self, record: ConversationRecord | None) -> None:
        if record is None:
            return
        self.current = record
        self._show_page(0)

        def show(messages: list[Any]) -> None:
            if self.current is not None and self.current.id == record.id:
                self.chat_view.show_conversation(record.id, messages)
                self.chat_view.set_busy(self.runner.busy)

        BackgroundOp(self, self.store.messages, record.id).success(show).failure(self.show_error).run()

    def new_conversation(self, then_send: str | None = None) -> None:
        self._show_page(0)
        defaults = self.settings.generation.to_dict()

        def created(record: ConversationRecord) -> None:
            self.current = record
            self.chat_view.show_conversation(record.id, [])
            self.chat_view.composer.setFocus()
            self.refresh_conversations(select_id=record.id)
            if then_send:
                self._start_send(record.id, then_send)

        BackgroundOp(self, self.store.create_conversation, "New chat", defaults).success(created) \
            .failure(self.show_error).run()

    def _conversation_menu(self, point: QPoint) -> None:
        index = self.conversation_list.indexAt(point)
        record = index.data(RecordRole) if index.isValid() else None
        if record is None:
            return
        menu = QMenu(self)
        menu.addAction("Rename…", lambda: self.rename(record))
        menu.addAction("Delete", lambda: self.delete(record))
        menu.exec(self.conversation_list.viewport().mapToGlobal(point))

    def rename_current(self) -> None:
        if self.current is not None:
            self.rename(self.current)

    def rename(self, record: ConversationRecord) -> None:
        title, ok = QInputDialog.getText(self, "Rename conversation", "Title:", text=record.title)
        title = title.strip()
        if ok and title:
            BackgroundOp(self, self.store.rename_conversation, record.id, title) \
                .success(lambda _: self.refresh_conversations()).failure(self.show_error).run()

    def delete_current(self) -> None:
        if self.current is not None:
            self.delete(self.current)

    def delete(self, record: ConversationRecord) -> None:
        if self.runner.streaming_conversation() == record.id:
            self.show_error(HearthError("This conversation is still being answered. Stop the answer first."))
            return

        def deleted(_: object) -> None:
            self._deleted.append(record.id)
            if self.current is not None and self.current.id == record.id:
                self.current = None
            self.conversations.remove(record.id)
            self.statusBar().showMessage(f"Deleted “{record.title}”.", UNDO_SECONDS * 1000)
            self.undo_button.show()
            self._undo_timer.start()
            self.refresh_conversations(select_first=True)

        BackgroundOp(self, self.runner.delete_conversation, record.id).success(deleted) \
            .failure(self.show_error).run()

    def _undo_delete(self) -> None:
        if not self._deleted:
            return
        conversation_id = self._deleted.pop()
        self._hide_undo()
        BackgroundOp(self, self.store.restore_conversation, conversation_id) \
            .success(lambda _: self.refresh_conversations(select_id=conversation_id)) \
            .failure(self.show_error).run()
        self.statusBar().showMessage("Conversation restored.", 4000)

    def _hide_undo(self) -> None:
        self.undo_button.setVisible(False)

    # --- sending ---

    def send(self, text: str) -> None:
        self.chat_view.show_banner("")
        if self.runner.busy or self._pending is not None:
            self.chat_view.restore_draft(text)
            return
        conversation_id = self.current.id if self.current else None
        record = self._model_to_load()
        if record is not None:
            self._pending = _PendingSend(conversation_id, text)
            self.chat_view.set_busy(True)
            if self._loading is None:
                self.load_model(record)
            return
        if self.engine.loaded is None:
            self.chat_view.restore_draft(text)
            self.show_error(HearthError("Add a model first: press “Add a model from disk…” above, "
                                        "or open Models on the left."))
            return
        self._dispatch(_PendingSend(conversation_id, text))

    def _read_ahead(self, text: str) -> None:
        """The model reads the message being typed, so that sending it starts the answer sooner
        (``ChatRunner.read_ahead``); a failure here costs only that head start."""
        if self.current is None or self.runner.busy or self._pending is not None or self.engine.loaded is None:
            return
        BackgroundOp(self, self.runner.read_ahead, self.current.id, text) \
            .failure(lambda error: log.warning("reading ahead failed: %s", error)).run()

    def _model_to_load(self) -> ModelRecord | None:
        """The model to (re)load before sending: the chosen one when none is loaded, or the loaded one when
        this conversation asks for another context length than it was loaded with."""
        loaded = self.engine.loaded
        if loaded is None:
            return self._loading or self.model_bar.selected()
        wanted = min(self._current_settings().context_length, loaded.trained_context_length)
        if wanted == loaded.context_length:
            return None
        return next((m for m in self.library_model.items() if Path(m.path).resolve() == Path(loaded.path)), None)

    def _dispatch(self, pending: _PendingSend) -> None:
        if pending.conversation_id is None:
            self.new_conversation(then_send=pending.text)
        else:
            self._start_send(pending.conversation_id, pending.text)

    def chat_about(self, text: str) -> None:
        """A new conversation that starts with ``text`` (a task's result), sent as if typed: the model answers
        it, so the conversation goes on as any other (some chat templates refuse two user turns in a row)."""
        if self.runner.busy or self._pending is not None:
            self._show_page(0)
            self.show_error(HearthError("Wait for the current answer to finish, then open the result in a chat."))
            return
        if self._model_to_load() is None and self.engine.loaded is None:
            self.show_error(HearthError("Add a model first: press “Add a model from disk…” above, or open Models "
                                        "on the left."))
            return
        self.current = None
        self.conversation_list.clearSelection()
        self.chat_view.show_empty("")
        self._show_page(0)
        self.send(text)

    def stop_answer(self) -> None:
        """Stop the answer; a message still waiting for its model goes back into the box instead."""
        pending, self._pending = self._pending, None
        if pending is not None:
            self.chat_view.set_busy(False)
            self.chat_view.restore_draft(pending.text)
            return
        self.runner.stop()

    def _drop_pending(self, reason: str | None = None) -> None:
        """The model will not load: what waited for it (a message, a task run) goes back to the person."""
        pending, self._pending = self._pending, None
        self.chat_view.set_busy(self.runner.busy)
        if pending is not None:
            self.chat_view.restore_draft(pending.text)
        if self._tasks_page.is_built():
            self.tasks.pending_dropped(reason)

    def _start_send(self, conversation_id: int, text: str) -> None:
        self.chat_view.set_busy(True)

        def failed(error: BaseException) -> None:
            self.chat_view.set_busy(self.runner.busy)
            self.chat_view.restore_draft(text)
            self.show_error(error)

        BackgroundOp(self, self.runner.send, conversation_id, text).failure(failed).run()

    def regenerate(self) -> None:
        if self._pending is not None or self.chat_view.is_busy():
            return
        if self.current is None or self.runner.busy or self.engine.loaded is None:
            if self.engine.loaded is None and self.current is not None:
                self.show_error(HearthError("Load a model first, then regenerate."))
            return
        self.chat_view.set_busy(True)

        def failed(error: BaseException) -> None:
            self.chat_view.set_busy(False)
            self.show_error(error)

        BackgroundOp(self, self.runner.regenerate, self.current.id).failure(failed).run()

    def _answer_started(self, event: AnswerStarted) -> None:
        self.chat_view.set_busy(True)
        if self.chat_view.conversation_id == event.conversation_id:
            self.chat_view.answer_started(event.user_message, event.assistant_message)
        self.refresh_conversations()

    def _answer_delta(self, conversation_id: int, message_id: int, text: str) -> None:
        if self.chat_view.conversation_id == conversation_id:
            self.chat_view.answer_delta(message_id, text)

    def _context_notice(self, event: ContextNotice) -> None:
        if self.chat_view.conversation_id == event.conversation_id:
            n = event.dropped_messages
            self.chat_view.answer_notice(
                event.message_id, f"{n} older message{'s' if n != 1 else ''} left out to fit the context window.")

    def _answer_finished(self, event: AnswerFinished) -> None:
        self.chat_view.set_busy(False)
        if self.chat_view.conversation_id == event.conversation_id:
            self.chat_view.answer_finished(event.message)
        if event.message.finish_reason == "error" and event.message.error:
            self.statusBar().showMessage(event.message.error, 8000)
        self.refresh_conversations()

    # --- conversation settings ---

    def _current_settings(self) -> GenerationSettings:
        if self.current is not None:
            return GenerationSettings.from_dict(self.current.settings)
        return self.settings.generation

    def edit_settings(self) -> None:
        dialog = ConversationSettingsDialog(self._current_settings(), self)
        if dialog.exec() != ConversationSettingsDialog.DialogCode.Accepted:
            return
        chosen = dialog.result_settings()
        if dialog.make_default.isChecked() or self.current is None:
            self.settings.generation = chosen
            self._save_settings()
        if self.current is None:
            return
        old_context = self._current_settings().context_length
        conversation_id = self.current.id

        def saved(_: object) -> None:
            if self.current is not None and self.current.id == conversation_id:
                self.current = self.store_record_with(self.current, chosen)
            loaded = self.engine.loaded
            if loaded is not None and chosen.context_length != old_context and not self.runner.busy:
                record = self.model_bar.selected()
                if record is not None and Path(record.path).resolve() == Path(loaded.path):
                    self.load_model(record)
            self.statusBar().showMessage("Settings saved for this conversation.", 4000)

        BackgroundOp(self, self.store.update_conversation, conversation_id, settings=chosen.to_dict()) \
            .success(saved).failure(self.show_error).run()

    @staticmethod
    def store_record_with(record: ConversationRecord, settings: GenerationSettings) -> ConversationRecord:
        return replace(record, settings=settings.to_dict(), system_prompt=settings.system_prompt)

    def _save_settings(self) -> None:
        settings, path = self.settings, self.services.paths.settings_file
        BackgroundOp(self, settings.save, path).failure(self.show_error).run()

    # --- models ---

    def refresh_models(self, select_id: int | None = None) -> None:
        def show(models: list[ModelRecord]) -> None:
            self.library_model.set_items(models)
            self.model_bar.set_models(models, select_id)
            self.refresh_assessments()

        BackgroundOp(self, self.library.models).success(show).failure(self.show_error).run()

    def refresh_assessments(self) -> None:
        """The library's "On this computer" column: the analytic forecast for each model (no dry runs)."""
        models, machine = self.library_model.items(), self.services.machine
        context = self.settings.generation.context_length

        baseline = self._worker_baseline

        def assess_all() -> dict[int, Assessment | str]:
            from app.model_check import assess

            records = self.store.load_records()
            results: dict[int, Assessment | str] = {}
            for model in models:
                try:
                    results[model.id] = assess(Path(model.path), machine, context_length=context,
                                               gpu_layers=self.settings.gpu_layers, records=records,
                                               baseline=baseline)
                except HearthError as error:
                    results[model.id] = str(error)
            return results

        BackgroundOp(self, assess_all).success(self.library_model.set_assessments).failure(self.show_error).run()

    def _measure_bandwidth(self) -> None:
        """Memory speed bounds generation speed. A reading is taken when the machine is quiet (other programs
        and Hearth's own engine idle), again after an update or when a generation outran it, and the best kept
        reading is used: one taken on a busy machine read a quarter of the quiet figure. While the machine stays
        busy it tries again later (a timer the window owns, so it ends with the window); after a few tries a
        reading is taken anyway rather than none."""
        from app.engine.client import EngineState
        from app.hardware import bandwidth_wanted, measure_and_store_bandwidth, processor_busy

        machine, cache = self.services.machine, self.services.paths.cache_dir
        self._bandwidth_tries += 1
        force = self._bandwidth_tries > BANDWIDTH_TRIES and not machine.bandwidth_bytes_per_s
        generating = self.engine.state is EngineState.GENERATING

        def measure() -> float | None:
            if not bandwidth_wanted(cache, machine):
                return None
            if generating or (processor_busy() and not force):
                return -1.0
            return measure_and_store_bandwidth(cache, machine)

        def measured(value: float | None) -> None:
            if value == -1.0:
                if self._bandwidth_tries <= BANDWIDTH_TRIES:
                    self._bandwidth_timer.start(BANDWIDTH_RETRY_MS)
            elif value and value != self.services.machine.bandwidth_bytes_per_s:
                self.services.machine = replace(self.services.machine, bandwidth_bytes_per_s=value)
                self.refresh_assessments()

        BackgroundOp(self, measure).success(measured).failure(self.show_error).run()

    def _load_selected(self) -> None:
        record = self.model_bar.selected()
        if record is not None and self._loading is None:
            self.load_model(record)

    def load_model(self, record: ModelRecord, context_length: int | None = None) -> None:
        """Check that ``record`` fits, ask when it is tight, and load it with ``context_length`` (default: the
        current conversation's)."""
        if self.runner.busy or self.services.tasks.busy:
            busy = "Stop the current answer" if self.runner.busy else "Cancel the running task"
            self._drop_pending(f"{busy} before loading another model.")
            self.show_error(HearthError(f"{busy} before loading another model."))
            return
        if not Path(record.path).is_file():
            missing = (f"The file of “{record.name}” is no longer at {record.path}. Remove it from the library and "
                       "add it again.")
            self._drop_pending(missing)
            self.show_error(HearthError(missing))
            return
        self._loading = record
        self.chat_view.show_banner("")
        self.settings.last_model_id = record.id
        self._save_settings()
        self.model_bar.checking(record.name)
        for_conversation = context_length is None
        context = self._current_settings().context_length if context_length is None else context_length
        machine, gpu_layers, threads = self.services.machine, self.settings.gpu_layers, self.settings.threads

        def check() -> Assessment:
            from app.model_check import assess

            return assess(Path(record.path), machine, context_length=context, gpu_layers=gpu_layers, threads=threads,
                          exact=True, records=self.store.load_records(), baseline=self._worker_baseline)

        def failed(error: BaseException) -> None:
            self._load_abandoned(str(error) if isinstance(error, HearthError) else None)
            self.show_error(error)

        BackgroundOp(self, check).success(lambda a: self._confirm_and_load(record, a, for_conversation)) \
            .failure(failed).run()

    def _confirm_and_load(self, record: ModelRecord, assessment: Assessment, for_conversation: bool = True) -> None:
        """Load with the plan the forecast was made for; ask first when it will not fit comfortably."""
        from app.forecast import Verdict

        result = assessment.forecast
        plan = result.plan
        if result.verdict is Verdict.UNSUPPORTED:
            self._load_abandoned(f"{result.verdict.value}. {result.reason}")
            self.show_error(HearthError(f"{result.verdict.value}. {result.reason}"))
            return
        if assessment.needs_confirmation:
            box = QMessageBox(QMessageBox.Icon.Warning, result.verdict.value, f"{result.verdict.value}.", parent=self)
            box.setInformativeText(result.reason + " Loading it anyway may make this computer very slow until "
                                                   "the model is unloaded.")
            fit = assessment.fitting
            fit_button = box.addButton(f"Load with a {fit.context_length:,}-token context",
                                       QMessageBox.ButtonRole.AcceptRole) if fit else None
            anyway = box.addButton("Load anyway", QMessageBox.ButtonRole.DestructiveRole)
            box.addButton(QMessageBox.StandardButton.Cancel)
            box.exec()
            clicked = box.clickedButton()
            if fit is not None and clicked is fit_button:
                plan = fit
                if for_conversation:
                    self._use_context(fit.context_length)
            elif clicked is not anyway:
                self._load_abandoned()
                return
        self.services.tracker.expect(record.path, assessment)
        self.engine.load(record.path, plan=plan)

    def _use_context(self, context_length: int) -> None:
        """The conversation takes the context that fits, so its next message does not ask to reload."""
        if self.current is None:
            return
        chosen = replace(self._current_settings(), context_length=context_length)
        self.current = self.store_record_with(self.current, chosen)
        BackgroundOp(self, self.store.update_conversation, self.current.id, settings=chosen.to_dict()) \
            .failure(self.show_error).run()

    def _load_abandoned(self, reason: str | None = None) -> None:
        self._loading = None
        self.model_bar.not_loaded()
        self._drop_pending(reason)

    def _unload(self) -> None:
        if self.runner.busy or self.services.tasks.busy:
            self.show_error(HearthError("Stop the current answer before unloading the model." if self.runner.busy
                                        else "Cancel the running task before unloading the model."))
            return
        self.engine.unload()

    def _worker_ready(self, event: p.Ready) -> None:
        """A measured correction: forecasts use this machine's real engine size rather than a typical one."""
        if event.rss_bytes and event.rss_bytes != self._worker_baseline:
            self._worker_baseline = event.rss_bytes
            self.refresh_assessments()

    def _load_started(self, event: p.LoadStarted) -> None:
        """Every load shows, also the one the engine starts by itself after a forced stop."""
        record = next((m for m in self.library_model.items() if Path(m.path).resolve() == Path(event.path)), None)
        self.model_bar.loading_started(record.name if record else Path(event.path).stem)

    def _model_loaded(self, event: p.Loaded) -> None:
        self._loading = None
        self.model_bar.loaded(event)
        pending, self._pending = self._pending, None
        if pending is not None:
            self.chat_view.set_busy(False)
            if pending.conversation_id is None or self.conversations.row_of(pending.conversation_id) >= 0 \
                    or (self.current is not None and self.current.id == pending.conversation_id):
                self._dispatch(pending)
            else:  # that conversation was deleted while the model loaded
                self.chat_view.restore_draft(pending.text)

    def _engine_failed(self, event: p.Failed) -> None:
        if event.during == "load":
            self._loading = None
            self.model_bar.not_loaded("Not loaded")
            self._drop_pending(event.message)
        self.show_error(HearthError(event.message))

    def _worker_exited(self, event: p.WorkerExited) -> None:
        if self._closing or event.expected:
            return
        self._loading = None
        self.model_bar.not_loaded("The engine stopped. Load a model to continue.")
        self._drop_pending(event.message)
        self.chat_view.set_busy(False)
        self.show_error(HearthError(event.message))

    def _chat_with(self, record: ModelRecord) -> None:
        self.model_bar.select(record.id)
        self._show_page(0)
        loaded = self.engine.loaded
        if loaded is None or Path(record.path).resolve() != Path(loaded.path):
            self.load_model(record)
        if self.current is None:
            self.new_conversation()

    def add_model(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Add a model from disk", str(Path.home()),
                                              "GGUF models (*.gguf);;All files (*)")
        if not path:
            return
        box = QMessageBox(QMessageBox.Icon.Question, "Add a model", f"Add “{Path(path).name}” to your library?",
                          parent=self)
        box.setInformativeText("Copying it into Hearth's models folder keeps it working if you move or delete "
                               "the original. Using it where it is saves disk space.")
        copy_button = box.addButton("Copy into Hearth", QMessageBox.ButtonRole.AcceptRole)
        in_place_button = box.addButton("Use it where it is", QMessageBox.ButtonRole.AcceptRole)
        box.addButton(QMessageBox.StandardButton.Cancel)
        box.setDefaultButton(copy_button if self.settings.copy_imported_models else in_place_button)
        box.exec()
        if box.clickedButton() not in (copy_button, in_place_button):
            return
        self.import_model(Path(path), copy=box.clickedButton() is copy_button)

    def import_model(self, path: Path, copy: bool) -> None:
        cancel = threading.Event()
        self._import_cancels.add(cancel)
        dialog = QProgressDialog(f"Adding {path.name}…", "Cancel", 0, 1000, self)
        dialog.setWindowTitle("Adding a model")
        dialog.setMinimumDuration(400)
        dialog.setAutoClose(False)
        dialog.canceled.connect(cancel.set)
        self.bridge_progress = _ProgressRelay(dialog)

        def finish_dialog() -> None:
            self._import_cancels.discard(cancel)
            dialog.canceled.disconnect(cancel.set)  # closing a progress dialog emits canceled
            dialog.close()
            dialog.deleteLater()

        def done(record: ModelRecord) -> None:
            finish_dialog()
            self.statusBar().showMessage(f"Added “{record.name}” to the library.", 6000)
            self.refresh_models(select_id=record.id if self.engine.loaded is None else None)

        def failed(error: BaseException) -> None:
            finish_dialog()
            if isinstance(error, HearthError) and not cancel.is_set():
                QMessageBox.warning(self, "Could not add the model", str(error))
            elif not cancel.is_set():
                self.show_error(error)

        BackgroundOp(self, self.library.import_model, path, copy=copy, progress=self.bridge_progress.report,
                     cancel=cancel).success(done).failure(failed).run()

    def remove_model(self, record: ModelRecord) -> None:
        box = QMessageBox(QMessageBox.Icon.Question, "Remove model", f"Remove “{record.name}” from the library?",
                          parent=self)
        remove = box.addButton("Remove from the library", QMessageBox.ButtonRole.AcceptRole)
        delete = None if record.in_place else box.addButton("Remove and delete the file",
                                                           QMessageBox.ButtonRole.DestructiveRole)
        box.addButton(QMessageBox.StandardButton.Cancel)
        if not record.in_place:
            box.setInformativeText(f"Deleting the file frees {record.file_size / 1e9:.1f} GB and cannot be undone.")
        box.exec()
        clicked = box.clickedButton()
        if clicked not in (remove, delete):
            return
        if self.engine.loaded is not None and Path(self.engine.loaded.path) == Path(record.path).resolve():
            self.engine.unload()
        BackgroundOp(self, self.library.remove, record.id, delete_file=clicked is delete) \
            .success(lambda _: self.refresh_models()).failure(self.show_error).run()

    # --- discover and download ---

    def search_hub(self, query: str, sort: str) -> None:
        self._pager = hub.SearchPager(query, sort=sort, token=self.services.downloads.token)
        self._next_results(append=False)

    def more_results(self) -> None:
        if self._pager is not None:
            self._next_results(append=True)

    def _next_results(self, *, append: bool) -> None:
        pager = self._pager
        if pager is None:
            return

        def shown(found: list[hub.HubModel]) -> None:
            if pager is self._pager:
                self.discover_view.show_search(found, more=not pager.exhausted, append=append)

        def offline(error: BaseException) -> None:
            self.discover_view.show_status(str(error), offline=True)

        BackgroundOp(self, pager.next_page).success(shown).failure(offline).run()

    def show_repo_files(self, repo_id: str) -> None:
        def shown(groups: list[hub.FileGroup]) -> None:
            self.discover_view.files_loaded(repo_id)
            self.discover_view.show_files(repo_id, groups)

        def offline(error: BaseException) -> None:
            self.discover_view.show_status(str(error), offline=True)
            self.discover_view.files_failed(repo_id)

        from app.model_check import model_card

        token = self.services.downloads.token
        BackgroundOp(self, model_card, repo_id, token=token) \
            .success(lambda text: self.discover_view.show_card(repo_id, text)) \
            .failure(lambda _error: self.discover_view.show_card(repo_id, "The model card could not be read.")).run()
        BackgroundOp(self, hub.repo_files, repo_id, token=token).success(shown).failure(offline).run()

    def _update_catalog(self) -> None:
        """A newer catalog from the URL in the settings, if one is set and Hearth is online; the built-in one
        (or the last fetched) stays when anything goes wrong."""
        from app.catalog import fetch_newer

        url, current = self.settings.catalog_url, self.services.catalog
        if not url or current is None or network.is_offline():
            return

        def newer(catalog: Catalog | None) -> None:
            if catalog is not None:
                self.services.catalog = catalog
                self.discover_view.set_catalog(list(catalog.entries()))

        BackgroundOp(self, fetch_newer, url, current, cache_dir=self.services.paths.cache_dir).success(newer) \
            .failure(self.show_error).run()

    def assess_remote_file(self, repo_id: str, group: hub.FileGroup) -> None:
        """The exact forecast for a file before downloading it, from its header alone."""
        from app.model_check import assess_remote

        name = group.first.name
        machine, cache, token = self.services.machine, self.services.paths.cache_dir, self.services.downloads.token

        def shown(assessment: Assessment) -> None:
            result = assessment.forecast
            m = result.memory
            speed = f" Expected speed: {result.speed.words()}." if result.speed else ""
            self.discover_view.show_file_details(repo_id, name, (
                f"<b>{result.verdict.value}.</b> {result.reason} It needs {format_bytes(m.ram_bytes)} with a "
                f"{result.plan.context_length:,}-token context"
                + (f" and {format_bytes(m.vram_bytes)} on the graphics card" if m.vram_bytes else "")
                + f"; the longest context that fits now is {result.max_context:,} tokens.{speed}"))

        def failed(error: BaseException) -> None:
            self.discover_view.show_file_details(repo_id, name, f"Could not read this file's header: {error}")

        BackgroundOp(self, assess_remote, repo_id, name, machine, cache, token=token).success(shown) \
            .failure(failed).run()

    def download(self, repo_id: str, group: hub.FileGroup) -> None:
        self.services.downloads.enqueue(repo_id, [f.name for f in group.files])
        self.statusBar().showMessage(f"Downloading {group.first.name}…", 4000)

    def _download_changed(self, job: JobChanged) -> None:
        from app.downloads import JobState

        self.discover_view.job_changed(job)
        if job.state is JobState.DONE and job.result is not None:
            def added(record: ModelRecord) -> None:
                self.statusBar().showMessage(f"“{record.name}” is downloaded and in your library.", 6000)
                self.refresh_models(select_id=record.id if self.engine.loaded is None else None)

            BackgroundOp(self, self.library.register_download, job.result).success(added) \
                .failure(self.show_error).run()

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
        self.welcome_view = WelcomeView()
        self.stack.addWidget(self.welcome_view)
        self._on_welcome = False
        w = self.welcome_view
        w.getRequested.connect(self._get_suggested)
        w.addFromDiskRequested.connect(self.add_model)
        w.closeRequested.connect(lambda: self._show_page(0))
        self.stack.currentChanged.connect(self._welcome_page_changed)  # after _page_changed: it has the last word
        self.offline_action.toggled.connect(self._refill_welcome)
        self.library_model.modelReset.connect(self._refill_welcome)

    def offer_welcome(self) -> None:
        """At start: the welcome page, when the library is empty and the welcome was never left before.

        Not when there are conversations either: opening the newest one (``refresh_conversations``, which runs
        at the same time) would take the window back to the chat page a moment later."""
        if self.settings.welcome_done or not self._attached:  # not attached: closed before its services came
            return

        def first_start() -> bool:
            return not self.library.models() and not self.store.list_conversations()

        def decided(first: bool) -> None:
            if first and not self._closing and self.stack.currentIndex() == 0:  # nothing chosen meanwhile
                self.show_welcome()

        BackgroundOp(self, first_start).success(decided).failure(self.show_error).run()

    def show_welcome(self) -> None:
        self._fill_welcome()
        self.nav_group.setExclusive(False)  # no navigation button stands for this page
        for button in self.nav_group.buttons():
            button.setChecked(False)
        self.nav_group.setExclusive(True)
        self.stack.setCurrentWidget(self.welcome_view)
        self.welcome_view.first_action().setFocus()

    def _fill_welcome(self) -> None:
        from app.hardware import describe
        from app.suggestions import suggest

        catalog, machine = self.services.catalog, self.services.machine
        self.welcome_view.set_content(
            describe(machine, memory_speed=False), suggest(catalog, machine) if catalog is not None else [],
            catalog_available=catalog is not None, offline=network.is_offline(),
            has_models=self.library_model.rowCount() > 0)

    def _refill_welcome(self) -> None:
        """Going offline or online, or a model landing in the library, changes what the page offers."""
        if self._on_welcome:
            self._fill_welcome()

    def _welcome_page_changed(self, index: int) -> None:
        """Leaving the welcome page, by any way, means it was seen: it opens by itself no more."""
        on_welcome = self.stack.widget(index) is self.welcome_view
        if on_welcome:
            self.stop_action.setEnabled(False)  # Esc leaves this page instead
        elif self._on_welcome and not self.settings.welcome_done:
            self.settings.welcome_done = True
            self._save_settings()
        self._on_welcome = on_welcome

    def _get_suggested(self, entry: CatalogEntry) -> None:
        """Discover with the model's files listed and the recommended one chosen; Download goes on from there."""
        self._show_page(PAGES.index("Discover"))
        self.discover_view.show_entry(entry.repo)

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
            self._shut_down(self.services)
        wait_for_background()
        super().closeEvent(event)

    def _shut_down(self, services: Services) -> None:
        if self._tasks_page.is_built():
            self.tasks.shutdown()
        for cancel in self._import_cancels:
            cancel.set()  # a half-copied model is removed; the import can be done again
        services.downloads.shutdown()  # partial downloads stay and continue next time
        services.runner.close()
        services.tasks.close()
        if self._compare_page.is_built():
            self.compare.shutdown()
        services.compare.close()  # stops every comparison worker; what they wrote is saved
        services.engine.shutdown()


@dataclass(frozen=True)
class _PendingSend:
    conversation_id: int | None  # None: start a new conversation with it
    text: str


class _ProgressRelay:
    """Moves copy progress from the import thread to the dialog through a queued signal."""

    def __init__(self, dialog: QProgressDialog) -> None:
        from PySide6.QtCore import QObject, Signal

        class Relay(QObject):
            progressed = Signal(int)

        self._relay = Relay(dialog)
        self._relay.progressed.connect(dialog.setValue)

    def report(self, done: int, total: int) -> None:
        self._relay.progressed.emit(int(done * 1000 / max(total, 1)))
