"""The composer's context meter: how much of the model's context the conversation and the message being written
take, and, before it is sent, whether that message can be answered at all.

The engine worker counts (it has the tokenizer), beside any answer it is writing (``protocol.CountTokens``); the
conversation is read from history off the GUI thread; the count comes back as the bridge's ``tokensCounted``. The
figures are the worker's own estimate for fitting a prompt into its context, so what the meter calls too long is
what the worker would refuse.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject

from app.words import too_long_for_context
from ui.chat.chat_view import ChatView, MeterLevel
from ui.qt.background import BackgroundOp

if TYPE_CHECKING:
    from app.chat import ChatRunner
    from app.engine import EngineClient
    from app.engine import protocol as p
    from app.settings import GenerationSettings
    from ui.qt.bridge import EngineBridge

log = logging.getLogger(__name__)

NEARLY_FULL = 0.8  # of the room for the conversation: the meter warns from here on


class ContextMeter(QObject):
    def __init__(self, view: ChatView, parent: QObject) -> None:
        super().__init__(parent)
        self._view = view
        self._asking = 0  # the newest count asked for; an older one that answers later is not shown
        self._asked: tuple[int, int | None, str] | None = None  # its request id, conversation and message
        self._early: dict[int, p.TokensCounted] = {}  # counts that came back before their request id did
        self._last: tuple[int | None, str, p.TokensCounted] | None = None  # what the meter shows

    def attach(self, runner: ChatRunner, engine: EngineClient, bridge: EngineBridge) -> None:
        self.runner, self.engine = runner, engine
        bridge.tokensCounted.connect(self._counted)
        bridge.modelUnloaded.connect(self.clear)
        bridge.workerExited.connect(self.clear)

    def count(self, conversation_id: int | None, draft: str, settings: GenerationSettings) -> None:
        """Count the conversation (``None``: a chat not made yet) with ``draft`` as its next message, at the
        context length it will be answered with."""
        loaded = self.engine.loaded
        if loaded is None:
            self.clear()
            return
        settings = replace(settings, context_length=min(settings.context_length, loaded.trained_context_length))
        self._asking += 1
        asking = self._asking

        def asked(request_id: int | None) -> None:
            if asking != self._asking:
                return
            if request_id is None:
                self.clear()
                return
            self._asked = (request_id, conversation_id, draft)
            early, self._early = self._early.pop(request_id, None), {}
            if early is not None:
                self._counted(early)

        BackgroundOp(self, self.runner.count, conversation_id, draft, settings).success(asked) \
            .failure(lambda error: log.warning("counting tokens failed: %s", error)).run()

    def clear(self, *_: object) -> None:
        self._asked = self._last = None
        self._view.hide_meter()

    def too_long(self, conversation_id: int | None, text: str) -> str:
        """Why ``text`` cannot be sent in that conversation, when the meter has counted it: else empty (the
        runner checks again before it saves anything)."""
        last = self._last
        if last is None or last[0] != conversation_id or last[1] != text.strip() or last[2].fits:
            return ""
        return too_long_for_context(last[2].least, last[2].room)

    def _counted(self, counted: p.TokensCounted) -> None:
        asked = self._asked
        if asked is None or asked[0] != counted.request_id:
            if len(self._early) > 16:  # the runner's own checks before sending come back here too
                self._early.clear()
            self._early[counted.request_id] = counted
            return
        _, conversation_id, draft = asked
        if not counted.context_length:
            self.clear()
            return
        self._last = (conversation_id, draft, counted)
        tokens, room, context = counted.tokens, counted.room, counted.context_length
        kept = f"{context - room:,} tokens are kept for the answer."
        if draft and not counted.fits:
            level, note, explanation = MeterLevel.OVER, "too long to send", too_long_for_context(counted.least, room)
        elif tokens > room:
            level, note = MeterLevel.FULL, "the oldest messages are left out"
            explanation = (f"The conversation is longer than the model can read at once: the oldest messages are "
                           f"left out of the next answer. {kept}")
        elif tokens > room * NEARLY_FULL:
            level, note = MeterLevel.FULL, "nearly full"
            explanation = (f"The conversation nearly fills what the model can read at once; soon the oldest "
                           f"messages will be left out of its answers. {kept}")
        else:
            level, note = MeterLevel.OK, ""
            explanation = (f"The conversation{' and your message' if draft else ''} take about {tokens:,} of the "
                           f"{context:,} tokens the model can read at once. {kept}")
        self._view.show_meter(tokens, context, level, note, explanation)
