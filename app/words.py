"""How figures are said to people: sizes and parameter counts, one way everywhere (the window, the reports and
the terminal)."""

from __future__ import annotations

from datetime import datetime


def format_bytes(n: int | None) -> str:
    """Decimal units, as disks and download pages count them ("592.7 KB", "4.1 GB")."""
    if n is None:
        return "–"
    value = float(n)
    for unit in ("bytes", "KB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{n:,} bytes" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1000
    raise AssertionError("unreachable")


def installed_memory(n: int) -> str:
    """A computer's or a graphics card's memory as it is sold, in binary gigabytes called "GB": a "16 GB" laptop
    has 16 GiB and reads "16 GB". Only the installed total is said so; what is free and what a model needs are
    compared with each other, so they are said in :func:`format_bytes`'s units."""
    if n < 2**30:
        return f"{n / 2**20:.0f} MB"
    value = n / 2**30
    return (f"{value:.0f}" if value >= 100 else f"{value:.1f}").removesuffix(".0") + " GB"


def format_count(count: int | None) -> str:
    """Round the way model names do ("135M", "1.2B"): one decimal below ten, none above."""
    if count is None:
        return "–"
    if count < 1000:
        return str(count)
    text = ""
    for exponent, suffix in ((3, "K"), (6, "M"), (9, "B"), (12, "T")):
        value = count / 10**exponent
        text = f"{value:.1f}" if value < 9.95 else f"{value:.0f}"
        if float(text) < 1000:
            return text.removesuffix(".0") + suffix
    return text.removesuffix(".0") + "T"


def plural(count: int, word: str, words: str | None = None) -> str:
    """"1 part", "3 parts", "2 boxes" (``words`` where adding an s is wrong), with thousands separated."""
    return f"{count:,} {word if count == 1 else (words or word + 's')}"


def moment(at: datetime) -> str:
    """When something happened, in this computer's time zone: "Saturday 5 December 2026, 10:00"."""
    local = at.astimezone()
    return f"{local:%A} {local.day} {local:%B %Y, %H:%M}"


def duration(seconds: float) -> str:
    """A measured time: "4.2 s", "1m 40s", "2h 05m"."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes}m {rest:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


def rough_duration(seconds: float) -> str:
    """A time still to go, where precision would be false: "40 s", "12 min", "1.5 h"."""
    if seconds < 60:
        return f"{int(seconds)} s"
    if seconds < 3600:
        return f"{int(seconds // 60)} min"
    return f"{seconds / 3600:.1f} h"


def context_trimmed(dropped: int) -> str:
    """What the chat says when the oldest turns did not fit the context window, in the window and the terminal."""
    return f"{plural(dropped, 'older message')} left out to fit the context window."


def model_words(*, parameter_count: int | None, quantization: str | None, file_size: int,
                context_length: int | None, has_chat_template: bool) -> str:
    """A model file in one line, as the Models page and ``hearth inspect`` say it: "135M parameters · Q4_1 · 98.4 MB ·
    trained context 8,192 tokens · its own chat template"."""
    return " · ".join(part for part in (
        f"{format_count(parameter_count)} parameters", quantization or "", format_bytes(file_size),
        f"trained context {context_length:,} tokens" if context_length else "",
        "its own chat template" if has_chat_template else "no chat template (Hearth uses ChatML)") if part)


def context_use(tokens: int, context_length: int) -> str:
    """The chat's context meter: how much of the model's context the conversation and the message take."""
    return f"{tokens:,} of {context_length:,} tokens"


def too_long_for_context(least: int, room: int) -> str:
    """Why a chat message is not sent: said before it is (the context meter) and when it would be refused."""
    return (f"This message is too long for the model's context window: with the system prompt it takes about "
            f"{least:,} tokens, and {room:,} are free once room is kept for the answer. Shorten it, or raise the "
            "context length in the conversation settings.")


def document_trimmed(kept_words: int, total_words: int) -> str:
    """What a chat about a task's result says when the document did not fit the model's context window whole."""
    if not kept_words:
        return "The document does not fit the model's context window beside the result, so it is left out."
    return (f"Only the first {kept_words:,} of {plural(total_words, 'word')} of the document fit the model's context "
            "window; the rest is left out.")
