"""The watch for answers that have stopped saying anything (app/degenerate.py), on real answers of SmolLM2-135M
(tests/data/degenerate/smollm2-answers.json: the loops it fell into without a repeat penalty, the report it copied
back, the sections it numbered past 40) and on what must never trip it: lists, tables, code, refrains, counting,
a summary that quotes its document, and megabytes of real prose and code."""

from __future__ import annotations

import json

import pytest

from app.degenerate import Degeneration, Watch, Watcher, sequences, watch

from tests.helpers import ROOT
from tests.helpers.document_builders import operations_report

ANSWERS = json.loads((ROOT / "tests" / "data" / "degenerate" / "smollm2-answers.json").read_text(encoding="utf-8"))
REPORT = operations_report()


def answer(name: str) -> str:
    return str(ANSWERS["answers"][name]["text"])


def fed(text: str, checks: Watch | None = None, piece: int = 3) -> tuple[Degeneration | None, int]:
    """What the watcher finds when ``text`` streams in pieces of ``piece`` characters, and after how many."""
    watcher = Watcher(checks)
    for start in range(0, len(text), piece):
        if watcher.add(text[start:start + piece]) is not None:
            return watcher.found, start + piece
    return watcher.finish(), len(text)


def section(first: int, last: int = 40) -> str:
    return operations_report(first, last).split("\n", 2)[2]  # without the report's title


# --- real loops ---


@pytest.mark.parametrize("name", [
    "loop@1.0",  # "Section 30: The Future of Science Fiction / Section 31: The Future of Fantasy / …"
    "list@1.0",  # "4. Ananasaki (Agra)" to "38. Ananasaki (Agra)"
    "steps@1.0",  # "1 cup of flour, 1 cup of sugar, 1 cup of yeast, 1 cup of flour, …" on one line
    "poem@1.0",  # "A refrain of the sea, a refrain of the sea,"
    "story@1.0",  # a paragraph written three times
    "table@1.0",  # "| Earth | Mars | Earth | Mars |"
    "table@1.1",  # "|--|--|--|---|---|" across the page
    "report_short@1.0",  # the same summary paragraph again and again
    "map_21_40@1.0",  # "1. The report is a detailed report that provides a detailed report of the report."
    "detailed_37_40_seed1",
])
def test_real_loops_are_stopped_early(name: str) -> None:
    found, at = fed(answer(name))
    assert found is Degeneration.REPEATING
    assert at < len(answer(name)) * 0.75, "stopped, not noticed at the end"


@pytest.mark.parametrize("name", ["loop@1.1", "capital@1.0", "capital@1.1", "code@1.0", "code@1.1", "list@1.1",
                                  "steps@1.1", "poem@1.1", "story@1.1", "report_points@1.1", "map_21_40@1.1"])
def test_real_answers_that_go_on_are_left_alone(name: str) -> None:
    """What the model wrote with the repeat penalty: a list, a refrain, code (some of it poor), a story."""
    assert fed(answer(name)) == (None, len(answer(name)))


# --- real copies and sections past the document ---


@pytest.mark.parametrize(("name", "first"), [("cli_part_2", 21), ("map_33_40@1.0", 33), ("map_33_40@1.1", 33)])
def test_a_part_copied_back_is_a_restatement(name: str, first: int) -> None:
    """Part 2 of `hearth summarize` on the 40-section report was its section 40 word for word, then "## Section
    41"; asked for the key points of sections 33 to 40, the model opened a code block and copied them into it."""
    found, at = fed(answer(name), watch(source=section(first), document=REPORT))
    assert found is Degeneration.RESTATING and at < len(answer(name))
    assert fed(answer(name)) == (None, len(answer(name)))  # nothing else is wrong with it: it is a copy


def test_a_short_answer_that_is_all_copy_is_a_restatement_when_it_ends() -> None:
    copied = "Section 39: IT Systems in region 5\n\n" + section(39, 39).split("\n", 2)[2][:260]
    watcher = Watcher(watch(source=section(38), document=REPORT))
    assert watcher.add(copied) is None  # under the 60 words a running answer is judged on
    assert watcher.finish() is Degeneration.RESTATING


