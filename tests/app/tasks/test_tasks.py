"""Summarize, translate and classify with the real tiny model: chunking, map-reduce, grammar, cancel, history.

The orchestration (``TaskRun``) is driven in this process over a real ``llama_cpp.Llama`` where a test needs
to look at every model call; the whole path (engine worker, session, history) is driven through a real
worker elsewhere in this file.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from app.engine import EngineClient
from app.engine import protocol as p
from app.engine.client import EventWaiter
from app.engine.completion import LlamaModel, VocabModel
from app.history import HistoryStore, open_database
from app.task_session import TaskSession
from app.tasks import chunking, inputs, prompts
from app.tasks.inputs import Source
from app.tasks.model import Completion
from app.tasks.orchestration import TaskRun, _points, choice_grammar, list_grammar, plan_task
from app.tasks.spec import (
    LANGUAGES,
    Classify,
    Label,
    Part,
    Passage,
    Progress,
    Summarize,
    TaskInput,
    Translate,
)

from tests.helpers.document_builders import operations_report
from tests.helpers.model_builders import llama_gqa

STORY = ("Once upon a time there was a little girl named Lily. She liked to play in the park with her big dog. "
         "One day the dog found a red ball under a tree, and they played until the sun went down. ")


def document(paragraphs: int = 40, repeat: int = 3) -> tuple[Passage, ...]:
    return tuple(Passage(f"Paragraph {i}. " + STORY * repeat, page=i // 4 + 1) for i in range(paragraphs))


def _llama(path: Path, n_ctx: int) -> Any:
    from app.engine.worker import llama_here

    return llama_here(str(path), n_ctx=n_ctx, chat_format="chatml", verbose=False, seed=1)


@pytest.fixture(scope="module")
def tiny(test_model_path: Path) -> Iterator[LlamaModel]:
    llm = _llama(test_model_path, 512)
    yield LlamaModel(llm, cancelled=lambda: False)
    llm.close()


class Recorder:
    """The model, with every call written down."""

    def __init__(self, model: LlamaModel) -> None:
        self.model = model
        self.calls: list[tuple[list[dict[str, str]], int, str | None]] = []

    @property
    def n_ctx(self) -> int:
        return self.model.n_ctx

    def tokenize(self, text: str) -> list[int]:
        return self.model.tokenize(text)

    def detokenize(self, tokens: list[int]) -> str:
        return self.model.detokenize(tokens)

    def complete(self, messages: list[dict[str, str]], **options: Any) -> Completion:
        self.calls.append((messages, options["max_tokens"], options.get("grammar")))
        done = self.model.complete(messages, **options)
        total = len(self.model.llm.tokenize(
            "".join(m["content"] for m in messages).encode(), add_bos=False)) + options["max_tokens"]
        assert total <= self.n_ctx + 64, "a call that cannot fit the window"
        return done

    def label_logprobs(self, labels: Sequence[str]) -> list[float]:
        return self.model.label_logprobs(labels)


def run(model: Any, task: TaskInput, cancelled: Callable[[], bool] = lambda: False) -> tuple[Any, list[Progress],
                                                                                               list[Part]]:
    """The result, the progress of each model call as it started, and the parts."""
    progress: list[Progress] = []
    parts: list[Part] = []
    result = TaskRun(model, task, cancelled=cancelled, on_progress=progress.append, on_part=parts.append).run()
    return result, [step for step in progress if not (step.to_read or step.written)], parts


# --- chunking ---


@pytest.mark.parametrize("budget", [40, 97, 300])
def test_chunks_fit_the_budget_and_hold_every_token_exactly_once(tiny: LlamaModel, budget: int) -> None:
    passages = (*document(12), Passage("A very long paragraph. " * 120, heading="Long"), Passage("Short end."))
    chunks = chunking.split(passages, tiny.tokenize, tiny.detokenize, budget)
    separator = len(tiny.tokenize(chunking.SEPARATOR))
    assert all(chunking.chunk_tokens(c, separator) <= budget for c in chunks)
    in_chunks = [t for chunk in chunks for piece in chunk.pieces for t in piece.tokens]
    assert in_chunks == [t for passage in passages for t in tiny.tokenize(passage.text)]
    passages_in_order = [piece.passage for chunk in chunks for piece in chunk.pieces]
    assert passages_in_order == sorted(passages_in_order)
    assert len(chunks) > 1


def test_paragraphs_are_kept_whole_unless_longer_than_a_part(tiny: LlamaModel) -> None:
    passages = document(10)
    longest = max(len(tiny.tokenize(p.text)) for p in passages)
    chunks = chunking.split(passages, tiny.tokenize, tiny.detokenize, longest * 3)
    assert all(len(c.pieces) == c.last - c.first + 1 for c in chunks)  # one piece per paragraph
    assert chunks[0].location.startswith("page")


def test_a_long_paragraph_is_cut_after_a_sentence(tiny: LlamaModel) -> None:
    text = " ".join(f"Sentence number {i} is here." for i in range(80))
    pieces = chunking.pieces_of([Passage(text)], tiny.tokenize, tiny.detokenize, 60)
    assert len(pieces) > 2
    assert all(piece.text.endswith(".") for piece in pieces[:-1])


def test_locations_say_pages_sections_or_paragraphs() -> None:
    from app.documents.location import span_location

    assert span_location([Passage("a", page=3), Passage("b", page=5)], 0, 1) == "pages 3–5"
    assert span_location([Passage("a", page=2)], 0, 0) == "page 2"
    assert span_location([Passage("a", heading="Terms"), Passage("b", heading="Terms")], 0, 1) == "section “Terms”"
    assert span_location([Passage("a"), Passage("b"), Passage("c")], 1, 2) == "paragraphs 2–3"


# --- summarize ---


def test_a_short_document_is_read_in_one_pass(tiny: LlamaModel) -> None:
    recorder = Recorder(tiny)
    result, progress, parts = run(recorder, TaskInput(Summarize("short"), document(2, 1), title="Lily", seed=3))
    assert result.finish_reason == "done" and result.text
    assert (result.chunks, result.levels) == (1, 1)
    assert result.covered_tokens == result.document_tokens > 0
    assert len(recorder.calls) == 1 and len(parts) == 1 and progress[0].stage == "final"
    assert result.model_tokens_processed > result.document_tokens


def test_map_reduce_reads_every_part_in_order_then_combines_by_levels(tiny: LlamaModel) -> None:
    recorder = Recorder(tiny)
    task = TaskInput(Summarize("points", focus="the dog"), document(40), title="Lily", seed=3)
    plan = plan_task(tiny, task)
    result, progress, parts = run(recorder, task)
    assert result.finish_reason == "done"
    assert result.covered_tokens == result.document_tokens == plan.document_tokens
    assert result.chunks == plan.chunks == len(parts) > 3
    maps = [c for c in recorder.calls if "this part of" in c[0][1]["content"]]
    assert len(maps) == result.chunks
    pages = [part.location for part in parts]
    assert pages[0].startswith("page 1") or pages[0].startswith("pages 1")
    assert [p.first_passage for p in parts] == sorted(p.first_passage for p in parts)
    assert all("the dog" in call[0][1]["content"] for call in recorder.calls)  # the focus reaches every call
    combines = [c for c in recorder.calls if "consecutive parts" in c[0][1]["content"]]
    combine_levels = sum(1 for s in progress if s.stage == "combine" and s.label.startswith("Combining summaries 1 "))
    assert combines and result.levels == 2 + combine_levels >= 3
    for call in combines:  # each merges consecutive parts, in document order
        firsts = [int(line.split()[2].split("–")[0].rstrip(":")) for line in call[0][1]["content"].splitlines()
                  if line.startswith("Part page")]
        assert len(firsts) >= 2 and firsts == sorted(firsts)
    assert len(recorder.calls) == result.chunks + len(combines) + 1
    assert [s.step for s in progress] == list(range(1, len(recorder.calls) + 1))
    assert progress[-1].stage == "final" and progress[-1].total == len(recorder.calls)
    assert "Part page" in recorder.calls[-1][0][1]["content"] or "Part pages" in recorder.calls[-1][0][1]["content"]


def test_the_plan_matches_the_run(tiny: LlamaModel) -> None:
    task = TaskInput(Summarize("points"), document(40), seed=3)
    plan = plan_task(tiny, task)
    result, _, _ = run(tiny, task)
    assert not plan.one_pass and plan.context_length == 512
    assert abs(result.model_tokens_processed - plan.prompt_tokens) / plan.prompt_tokens < 0.35


def test_cancel_keeps_the_parts_already_read(tiny: LlamaModel) -> None:
    calls = 0

    def cancelled() -> bool:
        nonlocal calls
        calls += 1
        return calls > 3

    result, _, parts = run(tiny, TaskInput(Summarize("points"), document(40), seed=3), cancelled)
    assert result.finish_reason == "cancelled"
    assert 0 < len(result.parts) == len(parts) < result.chunks
    assert 0 < result.covered_tokens < result.document_tokens
    assert parts[0].output in result.text


def test_key_points_link_back_to_the_part_they_came_from(tiny: LlamaModel) -> None:
    passages = (Passage("The tenant pays rent on the first day of each month.", page=1),
                Passage("The landlord repairs the roof and the heating.", page=2))
    chunks = chunking.split(passages, tiny.tokenize, tiny.detokenize, max(len(tiny.tokenize(p.text)) for p in passages))
    assert len(chunks) == 2
    points = _points("Summary:\n- Rent is due on the first day of the month.\n* The landlord repairs the heating.\n"
                     "Not a point", list(enumerate(chunks, 1)), passages, single=False, spec=Summarize())
    assert [(k.part, k.location) for k in points] == [(1, "page 1"), (2, "page 2")]
    single = _points("1. the roof is repaired by the landlord", list(enumerate(chunks, 1)), passages, single=True,
                     spec=Summarize())
    assert single[0].location == "page 2"


def test_a_window_too_small_is_a_plain_error(test_model_path: Path) -> None:
    from app.errors import ContextTooSmallError

    llm = _llama(test_model_path, 160)
    try:
        with pytest.raises(ContextTooSmallError, match="too small"):
            run(LlamaModel(llm, lambda: False), TaskInput(Summarize("points"), document(10)))
    finally:
        llm.close()


# --- translate ---


def test_translate_goes_part_by_part_keeping_paragraphs(tiny: LlamaModel) -> None:
    recorder = Recorder(tiny)
    passages = (Passage("# Title", heading="Title"), *document(12, 1))
    result, progress, parts = run(recorder, TaskInput(Translate("French"), passages, seed=2))
    assert result.finish_reason == "done"
    assert result.source_language in LANGUAGES
    assert result.source_language == "English"  # told by py3langid, not asked of the model
    assert progress[0].stage == "translate" and len(recorder.calls) == len(parts)
    assert len(parts) == result.chunks > 1 == result.levels
    assert result.covered_tokens == result.document_tokens
    assert result.text.count("\n\n") >= len(parts) - 1
    assert all("into French" in c[0][1]["content"] for c in recorder.calls)
    assert f"from {result.source_language}" in recorder.calls[0][0][1]["content"]


def test_translate_with_a_chosen_source_does_not_detect(tiny: LlamaModel) -> None:
    recorder = Recorder(tiny)
    result, progress, _ = run(recorder, TaskInput(Translate("German", source="English"), document(2, 1)))
    assert result.source_language == "English" and progress[0].stage == "translate"


# --- classify ---


@pytest.fixture(scope="module")
def random_model(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlamaModel]:
    path = llama_gqa(tmp_path_factory.mktemp("random"), dtype="F32", seed=11)
    llm = _llama(path, 512)
    yield LlamaModel(llm, cancelled=lambda: False)
    llm.close()


LABELS = (Label("billing", "money, invoices"), Label("bug", "something broken"), Label("praise"))


@pytest.mark.parametrize("which", ["tiny", "random_model"])
def test_the_grammar_allows_only_the_labels_even_from_a_random_model(which: str, request: pytest.FixtureRequest
                                                                    ) -> None:
    model = request.getfixturevalue(which)
    texts = ("I was charged twice", "The app crashes on start", "Love it!", "zzzz qqq")
    result, _, _ = run(model, TaskInput(Classify(LABELS), tuple(Passage(t) for t in texts)))
    names = {label.name for label in LABELS}
    assert [row.input for row in result.rows] == list(texts)
    for row in result.rows:
        assert len(row.labels) == 1 and row.labels[0] in names
        assert set(row.confidence) == names and abs(sum(row.confidence.values()) - 1) < 1e-6
        assert all(0 <= c <= 1 for c in row.confidence.values())
    multi, _, _ = run(model, TaskInput(Classify(LABELS, multi=True), tuple(Passage(t) for t in texts)))
    assert all(row.labels and set(row.labels) <= names for row in multi.rows)


def test_label_confidence_comes_from_the_models_probabilities(tiny: LlamaModel) -> None:
    tiny.complete([{"role": "user", "content": "Once upon a time there was a"}], max_tokens=1, temperature=0,
                  seed=1)
    likely, unlikely = tiny.label_logprobs(["little", "zqxj"])
    assert likely > unlikely


def test_grammars_escape_quotes() -> None:
    assert choice_grammar(['say "hi"', "a\\b"]) == 'root ::= " "? ("say \\"hi\\"" | "a\\\\b")\n'
    assert "item ::=" in list_grammar(["a", "b"])


def test_labels_as_people_write_them() -> None:
    assert [label.name for label in inputs.parse_labels("billing, bug ,praise,bug")] == ["billing", "bug", "praise"]
    written = inputs.parse_labels("billing: money, invoices\nbug: broken things\n")
    assert written == (Label("billing", "money, invoices"), Label("bug", "broken things"))


def test_too_few_labels_is_a_plain_error(tiny: LlamaModel) -> None:
    from app.tasks.orchestration import LabelsError

    with pytest.raises(LabelsError, match="at least two"):
        run(tiny, TaskInput(Classify((Label("only"),)), (Passage("x"),)))


def test_csv_rows_and_export(tmp_path: Path) -> None:
    path = tmp_path / "feedback.csv"
    path.write_text("id;comment\n1;I was charged twice\n2;\n3;It crashes\n", encoding="utf-8")
    assert inputs.csv_columns(path) == ["id;comment"] or inputs.rows_from_csv(path, "comment")
    assert inputs.rows_from_csv(path, "comment") == ["I was charged twice", "It crashes"]
    assert inputs.rows_from_csv(path, "2") == ["I was charged twice", "It crashes"]
    with pytest.raises(inputs.InputError, match=r"no column “text”.*id, comment"):
        inputs.rows_from_csv(path, "text")
    from app.tasks.spec import ClassifiedText

    exported = inputs.classified_csv([ClassifiedText("a, b", ("bug",), {"bug": 0.75, "praise": 0.25})],
                                     ["bug", "praise"])
    assert exported.splitlines() == ["input,labels,confidence bug,confidence praise", '"a, b",bug,0.750,0.250']


def test_the_document_form_becomes_a_task_input_or_says_why_not() -> None:
    """The one builder both the Tasks and the Compare page use (``app.tasks.input_form``)."""
    from app.documents.reader import document_from_text
    from app.tasks.input_form import TYPED_NAME, BuiltInput, FormInput, build

    summarize, labels = Summarize("points"), Classify((Label("bug"), Label("praise")))
    assert build(FormInput("summarize", summarize, "   ")) == \
        "Open a document, drop one here, or write or paste some text."
    assert build(FormInput("summarize", summarize, "x", reading="report.pdf")) == "Reading “report.pdf”…"
    assert build(FormInput("classify", Classify((Label("bug"),)), "a")) == \
        "Write at least two labels to choose from, one per line."
    same = build(FormInput("translate", Translate("French", "French"), "Bonjour"))
    assert isinstance(same, str) and same.startswith("The text is already in French")
    assert build(FormInput("summarize", summarize, table="feedback.csv")) == (
        "“feedback.csv” is a table: choose Classify to label its rows, or open a document to summarize it.")
    assert build(FormInput("classify", labels, table="feedback.csv")) == "Choose the column that holds the texts."

    typed = build(FormInput("summarize", summarize, STORY))
    assert isinstance(typed, BuiltInput) and typed.whole == "1 paragraph" and typed.source.kind == "pasted"
    assert typed.task.title == "the text" and typed.task.passages[0].text == STORY.strip()
    lines = build(FormInput("classify", labels, "It crashes\n\nI love it\n"))
    assert isinstance(lines, BuiltInput) and lines.whole == "2 texts"
    assert (lines.source.name, lines.source.kind, lines.source.text) == (TYPED_NAME, "lines", "It crashes\nI love it")
    table = build(FormInput("classify", labels, table="feedback.csv", rows=["a", "b", "c"]))
    assert isinstance(table, BuiltInput) and (table.source.kind, table.task.title, table.whole) == \
        ("csv", "feedback.csv", "3 texts")
    document = document_from_text("# Notes\n\nFirst.\n\nSecond.", name="notes.md")
    opened = build(FormInput("classify", labels, "ignored", document=document))
    assert isinstance(opened, BuiltInput) and opened.source.name == "notes.md" and opened.whole == "3 texts"


# --- prompts are data ---


def test_every_prompt_file_is_valid() -> None:
    for length in prompts.SUMMARY_LENGTHS:
        assert prompts.summary_prompts(length).templates["map"]
    assert set(prompts.load("translate").templates) == {"translate"}
    assert set(prompts.load("classify").templates) == {"single", "multi"}


def test_a_broken_prompt_file_names_itself(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "prompts").mkdir()
    broken = 'system = "x"\ntranslate = "no text here"\n'
    (tmp_path / "prompts" / "translate.toml").write_text(broken, encoding="utf-8")
    monkeypatch.setattr(prompts, "resources_dir", lambda: tmp_path)
    prompts.load.cache_clear()
    try:
        with pytest.raises(prompts.PromptError, match=r"translate\.toml must contain \{target\}, \{text\}"):
            prompts.load("translate")
        with pytest.raises(prompts.PromptError, match=r"summarize-short\.toml cannot be read"):
            prompts.load("summarize-short")
    finally:
        prompts.load.cache_clear()


# --- through the engine worker, saved in history ---


@pytest.fixture
def session(tmp_path: Path, test_model_path: Path) -> Iterator[tuple[TaskSession, HistoryStore, EngineClient]]:
    store = HistoryStore(open_database(tmp_path / "history.sqlite3"))
    engine = EngineClient()
    engine.start()
    engine.load_blocking(test_model_path, context_length=512)
    saving = {"text": True}
    tasks = TaskSession(store, engine, save_text=lambda: saving["text"])
    yield tasks, store, engine
    engine.shutdown()


@pytest.mark.engine
def test_every_run_is_saved_in_history(session: tuple[TaskSession, HistoryStore, EngineClient],
                                       test_model_path: Path) -> None:
    tasks, store, _ = session
    story = document(12, 1)
    text = "\n\n".join(p.text for p in story)
    ended = tasks.run_blocking(TaskInput(Summarize("short"), story), Source("story.md", "md", len(text), text),
                               model_name="tiny")
    assert ended.record.status == "done" and ended.record.output == ended.result.text  # type: ignore[union-attr]
    tasks.save_text = lambda: False
    rows = ["I was charged twice", "It crashes"]
    tasks.run_blocking(TaskInput(Classify(LABELS), tuple(Passage(r) for r in rows)),
                       inputs.rows_source(rows, "feedback.csv", "csv"))
    tasks.run_blocking(TaskInput(Translate("French", "English"), story[:2]), Source("a.txt", "txt", 10, "ab"))
    saved = store.task_runs()
    assert [r.task for r in saved] == ["translate", "classify", "summarize"]
    summary = saved[2]
    assert summary.input_name == "story.md" and summary.input_text == text and summary.model_name == "tiny"
    assert summary.input_sha256 == Source("story.md", "md", 0, text).sha256
    assert summary.model_path == str(test_model_path.resolve())
    assert summary.parameters["length"] == "short"
    metrics = summary.metrics
    assert metrics["prompt_tokens"] == metrics["model_tokens_processed"] > metrics["document_tokens"] > 0
    assert metrics["completion_tokens"] > 0 and metrics["tokens_per_s"] > 0 and metrics["total_s"] > 0
    assert metrics["peak_rss_bytes"] > test_model_path.stat().st_size
    classify = saved[1]
    assert classify.input_text is None and classify.input_kind == "csv"
    assert [row["input"] for row in classify.result["rows"]] == rows


@pytest.mark.engine
def test_stop_mid_run_saves_the_parts_done(session: tuple[TaskSession, HistoryStore, EngineClient]) -> None:
    from app.task_session import RunPart

    tasks, store, _ = session
    seen: list[Any] = []

    def on_event(event: Any) -> None:
        seen.append(event)
        if isinstance(event, RunPart) and sum(isinstance(e, RunPart) for e in seen) == 2:
            tasks.stop()

    ended = tasks.run_blocking(TaskInput(Summarize("points"), document(60)), Source("long.txt", "txt", 1, "x"),
                               on_event=on_event)
    assert ended.record.status == "cancelled"
    assert ended.result is not None and 2 <= len(ended.result.parts) < ended.result.chunks
    assert store.get_task_run(ended.run_id).result["parts"][0]["output"] == ended.result.parts[0].output
    finished = tasks.run_blocking(TaskInput(Summarize("short"), document(1, 1)), Source("s", "txt", 1, "x"))
    assert finished.record.status == "done"  # the engine is usable again at once


@pytest.mark.engine
def test_plan_for_a_model_that_is_not_loaded(test_model_path: Path, tmp_path: Path) -> None:
    engine = EngineClient()
    try:
        task = TaskInput(Summarize("points"), document(40))
        with EventWaiter(engine) as waiter:
            engine.plan_task(test_model_path, 512, task)
            planned = waiter.wait_for((p.TaskPlanned, p.Failed), 60)
        assert isinstance(planned, p.TaskPlanned)
        vocab = VocabModel(str(test_model_path), 512)
        try:
            assert planned.plan == plan_task(vocab, task)
        finally:
            vocab.close()
        assert planned.plan.chunks > 1 and engine.loaded is None
        with EventWaiter(engine) as waiter:
            engine.plan_task(tmp_path / "missing.gguf", 512, task)
            failed = waiter.wait_for((p.TaskPlanned, p.Failed), 60)
        assert isinstance(failed, p.Failed) and "missing.gguf" in failed.message
    finally:
        engine.shutdown()


ZEPHYR_TEMPLATE = ("{% for message in messages %}<|{{ message['role'] }}|>\n{{ message['content'] }}</s>\n"
                   "{% endfor %}{% if add_generation_prompt %}<|assistant|>\n{% endif %}")


@pytest.mark.engine
def test_a_model_with_its_own_chat_template(test_model_path: Path, tmp_path: Path) -> None:
    from tests.helpers.gguf_fixtures import with_chat_template

    path = with_chat_template(test_model_path, tmp_path, ZEPHYR_TEMPLATE)
    store = HistoryStore(open_database(tmp_path / "history.sqlite3"))
    engine = EngineClient()
    try:
        loaded = engine.load_blocking(path, context_length=512)
        assert loaded.has_chat_template
        tasks = TaskSession(store, engine)
        summary = tasks.run_blocking(TaskInput(Summarize("points"), document(20)), Source("d", "txt", 1, "x"))
        assert summary.result is not None and summary.result.chunks > 1 and summary.record.status == "done"
        labels = tasks.run_blocking(TaskInput(Classify(LABELS), (Passage("It crashes"),)), Source("d", "txt", 1, "x"))
        assert labels.result is not None and labels.result.rows[0].labels[0] in {label.name for label in LABELS}
    finally:
        engine.shutdown()


def test_long_section_headings_still_fit_the_window(tiny: LlamaModel) -> None:
    passages = tuple(Passage(STORY * 2, heading=f"Chapter {i}: the garden, the storm and the long way back home")
                     for i in range(30))
    result, _, parts = run(tiny, TaskInput(Summarize("points"), passages, title="Garden report 2024"))
    assert result.finish_reason == "done" and len(parts) > 1
    assert parts[0].location.startswith("sections “Chapter 0: the garden") and "…" in parts[0].location


def test_a_classified_row_never_contradicts_its_own_confidences() -> None:
    from app.tasks.orchestration import chosen_labels

    confidence = {"complaint": 0.376, "question": 0.458, "praise": 0.166}
    assert chosen_labels(("complaint",), confidence, multi=False) == ("question",)
    assert chosen_labels((), confidence, multi=False) == ("question",)
    assert chosen_labels(("praise", "complaint"), confidence, multi=True) == ("complaint", "question", "praise")
    assert chosen_labels(("question",), confidence, multi=True) == ("question",)


# --- progress within a model call ---


def test_progress_moves_while_a_part_is_read_and_written(tiny: LlamaModel) -> None:
    """Each call says how far it has read its prompt (after every batch) and how much it has written (every few
    tokens), so the bar moves within a part, not only between them."""
    progress: list[Progress] = []
    task = TaskInput(Summarize("points"), document(40), seed=3)
    TaskRun(tiny, task, cancelled=lambda: False, on_progress=progress.append).run()
    steps = {p.step for p in progress}
    assert len(steps) > 3
    for step in steps:
        mine = [p for p in progress if p.step == step]
        assert mine[0].read == mine[0].written == 0  # the call starts
        reading = [p for p in mine if p.to_read and not p.written]
        assert reading and reading[-1].read == reading[-1].to_read > 0  # the whole prompt, told as it is read
        assert all(p.read == p.to_read for p in mine if p.written)  # then it writes
    writing = [step for step in progress if step.written]
    assert writing and all(step.written % 16 == 0 and step.written <= step.to_write for step in writing)
    for total in {step.total for step in progress}:  # (it grows when the summaries need one more level to combine)
        fractions = [step.fraction for step in progress if step.total == total]
        assert fractions == sorted(fractions) and 0 <= fractions[0] <= fractions[-1] <= 1
    assert any(0 < p.within < 1 for p in progress)  # between the steps' starts


def test_progress_is_said_in_tokens_of_the_part() -> None:
    from app.tasks.result_words import step_words

    started = Progress(3, 13, "map", "Reading part 3 of 12 (pages 5–7)", to_write=64)
    assert step_words(started) == "Reading part 3 of 12 (pages 5–7) · step 3 of 13"
    reading = dataclasses.replace(started, read=512, to_read=1500)
    assert step_words(reading) == "Reading part 3 of 12 (pages 5–7) · step 3 of 13 · read 512 of 1,500 tokens"
    writing = dataclasses.replace(reading, read=1500, written=32)
    assert step_words(writing).endswith(" · wrote 32 tokens")
    assert started.fraction < reading.fraction < writing.fraction < Progress(4, 13, "map", "").fraction


# --- key points written as paragraphs ---


def test_key_points_written_as_paragraphs_link_each_sentence(tiny: LlamaModel) -> None:
    """Asked for a list, small models often write paragraphs: their sentences are the points, each linked."""
    passages = (Passage("The tenant pays rent on the first day of each month.", page=1),
                Passage("The landlord repairs the roof and the heating.", page=2))
    chunks = list(enumerate(chunking.split(passages, tiny.tokenize, tiny.detokenize,
                                           max(len(tiny.tokenize(p.text)) for p in passages)), 1))
    summary = ("Here is what the lease says.\n\nRent is due on the first day of the month. The landlord repairs "
               "the heating!\n\n## Notes\nIn short: both sides have duties.")
    points = _points(summary, chunks, passages, single=False, spec=Summarize("points"))
    assert [(k.text, k.part, k.location) for k in points] == [
        ("Here is what the lease says.", 1, "page 1"),
        ("Rent is due on the first day of the month.", 1, "page 1"),
        ("The landlord repairs the heating!", 2, "page 2"),
        ("In short: both sides have duties.", 1, "page 1")]
    from app.tasks.export import result_text
    from app.tasks.spec import TaskResult

    linked = result_text(TaskResult("summarize", summary, "done", points=points), lambda k: f" [{k.location}]")
    assert "Rent is due on the first day of the month. [page 1] The landlord repairs the heating! [page 2]" in linked
    assert _points(summary, chunks, passages, single=False, spec=Summarize("short")) == ()  # one paragraph asked for
    bullets = _points("Points:\n- Rent is due on the first.\nThe landlord repairs the heating.", chunks, passages,
                      single=False, spec=Summarize("points"))
    assert [k.text for k in bullets] == ["Rent is due on the first."]  # a list's lines are the points


# --- output that stopped saying anything (app/degenerate.py), with the real SmolLM2 ---


@pytest.fixture(scope="module")
def smollm2(real_model_path: Path) -> Iterator[LlamaModel]:
    from app.engine.worker import llama_here

    llm = llama_here(str(real_model_path), n_ctx=1024, verbose=False)
    yield LlamaModel(llm, cancelled=lambda: False)
    llm.close()


def report_sections(first: int) -> tuple[Passage, ...]:
    from app.documents.reader import document_from_text

    return inputs.passages_of(document_from_text(operations_report(first)))


def test_a_summary_that_copies_its_document_is_not_presented_as_one(smollm2: LlamaModel) -> None:
    """Asked for the key points of sections 37 to 40 of the report (seed 1), SmolLM2 opens a code block and copies
    section 37 into it."""
    from app.degenerate import Degeneration
    from app.tasks.result_words import went_wrong

    result, _, parts = run(smollm2, TaskInput(Summarize("points"), report_sections(37), title="report",
                                              temperature=0.2, seed=1, max_output_tokens=96))
    assert result.finish_reason == "done" and result.chunks == 1
    assert [p.degeneration for p in parts] == [Degeneration.RESTATING] == [p.degeneration for p in result.wrong_parts]
    assert "## Section 37: Marketing in region 3" in parts[0].output  # kept with the part, shown as what went wrong
    assert result.text == parts[0].output and result.points == ()  # what it wrote, but no key points
    assert result.degeneration == Degeneration.RESTATING
    assert went_wrong(result) == ("There is no summary: the model began copying out the text it was given. Run it "
                                  "again, or try a larger model.")


def test_a_part_that_went_wrong_is_left_out_of_the_summary(smollm2: LlamaModel) -> None:
    """Sections 29 to 40 in a 1,024-token context: two parts; SmolLM2 copies the second one back (seed 1), so the
    summary is written from the first, and the result says so instead of presenting it as complete."""
    from app.degenerate import Degeneration
    from app.tasks.result_words import went_wrong

    recorder = Recorder(smollm2)
    result, _, parts = run(recorder, TaskInput(Summarize("points"), report_sections(29), title="report",
                                               temperature=0.2, seed=1, max_output_tokens=96))
    assert result.finish_reason == "done" and result.chunks == len(parts) == 2
    good, wrong = parts
    assert (good.degeneration, wrong.degeneration) == ("", Degeneration.RESTATING)
    final = recorder.calls[-1][0][1]["content"]
    assert good.output in final and wrong.output not in final  # the copy is not summarized
    assert result.text and not result.degeneration
    assert result.covered_tokens == result.document_tokens == good.tokens + wrong.tokens  # both were read
    assert {point.part for point in result.points} <= {1}
    assert went_wrong(result) == ("Part 2 of 2 went wrong (the model began copying out the text it was given), "
                                  "so the summary leaves it out.")
