"""Which messages of a conversation go into a prompt, and how much of the context they take: the same rule in
the engine worker (over llama.cpp's tokenizer) and for a remote server (over its tokenizer, or an estimate).

``llm`` is anything with llama-cpp-python's ``tokenize(bytes, add_bos=, special=)`` and ``n_ctx()``.
"""

from __future__ import annotations

from typing import Any

from app.engine import protocol as p

TRIM_STEPS = 4  # the kept history is cut in steps of a quarter of the room (see ``fit_messages``)


def token_estimate(llm: Any, messages: list[dict[str, str]]) -> int:
    """Tokens the formatted prompt will take: each message's text plus a margin for the template."""
    return 16 + sum(_message_estimate(llm, message) for message in messages)


def _message_estimate(llm: Any, message: dict[str, str]) -> int:
    return len(llm.tokenize(message["content"].encode("utf-8"), add_bos=False, special=True)) + 8


def _room(n_ctx: int, max_tokens: int) -> int:
    return n_ctx - min(max_tokens, n_ctx // 2)


def count_tokens(llm: Any, command: p.CountTokens) -> p.TokensCounted:
    """``CountTokens`` by the estimate that fits an answer's prompt (``fit_messages``): the fewest messages it
    keeps are the system prompt and the newest message."""
    messages = command.messages
    n_ctx = command.context_length or int(llm.n_ctx())
    sizes = [_message_estimate(llm, message) for message in messages]
    head = 1 if len(messages) > 1 and messages[0]["role"] == "system" else 0
    least = 16 + sum(sizes[:head]) + (sizes[-1] if len(sizes) > head else 0)
    return p.TokensCounted(command.request_id, tokens=16 + sum(sizes), least=least, context_length=n_ctx,
                           room=_room(n_ctx, command.max_tokens))


def fit_messages(llm: Any, messages: list[dict[str, str]], max_tokens: int,
                  n_ctx: int | None = None) -> list[dict[str, str]] | None:
    """Drop the oldest turns (never the system prompt or the newest message) until the prompt fits in
    ``n_ctx`` (the loaded context unless given).

    Room is kept for the answer: ``max_tokens``, but at most half the window, so a long conversation with
    a large answer budget still gets answered.

    The cut moves in steps of a quarter of the room, not one turn at a time: the history left out is the
    fewest oldest turns that make up a whole number of steps. So the kept history starts at the same turn for
    several turns in a row, and the model's cache of the conversation (usable only while the prompt's start
    stays the same) is reused instead of read again after every answer. It depends on the messages alone, so
    every worker cuts a conversation at the same turn and gives the same answer.
    """
    room = _room(n_ctx or int(llm.n_ctx()), max_tokens)
    sizes = [_message_estimate(llm, message) for message in messages]
    total = 16 + sum(sizes)
    if total <= room:
        return list(messages)
    step = max(room // TRIM_STEPS, 1)
    excess = total - room
    wanted = -(-excess // step) * step
    head = 1 if messages[0]["role"] == "system" else 0
    candidates: list[tuple[list[dict[str, str]], int]] = []  # each cut, with the estimated tokens it drops
    fitted = drop_oldest_turn(list(messages))
    while fitted is not None:
        start = len(messages) - (len(fitted) - head)  # fitted is messages[:head] + messages[start:]
        candidates.append((fitted, sum(sizes[head:start])))
        fitted = drop_oldest_turn(fitted)
    for enough in (wanted, excess):
        for candidate, dropped in candidates:
            if dropped >= enough:
                return candidate
    return None


def drop_oldest_turn(messages: list[dict[str, str]]) -> list[dict[str, str]] | None:
    """Remove the oldest user turn and the replies to it, keeping the conversation starting with a user."""
    head = messages[:1] if messages and messages[0]["role"] == "system" else []
    rest = messages[len(head):]
    if len(rest) <= 1:
        return None
    rest = rest[1:]
    while len(rest) > 1 and rest[0]["role"] != "user":
        rest = rest[1:]
    return head + rest
