"""A finished task run in words, the same in the window, the terminal and an export: what it made of what, with
which options, its figures in one line, and what went wrong in it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from app.degenerate import Degeneration
from app.documents.document import PASTED_NAME
from app.outcomes import RunStatus
from app.tasks.input_form import TYPED_NAME
from app.tasks.spec import LENGTH_WORDS, ClassifiedText, KeyPoint, Part, Progress, TaskResult
from app.words import duration, format_bytes, plural

if TYPE_CHECKING:
    from app.history import TaskRunRecord

TASK_WORDS = {"summarize": "Summary", "translate": "Translation", "classify": "Labels"}


def result_from_dict(data: dict[str, Any], task: str) -> TaskResult | None:
    """A saved result (``TaskResult.to_dict()``) back as a ``TaskResult``; None when nothing was saved (a run
    cut off by a crash of the app)."""
    if not data:
        return None
    parts = tuple(Part(int(p["index"]), str(p["location"]), int(p["first_passage"]), int(p["last_passage"]),
                       int(p.get("tokens", 0)), str(p.get("output", "")), str(p.get("degeneration") or ""))
                  for p in data.get("parts", ()))
    points = tuple(KeyPoint(str(k["text"]), int(k["part"]), str(k["location"])) for k in data.get("points", ()))
    rows = tuple(ClassifiedText(str(r["input"]), tuple(r.get("labels", ())), dict(r.get("confidence", {})),
                                bool(r.get("truncated", False))) for r in data.get("rows", ()))
    return TaskResult(task=str(data.get("task", task)), text=str(data.get("text", "")),
                      finish_reason=RunStatus(data.get("finish_reason", RunStatus.CANCELLED)), parts=parts,
                      points=points,
                      rows=rows, document_tokens=int(data.get("document_tokens", 0)),
                      covered_tokens=int(data.get("covered_tokens", 0)), chunks=int(data.get("chunks", 0)),
                      levels=int(data.get("levels", 0)),
                      model_tokens_processed=int(data.get("model_tokens_processed", 0)),
                      generated_tokens=int(data.get("generated_tokens", 0)),
                      source_language=data.get("source_language"), degeneration=str(data.get("degeneration") or ""),
                      note=str(data.get("note") or ""))


def input_words(name: str) -> str:
    """A file by its name in quotes; text the person typed or pasted as what it is."""
    return {PASTED_NAME: "the pasted text", TYPED_NAME: "the texts typed in"}.get(name, f"“{name}”")


def run_title(record: TaskRunRecord) -> str:
    """"Summary of “report.pdf”": what the run made, of what."""
    made = TASK_WORDS.get(record.task, record.task.capitalize())
    return f"{made} {'for' if record.task == 'classify' else 'of'} {input_words(record.input_name)}"


def run_options(record: TaskRunRecord) -> str:
    """The run's settings in words: "Key points · focus: the tenant's duties", "French to English"."""
    parameters = record.parameters
    if record.task == "summarize":
        focus = str(parameters.get("focus") or "").strip()
        words = LENGTH_WORDS.get(str(parameters.get("length")), "")
        return words + (f" · focus: {focus}" if focus else "")
    if record.task == "translate":
        source = parameters.get("source") or record.result.get("source_language")
        return f"{source} to {parameters.get('target')}" if source else f"into {parameters.get('target')}"
    labels = [label.get("name", "") for label in parameters.get("labels", ()) if isinstance(label, dict)]
    return ("Several labels each: " if parameters.get("multi") else "One label each: ") + ", ".join(labels)