def test_sections_numbered_past_the_documents_last_are_counting_past() -> None:
    """The bug that started this: a 40-section report summarized as "Section 42 … Section 80"."""
    invented = "".join(f"- Section {n}: the board approved the plan for region {n % 7 + 1}.\n" for n in range(38, 81))
    found, at = fed(invented, watch(document=REPORT))
    assert found is Degeneration.COUNTING_PAST
    assert invented[:at].count("Section") == 5  # 38, 39, 40, then 41 and 42: two past the last
    # The model's own numbering ("In report 41, …" for sections) counts too, once it counts up past the last:
    found, _ = fed(answer("detailed_37_40_seed2"), watch(source=section(37), document=REPORT))
    assert found is Degeneration.COUNTING_PAST
    # …and a list of numbers goes on under the label before it ("in section 29, 30, 31, …, 41, 42").
    listed = "The key points are in section " + ", ".join(str(n) for n in range(29, 45)) + "."
    assert fed(listed, watch(document=REPORT))[0] is Degeneration.COUNTING_PAST


def test_a_summary_that_names_sections_of_the_document_is_left_alone() -> None:
    checks = watch(source=section(1, 21), document=REPORT)
    summary = ("Here's a breakdown of the key points:\n"
               + "".join(f"{n}. **Section {n}**: the team led by manager Ben recorded {n * 37 % 500 + 20} incidents "
                         f"and the board approved {n * 1200 % 50000 + 3000} euros.\n" for n in range(1, 41))
               + "Section 41 of next year's report will follow up.")  # one number past the end is a slip, not a loop
    assert fed(summary, checks) == (None, len(summary))


def test_a_summary_that_quotes_sentences_of_its_part_is_not_a_restatement() -> None:
    """An extractive summary takes sentences one by one; a restatement copies the text as it runs."""
    source = section(1, 12)
    sentences = [s.strip() + "." for s in source.replace("\n", " ").split(".") if len(s.split()) > 6]
    summary = "Key points:\n" + "".join(f"- {sentence}\n" for sentence in sentences[::3])
    assert fed(summary, watch(source=source, document=REPORT)) == (None, len(summary))


def test_sequences_are_numbered_labels_not_figures() -> None:
    assert sequences(REPORT) == {"section": 40, "region": 7}  # not "recorded 57 … 412", nor "report 2025"
    assert sequences(section(33)) == {"section": 40, "region": 7}  # an excerpt numbers from where it starts
    assert sequences("Chapter 1. Chapter 2. Table 12 and Table 340.") == {}


# --- what must never trip it ---


PLANETS = "\n".join(["| # | Planet | Diameter (km) | Moons |", "|---|--------|---------------|-------|"] + [
    f"| {i} | {name} | {diameter:,} | {moons} |" for i, (name, diameter, moons) in enumerate([
        ("Mercury", 4879, 0), ("Venus", 12104, 0), ("Earth", 12742, 1), ("Mars", 6779, 2), ("Jupiter", 139820, 95),
        ("Saturn", 116460, 146), ("Uranus", 50724, 28), ("Neptune", 49244, 16)], 1)])
WIDE_TABLE = "| " + " | ".join(f"Q{i}" for i in range(1, 25)) + " |\n|" + "---|" * 24 + "\n" + "\n".join(
    "| " + " | ".join(str((row * 7 + col * 3) % 10) for col in range(24)) + " |" for row in range(12))
CODE = "Here is the test:\n\n```python\nimport pytest\n\n\n" + "".join(
    f"def test_fibonacci_{n}() -> None:\n    assert fibonacci({n}) == {f}\n\n\n"
    for n, f in enumerate([0, 1, 1, 2, 3, 5, 8, 13, 21, 34, 55, 89, 144, 233, 377])) + \
    "COLORS = {\n" + "".join(f'    "gray{n}": "#{n:02x}{n:02x}{n:02x}",\n' for n in range(0, 240, 12)) + "}\n```\n"
CHORUS = "Row, row, row your boat,\nGently down the stream,\nMerrily, merrily, merrily, merrily,\nLife is but a dream."
SONG = "\n\n".join(f"Verse {n}: {line}\n\n{CHORUS}" for n, line in enumerate(
                       ["The river bends and carries us", "The willows lean to watch us pass",
                        "The evening falls on quiet water"], 1))
