"""How long a task run should take, from its plan and the forecast's generation speed.

The forecast predicts generation speed from memory bandwidth until the model has answered on this machine;
then its measured speed replaces it (``model_check.measured_speed``). Reading a prompt runs in batches and is
bound by arithmetic instead: the speed the first load measured on a short prompt (longer prompts read up to
twice as fast per token), else 5 to 20 times the generation speed. Outputs are counted at their allowance, an
upper bound: models usually stop sooner. Other programs using the processor slow all of it down in
proportion, and the words say so (a run forecast at 2-8 minutes took 12-16 on a busy machine).
"""

from __future__ import annotations

from app.forecast.estimate import Speed
from app.tasks.spec import Plan

PROMPT_SPEEDUP = (5.0, 20.0)


BUSY_WORTH_SAYING = 0.2  # the share of the processor other programs use before the estimate says so


def estimate_seconds(plan: Plan, speed: Speed | None, busy: float = 0.0) -> tuple[float, float] | None:
    """(fastest, slowest) seconds, or None without a speed forecast. ``busy``: the share of the processor
    other programs use now (``hardware.memory_speed.processor_share_used``)."""
    if speed is None or speed.low <= 0 or speed.high <= 0:
        return None
    if speed.prompt_tokens_per_s:
        prompt_fast, prompt_slow = 2 * speed.prompt_tokens_per_s, speed.prompt_tokens_per_s
    else:
        prompt_fast, prompt_slow = speed.high * PROMPT_SPEEDUP[1], speed.low * PROMPT_SPEEDUP[0]
    fastest = plan.prompt_tokens / prompt_fast + 0.3 * plan.output_tokens / speed.high
    slowest = plan.prompt_tokens / prompt_slow + plan.output_tokens / speed.low
    slowdown = 1 / max(1 - min(busy, 0.9), 0.1)
    return fastest * slowdown, slowest * slowdown


def duration_words(seconds: tuple[float, float] | None, busy: float = 0.0) -> str:
    """"about 2–5 minutes", for people; "… (other programs are busy)" when they slow it down."""
    if seconds is None:
        return "time unknown (measure the memory speed on the Models page)"
    low, high = seconds
    if high < 60:
        words = "under a minute"
    elif high < 3600:
        words = f"about {max(1, round(low / 60))}–{max(1, round(high / 60))} minutes"
    else:
        words = f"about {low / 3600:.1f}–{high / 3600:.1f} hours"
    return words + (" (longer than usual: other programs are busy)" if busy >= BUSY_WORTH_SAYING else "")
