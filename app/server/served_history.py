""""Keep API conversations in history": an answer the server gave, kept as a conversation of the window's history
(the request's messages, then the answer with its figures), for a person who wants to read later what their
programs asked. Off unless they turn it on: served requests are otherwise never saved.

Each request becomes its own conversation: an API client sends the whole conversation every time, and nothing in
the request says which earlier one it continues.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from app.chat import title_from
from app.engine import protocol as p
from app.history import HistoryStore
from app.server.served_engine import Ask
from app.settings import GenerationSettings

log = logging.getLogger(__name__)

TITLE_PREFIX = "API: "  # how a kept request is told apart in the conversation list


def history_keeper(store: HistoryStore, wanted: Callable[[], bool],
                   kept: Callable[[int], None] = lambda _id: None) -> Callable[[Ask, p.Finished, str], None]:
    """The ``keep`` of a ``ServedEngine``: while ``wanted()``, each answered chat request is saved; ``kept`` is told
    the new conversation's id."""

    def keep(ask: Ask, finished: p.Finished, model_name: str) -> None:
        if not wanted() or ask.raw_prompt is not None:  # a completion has no conversation to keep
            return
        system = "\n\n".join(m["content"] for m in ask.messages if m["role"] == "system")
        turns = [m for m in ask.messages if m["role"] != "system"]
        first = next((m["content"] for m in turns if m["role"] == "user"), "") or "A request"
        settings = GenerationSettings(system_prompt=system, temperature=ask.temperature, top_p=ask.top_p,
                                      max_tokens=ask.max_tokens, seed=ask.seed)
        conversation = store.create_conversation(TITLE_PREFIX + title_from(first), settings.to_dict(),
                                                 model_name=model_name)
        for message in turns:
            store.add_message(conversation.id, message["role"], message["content"],
                              model_name=model_name if message["role"] == "assistant" else None)
        m = finished.metrics
        store.add_message(conversation.id, "assistant", finished.text, model_name=model_name,
                          finish_reason=finished.finish_reason, prompt_tokens=m.prompt_tokens or None,
                          completion_tokens=m.completion_tokens, ttft_s=m.ttft_s, tokens_per_s=m.tokens_per_s)
        kept(conversation.id)

    return keep
