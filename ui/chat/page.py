"""The Chats page: the conversations in the sidebar, the one open in the page, sending a message and following the
answer as it streams, and each conversation's settings.

Every database call goes through ``BackgroundOp`` and every model call through the engine client; the answer comes
back as the bridge's signals. A message sent while its model is not loaded yet waits in the ``ModelLoader``, which
loads the model and hands the message back when it is ready. ``ChatView`` and ``ConversationsView`` are the page's
layout; this is what it does. Nothing here waits.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtWidgets import QInputDialog, QPushButton, QWidget

from app.errors import CHATML_OFFER, HearthError
from app.history import ConversationRecord, ModelRecord
from app.outcomes import FinishReason
from app.settings import GenerationSettings, Settings
from app.words import context_trimmed
from ui.chat.chat_view import ChatView
from ui.chat.conversations_view import ConversationsView
from ui.chat.settings_dialog import ConversationSettingsDialog
from ui.model_loader import PendingSend
from ui.qt.background import BackgroundOp
from ui.qt.qt_models import ConversationListModel, LibraryModel

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
NO_MODEL = "Add a model first: press “Add a model from disk…” above, or open Models on the left."


class ChatPage(QObject):
    """Made with the window, so that it paints at once; ``attach`` gives it the services once they are built."""

    showRequested = Signal()  # the chat page is to be on screen
    failed = Signal(object)  # an error, for the window to show
    statusMessage = Signal(str, int)  # text, milliseconds: for the window's status bar
    settingsChanged = Signal()  # the default conversation settings changed

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
        self.conversations = ConversationListModel()
        self.sidebar = ConversationsView(self.conversations)
        self.view = ChatView()
        self.undo_button = QPushButton("Undo")  # in the window's status bar, while a deletion can be undone
        self.undo_button.hide()
        self._undo_timer = QTimer(self, singleShot=True, interval=UNDO_SECONDS * 1000)
        self._undo_timer.timeout.connect(self._hide_undo)

    def attach(self, services: Services, bridge: EngineBridge, loader: ModelLoader,
               library_model: LibraryModel) -> None:
        self.store, self.runner, self.engine = services.store, services.runner, services.engine
        self.loader, self.library_model = loader, library_model
        side, view, bar = self.sidebar, self.view, self.view.model_bar
        side.newRequested.connect(self.new_conversation)
        side.openRequested.connect(self._conversation_chosen)
        side.renameRequested.connect(self.rename)
        side.deleteRequested.connect(self.delete)
        view.sendRequested.connect(self.send)
        view.draftChanged.connect(self._read_ahead)
        view.stopRequested.connect(self.stop_answer)
        view.regenerateRequested.connect(self.regenerate)
        bar.loadRequested.connect(self.load_model)
        bar.unloadRequested.connect(loader.unload)
        bar.settingsRequested.connect(self.edit_settings)
        bar.chatmlRequested.connect(self.use_chatml)
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
        loader.notLoaded.connect(bar.not_loaded)
        loader.sendReady.connect(self._send_pending)
        loader.dropped.connect(self._pending_dropped)
        loader.engineStopped.connect(lambda: view.set_busy(False))
        loader.contextChosen.connect(self.use_context)

    # --- conversations ---

    def refresh_conversations(self, select_first: bool = False, select_id: int | None = None) -> None:
        def show(items: list[ConversationRecord]) -> None:
            keep = select_id if select_id is not None else (self.current.id if self.current else None)
            self.conversations.set_items(items)
            self.sidebar.no_chats.setVisible(not items)
            row = self.conversations.row_of(keep) if keep is not None else -1
            if row < 0 and select_first and items:
                row = 0
            if row < 0:
                if not items:
                    self.current = None
                    self.view.show_empty("Start a new chat with the button on the left, or just type below.")
                return
            record = self.conversations.record(row)
            self.sidebar.list.setCurrentIndex(self.conversations.index(row))  # opens it if it is new
            if record is not None and self.current is not None and self.current.id == record.id:
                self.current = record  # the fresh copy: title and settings as saved

        BackgroundOp(self, self.store.list_conversations).success(show).failure(self.failed.emit).run()

    def _conversation_chosen(self, record: ConversationRecord) -> None:
        if self.current is None or record.id != self.current.id:
            self._open(record)

    def _open(self, record: ConversationRecord) -> None:
        self.current = record
        self.showRequested.emit()

        def show(messages: list[Any]) -> None:
            if self.current is not None and self.current.id == record.id:
                self.view.show_conversation(record.id, messages)
                self.view.set_busy(self.runner.busy)

        BackgroundOp(self, self.store.messages, record.id).success(show).failure(self.failed.emit).run()

    def new_conversation(self, then_send: str | None = None) -> None:
        self.showRequested.emit()
        defaults = self.settings.generation.to_dict()

        def created(record: ConversationRecord) -> None:
            self.current = record
            self.view.show_conversation(record.id, [])
            self.view.composer.setFocus()
            self.refresh_conversations(select_id=record.id)
            if then_send:
                self._start_send(record.id, then_send)

        BackgroundOp(self, self.store.create_conversation, "New chat", defaults).success(created) \
            .failure(self.failed.emit).run()

    def rename_current(self) -> None:
        if self.current is not None:
            self.rename(self.current)

    def rename(self, record: ConversationRecord) -> None:
        title, ok = QInputDialog.getText(self._window, "Rename conversation", "Title:", text=record.title)
        title = title.strip()
        if ok and title:
            BackgroundOp(self, self.store.rename_conversation, record.id, title) \
                .success(lambda _: self.refresh_conversations()).failure(self.failed.emit).run()

    def delete_current(self) -> None:
        if self.current is not None:
            self.delete(self.current)

    def delete(self, record: ConversationRecord) -> None:
        if self.runner.streaming_conversation() == record.id:
            self.failed.emit(HearthError("This conversation is still being answered. Stop the answer first."))
            return

        def deleted(_: object) -> None:
            self._deleted.append(record.id)
            if self.current is not None and self.current.id == record.id:
                self.current = None
            self.conversations.remove(record.id)
            self.statusMessage.emit(f"Deleted “{record.title}”.", UNDO_SECONDS * 1000)
            self.undo_button.show()
            self._undo_timer.start()
            self.refresh_conversations(select_first=True)

        BackgroundOp(self, self.runner.delete_conversation, record.id).success(deleted) \
            .failure(self.failed.emit).run()

    def _undo_delete(self) -> None:
        if not self._deleted:
            return
        conversation_id = self._deleted.pop()
        self._hide_undo()
        BackgroundOp(self, self.store.restore_conversation, conversation_id) \
            .success(lambda _: self.refresh_conversations(select_id=conversation_id)) \
            .failure(self.failed.emit).run()
        self.statusMessage.emit("Conversation restored.", 4000)

    def _hide_undo(self) -> None:
        self.undo_button.setVisible(False)

    # --- sending ---

    def send(self, text: str) -> None:
        self.view.show_banner("")
        if self.runner.busy or self.loader.pending is not None:
            self.view.restore_draft(text)
            return
        conversation_id = self.current.id if self.current else None
        record = self._model_to_load()
        if record is not None:
            self.loader.hold(PendingSend(conversation_id, text))
            self.view.set_busy(True)
            if self.loader.loading is None:
                self.load_model(record)
            return
        if self.engine.loaded is None:
            self.view.restore_draft(text)
            self.failed.emit(HearthError(NO_MODEL))
            return
        self._dispatch(PendingSend(conversation_id, text))

    def _read_ahead(self, text: str) -> None:
        """The model reads the message being typed, so that sending it starts the answer sooner
        (``ChatRunner.read_ahead``); a failure here costs only that head start."""
        if self.current is None or self.runner.busy or self.loader.pending is not None or self.engine.loaded is None:
            return
        BackgroundOp(self, self.runner.read_ahead, self.current.id, text) \
            .failure(lambda error: log.warning("reading ahead failed: %s", error)).run()

    def _model_to_load(self) -> ModelRecord | None:
        """The model to (re)load before sending: the chosen one when none is loaded, or the loaded one when
        this conversation asks for another context length than it was loaded with."""
        loaded = self.engine.loaded
        if loaded is None:
            return self.loader.loading or self.view.model_bar.selected()
        wanted = min(self.current_settings().context_length, loaded.trained_context_length)
        if wanted == loaded.context_length:
            return None
        return next((m for m in self.library_model.items() if Path(m.path).resolve() == Path(loaded.path)), None)

    def _dispatch(self, pending: PendingSend) -> None:
        if pending.conversation_id is None:
            self.new_conversation(then_send=pending.text)
        else:
            self._start_send(pending.conversation_id, pending.text)

    def _send_pending(self, pending: PendingSend) -> None:
        """Its model has loaded: the message goes to the conversation it was written in."""
        self.view.set_busy(False)
        if pending.conversation_id is None or self.conversations.row_of(pending.conversation_id) >= 0 \
                or (self.current is not None and self.current.id == pending.conversation_id):
            self._dispatch(pending)
        else:  # that conversation was deleted while the model loaded
            self.view.restore_draft(pending.text)

    def _pending_dropped(self, pending: PendingSend | None, _reason: str | None) -> None:
        """The model will not load: the message that waited for it goes back into the box."""
        self.view.set_busy(self.runner.busy)
        if pending is not None:
            self.view.restore_draft(pending.text)

    def chat_about(self, text: str) -> None:
        """A new conversation that starts with ``text`` (a task's result), sent as if typed: the model answers
        it, so the conversation goes on as any other (some chat templates refuse two user turns in a row)."""
        if self.runner.busy or self.loader.pending is not None:
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
        """Stop the answer; a message still waiting for its model goes back into the box instead."""
        pending = self.loader.take_pending()
        if pending is not None:
            self.view.set_busy(False)
            self.view.restore_draft(pending.text)
            return
        self.runner.stop()

    def _start_send(self, conversation_id: int, text: str) -> None:
        self.view.set_busy(True)

        def failed(error: BaseException) -> None:
            self.view.set_busy(self.runner.busy)
            self.view.restore_draft(text)
            self.failed.emit(error)

        BackgroundOp(self, self.runner.send, conversation_id, text).failure(failed).run()

    def regenerate(self) -> None:
        if self.loader.pending is not None or self.view.is_busy():
            return
        if self.current is None or self.runner.busy or self.engine.loaded is None:
            if self.engine.loaded is None and self.current is not None:
                self.failed.emit(HearthError("Load a model first, then regenerate."))
            return
        self.view.set_busy(True)

        def failed(error: BaseException) -> None:
            self.view.set_busy(False)
            self.failed.emit(error)

        BackgroundOp(self, self.runner.regenerate, self.current.id).failure(failed).run()

    def _answer_started(self, event: AnswerStarted) -> None:
        self.view.set_busy(True)
        if self.view.conversation_id == event.conversation_id:
            self.view.answer_started(event.user_message, event.assistant_message)
        self.refresh_conversations()

    def _answer_delta(self, conversation_id: int, message_id: int, text: str) -> None:
        if self.view.conversation_id == conversation_id:
            self.view.answer_delta(message_id, text)

    def _context_notice(self, event: ContextNotice) -> None:
        if self.view.conversation_id == event.conversation_id:
            n = event.dropped_messages
            self.view.answer_notice(
                event.message_id, context_trimmed(n))

    def _answer_finished(self, event: AnswerFinished) -> None:
        self.view.set_busy(False)
        if self.view.conversation_id == event.conversation_id:
            self.view.answer_finished(event.message)
        if event.message.finish_reason == FinishReason.ERROR and event.message.error:
            self.statusMessage.emit(event.message.error, 8000)
            if CHATML_OFFER in event.message.error and self.engine.loaded is not None:
                self.view.model_bar.offer_chatml(True)
        self.refresh_conversations()

    def use_chatml(self) -> None:
        """The loaded model's chat template failed: its prompts are written in ChatML from now on, and the answer
        that failed is asked again."""
        self.view.model_bar.offer_chatml(False)
        if self.engine.loaded is None:
            return
        self.engine.use_chatml()
        self.statusMessage.emit("This model's conversations are written in ChatML until it is loaded again.", 6000)
        self.regenerate()

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
        if loaded is None or Path(record.path).resolve() != Path(loaded.path):
            self.load_model(record)
        if self.current is None:
            self.new_conversation()

    def _checking(self, name: str) -> None:
        self.view.show_banner("")
        self.view.model_bar.checking(name)

    def _load_started(self, event: p.LoadStarted) -> None:
        """Every load shows, also the one the engine starts by itself after a forced stop."""
        record = next((m for m in self.library_model.items() if Path(m.path).resolve() == Path(event.path)), None)
        self.view.model_bar.loading_started(record.name if record else Path(event.path).stem)

    # --- conversation settings ---

    def current_settings(self) -> GenerationSettings:
        if self.current is not None:
            return GenerationSettings.from_dict(self.current.settings)
        return self.settings.generation

    def edit_settings(self) -> None:
        dialog = ConversationSettingsDialog(self.current_settings(), self._window)
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
                if record is not None and Path(record.path).resolve() == Path(loaded.path):
                    self.load_model(record)
            self.statusMessage.emit("Settings saved for this conversation.", 4000)

        BackgroundOp(self, self.store.update_conversation, conversation_id, settings=chosen.to_dict()) \
            .success(saved).failure(self.failed.emit).run()

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