STEPS = "\n".join(f"Step {n}: {text}" for n, text in enumerate([
    "Preheat the oven to 220 °C.", "Mix the flour, the salt and the yeast in a bowl.", "Add the warm water slowly.",
    "Knead the dough for ten minutes.", "Let it rise for an hour.", "Shape the loaf and put it on a tray.",
    "Let it rise again for half an hour.", "Bake for thirty minutes.", "Let it cool before slicing.",
    "Slice it and serve with butter."], 1))
LINKS = "\n".join(f"- [{name}](https://pypi.org/project/{name}/)" for name in [
    "flake8-annotations", "flake8-async", "flake8-bandit", "flake8-blind-except", "flake8-boolean-trap",
    "flake8-bugbear", "flake8-builtins", "flake8-commas", "flake8-comprehensions", "flake8-datetimez",
    "flake8-debugger", "flake8-django", "flake8-errmsg", "flake8-executable", "flake8-gettext"])
PATHS = "\n".join(f"lib/gssapi/mechglue/g_{name}.c" for name in [
    "accept_sec_context", "acquire_cred", "canon_name", "compare_name", "context_time", "delete_sec_context",
    "dsp_name", "dsp_status", "dup_name", "exp_sec_context", "export_name", "glue", "imp_name", "imp_sec_context",
    "init_sec_context", "initialize", "inquire_context", "inquire_cred", "inquire_names", "process_context"])
VERSIONS = "\n".join(f"    2.{major}.{minor}       2.{major}.{minor - 1 if minor else 0}       {2001 + major}  PSF  yes"
                     for major in range(1, 4) for minor in range(0, 5))


@pytest.mark.parametrize("text", [
    PLANETS, WIDE_TABLE, CODE, SONG, STEPS, LINKS, PATHS, VERSIONS,
    ", ".join(str(n) for n in range(1, 201)),  # "count to 200"
    "\n".join(f"{n} x 7 = {n * 7}" for n in range(1, 31)),  # a times table
    "\n".join(f"{n}. Step {n}" for n in range(1, 60)),  # asked for, numbered twice
    "Very, very, very good. " * 2 + "That was all I had to say about it, really.",
], ids=["table", "wide table", "code", "refrain", "steps", "links", "paths", "versions", "counting", "times table",
        "numbered", "emphasis"])
def test_lists_tables_code_and_repeats_on_purpose_are_left_alone(text: str) -> None:
    assert fed(text) == (None, len(text))
    assert fed(text, watch(document=REPORT)) == (None, len(text))


def test_real_prose_and_code_are_left_alone() -> None:
    """This repository's own Python (in a fence, as a model writes code) and Markdown: text of every shape, none
    of it a loop."""
    texts = {path.name: f"The module:\n\n```python\n{path.read_text(encoding='utf-8')}\n```\n"
             for path in sorted((ROOT / "app").rglob("*.py"))}
    texts |= {path.name: path.read_text(encoding="utf-8") for path in sorted((ROOT / "docs").rglob("*.md"))}
    texts["README.md"] = (ROOT / "README.md").read_text(encoding="utf-8")
    assert sum(len(text) for text in texts.values()) > 300_000
    tripped = {name: watcher.rule for name, text in texts.items() if (watcher := Watcher()).add(text) is not None}
    assert tripped == {}


# --- streaming ---


def test_the_pieces_the_text_streams_in_do_not_change_what_is_found() -> None:
    for name in ("loop@1.0", "poem@1.0", "steps@1.0", "capital@1.1"):
        results = {fed(answer(name), piece=piece)[0] for piece in (1, 2, 7, 50, 10_000)}
        assert len(results) == 1, name


def test_what_is_found_is_kept_and_said_in_plain_words() -> None:
    watcher = Watcher()
    assert watcher.add("ha ha " * 100) is Degeneration.REPEATING
    assert watcher.add("Something new entirely.") is Degeneration.REPEATING
    assert Degeneration.REPEATING.sentence == "the model began repeating itself"
    assert all(kind.sentence.startswith("the model began ") for kind in Degeneration)
