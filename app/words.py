"""How figures are said to people: sizes and parameter counts, one way everywhere (the window, the reports and
the terminal)."""

from __future__ import annotations


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
