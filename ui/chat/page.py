"""The Chats page: the conversations in the sidebar, the one open in the page, sending a message and following the
answer as it streams, and each conversation's settings.

Every database call goes through ``BackgroundOp`` and every model call through the engine client; the answer comes
back as the bridge's signals. A message sent while its model is not loaded yet waits in the ``ModelLoader``, which
loads the model and hands the message back when it is ready. ``ChatView`` and ``ConversationsView`` are the page's
layout; this is what it does. Nothing here waits.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtWidgets import QInputDialog, QPushButton, QWidget

from app.errors import CHATML_OFFER, HearthError
from app.history import ConversationRecord, FolderRecord, MessageRecord, ModelRecord, Page
from app.history.records import HitKind, SearchHit, SearchQuery
from app.outcomes import FinishReason
from app.remote.address import is_remote, parse, same_model
from app.settings import GenerationSettings, Settings, zoomed
from app.words import context_trimmed
from ui.chat.chat_view import ChatView
from ui.chat.conversations_view import ConversationsView
from ui.chat.meter import ContextMeter
from ui.chat.settings_dialog import ConversationSettingsDialog
from ui.model_loader import PendingSend
from ui.qt.background import BackgroundOp
from ui.qt.qt_models import ChatMark, ConversationListModel, LibraryModel
from ui.widgets.undo_bar import UndoBar

if TYPE_CHECKING:
    from app.chat import AnswerFinished, AnswerStarted, ChatRunner, ContextNotice
    from app.engine import EngineClient
    from app.engine import protocol as p
    from app.history import HistoryStore
    from ui.model_loader import ModelLoader
    from ui.qt.bridge import EngineBridge
    from ui.services import Services

log = logging.getLogger(__name__)

UNDO_SECONDS = 10
# Read a page at a time, so that neither a history of 50,000 conversations nor one of 1,000 messages holds up the
# window: a page of conversations fills a tall list; a page of messages fills the screen a few times over.
CONVERSATION_PAGE = 200
MESSAGE_PAGE = 30
NO_MODEL = "Add a model first: press “Add a model from disk…” above, or open Models on the left."


class ChatPage(QObject):
    """Made with the window, so that it paints at once; ``attach`` gives it the services once they are built."""

    showRequested = Signal()  # the chat page is to be on screen
    failed = Signal(object)  # an error, for the window to show
    statusMessage = Signal(str, int)  # text, milliseconds: for the window's status bar
    settingsChanged = Signal()  # the default conversation settings changed
    foundElsewhere = Signal(object)  # SearchHit: a task run or comparison the search found, for its page to open
    exportRequested = Signal(object)  # ConversationRecord: the window's export dialog, for it

    store: HistoryStore
    runner: ChatRunner
    engine: EngineClient
    loader: ModelLoader
    library_model: LibraryModel

    def __init__(self, settings: Settings, parent: QWidget) -> None:
        super().__init__(parent)
        self._window = parent
        self.settings = settings
        self.current: ConversationRecord | None = None
        self._deleted: list[int] = []
        self._queue: list[PendingSend] = []  # messages waiting for the answer being written, oldest first
        self._starting: int | None = None  # the conversation whose answer is being started
        self._served = False  # the local server holds the engine: messages wait for it (``served_turn``)
        self._drafts: dict[int, str] = {}  # messages given back to a chat not on screen, for when it opens
        self._searches = 0  # searches asked for: only the newest one's matches are shown
        self.conversations = ConversationListModel()
        self.sidebar = ConversationsView(self.conversations)
        self.view = ChatView()
        self.meter = ContextMeter(self.view, self)
        self.message_undo = UndoBar(lambda message_id: self.runner.delete_message(message_id),
                                    lambda message_id: self.runner.restore_message(message_id))
        self.view.notices.insertWidget(0, self.message_undo)
        self.undo_button = QPushButton("Undo")  # in the window's status bar, while a deletion can be undone
        self.undo_button.hide()
        self._undo_timer = QTimer(self, singleShot=True, interval=UNDO_SECONDS * 1000)
        self._undo_timer.timeout.connect(self._hide_undo)
        self.view.set_zoom(zoomed(settings.chat_zoom))
        self.view.zoomRequested.connect(self.zoom)

    def attach(self, services: Services, bridge: EngineBridge, loader: ModelLoader,
               library_model: LibraryModel) -> None:
        self.store, self.runner, self.engine = services.store, services.runner, services.engine
        self.loader, self.library_model = loader, library_model
        side, view, bar = self.sidebar, self.view, self.view.model_bar
        side.newRequested.connect(self.new_conversation)
        side.search.searchWanted.connect(self.search)
        side.search.modelsWanted.connect(lambda: BackgroundOp(self, self.store.model_names)
                                         .success(side.search.set_models).failure(self.failed.emit).run())
        side.search.hitChosen.connect(self._hit_chosen)
        side.openRequested.connect(self._conversation_chosen)
        side.renameRequested.connect(self.rename)
        side.deleteRequested.connect(self.delete)
        side.pinRequested.connect(self.pin)
        side.exportRequested.connect(self.exportRequested)
        side.folders.chosen.connect(self._folder_chosen)
        side.folders.moveRequested.connect(self.move_conversations)
        side.folders.failed.connect(self.failed.emit)
        side.folders.attach(self.store, self.library_model.items)
        side.pointerLeft.connect(self.conversations.settle_order)
        self.conversations.moreWanted.connect(self._more_conversations)
        view.sendRequested.connect(self.send)
        view.draftChanged.connect(self._read_ahead)
        view.draftPaused.connect(self._count)
        view.stopRequested.connect(self.stop_answer)
        view.regenerateRequested.connect(self.regenerate)
        view.continueRequested.connect(self.continue_answer)
        view.deleteMessageRequested.connect(self.delete_message)
        view.versionRequested.connect(self.show_version)
        view.editRequested.connect(self.edit_message)
        view.stopOtherRequested.connect(self.stop_other)
        view.unqueueRequested.connect(self._unqueue)
        view.olderWanted.connect(self._older_messages)
        self.message_undo.deleted.connect(self._message_deleted)
        self.message_undo.restored.connect(self._message_restored)
        self.message_undo.failed.connect(self.failed.emit)
        self.meter.attach(self.runner, self.engine, bridge)
        bar.loadRequested.connect(self.load_model)
        bar.unloadRequested.connect(loader.unload)
        bar.settingsRequested.connect(self.edit_settings)
        bar.chatmlRequested.connect(self.use_chatml)
        bar.ownTemplateRequested.connect(self.use_own_template)
        self.undo_button.clicked.connect(self._undo_delete)
        bridge.loadStarted.connect(self._load_started)
        bridge.loadProgress.connect(bar.load_progress)
        bridge.loadStage.connect(bar.load_stage)
        bridge.modelUnloaded.connect(lambda: bar.not_loaded())
        bridge.answerStarted.connect(self._answer_started)
        bridge.answerDelta.connect(self._answer_delta)
        bridge.contextNotice.connect(self._context_notice)
        bridge.answerFinished.connect(self._answer_finished)
        loader.checking.connect(self._checking)
        loader.loaded.connect(bar.loaded)
        loader.loaded.connect(lambda _loaded: self._count())
        # A server on another computer has no way to go on from a given text that every kind of server reads.
        loader.loaded.connect(lambda loaded: self.view.set_can_continue(not loaded.remote))
        loader.notLoaded.connect(bar.not_loaded)
        loader.sendReady.connect(self._send_pending)
        loader.dropped.connect(self._pending_dropped)
        loader.engineStopped.connect(self._engine_stopped)
        loader.contextChosen.connect(self.use_context)

    # --- conversations ---

    def load_conversations(self, select_first: bool = False) -> None:
        """The newest conversations in the list; older ones come a page at a time as it is scrolled."""
        folder_id = self.conversations.folder_id

        def show(page: Page[ConversationRecord]) -> None:
            if folder_id == self.conversations.folder_id:  # else another folder was chosen meanwhile
                self.conversations.set_page(page)
                self._list_filled(select_first)

        BackgroundOp(self, self.store.conversation_page, CONVERSATION_PAGE, None, folder_id) \
            .success(show).failure(self.failed.emit).run()

    def _more_conversations(self, after: ConversationRecord) -> None:
        folder_id = self.conversations.folder_id

        def failed(error: BaseException) -> None:
            self.conversations.page_failed()
            self.failed.emit(error)

        def show(page: Page[ConversationRecord]) -> None:
            if folder_id == self.conversations.folder_id:
                self.conversations.add_page(page)

        BackgroundOp(self, self.store.conversation_page, CONVERSATION_PAGE, after, folder_id) \
            .success(show).failure(failed).run()

    def _list_filled(self, select_first: bool) -> None:
        """After the list changed as a whole: the newest chat opened if asked, the empty state if none is left."""
        rows = self.conversations.rowCount()
        self.sidebar.no_chats.setVisible(not rows)
        if rows and select_first:
            self.sidebar.list.setCurrentIndex(self.conversations.index(0))  # opens it if it is new
        elif not rows:
            self.current = None
            self.view.show_empty("Start a new chat with the button on the left, or just type below.")

    def refresh_conversation(self, conversation_id: int, select: bool = False) -> None:
        """One conversation read again (an answer began or ended, it was renamed, made or brought back) and put
        in its place in the list, the rest left as they are; with ``select`` it is chosen in the list."""
        def show(record: ConversationRecord) -> None:
            if record.id in self._deleted:
                return  # deleted meanwhile: it comes back with Undo
            self.conversations.put(record, keep_order=self.sidebar.pointer_inside())
            self.sidebar.no_chats.hide()
            row = self.conversations.row_of(record.id)
            if select and row >= 0:
                self.sidebar.list.setCurrentIndex(self.conversations.index(row))  # opens it if it is new
            if self.current is not None and self.current.id == record.id:
                self.current = record  # the fresh copy: title and settings as saved

        BackgroundOp(self, self.store.get_conversation, conversation_id).success(show) \
            .failure(self.failed.emit).run()

    def _conversation_chosen(self, record: ConversationRecord) -> None:
        if self.current is None or record.id != self.current.id:
            self._open(record)

    def _open(self, record: ConversationRecord, again: bool = False) -> None:
        """``again``: the conversation shown, read anew (its draft stays in the box)."""
        if not again:
            self._keep_draft()
        self.current = record
        self.showRequested.emit()

        def show(page: Page[MessageRecord]) -> None:
            if self.current is not None and self.current.id == record.id:
                self.view.show_conversation(record.id, page.items, older=page.more)
                self._update_turns()
                if record.id in self._drafts:
                    self.view.restore_draft(self._drafts.pop(record.id))
                self._count()

        def read() -> Page[MessageRecord]:
            from ui.chat.message_body import prepare

            prepare()  # here, off the GUI thread, rather than when the first message is shown
            return self.store.message_page(record.id, MESSAGE_PAGE)

        BackgroundOp(self, read).success(show).failure(self.failed.emit).run()

    # --- folders and pins ---

    def _folder_chosen(self, folder: FolderRecord | None) -> None:
        """The list shows that folder's conversations (all of them for None); the one open stays open."""
        folder_id = folder.id if folder is not None else None
        if folder_id != self.conversations.folder_id:
            self.conversations.folder_id = folder_id
            self.load_conversations()

    def move_conversations(self, conversation_ids: list[int], folder_id: int | None) -> None:
        def move() -> None:
            for conversation_id in conversation_ids:
                self.store.move_conversation(conversation_id, folder_id)

        def moved(_: object) -> None:
            for conversation_id in conversation_ids:
                self.refresh_conversation(conversation_id)
            folder = next((f.name for f in self.sidebar.folders.folders if f.id == folder_id), None)
            count = f"{len(conversation_ids)} conversations" if len(conversation_ids) > 1 else "The conversation"
            self.statusMessage.emit(f"{count} moved to “{folder}”." if folder else f"{count} left its folder.", 4000)

        BackgroundOp(self, move).success(moved).failure(self.failed.emit).run()

    def _start_with_folder_model(self, record: ConversationRecord) -> None:
        """A chat made in a folder with a model starts with it: chosen, and loaded in place of another model (unless
        an answer is being written: then it waits, chosen). Found by id and name, else by name: a folder from an
        imported file names a model another library numbers differently."""
        if record.model_name is None:
            return
        models = self.library_model.items()
        model = next((m for m in models if m.id == record.model_id and m.name == record.model_name), None) \
            or next((m for m in models if m.name == record.model_name), None)
        if model is None:
            self.statusMessage.emit(f"This folder's model, “{record.model_name}”, is no longer in the library.", 6000)
            return
        loaded = self._loaded_record()
        if loaded is not None and loaded.id == model.id:
            return
        self.view.model_bar.select(model.id)
        if self.engine.loaded is not None and not self.runner.busy and self.loader.loading is None:
            self.load_model(model)

    def pin(self, record: ConversationRecord, pinned: bool) -> None:
        BackgroundOp(self, self.store.pin_conversation, record.id, pinned) \
            .success(lambda _: self.refresh_conversation(record.id)).failure(self.failed.emit).run()

    def pin_current(self) -> None:
        if self.current is not None:
            self.pin(self.current, not self.current.pinned)

    def search(self, text: str, query: SearchQuery) -> None:
        """Off the GUI thread; a search overtaken by more typing is not shown (each takes a few milliseconds, so
        it is left to finish rather than interrupted)."""
        self._searches += 1
        asked = self._searches
        if not text:
            return

        def show(hits: list[SearchHit]) -> None:
            if asked == self._searches:
                self.sidebar.search.show_hits(text, hits)

        BackgroundOp(self, self.store.search, query).success(show).failure(self.failed.emit).run()

    def _hit_chosen(self, hit: SearchHit) -> None:
        if hit.kind in (HitKind.MESSAGE, HitKind.CONVERSATION):
            self.open_found(hit.item, hit.part)
        else:
            self.foundElsewhere.emit(hit)

    def open_found(self, conversation_id: int, message_id: int | None, mark: bool = True) -> None:
        """A search result: the conversation, opened at the message found (marked), or at its end for its title."""
        if self.current is None or self.current.id != conversation_id:
            self._keep_draft()
        self.showRequested.emit()

        def show(found: tuple[ConversationRecord, Page[MessageRecord]]) -> None:
            record, page = found
            self.current = record
            row = self.conversations.row_of(record.id)
            if row >= 0:  # chosen in the list too; it is open already, so the list's choice opens nothing
                self.sidebar.list.setCurrentIndex(self.conversations.index(row))
            self.view.show_conversation(record.id, page.items, older=page.more, reveal=message_id, mark=mark)
            self._update_turns()
            self._count()

        def read() -> tuple[ConversationRecord, Page[MessageRecord]]:
            from ui.chat.message_body import prepare

            prepare()
            record = self.store.get_conversation(conversation_id)
            page = self.store.message_page_from(conversation_id, message_id) if message_id is not None \
                else self.store.message_page(conversation_id, MESSAGE_PAGE)
            return record, page

        BackgroundOp(self, read).success(show).failure(self.failed.emit).run()

    def _older_messages(self, conversation_id: int, before_id: int) -> None:
        def show(page: Page[MessageRecord]) -> None:
            self.view.add_older(conversation_id, page.items, older=page.more)

        def failed(error: BaseException) -> None:
            self.view.older_failed(conversation_id)
            self.failed.emit(error)

        BackgroundOp(self, self.store.message_page, conversation_id, MESSAGE_PAGE, before_id).success(show) \
            .failure(failed).run()

    def new_conversation(self, then_send: str | None = None) -> None:
        self.showRequested.emit()
        defaults = self.settings.generation.to_dict()

        def created(record: ConversationRecord) -> None:
            self._start_with_folder_model(record)
            self._keep_draft()
            self.current = record
            self.view.show_conversation(record.id, [])
            self.view.composer.setFocus()
            self.refresh_conversation(record.id, select=True)
            if then_send:
                self._send_to(PendingSend(record.id, then_send))
            self._update_turns()
            self._count()

        BackgroundOp(self, self.store.create_conversation, "New chat", defaults, None, None,
                     self.conversations.folder_id).success(created).failure(self.failed.emit).run()

    def _keep_draft(self) -> None:
        """Each chat keeps what is being written in it: the box is emptied for the next one, and filled again
        when this one comes back."""
        if self.current is not None:
            draft = self.view.draft()
            if draft:
                self._drafts[self.current.id] = draft
            else:
                self._drafts.pop(self.current.id, None)
            self.view.composer.clear()

    def rename_current(self) -> None:
        if self.current is not None:
            self.rename(self.current)

    def rename(self, record: ConversationRecord) -> None:
        title, ok = QInputDialog.getText(self._window, "Rename conversation", "Title:", text=record.title)
        title = title.strip()
        if ok and title:
            BackgroundOp(self, self.store.rename_conversation, record.id, title) \
                .success(lambda _: self.refresh_conversation(record.id)).failure(self.failed.emit).run()

    def delete_current(self) -> None:
        if self.current is not None:
            self.delete(self.current)

    def delete(self, record: ConversationRecord) -> None:
        if self.runner.streaming_conversation() == record.id:
            self.failed.emit(HearthError("This conversation is still being answered. Stop the answer first."))
            return

        def deleted(_: object) -> None:
            self._deleted.append(record.id)
            for pending in [pending for pending in self._queue if pending.conversation_id == record.id]:
                self._queue.remove(pending)  # kept as the chat's draft, should Undo bring the chat back
                self._give_back(pending)
            if self.current is not None and self.current.id == record.id:
                self.current = None
            self.conversations.remove(record.id)
            self.statusMessage.emit(f"Deleted “{record.title}”.", UNDO_SECONDS * 1000)
            self.undo_button.show()
            self._undo_timer.start()
            if self.conversations.rowCount() or not self.conversations.has_more():
                self._list_filled(select_first=True)
            else:
                self.load_conversations(select_first=True)

        BackgroundOp(self, self.runner.delete_conversation, record.id).success(deleted) \
            .failure(self.failed.emit).run()

    def _undo_delete(self) -> None:
        if not self._deleted:
            return
        conversation_id = self._deleted.pop()
        self._hide_undo()
        BackgroundOp(self, self.store.restore_conversation, conversation_id) \
            .success(lambda _: self.refresh_conversation(conversation_id, select=True)) \
            .failure(self.failed.emit).run()
        self.statusMessage.emit("Conversation restored.", 4000)

    def _hide_undo(self) -> None:
        self.undo_button.setVisible(False)

    # --- sending: one answer is written at a time; a message for another chat waits its turn ---

    def send(self, text: str) -> None:
        """Send what was written in the chat on screen: now, or after the answer being written (in this chat or
        another), or after its model has loaded. A message the meter knows to be too long stays in the box."""
        self.view.show_banner("")
        conversation_id = self.current.id if self.current else None
        too_long = self.meter.too_long(conversation_id, text)
        if too_long:
            self.view.restore_draft(text)
            self.view.show_banner(too_long)
            return
        if conversation_id is None:
            if self._engaged():
                self.new_conversation(then_send=text)  # made now, so that its message can wait in it
            else:
                self._send_to(PendingSend(None, text))
            return
        self._send_to(PendingSend(conversation_id, text))

    def _send_to(self, pending: PendingSend) -> None:
        if self._engaged():
            self._queue.append(pending)
            self._update_turns()
            return
        settings = self._settings_of(pending.conversation_id)
        record = self._model_to_load(settings)
        if record is not None:
            self.loader.hold(pending)
            self._update_turns()
            if self.loader.loading is None:
                self.loader.load(record, settings.context_length, for_conversation=True)
            return
        if self.engine.loaded is None:
            self._give_back(pending)
            self._return_queue()
            self.failed.emit(HearthError(NO_MODEL))
            return
        self._dispatch(pending)

    def served_turn(self, holding: bool) -> None:
        """The local server took the engine for a request (True), or gave it back: messages sent meanwhile wait,
        and go when it is given back."""
        self._served = holding
        if holding:
            self._update_turns()
        else:
            self._next()

    def _engaged(self) -> bool:
        """An answer is being written, is about to be, or waits for its model to load, or the local server answers
        another program."""
        return self.runner.busy or self._starting is not None or self.loader.pending is not None or self._served

    def _answering(self) -> int | None:
        """The conversation of that answer (``None`` also for a chat not made yet)."""
        streaming = self.runner.streaming_conversation()
        if streaming is not None:
            return streaming
        if self._starting is not None:
            return self._starting
        return self.loader.pending.conversation_id if self.loader.pending is not None else None

    def _next(self) -> None:
        """The answer ended: the message that waited longest goes."""
        if self._queue and not self._engaged():
            self._send_to(self._queue.pop(0))
        self._update_turns()

    def _update_turns(self) -> None:
        """Show who is answered: Stop only in the chat being answered, the waiting messages in theirs, and a
        mark on each in the list."""
        shown = self.current.id if self.current else None
        engaged, answering = self._engaged(), self._answering()
        served_only = self._served and not self.runner.busy and self._starting is None and self.loader.pending is None
        here = engaged and not served_only and answering == shown
        self.view.set_busy(here)
        waiting = [pending.text for pending in self._queue if pending.conversation_id == shown]
        text = ""
        if waiting:
            from app.chat import title_from  # here: the first paint does not wait for the engine's modules

            what = f"“{title_from(waiting[0])}” is" if len(waiting) == 1 else f"Your {len(waiting)} messages are"
            if here:
                text = f"{what} sent when this answer is finished."
            elif served_only:
                text = (f"{what} sent when the local server has answered another program: the model writes one "
                        "answer at a time.")
            else:
                text = (f"{what} sent when the answer in “{self._title(answering)}” is finished: the model writes "
                        "one answer at a time.")
        self.view.show_waiting(text, can_stop_other=engaged and not here and not served_only)
        marks = {pending.conversation_id: ChatMark.WAITING for pending in self._queue
                 if pending.conversation_id is not None}
        if engaged and not served_only and answering is not None:
            marks[answering] = ChatMark.ANSWERING
        self.conversations.set_marks(marks)

    def _title(self, conversation_id: int | None) -> str:
        record = self.conversations.record(self.conversations.row_of(conversation_id)) \
            if conversation_id is not None else None
        return (record.title or "New chat") if record is not None else "a new chat"

    def _give_back(self, pending: PendingSend) -> None:
        """A message that will not be sent goes back into its chat's box: now if the chat is on screen, else
        when it is opened."""
        shown = self.current.id if self.current else None
        if pending.conversation_id == shown:
            self.view.restore_draft(pending.text)
        elif pending.conversation_id is not None:
            earlier = self._drafts.get(pending.conversation_id)
            self._drafts[pending.conversation_id] = f"{earlier}\n\n{pending.text}" if earlier else pending.text

    def _return_queue(self) -> None:
        queue, self._queue = self._queue, []
        for pending in queue:
            self._give_back(pending)
        self._update_turns()

    def _unqueue(self) -> bool:
        """The messages waiting in the chat on screen come back into its box."""
        shown = self.current.id if self.current else None
        mine = [pending for pending in self._queue if pending.conversation_id == shown]
        self._queue = [pending for pending in self._queue if pending.conversation_id != shown]
        for pending in reversed(mine):
            self.view.restore_draft(pending.text)
        self._update_turns()
        return bool(mine)

    def _read_ahead(self, text: str) -> None:
        """The model reads the message being typed, so that sending it starts the answer sooner
        (``ChatRunner.read_ahead``); a failure here costs only that head start."""
        if not text or self.current is None or self._engaged() or self.engine.loaded is None:
            return
        BackgroundOp(self, self.runner.read_ahead, self.current.id, text) \
            .failure(lambda error: log.warning("reading ahead failed: %s", error)).run()

    def _count(self, draft: str | None = None) -> None:
        """The context meter counts the conversation on screen with the message being written."""
        self.meter.count(self.current.id if self.current else None,
                         self.view.draft() if draft is None else draft, self.current_settings())

    def _settings_of(self, conversation_id: int | None) -> GenerationSettings:
        if self.current is not None and self.current.id == conversation_id:
            return self.current_settings()
        record = self.conversations.record(self.conversations.row_of(conversation_id)) \
            if conversation_id is not None else None
        return GenerationSettings.from_dict(record.settings) if record is not None else self.settings.generation

    def _model_to_load(self, settings: GenerationSettings | None = None) -> ModelRecord | None:
        """The model to (re)load before sending: the chosen one when none is loaded, or the loaded one when
        the conversation asks for another context length than it was loaded with."""
        loaded = self.engine.loaded
        if loaded is None:
            return self.loader.loading or self.view.model_bar.selected()
        wanted = min((settings or self.current_settings()).context_length, loaded.trained_context_length)
        if wanted == loaded.context_length:
            return None
        return self._loaded_record()

    def _loaded_record(self) -> ModelRecord | None:
        loaded = self.engine.loaded
        return next((m for m in self.library_model.items() if same_model(m.path, loaded.path)), None) \
            if loaded is not None else None

    def _dispatch(self, pending: PendingSend) -> None:
        if pending.conversation_id is None:
            self.new_conversation(then_send=pending.text)
        else:
            self._start_send(pending.conversation_id, pending.text)

    def _send_pending(self, pending: PendingSend) -> None:
        """Its model has loaded: the message goes to the conversation it was written in."""
        self._update_turns()
        if pending.conversation_id is None or self.conversations.row_of(pending.conversation_id) >= 0 \
                or (self.current is not None and self.current.id == pending.conversation_id):
            self._dispatch(pending)
        else:  # that conversation was deleted while the model loaded
            self.view.restore_draft(pending.text)
            self._next()

    def _pending_dropped(self, pending: PendingSend | None, _reason: str | None) -> None:
        """The model will not load: the message that waited for it goes back into its box, and so do the
        messages waiting behind it."""
        if pending is not None:
            self._give_back(pending)
        self._return_queue()

    def _engine_stopped(self) -> None:
        """The engine ended unexpectedly: what waited for an answer goes back into the boxes, and is not sent to
        a model that is gone."""
        self._starting = None
        self._return_queue()

    def chat_about(self, text: str) -> None:
        """A new conversation that starts with ``text`` (a task's result), sent as if typed: the model answers
        it, so the conversation goes on as any other (some chat templates refuse two user turns in a row)."""
        if self._engaged():
            self.showRequested.emit()
            self.failed.emit(HearthError("Wait for the current answer to finish, then open the result in a chat."))
            return
        if self._model_to_load() is None and self.engine.loaded is None:
            self.failed.emit(HearthError(NO_MODEL))
            return
        self.current = None
        self.sidebar.list.clearSelection()
        self.view.show_empty("")
        self.showRequested.emit()
        self.send(text)

    def stop_answer(self) -> None:
        """Stop (Esc) acts on the chat on screen only: its answer stops, or its message waiting for the model or
        for another chat's answer comes back into the box."""
        shown = self.current.id if self.current else None
        pending = self.loader.pending
        if pending is not None and pending.conversation_id == shown:
            self.loader.take_pending()
            self.view.restore_draft(pending.text)
            self._next()
        elif shown is not None and self.runner.streaming_conversation() == shown:
            self.runner.stop()
        else:
            self._unqueue()

    def stop_other(self) -> None:
        """"Stop that answer" in a chat whose message waits: the answer being written elsewhere stops (or the
        message waiting for the model goes back to its chat), and the waiting message goes next."""
        pending = self.loader.pending
        if pending is not None:
            self.loader.take_pending()
            self._give_back(pending)
            self._next()
        elif self.runner.busy:
            self.runner.stop()

    def _start_send(self, conversation_id: int, text: str) -> None:
        self._start(conversation_id, self.runner.send, text)

    def _start(self, conversation_id: int, work: Callable[..., None], text: str | None = None,
               undone: Callable[[], None] | None = None) -> None:
        """Have the runner start an answer off the GUI thread; until the answer starts, the chat counts as
        answered (``_starting``), so that nothing else starts meanwhile. ``undone``: called if it cannot start."""
        self._starting = conversation_id
        self._update_turns()

        def started(_: object) -> None:
            self._starting = None
            self._update_turns()

        def failed(error: BaseException) -> None:
            self._starting = None
            if text is not None:
                self._give_back(PendingSend(conversation_id, text))
            if undone is not None:
                undone()
            self.failed.emit(error)
            self._next()

        args = (conversation_id, text) if text is not None else (conversation_id,)
        BackgroundOp(self, work, *args).success(started).failure(failed).run()

    def regenerate(self) -> None:
        self._answer_again(self.runner.regenerate, "Load a model first, then regenerate.")

    def continue_answer(self) -> None:
        """Go on with the last answer, cut short by Stop, by its length limit or by the app or engine stopping."""
        self._answer_again(self.runner.continue_answer, "Load a model first, then continue the answer.")

    def _answer_again(self, work: Callable[[int], None], no_model: str,
                      undone: Callable[[], None] | None = None) -> bool:
        """Starts ``work`` on the conversation shown; False (and the window says why) when it cannot start now."""
        if self.current is None:
            return False
        if self._engaged():
            if self._answering() != self.current.id:
                self.view.show_banner(f"The model is writing an answer in “{self._title(self._answering())}”: it "
                                      "writes one at a time. Wait for it, or stop it there.")
            return False
        if self.engine.loaded is None:
            self.failed.emit(HearthError(no_model))
            return False
        self.view.show_banner("")
        self._start(self.current.id, work, undone=undone)
        return True

    # --- versions: an edited question, a regenerated answer ---

    def edit_message(self, message_id: int, text: str) -> None:
        """An edited question, sent as a new version of it; the old one and what followed stay a click away."""
        def edit(conversation_id: int) -> None:
            self.runner.edit(conversation_id, message_id, text)

        def undone() -> None:
            view = self.view.message_view(message_id)
            if view is not None:
                view.edit_failed()

        if not self._answer_again(edit, "Load a model first, then send the edited message.", undone):
            undone()

    def show_version(self, message_id: int, step: int) -> None:
        """‹ or ›: the version before or after, with the branch that follows it, opened where it is."""
        if self.current is None:
            return
        conversation_id = self.current.id
        if self._answering() == conversation_id:
            self.view.show_banner("An answer is being written here. Stop it, or wait for it, to switch versions.")
            return

        def read() -> Page[MessageRecord]:
            chosen = self.runner.show_version(message_id, step)
            return self.store.message_page_from(conversation_id, chosen.id)

        def show(page: Page[MessageRecord]) -> None:
            if self.current is not None and self.current.id == conversation_id and page.items:
                self.view.show_conversation(conversation_id, page.items, older=page.more, reveal=page.items[0].id,
                                            mark=False)
                self._update_turns()
                self._count()

        BackgroundOp(self, read).success(show).failure(self.failed.emit).run()

    def _answer_started(self, event: AnswerStarted) -> None:
        self._starting = None
        if self.view.conversation_id == event.conversation_id:
            self.view.answer_started(event.user_message, event.assistant_message, event.continued, event.replaced)
        self._update_turns()
        self.refresh_conversation(event.conversation_id)

    def _answer_delta(self, conversation_id: int, message_id: int, text: str) -> None:
        if self.view.conversation_id == conversation_id:
            self.view.answer_delta(message_id, text)

    def _context_notice(self, event: ContextNotice) -> None:
        if self.view.conversation_id == event.conversation_id:
            n = event.dropped_messages
            self.view.answer_notice(
                event.message_id, context_trimmed(n))

    def _answer_finished(self, event: AnswerFinished) -> None:
        shown = self.view.conversation_id == event.conversation_id
        if shown:
            self.view.answer_finished(event.message)
            if event.error:
                self.view.show_banner(event.error)
        if event.message.finish_reason == FinishReason.ERROR and event.message.error:
            self.statusMessage.emit(event.message.error, 8000)
            if CHATML_OFFER in event.message.error and self.engine.loaded is not None:
                self.view.model_bar.offer_chatml(True)
        self.refresh_conversation(event.conversation_id)
        self._next()
        if shown:
            self._count()

    # --- deleting one message ---

    def delete_message(self, message_id: int) -> None:
        """One message deleted, with Undo. A message with other versions goes with what followed it, and a version
        beside it is shown (``HistoryStore.delete_message``)."""
        view = self.view.message_view(message_id)
        if view is None:
            return
        from app.chat import title_from  # here: the first paint does not wait for the engine's modules

        words = title_from(view.text) or ("an empty answer" if view.role == "assistant" else "an empty message")
        branched = view.version_count > 1
        if branched:
            words = f"version {view.version} of {view.version_count}: {words}"
        self.message_undo.delete((message_id, branched, self.view.conversation_id), message_id, words)

    def _message_deleted(self, deleted: tuple[int, bool, int | None]) -> None:
        message_id, branched, conversation_id = deleted
        if branched and self.current is not None and self.current.id == conversation_id:
            self._open(self.current, again=True)  # another version, and what followed it, in its place
            return
        self.view.remove_message(message_id)
        self._count()

    def _message_restored(self, restored: tuple[int, bool, int | None]) -> None:
        message_id, branched, conversation_id = restored
        shown = self.current.id if self.current else None
        if branched and shown is not None and shown == conversation_id:
            self.open_found(shown, message_id, mark=False)
            return

        def show(message: MessageRecord) -> None:
            if self.view.conversation_id == shown == message.conversation_id:
                self.view.insert_message(message)
                self._count()

        if shown is not None:
            BackgroundOp(self, self.store.get_message, message_id).success(show).failure(self.failed.emit).run()

    def use_chatml(self) -> None:
        """The loaded model's chat template failed: its prompts are written in ChatML from now on, and the answer
        that failed is asked again."""
        self.view.model_bar.offer_chatml(False)
        loaded = self.engine.loaded
        if loaded is None:
            return
        self.engine.use_chatml()
        if loaded.path not in self.settings.chatml_models:  # and each time it is loaded again
            self.settings.chatml_models.append(loaded.path)
            self.settingsChanged.emit()
        self.view.model_bar.chatml_chosen(loaded.context_length)
        self.statusMessage.emit("This model's conversations are written in ChatML from now on.", 6000)
        self.regenerate()

    def use_own_template(self) -> None:
        """Back to the model's own chat template: it is loaded again without ChatML."""
        loaded = self.engine.loaded
        if loaded is None:
            return
        if loaded.path in self.settings.chatml_models:
            self.settings.chatml_models.remove(loaded.path)
            self.settingsChanged.emit()
        record = self._loaded_record()
        if record is not None:
            self.load_model(record)

    # --- the model ---

    def set_models(self, models: list[ModelRecord], select_id: int | None = None) -> None:
        self.view.model_bar.set_models(models, select_id)

    def load_model(self, record: ModelRecord) -> None:
        """Load ``record`` with the current conversation's context length."""
        self.loader.load(record, self.current_settings().context_length, for_conversation=True)

    def load_selected(self) -> None:
        record = self.view.model_bar.selected()
        if record is not None and self.loader.loading is None:
            self.load_model(record)

    def chat_with(self, record: ModelRecord) -> None:
        """"Chat with this model" in the library: chosen, loaded unless it is, and a conversation to write in."""
        self.view.model_bar.select(record.id)
        self.showRequested.emit()
        loaded = self.engine.loaded
        if loaded is None or not same_model(record.path, loaded.path):
            self.load_model(record)
        if self.current is None:
            self.new_conversation()

    def _checking(self, name: str) -> None:
        self.view.show_banner("")
        self.view.model_bar.checking(name)

    def _load_started(self, event: p.LoadStarted) -> None:
        """Every load shows, also the one the engine starts by itself after a forced stop."""
        if is_remote(event.path):
            self.view.model_bar.loading_started(parse(event.path).short_model)
            return
        record = next((m for m in self.library_model.items() if Path(m.path).resolve() == Path(event.path)), None)
        self.view.model_bar.loading_started(record.name if record else Path(event.path).stem)

    # --- conversation settings ---

    def current_settings(self) -> GenerationSettings:
        if self.current is not None:
            return GenerationSettings.from_dict(self.current.settings)
        return self.settings.generation

    def edit_settings(self) -> None:
        dialog = ConversationSettingsDialog(self.current_settings(), self._window,
                                            presets=self.settings.sampler_presets)
        dialog.presetsChanged.connect(self._presets_changed)
        if dialog.exec() != ConversationSettingsDialog.DialogCode.Accepted:
            return
        chosen = dialog.result_settings()
        if dialog.make_default.isChecked() or self.current is None:
            self.settings.generation = chosen
            self.settingsChanged.emit()
        if self.current is None:
            return
        old_context = self.current_settings().context_length
        conversation_id = self.current.id

        def saved(_: object) -> None:
            if self.current is not None and self.current.id == conversation_id:
                self.current = self.store_record_with(self.current, chosen)
            loaded = self.engine.loaded
            if loaded is not None and chosen.context_length != old_context and not self.runner.busy:
                record = self.view.model_bar.selected()
                if record is not None and same_model(record.path, loaded.path):
                    self.load_model(record)
            self.statusMessage.emit("Settings saved for this conversation.", 4000)
            self._count()

        BackgroundOp(self, self.store.update_conversation, conversation_id, settings=chosen.to_dict()) \
            .success(saved).failure(self.failed.emit).run()

    def _presets_changed(self, presets: dict[str, dict[str, float]]) -> None:
        self.settings.sampler_presets = presets
        self.settingsChanged.emit()

    @staticmethod
    def store_record_with(record: ConversationRecord, settings: GenerationSettings) -> ConversationRecord:
        return replace(record, settings=settings.to_dict(), system_prompt=settings.system_prompt)

    def use_context(self, context_length: int) -> None:
        """The conversation takes the context that fits, so its next message does not ask to reload."""
        if self.current is None:
            return
        chosen = replace(self.current_settings(), context_length=context_length)
        self.current = self.store_record_with(self.current, chosen)
        BackgroundOp(self, self.store.update_conversation, self.current.id, settings=chosen.to_dict()) \
            .failure(self.failed.emit).run()

    # --- the text size of the conversation ---

    def zoom(self, steps: int) -> None:
        """Larger (``steps`` > 0) or smaller text in the messages; 0 back to the app's size. Kept for next time."""
        percent = zoomed(self.settings.chat_zoom, steps) if steps else 100
        self.view.set_zoom(percent)
        self.statusMessage.emit(f"Conversation text at {percent}%.", 2000)
        if percent != self.settings.chat_zoom:
            self.settings.chat_zoom = percent
            self.settingsChanged.emit()
