"""Output that has stopped saying anything, noticed while it is written, so the answer can be stopped with a
sentence instead of being presented as a result.

Small models fall into three failures that no sampler setting prevents for good (the repeat penalty only looks
back 64 tokens): the same words over and over ("Section 30: The Future of Science Fiction / Section 31: The
Future of Science Fiction / …"), the input copied back instead of summarized (a part's "summary" that is its last
section word for word, then the document continued), and numbered sequences that go on past the document (a
40-section report summarized as "Section 42 … Section 80"). ``Watcher`` is fed the text as it streams and says
which of them it sees; the engine worker stops the answer there (``FinishReason.DEGENERATE``).

What must never trip it: lists, tables, code and phrases that are repeated on purpose (a refrain, "Step 1, Step
2"), and a summary that quotes its document sentence by sentence. So each check asks for much more than a
person would write. A repeated stretch must come back three times in a row over 40 tokens (a paragraph, twice),
and numbers in it must stay the same but for one counter (a table's figures, a list of versions, change in more
places); lines that are one line with a counter and one of a few endings must run to eight; fewer than 10
different words in the last 100 is a loop with variations ("1 cup of flour, 1 cup of sugar, 1 cup of flour");
code blocks (between ``` lines) are held to a stricter bar, and links are not words. A restatement is 60 words
of which nearly every six-word run is in the input (or a whole answer of 30 words or more that is): a quoted
sentence is far shorter. A sequence is counted past when the document numbers it (three numbers or more with
few gaps, "Section 1" to "Section 40") and the answer names two numbers beyond its last, or when the answer
numbers a label of its own one by one past the document's longest sequence ("In report 41, …"). Every rule is
tested on real answers and on this repository's own text (tests/app/test_degenerate.py). It is hand-written:
no library watches a token stream for these, and each rule is a few lines over the same tokens.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import re
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum


class Degeneration(StrEnum):
    REPEATING = "repeating"  # the same words over and over
    RESTATING = "restating"  # the input copied back
    COUNTING_PAST = "counting past"  # numbering on past the document's last section (or part, or step)

    @property
    def sentence(self) -> str:
        """Why the answer was stopped, for people: it follows "Stopped: " in the chat, and names a task's part."""
        return _SENTENCES[self]


_SENTENCES = {
    Degeneration.REPEATING: "the model began repeating itself",
    Degeneration.RESTATING: "the model began copying out the text it was given",
    Degeneration.COUNTING_PAST: "the model began numbering sections that are not in the document",
}

# Tokens: a newline, a word, or a run of one punctuation character ("---" is one token, so a table's rule or an
# underline is not a repeat); numbers are compared as "#" so that "Section 30" and "Section 31" repeat.
_TOKEN = re.compile(r"\n|\w+|([^\w\s])\1*")
_LIST_WORDS = frozenset({",", "and", "or", "to", "&", "-", "–"})
_DIGITS = re.compile(r"[0-9]+")
_WORD = re.compile(r"[^\W\d_]+")

MIN_REPEATS = 3  # a stretch repeated twice in a row is often meant ("very, very"); three times with 40 tokens is not
MIN_SPAN = 40  # tokens a repetition must cover; twice that for punctuation alone (a wide table's rule)
CODE_REPEATS, CODE_SPAN = 6, 120  # code repeats itself on purpose (one line per case): a loop there goes on longer
LONGEST_UNIT = 150  # tokens of the longest repeated stretch looked for (a paragraph)
LONG_UNIT = 40  # a stretch this long written twice in a row is a loop already (outside code)
VARIETY_WORDS = 100  # the last words looked at for variety...
VARIETY_FLOOR = 10  # ...of which fewer different ones than this is a loop with variations ("1 cup of flour, 1 cup…")
TEMPLATE_LINES = 8  # lines in a row that are the same line with a counter and a word changed
TEMPLATE_SHARE = 0.6  # of a line's tokens, the start it shares with the line before
RESTATE_WORDS, RESTATE_GRAM, RESTATE_SHARE = 60, 6, 0.85
SHORT_RESTATE_WORDS = 30  # a whole answer shorter than the window is a restatement from this many words
PAST_NUMBERS = 2  # numbers beyond the document's last that make a sequence go on past it
SEQUENCE_NUMBERS, SEQUENCE_COVERAGE = 3, 0.6  # a label numbers a sequence: 3 numbers or more, 60% of first..last
CHECK_EVERY = 8  # tokens between the checks that look at a whole window