def metrics_line(record: TaskRunRecord, result: TaskResult, whole: str | None = None) -> str:
    """"Read all 38 pages (21,400 of 21,400 tokens) in 9 parts · 23,900 tokens processed · 1m 40s · 14 tokens/s ·
    peak memory 2.1 GB". ``whole`` names the input when it is known ("38 pages"). How many levels of summaries
    that took is for the technical reader (``--json``'s ``levels``), not this line."""
    m = record.metrics
    pieces: list[str] = []
    if record.task == "classify":
        pieces.append(f"Labelled {plural(len(result.rows), 'text')}")
    elif result.document_tokens and result.wrong_parts and result.chunks > 1:  # read, but not all of it is used
        verb = "Summarized" if record.task == "summarize" else "Translated"
        used = result.covered_tokens - sum(part.tokens for part in result.wrong_parts)
        good = len(result.parts) - len(result.wrong_parts)
        pieces.append(f"{verb} {used:,} of {result.document_tokens:,} tokens "
                      f"({good} of {plural(result.chunks, 'part')}; {len(result.wrong_parts)} went wrong)")
    elif result.document_tokens and result.covered_tokens:
        tokens = f"{result.covered_tokens:,} of {result.document_tokens:,} tokens"
        verb = "Read" if record.task == "summarize" else "Translated"
        if result.covered_tokens >= result.document_tokens:
            what = f"{verb} all {whole} ({tokens})" if whole else f"{verb} all of it ({tokens})"
        else:
            what = f"{verb} {tokens}"
        if result.chunks <= 1:
            what += " in one pass"
        elif len(result.parts) >= result.chunks:
            what += f" in {plural(result.chunks, 'part')}"
        else:
            what += f", {len(result.parts)} of {result.chunks} parts"
        if result.degeneration:  # the parts were read, and their summaries are what there is
            what += "; no summary"
        if result.source_language:
            what += f" from {result.source_language}"
        pieces.append(what)
    processed = m.get("model_tokens_processed") or result.model_tokens_processed
    if processed:
        pieces.append(f"{processed:,} tokens processed")
    if m.get("total_s"):
        pieces.append(duration(float(m["total_s"])))
    if m.get("tokens_per_s"):
        pieces.append(f"{float(m['tokens_per_s']):,.0f} tokens/s" if m["tokens_per_s"] >= 10 else
                      f"{float(m['tokens_per_s']):.1f} tokens/s")
    if m.get("peak_rss_bytes"):
        pieces.append(f"peak memory {format_bytes(int(m['peak_rss_bytes']))}")
    return " · ".join(pieces)


def went_wrong(result: TaskResult) -> str:
    """What went wrong in a run whose model was stopped (``app.degenerate``), said above its result; "" when
    nothing did: "Part 2 of 5 went wrong (the model began repeating itself), so the summary leaves it out"."""
    wrong = result.wrong_parts
    if result.task == "translate":
        return (f"{_which(wrong, result.chunks)} {'is' if len(wrong) == 1 else 'are'} not translated: "
                f"{_why(wrong)}. The rest is.") if wrong else ""
    again = "Run it again, or try a larger model."
    if result.chunks <= 1 and (wrong or result.degeneration):
        return f"There is no summary: {Degeneration(result.degeneration or wrong[0].degeneration).sentence}. {again}"
    if result.degeneration:
        return (f"There is no summary: {Degeneration(result.degeneration).sentence} while putting the parts "
                f"together. The summaries of the parts are below. {again}")
    if wrong and len(wrong) == len(result.parts):
        return f"There is no summary: every part went wrong ({_why(wrong)}). {again}"
    if wrong:
        return (f"{_which(wrong, result.chunks)} went wrong ({_why(wrong)}), so the summary leaves "
                f"{'it' if len(wrong) == 1 else 'them'} out.")
    return ""


def _which(parts: tuple[Part, ...], chunks: int) -> str:
    """"Part 2 of 5", "Parts 2 and 4 of 5"."""
    numbers = [str(part.index) for part in parts]
    listed = numbers[0] if len(numbers) == 1 else f"{', '.join(numbers[:-1])} and {numbers[-1]}"
    return f"{'Part' if len(numbers) == 1 else 'Parts'} {listed} of {chunks}"


def _why(parts: tuple[Part, ...]) -> str:
    kinds = dict.fromkeys(Degeneration(part.degeneration) for part in parts)
    return "; ".join(kind.sentence for kind in kinds)


def step_words(progress: Progress) -> str:
    """The model call running, and how far it has got: "Reading part 3 of 12 (pages 5–7) · step 3 of 13 · read
    1,200 of 1,500 tokens" while it reads its part, then "· wrote 85 tokens"."""
    words = f"{progress.label} · step {progress.step} of {progress.total}"
    if progress.written:
        return f"{words} · wrote {plural(progress.written, 'token')}"
    if progress.to_read:
        return f"{words} · read {progress.read:,} of {plural(progress.to_read, 'token')}"
    return words
