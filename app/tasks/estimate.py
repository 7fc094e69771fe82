"""How long a task run should take, from its plan and the forecast's generation speed.

The forecast (part 2) predicts generation speed, which is bound by memory bandwidth. Reading a prompt runs
in batches and is bound by arithmetic instead; on CPUs it is typically 5 to 20 times faster per token, so
the estimate uses that range rather than pretending to a precision it does not have. Outputs are counted
at their allowance, an upper bound: models usually stop sooner.
"""

from __future__ import annotations

from app.forecast import Speed
from app.tasks.spec import Plan

PROMPT_SPEEDUP = (5.0, 20.0)


def estimate_seconds(plan: Plan, speed: Speed | None) -> tuple[float, float] | None:
    """(fastest, slowest) seconds, or None without a speed forecast."""
    if speed is None or speed.low <= 0 or speed.high <= 0:
        return None
    fastest = plan.prompt_tokens / (speed.high * PROMPT_SPEEDUP[1]) + 0.3 * plan.output_tokens / speed.high
    slowest = plan.prompt_tokens / (speed.low * PROMPT_SPEEDUP[0]) + plan.output_tokens / speed.low
    return fastest, slowest


def duration_words(seconds: tuple[float, float] | None) -> str:
    """"about 2–5 minutes", for people."""
    if seconds is None:
        return "time unknown (measure the memory speed on the Models page)"
    low, high = seconds
    if high < 60:
        return "under a minute"
    if high < 3600:
        return f"about {max(1, round(low / 60))}–{max(1, round(high / 60))} minutes"
    return f"about {low / 3600:.1f}–{high / 3600:.1f} hours"