@dataclass(frozen=True)
class Watch:
    """What an answer is checked against besides itself. Build it with ``watch``: the input is indexed once."""

    restated: frozenset[tuple[str, ...]] = frozenset()  # the input's word runs: copying them is restating
    last_numbers: dict[str, int] = field(default_factory=dict)  # label ("section") -> the document's last number
    numbered: frozenset[str] = frozenset()  # labels the document puts three numbers or more after, sequences or not

    def restating(self, source: str) -> Watch:
        """These checks, and also that the answer does not copy ``source`` back."""
        return dataclasses.replace(self, restated=frozenset(_grams(_plain_words(source), RESTATE_GRAM)))


def watch(source: str = "", document: str = "") -> Watch:
    """``source``: text the answer must not copy back (a part of a document given to summarize); ``document``:
    the whole document, whose numbered sequences ("Section 1" … "Section 40") the answer must not go past."""
    seen = _numbers_after_labels(document) if document else {}
    figures = frozenset(label for label, numbers in seen.items() if len(numbers) >= SEQUENCE_NUMBERS)
    checks = Watch(last_numbers=_sequences(seen), numbered=figures)
    return checks.restating(source) if source else checks


def sequences(text: str) -> dict[str, int]:
    """Each label that numbers a sequence in ``text`` ("section", "chapter", "step", "part"), with its last number.
    A label counts when it has three numbers or more that cover most of the way from its first to its last
    ("recorded 57 incidents … recorded 412" is not a sequence; "Section 1" to "Section 40" is, and so is
    "Section 33" to "Section 40" in an excerpt)."""
    return _sequences(_numbers_after_labels(text))


def _numbers_after_labels(text: str) -> dict[str, set[int]]:
    seen: dict[str, set[int]] = {}
    for label, number in _numbered(_tokens(text)):
        seen.setdefault(label, set()).add(number)
    return seen


def _sequences(seen: dict[str, set[int]]) -> dict[str, int]:
    return {label: max(numbers) for label, numbers in seen.items() if len(numbers) >= SEQUENCE_NUMBERS
            and len(numbers) >= SEQUENCE_COVERAGE * (max(numbers) - min(numbers) + 1)}


