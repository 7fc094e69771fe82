"""Cut a document into parts that fit a context window, with the model's own tokenizer.

Parts follow paragraph boundaries; only a paragraph longer than a whole part is cut, at the last sentence
end that keeps the piece within the budget. Cuts are made in token space, so the parts together hold every
token of the document exactly once (``covered == document``), which is what the result reports.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from app.documents.location import span_location
from app.tasks.spec import Passage

Tokenize = Callable[[str], list[int]]
Detokenize = Callable[[list[int]], str]

SEPARATOR = "\n\n"
_SENTENCE_ENDS = (".", "!", "?", "。", "\n", ";", ":")


@dataclass(frozen=True)
class Piece:
    passage: int
    tokens: tuple[int, ...]
    text: str


@dataclass(frozen=True)
class Chunk:
    pieces: tuple[Piece, ...]
    location: str

    @property
    def first(self) -> int:
        return self.pieces[0].passage

    @property
    def last(self) -> int:
        return self.pieces[-1].passage

    @property
    def document_tokens(self) -> int:
        return sum(len(piece.tokens) for piece in self.pieces)

    @property
    def text(self) -> str:
        return SEPARATOR.join(piece.text for piece in self.pieces)


def pieces_of(passages: Sequence[Passage], tokenize: Tokenize, detokenize: Detokenize, budget: int) -> list[Piece]:
    """Each passage as one piece, or cut into pieces of at most ``budget`` tokens when it is longer."""
    if budget < 1:
        raise ValueError("budget must be positive")
    pieces: list[Piece] = []
    for index, passage in enumerate(passages):
        tokens = tokenize(passage.text)
        if len(tokens) <= budget:
            pieces.append(Piece(index, tuple(tokens), passage.text))
            continue
        start = 0
        while start < len(tokens):
            end = _cut(tokens, start, budget, detokenize)
            pieces.append(Piece(index, tuple(tokens[start:end]), detokenize(tokens[start:end]).strip()))
            start = end
    return pieces


def _cut(tokens: list[int], start: int, budget: int, detokenize: Detokenize) -> int:
    """Where a piece starting at ``start`` ends: after the last sentence end in its second half, else at the
    budget."""
    end = min(start + budget, len(tokens))
    if end == len(tokens):
        return end
    for position in range(end, start + budget // 2, -1):
        if detokenize([tokens[position - 1]]).rstrip(" ").endswith(_SENTENCE_ENDS):
            return position
    return end


def pack(pieces: Sequence[Piece], passages: Sequence[Passage], budget: int, separator_tokens: int) -> list[Chunk]:
    """Greedily fill parts of at most ``budget`` tokens (separators between pieces counted) in order."""
    chunks: list[Chunk] = []
    current: list[Piece] = []
    used = 0
    for piece in pieces:
        cost = len(piece.tokens) + (separator_tokens if current else 0)
        if current and used + cost > budget:
            chunks.append(_chunk(current, passages))
            current, used, cost = [], 0, len(piece.tokens)
        current.append(piece)
        used += cost
    if current:
        chunks.append(_chunk(current, passages))
    return chunks


def _chunk(pieces: list[Piece], passages: Sequence[Passage]) -> Chunk:
    return Chunk(tuple(pieces), span_location(list(passages), pieces[0].passage, pieces[-1].passage))


def split(passages: Sequence[Passage], tokenize: Tokenize, detokenize: Detokenize, budget: int) -> list[Chunk]:
    """The document as parts of at most ``budget`` tokens each."""
    separator_tokens = len(tokenize(SEPARATOR))
    return pack(pieces_of(passages, tokenize, detokenize, budget), passages, budget, separator_tokens)


def chunk_tokens(chunk: Chunk, separator_tokens: int) -> int:
    """What the part costs in a prompt: its tokens and the separators between its pieces."""
    return chunk.document_tokens + separator_tokens * (len(chunk.pieces) - 1)
