"""A finished task run's figures in one line, the same in the window and the terminal."""

from __future__ import annotations

from typing import TYPE_CHECKING

from app.tasks.spec import TaskResult
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
