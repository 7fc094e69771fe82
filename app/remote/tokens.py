"""Counting and cutting text for a model on another computer, where the tasks need a tokenizer (``Model.tokenize``
and ``detokenize``) and only the server has the model's own.

``ServerTokens`` asks the server (llama-server, vLLM and llama-cpp-python's server each have an endpoint) and keeps
what it was told, since planning asks about the same text again and again while a person edits a task, and cutting
a document looks at single tokens around each cut. ``EstimatedTokens`` is for servers without one (Ollama, LM
Studio): a local count meant to be at least the real one, so a part sized with it is never over the context.
"""

from __future__ import annotations

import re
from collections import OrderedDict

from app.remote.server import RemoteServer

KEPT_TEXTS = 512  # tokenized texts remembered
# One estimated token: a character outside ASCII (CJK, accents: a real tokenizer often needs one or two for it),
# else at most three letters or digits, or one other character, with the spaces before it. English words average
# about 1.3 real tokens and 2 of these; the margin covers code and unusual words.
_PIECE = re.compile(r"\s*(?:[^\x00-\x7f]|[A-Za-z0-9]{1,3}|[^\sA-Za-z0-9])|\s+")
ESTIMATE_CONTEXT_SHARE = 0.9  # of the context the server states, the part an estimate may plan with


class ServerTokens:
    def __init__(self, server: RemoteServer, model: str) -> None:
        self._server, self._model = server, model
        self._texts: OrderedDict[str, list[int]] = OrderedDict()
        self._pieces: dict[int, str] = {}

    def available(self) -> bool:
        return self.tokenize("Hello") is not None

    def tokenize(self, text: str) -> list[int] | None:
        kept = self._texts.get(text)
        if kept is not None:
            self._texts.move_to_end(text)
            return kept
        tokens = self._server.tokenize(self._model, text)
        if tokens is None:
            return None
        self._texts[text] = tokens
        if len(self._texts) > KEPT_TEXTS:
            self._texts.popitem(last=False)
        return tokens

    def detokenize(self, tokens: list[int]) -> str:
        if len(tokens) == 1 and tokens[0] in self._pieces:
            return self._pieces[tokens[0]]
        text = self._server.detokenize(self._model, tokens)
        if text is None:
            raise ValueError("the server's tokenizer stopped answering")
        if len(tokens) == 1:
            self._pieces[tokens[0]] = text
        return text


class EstimatedTokens:
    """Pieces of text numbered as they are first seen, so that ``detokenize`` gives back the exact text."""

    def __init__(self) -> None:
        self._ids: dict[str, int] = {}
        self._pieces: list[str] = []

    def tokenize(self, text: str) -> list[int]:
        tokens = []
        for match in _PIECE.finditer(text):
            piece = match.group()
            token = self._ids.get(piece)
            if token is None:
                token = self._ids[piece] = len(self._pieces)
                self._pieces.append(piece)
            tokens.append(token)
        return tokens

    def detokenize(self, tokens: list[int]) -> str:
        return "".join(self._pieces[token] for token in tokens)