class Watcher:
    """Fed an answer's text as it streams (``add``); says the first ``Degeneration`` it sees, and then keeps it."""

    def __init__(self, checks: Watch | None = None) -> None:
        self.checks = checks or Watch()
        self.found: Degeneration | None = None
        self.rule = ""  # which check found it, for the log and the tests
        self._pending = ""
        self._tokens: list[str] = []  # numbers as "#"
        self._numbers: list[int | None] = []
        self._in_code = False  # within a ``` block
        self._code_from = 0  # the first token of that block: a repeat is looked for within it
        self._in_url = False
        self._words: deque[str] = deque(maxlen=VARIETY_WORDS)
        self._line: list[tuple[str, int | None]] = []
        self._lines: deque[list[tuple[str, int | None]]] = deque(maxlen=TEMPLATE_LINES)
        self._restate: deque[bool] = deque(maxlen=RESTATE_WORDS)
        self._restate_words = 0
        self._gram: deque[str] = deque(maxlen=RESTATE_GRAM)
        self._past: dict[str, set[int]] = {}  # label -> numbers named past the document's last
        self._runs: dict[str, tuple[int, int]] = {}  # label -> its last number, and how many counted up to it
        self._label: str | None = None
        self._since_check = 0

    def add(self, text: str) -> Degeneration | None:
        if self.found is not None:
            return self.found
        self._pending += text
        matches = list(_TOKEN.finditer(self._pending))
        if matches and matches[-1].end() == len(self._pending) and matches[-1].group() != "\n":
            matches.pop()  # the last word or run may go on in the next piece
        end = 0
        for match in matches:
            self._push(match.group(), spaced=match.start() > end)
            end = match.end()
            if self.found is not None:
                break
        self._pending = self._pending[end:]
        return self.found

    def finish(self) -> Degeneration | None:
        """The answer has ended: its last words are judged as a whole, also when there are fewer of them than the
        window (a part's "summary" that is its first paragraph, cut at its length limit, is a restatement)."""
        copied = self._restate
        could = min(len(copied), self._restate_words - RESTATE_GRAM + 1)  # the first words start no run
        if self.found is None and self._restate_words >= SHORT_RESTATE_WORDS and sum(copied) >= RESTATE_SHARE * could:
            self._found(Degeneration.RESTATING, "restating, at the end")
        return self.found

    def _found(self, kind: Degeneration, rule: str) -> None:
        self.found, self.rule = kind, rule

    # --- one token ---

    def _push(self, token: str, *, spaced: bool) -> None:
        line_start = not self._line
        if spaced or token == "\n":
            self._in_url = False
        if token in ("http", "https"):
            self._in_url = True  # a link's words are not the answer's words (a list of links repeats "https")
        if line_start and token.startswith("```"):
            self._in_code = not self._in_code
            self._code_from = len(self._tokens) + 1
        number = int(token) if token.isascii() and token.isdigit() and len(token) < 10 else None
        masked = "#" if number is not None else token[:2] if not token[0].isalnum() else token  # "---" is "--"
        self._tokens.append(masked)
        self._numbers.append(number)
        if self._repeats():
            self._found(Degeneration.REPEATING, "repeats")
            return
        if token == "\n":
            if self._line and not self._in_code:
                self._lines.append(self._line)
                if self._template_lines():
                    self._found(Degeneration.REPEATING, "template lines")
            self._line = []
            return
        self._line.append((masked, number))
        if self._in_url:
            return
        # Copying the input and numbering past it are checked in code blocks too: a summary that opens one and
        # then copies its part into it is still a copy.
        if self.checks.last_numbers and self._counts_past(token, number):
            self._found(Degeneration.COUNTING_PAST, "counting past")
            return
        if self.checks.restated and (_WORD.fullmatch(token) or number is not None):
            self._gram.append(masked.lower())
            self._restate_words += 1
            self._restate.append(len(self._gram) == RESTATE_GRAM and tuple(self._gram) in self.checks.restated)
        if not self._in_code and number is None and (token[0].isalpha() or token[0] == "_"):
            self._words.append(token.lower())
        self._since_check += 1
        if self._since_check >= CHECK_EVERY:
            self._since_check = 0
            if len(self._words) == VARIETY_WORDS and len(set(self._words)) < VARIETY_FLOOR:
                self._found(Degeneration.REPEATING, "few words")
            elif len(self._restate) == RESTATE_WORDS and sum(self._restate) >= RESTATE_SHARE * RESTATE_WORDS:
                self._found(Degeneration.RESTATING, "restating")

    # --- the checks ---

    def _repeats(self) -> bool:
        """Whether the text ends in a stretch of tokens repeated back to back, enough times to be a loop."""
        tokens = self._tokens
        n = len(tokens)
        start = self._code_from if self._in_code else 0
        last = tokens[-1]
        for unit in range(1, min(LONGEST_UNIT, (n - start) // 2) + 1):
            if tokens[n - 1 - unit] != last:
                continue
            tail = tokens[n - unit:]
            repeats = 1
            while n - (repeats + 1) * unit >= start and tokens[n - (repeats + 1) * unit:n - repeats * unit] == tail:
                repeats += 1
            if repeats < (2 if unit >= LONG_UNIT and not self._in_code else MIN_REPEATS):
                continue
            wordy = any(token[0].isalpha() or token[0] == "_" for token in tail)
            if self._in_code:
                needed = max(CODE_REPEATS, math.ceil(CODE_SPAN / unit))
            elif wordy and unit >= LONG_UNIT:
                needed = 2  # a paragraph written twice in a row
            else:
                needed = max(MIN_REPEATS, math.ceil((MIN_SPAN if wordy else 2 * MIN_SPAN) / unit))
            counters = _counters([self._numbers[n - repeats * unit:][i::unit] for i in range(unit)])
            if repeats >= needed and counters is not None and (wordy or not counters):
                return True  # (numbers and punctuation alone that count up are counting: "1, 2, 3, …")
        return False

    def _template_lines(self) -> bool:
        """Lines in a row that are one line with its end changed among a few words ("Section 9: The Future of
        Fantasy", "Section 10: The Future of Science Fiction", …) and a counter. A list whose lines share a start
        but each end differently (file names, links, "Step 3: …") is a list."""
        lines = list(self._lines)
        if len(lines) < TEMPLATE_LINES:
            return False
        shared = min(len(line) for line in lines)
        for before, after in itertools.pairwise(lines):
            common = 0
            while common < min(len(before), len(after)) and before[common][0] == after[common][0]:
                common += 1
            if common < TEMPLATE_SHARE * max(len(before), len(after)):
                return False
            shared = min(shared, common)
        ends = {tuple(token for token, _ in line[shared:]) for line in lines}
        if len(ends) > TEMPLATE_LINES // 2:
            return False
        return _counters([[line[position][1] for line in lines] for position in range(shared)]) is not None

    def _counts_past(self, token: str, number: int | None) -> bool:
        """Whether the answer has named numbers of a sequence beyond the document's last ("Section 41", "42").
        A label the document does not number with ("In report 41, …" for its sections) counts when the answer
        numbers it up one by one past the document's longest sequence."""
        label = self._label
        if number is None:
            # "section 29, 30 and 31": the label goes on over a list of its numbers
            keep = label is not None and token.lower() in _LIST_WORDS and self._numbers[-2] is not None
            self._label = label if keep else token.lower() if _WORD.fullmatch(token) else None
            return False
        if label is None:
            return False
        before, run = self._runs.get(label, (None, 0))
        run = run + 1 if before is not None and number == before + 1 else 1
        self._runs[label] = (number, run)
        last = self.checks.last_numbers.get(label)
        if last is None:
            if run < SEQUENCE_NUMBERS or label in self.checks.numbered:
                return False  # the document's numbers after it are figures, not a sequence
            last = max(self.checks.last_numbers.values())
        if number <= last:
            return False
        past = self._past.setdefault(label, set())
        past.add(number)
        return len(past) >= PAST_NUMBERS


def _counters(columns: list[list[int | None]]) -> int | None:
    """How many of the numbers at the same place in each repeat count up by one, when the others stay the same
    and only one counts (a list's number); None when they change otherwise (a table's figures, a list of
    versions)."""
    counters = 0
    for values in columns:
        if not values or values[0] is None:
            continue
        steps = {after - before for before, after in itertools.pairwise(values)}  # type: ignore[operator]
        if steps == {1}:
            counters += 1
        elif not steps <= {0}:
            return None
    return counters if counters <= 1 else None


def _tokens(text: str) -> list[str]:
    return [match.group() for match in _TOKEN.finditer(text)]


def _plain_words(text: str) -> list[str]:
    """The words and numbers of ``text``, lower-case, numbers as "#" (a copy with its figures changed is still
    a copy)."""
    return [_DIGITS.sub("#", token).lower() for token in _tokens(text)
            if _WORD.fullmatch(token) or (token.isascii() and token.isdigit())]


def _grams(words: list[str], n: int) -> Iterable[tuple[str, ...]]:
    return (tuple(words[i:i + n]) for i in range(len(words) - n + 1))


def _numbered(tokens: list[str]) -> Iterable[tuple[str, int]]:
    """(label, number) for each word followed by a number: "Section 12" -> ("section", 12)."""
    for label, token in itertools.pairwise(tokens):
        if _WORD.fullmatch(label) and token.isascii() and token.isdigit() and len(token) < 7:
            yield label.lower(), int(token)


__all__ = ["Degeneration", "Watch", "Watcher", "sequences", "watch"]
