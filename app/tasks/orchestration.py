"""The orchestration of one task run inside the engine worker: summarize (map-reduce over as many levels as
needed), translate (part by part) or classify (row by row, the answer held to the labels by a grammar).

This runs inside the engine worker, next to llama.cpp, and talks to the model only through the small
``Model`` protocol (``app.tasks.model``; ``app.engine.completion`` implements it over ``llama_cpp.Llama``), so
it never imports llama.cpp itself, and the app's side of a run (``app.task_session``) never imports this.
It reports progress, streamed text and each finished part through callbacks; the worker turns them into
protocol events. A cancelled run returns what it has so far.
"""

from __future__ import annotations

import dataclasses
import math
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from app.degenerate import Degeneration, Watch, watch
from app.documents.location import HEADING_CHARS, span_location
from app.errors import ContextTooSmallError, HearthError
from app.outcomes import FinishReason, RunStatus
from app.tasks import chunking, prompts
from app.tasks.chunking import Chunk
from app.tasks.language import identify
from app.tasks.model import Completion, Model
from app.tasks.spec import (
    ClassifiedText,
    Classify,
    KeyPoint,
    Metrics,
    Part,
    Passage,
    Plan,
    Progress,
    Summarize,
    TaskInput,
    TaskResult,
    Translate,
    task_name,
)

TEMPLATE_MARGIN = 32  # the chat template's own tokens around the system and user text, and rounding
LABEL_OVERHEAD = 16  # "Part 3 (pages 5–7):" in front of each summary that is combined
WRITTEN_EVERY = 16  # tokens written between two reports of a call's progress (each prompt batch is reported)


class Cancelled(Exception):
    pass


class _WentWrong(Exception):
    """A step that combines summaries was stopped as degenerate: there is no summary to write from it."""

    def __init__(self, kind: Degeneration) -> None:
        super().__init__(kind)
        self.kind = kind


class LabelsError(HearthError):
    """The labels given to classify cannot be used."""


# --- budgets: shared by the plan shown before a run and the run itself ---


# As long as a location can be (two headings cut at HEADING_CHARS), in ordinary words.
_LONGEST_HEADING = ("Wording of an ordinary heading " * 2)[:HEADING_CHARS]
_LONGEST_LOCATION = f"sections “{_LONGEST_HEADING}” to “{_LONGEST_HEADING}”"


def _overhead(model: Model, prompt_set: prompts.PromptSet, stage: str, **values: str) -> int:
    filled = {"text": "", "location": _LONGEST_LOCATION, "title": "", "focus": "", **values}
    return len(model.tokenize(prompt_set.system + prompt_set.user(stage, **filled))) + TEMPLATE_MARGIN


@dataclass(frozen=True)
class _SummaryBudget:
    final_out: int
    part_out: int
    final_in: int
    map_in: int
    combine_in: int
    map_overhead: int  # instruction tokens around one part


