"""A finished task run in words, the same in the window and the terminal: its figures in one line, and what went
wrong in it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from app.degenerate import Degeneration
from app.tasks.spec import Part, Progress, TaskResult
from app.words import duration, format_bytes, plural

if TYPE_CHECKING:
    from app.history import TaskRunRecord


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
