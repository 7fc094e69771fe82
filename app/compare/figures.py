"""The figures of a comparison as people read them, one way for the page, the report and the terminal."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from app.history import ComparisonRecord, EntryRecord
from app.outcomes import RunStatus
from app.words import format_bytes, plural

STATUS_WORDS = {RunStatus.WAITING: "Waiting", RunStatus.RUNNING: "Running", RunStatus.DONE: "Done",
                RunStatus.CANCELLED: "Stopped", RunStatus.FAILED: "Failed", RunStatus.INTERRUPTED: "Interrupted"}
VERDICT_WORDS = {"tie": "A tie", "both_bad": "Both bad"}


def _seconds(value: Any) -> str:
    if value is None:
        return "–"
    return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.1f} s"


def _speed(value: Any) -> str:
    return "–" if not value else f"{value:.1f} tokens/s"


def _count(value: Any) -> str:
    return "–" if value is None else f"{int(value):,}"


def _size(value: Any) -> str:
    return "–" if not value else format_bytes(int(value))


@dataclass(frozen=True)
class Figure:
    key: str  # in the entry's metrics
    title: str
    show: Callable[[Any], str]
    better: str  # "lower" or "higher": which way the chart and the page read it


FIGURES = (
    Figure("load_s", "Load time", _seconds, "lower"),
    Figure("ttft_s", "First token after", _seconds, "lower"),
    Figure("tokens_per_s", "Speed", _speed, "higher"),
    Figure("output_tokens", "Output tokens", _count, "higher"),
    Figure("peak_rss_bytes", "Peak memory (measured)", _size, "lower"),
    Figure("estimate_bytes", "Memory forecast", _size, "lower"),
)


# Figures that give a model's size away (a bigger model loads longer and takes more memory): hidden while a blind
# comparison waits for its vote, like the names.
IDENTIFYING = frozenset({"load_s", "peak_rss_bytes", "estimate_bytes"})


def shown_figures(record: ComparisonRecord) -> tuple[Figure, ...]:
    return tuple(f for f in FIGURES if not (record.names_hidden and f.key in IDENTIFYING))


def label(record: ComparisonRecord, entry: EntryRecord) -> str:
    """The model's name, or "Model A", "Model B"… (by column) while a blind comparison awaits its vote."""
    if not record.names_hidden:
        return entry.model_name
    return f"Model {chr(ord('A') + record.shown_order.index(entry.position))}"


def shown_entries(record: ComparisonRecord) -> list[EntryRecord]:
    by_position = {entry.position: entry for entry in record.entries}
    return [by_position[position] for position in record.shown_order]


def figure_rows(record: ComparisonRecord) -> list[tuple[str, list[str]]]:
    """(figure title, one cell per shown column) for every figure, then the status."""
    entries = shown_entries(record)
    rows = [(figure.title, [figure.show(entry.metrics.get(figure.key)) for entry in entries])
            for figure in shown_figures(record)]
    rows.append(("Status", [STATUS_WORDS.get(entry.status, entry.status) for entry in entries]))
    return rows


def concurrency_note(entry: EntryRecord) -> str | None:
    """Speeds measured while models shared the processor are not each model's own: say so, with the speed the
    model has alone on this computer where an earlier run measured it."""
    others = int(entry.metrics.get("ran_with") or 0)
    if not others:
        return None
    shared = f"Ran at the same time as {plural(others, 'other model')}, sharing the processor"
    alone = entry.metrics.get("alone_tokens_per_s")
    if alone:
        return f"{shared}; alone on this computer it writes {_speed(alone)}."
    return f"{shared}: alone it would be faster."


def verdict_text(record: ComparisonRecord) -> str:
    if record.verdict is None:
        return "No vote yet"
    if record.verdict == "winner":
        winner = next((e for e in record.entries if e.position == record.winner_position), None)
        return f"Better: {winner.model_name}" if winner else "Better: (a model no longer listed)"
    return VERDICT_WORDS[record.verdict]