def _summary_budget(model: Model, task: TaskInput, spec: Summarize) -> _SummaryBudget:
    """Room in the window for each kind of call. A part's summary may take a sixteenth of the window: small
    enough that combining the summaries reads far fewer tokens than the document (the map-reduce overhead),
    large enough for a few sentences."""
    prompt_set = prompts.summary_prompts(spec.length)
    focus = _focus_sentence(spec.focus)
    n_ctx = model.n_ctx
    final_out = task.max_output_tokens or min(max(n_ctx // 4, 64), 1024)
    part_out = min(final_out, max(32, n_ctx // 16))
    map_overhead = _overhead(model, prompt_set, "map", title=task.title, focus=focus)
    budget = _SummaryBudget(
        final_out=final_out, part_out=part_out,
        final_in=n_ctx - final_out - _overhead(model, prompt_set, "final", title=task.title, focus=focus),
        map_in=n_ctx - part_out - map_overhead,
        combine_in=n_ctx - part_out - _overhead(model, prompt_set, "combine", title=task.title, focus=focus),
        map_overhead=map_overhead)
    if budget.map_in < 64 or budget.combine_in < 2 * (part_out + LABEL_OVERHEAD):
        raise ContextTooSmallError(
            f"The context window ({n_ctx} tokens) is too small to summarize in parts. Load the model with a "
            "longer context in the conversation settings.")
    return budget


def _translate_budget(model: Model, task: TaskInput, spec: Translate) -> tuple[int, int, int]:
    """(tokens of source per part, tokens the translation may take, instruction tokens): a translation can
    be half again as long as its source, so a part gets 40% of what is left after the instructions."""
    prompt_set = prompts.load("translate")
    overhead = _overhead(model, prompt_set, "translate", target=spec.target, source=_source_words(spec.source))
    available = model.n_ctx - overhead
    part_in = int(available * 0.4)
    if part_in < 32:
        raise ContextTooSmallError(f"The context window ({model.n_ctx} tokens) is too small to translate. Load the "
                                   "model with a longer context in the conversation settings.")
    return part_in, available - part_in, overhead


def plan_task(model: Model, task: TaskInput) -> Plan:
    """How the run will go: parts, model calls and tokens. The counts of summary levels above the first
    assume each summary uses its whole allowance, so they are an upper bound."""
    spec = task.kind
    separator = len(model.tokenize(chunking.SEPARATOR))
    if isinstance(spec, Summarize):
        budget = _summary_budget(model, task, spec)
        pieces = chunking.pieces_of(task.passages, model.tokenize, model.detokenize, budget.map_in)
        document = sum(len(p.tokens) for p in pieces)
        whole = document + separator * (len(pieces) - 1)
        overhead = budget.map_overhead
        if whole <= budget.final_in:
            return Plan(document, 1, model.n_ctx, budget.final_in, 1, whole + overhead, budget.final_out)
        chunks = chunking.pack(pieces, task.passages, budget.map_in, separator)
        calls, items = len(chunks), len(chunks)
        read = whole + overhead * len(chunks)
        each = budget.part_out + LABEL_OVERHEAD
        while items * each > budget.final_in:
            per_group = max(2, budget.combine_in // each)
            groups = math.ceil(items / per_group)
            read += items * each + groups * overhead
            items, calls = groups, calls + groups
        read += items * each + overhead
        written = calls * budget.part_out + budget.final_out
        return Plan(document, len(chunks), model.n_ctx, budget.map_in, calls + 1, read, written)
    if isinstance(spec, Translate):
        part_in, _, overhead = _translate_budget(model, task, spec)
        chunks = chunking.split(task.passages, model.tokenize, model.detokenize, part_in)
        document = sum(c.document_tokens for c in chunks)
        return Plan(document, len(chunks), model.n_ctx, part_in, len(chunks), document + len(chunks) * overhead,
                    int(document * 1.3))
    setup = _classify_setup(model, spec)
    rows = len(task.passages)
    document = sum(len(model.tokenize(p.text)) for p in task.passages)
    return Plan(document, rows, model.n_ctx, setup.room, rows, document + rows * setup.overhead,
                rows * setup.answer_tokens)


@dataclass(frozen=True)
class _ClassifySetup:
    prompt_set: prompts.PromptSet
    stage: str
    labels_text: str
    overhead: int
    answer_tokens: int
    room: int  # tokens of one text that fit; a longer text is cut


def _classify_setup(model: Model, spec: Classify) -> _ClassifySetup:
    names = [label.name for label in spec.labels]
    if len(names) < 2:
        raise LabelsError("Give at least two labels to choose from.")
    if len(set(names)) != len(names):
        raise LabelsError("Each label must be different.")
    prompt_set = prompts.load("classify")
    stage = "multi" if spec.multi else "single"
    labels_text = "\n".join(f"- {label.name}" + (f": {label.description}" if label.description else "")
                            for label in spec.labels)
    overhead = _overhead(model, prompt_set, stage, labels=labels_text)
    answer_tokens = sum(len(model.tokenize(name)) + 2 for name in names) + 4
    room = model.n_ctx - overhead - answer_tokens
    if room < 16:
        raise ContextTooSmallError(f"The context window ({model.n_ctx} tokens) is too small for these labels.")
    return _ClassifySetup(prompt_set, stage, labels_text, overhead, answer_tokens, room)


# --- the run ---


class TaskRun:
    """One run. ``cancelled`` is polled between model calls (the model polls it while streaming)."""

    def __init__(self, model: Model, task: TaskInput, *, cancelled: Callable[[], bool],
                 on_progress: Callable[[Progress], None] = lambda _p: None,
                 on_text: Callable[[str], None] = lambda _t: None,
                 on_part: Callable[[Part], None] = lambda _p: None,
                 on_row: Callable[[ClassifiedText], None] = lambda _r: None) -> None:
        self.model, self.task = model, task
        self.cancelled = cancelled
        self.on_progress, self.on_text, self.on_part, self.on_row = on_progress, on_text, on_part, on_row
        self.metrics = Metrics()
        self._generating_s = 0.0
        self._started = time.perf_counter()
        self._step = 0
        self._total = 0
        # Every call is watched for loops and for numbering past the document's sections; a part's summary
        # also for copying its part back (``app.degenerate``).
        self._watch = watch(document="\n\n".join(f"{p.heading or ''}\n{p.text}" for p in task.passages))

    # --- bookkeeping ---

    def _call(self, messages: list[dict[str, str]], *, max_tokens: int, stage: str, label: str,
              grammar: str | None = None, stream: bool = True, temperature: float | None = None,
              checks: Watch | None = None) -> Completion:
        if self.cancelled():
            raise Cancelled()
        self._step += 1
        self._total = max(self._total, self._step)
        started = Progress(self._step, self._total, stage, label, to_write=max_tokens)
        self.on_progress(started)

        def on_tokens(read: int, to_read: int, written: int) -> None:
            if written % WRITTEN_EVERY == 0:  # every prompt batch (written 0), then every few tokens
                self.on_progress(dataclasses.replace(started, read=read, to_read=to_read, written=written))

        call_started = time.perf_counter() - self._started
        done = self.model.complete(
            messages, max_tokens=max_tokens, grammar=grammar, seed=self.task.seed,
            temperature=self.task.temperature if temperature is None else temperature,
            on_text=self.on_text if stream else None, watch=checks, on_tokens=on_tokens)
        self.metrics = Metrics(
            prompt_tokens=self.metrics.prompt_tokens + done.prompt_tokens,
            completion_tokens=self.metrics.completion_tokens + done.completion_tokens,
            calls=self.metrics.calls + 1,
            ttft_s=self.metrics.ttft_s if self.metrics.ttft_s is not None or done.ttft_s is None
            else call_started + done.ttft_s)
        self._generating_s += done.generating_s
        if done.finish_reason == FinishReason.CANCELLED:
            raise Cancelled(done.text)
        return done

    def final_metrics(self, peak_rss_bytes: int = 0) -> Metrics:
        m = self.metrics
        speed = m.completion_tokens / self._generating_s if self._generating_s > 0 and m.completion_tokens else None
        return Metrics(m.prompt_tokens, m.completion_tokens, time.perf_counter() - self._started, speed,
                       peak_rss_bytes, m.calls, m.ttft_s)

    def run(self) -> TaskResult:
        spec = self.task.kind
        if isinstance(spec, Summarize):
            return self._summarize(spec)
        if isinstance(spec, Translate):
            return self._translate(spec)
        return self._classify(spec)

    def _result(self, text: str, finish_reason: RunStatus, **fields: object) -> TaskResult:
        return TaskResult(task=task_name(self.task.kind), text=text, finish_reason=finish_reason,
                          model_tokens_processed=self.metrics.prompt_tokens,
                          generated_tokens=self.metrics.completion_tokens, **fields)  # type: ignore[arg-type]

    # --- summarize ---

    def _summarize(self, spec: Summarize) -> TaskResult:
        model, task = self.model, self.task
        budget = _summary_budget(model, task, spec)
        prompt_set = prompts.summary_prompts(spec.length)
        focus = _focus_sentence(spec.focus)
        separator = len(model.tokenize(chunking.SEPARATOR))
        pieces = chunking.pieces_of(task.passages, model.tokenize, model.detokenize, budget.map_in)
        document = sum(len(p.tokens) for p in pieces)
        whole = document + separator * (len(pieces) - 1)
        if whole <= budget.final_in:
            chunk = chunking.pack(pieces, task.passages, whole, separator)[0]
            self._total = 1
            try:
                done = self._call(prompt_set.messages("final", text=chunk.text, title=task.title, focus=focus,
                                                      location=chunk.location),
                                  max_tokens=budget.final_out, stage="final", label="Reading the whole document",
                                  checks=self._watch.restating(chunk.text))
            except Cancelled as stop:
                partial = str(stop.args[0]) if stop.args else ""
                return self._result(partial, RunStatus.CANCELLED, document_tokens=document,
                                    chunks=1, levels=1)
            part = _part(1, chunk, done)
            self.on_part(part)
            if part.degeneration:  # what it wrote is kept, but not presented as a summary (no key points)
                return self._result(done.text.strip(), RunStatus.DONE, parts=(part,), document_tokens=document,
                                    covered_tokens=document, chunks=1, levels=1, degeneration=part.degeneration)
            return self._result(done.text.strip(), RunStatus.DONE, parts=(part,), document_tokens=document,
                                covered_tokens=document, chunks=1, levels=1,
                                points=_points(done.text, [(1, chunk)], task.passages, single=True, spec=spec))
        chunks = chunking.pack(pieces, task.passages, budget.map_in, separator)
        self._total = len(chunks) + 1
        parts: list[Part] = []
        covered = 0
        try:
            for index, chunk in enumerate(chunks, 1):
                done = self._call(
                    prompt_set.messages("map", text=chunk.text, title=task.title, focus=focus, location=chunk.location),
                    max_tokens=budget.part_out, stage="map",
                    label=f"Reading part {index} of {len(chunks)} ({chunk.location})",
                    checks=self._watch.restating(chunk.text))
                part = _part(index, chunk, done)
                parts.append(part)
                covered += chunk.document_tokens
                self.on_part(part)
            good = [p for p in parts if not p.degeneration]  # a part that went wrong is left out of the summary
            if not good:
                return self._result("", RunStatus.DONE, parts=tuple(parts), document_tokens=document,
                                    covered_tokens=covered, chunks=len(chunks), levels=1)
            items = [_Item(p.output.strip(), p.first_passage, p.last_passage) for p in good]
            levels = 1
            while self._items_tokens(items) > budget.final_in:
                items = self._combine(items, prompt_set, budget, focus)
                levels += 1
            done = self._call(prompt_set.messages("final", text=self._items_text(items), title=task.title,
                                                  focus=focus, location="the whole document"),
                              max_tokens=budget.final_out, stage="final", label="Writing the summary",
                              checks=self._watch)
            if done.degeneration is not None:
                raise _WentWrong(done.degeneration)
        except Cancelled:
            return self._result(_parts_text(parts), RunStatus.CANCELLED, parts=tuple(parts), document_tokens=document,
                                covered_tokens=covered, chunks=len(chunks), levels=1 if parts else 0,
                                points=())
        except _WentWrong as wrong:  # no summary: the parts' summaries are what there is
            return self._result(_parts_text(good), RunStatus.DONE, parts=tuple(parts), document_tokens=document,
                                covered_tokens=covered, chunks=len(chunks), levels=1, degeneration=wrong.kind)
        return self._result(done.text.strip(), RunStatus.DONE, parts=tuple(parts), document_tokens=document,
                            covered_tokens=covered, chunks=len(chunks), levels=levels + 1,
                            points=_points(done.text, [(p.index, chunks[p.index - 1]) for p in good], task.passages,
                                           single=False, spec=spec))

    def _items_text(self, items: list[_Item]) -> str:
        return chunking.SEPARATOR.join(
            f"Part {span_location(self.task.passages, i.first, i.last)}:\n{i.text}" for i in items)

    def _items_tokens(self, items: list[_Item]) -> int:
        return len(self.model.tokenize(self._items_text(items)))

    def _combine(self, items: list[_Item], prompt_set: prompts.PromptSet, budget: _SummaryBudget,
                 focus: str) -> list[_Item]:
        """One more level: consecutive summaries merged in groups that fit, in document order."""
        groups: list[list[_Item]] = [[]]
        for item in items:
            if groups[-1] and self._items_tokens([*groups[-1], item]) > budget.combine_in:
                groups.append([])
            groups[-1].append(item)
        if len(groups) == len(items):  # every group a single item: summaries longer than allowed; pair them
            groups = [items[i:i + 2] for i in range(0, len(items), 2)]
        self._total += len(groups)
        merged: list[_Item] = []
        for number, group in enumerate(groups, 1):
            if len(group) == 1:
                merged.append(group[0])
                continue
            location = span_location(self.task.passages, group[0].first, group[-1].last)
            done = self._call(prompt_set.messages("combine", text=self._items_text(group), title=self.task.title,
                                                  focus=focus, location=location),
                              max_tokens=budget.part_out, stage="combine",
                              label=f"Combining summaries {number} of {len(groups)} ({location})", checks=self._watch)
            if done.degeneration is not None:
                raise _WentWrong(done.degeneration)
            merged.append(_Item(done.text.strip(), group[0].first, group[-1].last))
        return merged

    # --- translate ---

    def _translate(self, spec: Translate) -> TaskResult:
        model, task = self.model, self.task
        part_in, part_out, _ = _translate_budget(model, task, spec)
        chunks = chunking.split(task.passages, model.tokenize, model.detokenize, part_in)
        document = sum(c.document_tokens for c in chunks)
        self._total = len(chunks)
        prompt_set = prompts.load("translate")
        parts: list[Part] = []
        covered = 0
        source = spec.source
        try:
            if source is None:
                source = identify(chunks[0].text) or "English"
            for index, chunk in enumerate(chunks, 1):
                if parts:
                    self.on_text(chunking.SEPARATOR)
                done = self._call(prompt_set.messages("translate", text=chunk.text, target=spec.target,
                                                      source=_source_words(source)),
                                  max_tokens=part_out, stage="translate",
                                  label=f"Translating part {index} of {len(chunks)} ({chunk.location})",
                                  checks=self._watch)
                part = _part(index, chunk, done)
                parts.append(part)
                covered += chunk.document_tokens
                self.on_part(part)
        except Cancelled as stop:
            text = chunking.SEPARATOR.join([*(_translated(p) for p in parts),
                                            *([str(stop.args[0]).strip()] if stop.args else [])])
            return self._result(text, RunStatus.CANCELLED, parts=tuple(parts), document_tokens=document,
                                covered_tokens=covered, chunks=len(chunks), levels=1 if parts else 0,
                                source_language=source)
        text = chunking.SEPARATOR.join(_translated(p) for p in parts)
        return self._result(text, RunStatus.DONE, parts=tuple(parts), document_tokens=document, covered_tokens=covered,
                            chunks=len(chunks), levels=1, source_language=source)

    # --- classify ---

    def _classify(self, spec: Classify) -> TaskResult:
        model, task = self.model, self.task
        names = [label.name for label in spec.labels]
        setup = _classify_setup(model, spec)
        prompt_set, stage, labels_text, room = setup.prompt_set, setup.stage, setup.labels_text, setup.room
        answer_tokens = setup.answer_tokens
        grammar = list_grammar(names) if spec.multi else choice_grammar(names)
        rows: list[ClassifiedText] = []
        document = 0
        note = ""
        self._total = len(task.passages)
        try:
            for index, passage in enumerate(task.passages, 1):
                tokens = model.tokenize(passage.text)
                document += len(tokens)
                text = passage.text if len(tokens) <= room else model.detokenize(tokens[:room])
                done = self._call(prompt_set.messages(stage, text=text, labels=labels_text),
                                  max_tokens=answer_tokens, stage="classify", grammar=grammar, stream=False,
                                  temperature=0.0, label=f"Classifying {index} of {len(task.passages)}")
                scores = self.model.label_logprobs(names)
                if scores is None:
                    note = READ_LABELS_NOTE
                    chosen = read_labels(done.text, names, multi=spec.multi)
                    confidence = {name: 1 / len(chosen) if name in chosen else 0.0 for name in names}
                else:
                    confidence = _softmax(names, scores)
                    chosen = chosen_labels(_parse_labels(done.text, names, multi=spec.multi), confidence,
                                           multi=spec.multi)
                row = ClassifiedText(passage.text, chosen, confidence, truncated=len(tokens) > room)
                rows.append(row)
                self.on_row(row)
        except Cancelled:
            return self._result(_rows_text(rows), RunStatus.CANCELLED, rows=tuple(rows), document_tokens=document,
                                covered_tokens=document, chunks=len(rows), levels=1 if rows else 0, note=note)
        return self._result(_rows_text(rows), RunStatus.DONE, rows=tuple(rows), document_tokens=document,
                            covered_tokens=document, chunks=len(rows), levels=1, note=note)


@dataclass(frozen=True)
class _Item:
    text: str
    first: int
    last: int


def _part(index: int, chunk: Chunk, done: Completion) -> Part:
    return Part(index=index, location=chunk.location, first_passage=chunk.first, last_passage=chunk.last,
                tokens=chunk.document_tokens, output=done.text.strip(), degeneration=done.degeneration or "")


def _parts_text(parts: Sequence[Part]) -> str:
    """The summaries of the parts, each under where it is: what a run has when it has no summary."""
    return "\n\n".join(f"**Part {p.index} ({p.location})**: {p.output.strip()}" for p in parts
                       if not p.degeneration)


def _translated(part: Part) -> str:
    """A part's translation; in place of one that went wrong, a line that says so (it is not a translation)."""
    if not part.degeneration:
        return part.output.strip()
    return f"[Part {part.index} ({part.location}) is not translated: {Degeneration(part.degeneration).sentence}.]"


def _focus_sentence(focus: str) -> str:
    focus = " ".join(focus.split())
    return f"Pay particular attention to this: {focus}" if focus else ""


def _source_words(source: str | None) -> str:
    return f" from {source}" if source else ""


# --- key points and where they came from ---

_BULLET = re.compile(r"^\s*(?:[-*•]|\d+[.)])\s+(.*\S)")
_WORD = re.compile(r"\w{3,}")


def _points(text: str, chunks: Sequence[tuple[int, Chunk]], passages: Sequence[Passage], *,
            single: bool, spec: Summarize) -> tuple[KeyPoint, ...]:
    """Each list item of the summary (each sentence, when key points were asked for and the model wrote paragraphs
    instead), linked to the part (or, when the document was read in one pass, the paragraph) whose words it
    shares most: small models do not cite their sources reliably, so the link is found from the text rather than
    asked for. ``chunks``: the parts the summary was written from, with their numbers."""
    points: list[KeyPoint] = []
    for said in key_points(text, sentences=spec.length == "points"):
        words = set(_WORD.findall(said.lower()))
        if single:
            best = max(range(len(passages)), key=lambda i: _overlap(words, passages[i].text))
            points.append(KeyPoint(said, 1, span_location(list(passages), best, best)))
        else:
            index, chunk = max(chunks, key=lambda pair: _overlap(words, pair[1].text))
            points.append(KeyPoint(said, index, chunk.location))
    return tuple(points)


# A sentence ends at . ! or ? (and closing quotes or brackets) before a space and a capital, a digit or an
# opening quote. Hand-written: the sentences only place links, so an abbreviation that splits one ("e.g. Paris")
# costs a link in mid-sentence, and a sentence splitter with its language models is not worth carrying for that.
_SENTENCE_END = re.compile(r"(?:(?<=[.!?])|(?<=[.!?][\"'”’)\]]))\s+(?=[\"'“‘(\[]?[A-Z0-9])")
_HEADING_LINE = re.compile(r"^\s{0,3}#{1,6}\s")


def key_points(text: str, *, sentences: bool = True) -> list[str]:
    """What a summary says, point by point, as written: its list items when it has a list, else (``sentences``)
    the sentences of its paragraphs (a model asked for a list may write paragraphs). Headings, and a sentence of
    one or two words ("In short:"), are not points."""
    lines = [line for line in text.splitlines() if line.strip()]
    items = [match.group(1) for line in lines if (match := _BULLET.match(line))]
    if items or not sentences:
        return items
    said: list[str] = []
    for line in lines:
        if not _HEADING_LINE.match(line):
            said += [piece.strip() for piece in _SENTENCE_END.split(line.strip()) if len(_WORD.findall(piece)) >= 3]
    return said


def _overlap(words: set[str], text: str) -> float:
    if not words:
        return 0.0
    return len(words & set(_WORD.findall(text.lower()))) / len(words)


# --- grammars and labels ---


def _literal(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def choice_grammar(names: Sequence[str]) -> str:
    """GBNF that admits exactly one of ``names`` (an optional leading space lets the tokenizer use its
    usual word tokens)."""
    return f'root ::= " "? ({" | ".join(_literal(n) for n in names)})\n'


def list_grammar(names: Sequence[str]) -> str:
    choice = " | ".join(_literal(n) for n in names)
    return f'root ::= " "? item ("," " "? item)*\nitem ::= {choice}\n'


def _parse_labels(text: str, names: Sequence[str], *, multi: bool) -> tuple[str, ...]:
    if not multi:
        found = text.strip()
        return (found,) if found in names else ()
    seen = {part.strip() for part in text.split(",")}
    return tuple(name for name in names if name in seen)


READ_LABELS_NOTE = ("The labels were read from the model's answers, as this model's server cannot score them: a text "
                    "whose answer names no label has none.")


def read_labels(text: str, names: Sequence[str], *, multi: bool) -> tuple[str, ...]:
    """The labels an answer names, read strictly, for a model whose answer was not held to them: the whole
    answer as a label (letter case, quotes and a final full stop aside), else the labels it names as words,
    which for one label must be exactly one."""
    exact = _parse_labels(text, names, multi=multi)
    if exact:
        return exact
    folded = {name.casefold(): name for name in names}
    whole = text.strip().strip("\"'“”‘’*`").rstrip(".!").strip().casefold()
    if whole in folded:
        return (folded[whole],)
    words = text.casefold()
    named = tuple(name for name in names
                  if re.search(rf"(?<!\w){re.escape(name.casefold())}(?!\w)", words))
    if multi:
        return named
    return named if len(named) == 1 else ()


def chosen_labels(answered: Sequence[str], confidence: dict[str, float], *, multi: bool) -> tuple[str, ...]:
    """The labels a row shows: never one that contradicts its own confidences. With one label, the most
    confident one (the sampled answer, held to the labels by the grammar, could differ: "complaint" at 0.38
    beside "question" at 0.46); with several, the well-formed answer the grammar gave, always with the most
    confident label among them, in the labels' order."""
    best = max(confidence, key=confidence.__getitem__)
    if not multi:
        return (best,)
    keep = set(answered) | {best}
    return tuple(name for name in confidence if name in keep)


def _softmax(names: Sequence[str], logprobs: Sequence[float]) -> dict[str, float]:
    top = max(logprobs)
    weights = [math.exp(lp - top) for lp in logprobs]
    total = sum(weights)
    return {name: weight / total for name, weight in zip(names, weights, strict=True)}


def _rows_text(rows: Sequence[ClassifiedText]) -> str:
    return "\n".join(f"{', '.join(row.labels) or '(none)'}\t{row.input}" for row in rows)
