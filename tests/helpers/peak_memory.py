"""What the engine worker really uses: its peak resident memory on a model, measured as the memory forecast is
checked, shared by the forecast tests and ``benchmarks/estimator_accuracy.py``.

Each measurement starts a fresh worker, so its peak belongs to one model alone; the worker's own size at
``Ready`` is the baseline the forecast is given. The prompt fills half the context, as a conversation in full
swing does: two short probes first measure how many tokens one phrase takes with this model's tokenizer (and
how many the chat template adds), so the prompt is sized for any vocabulary, real or generated.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from app.engine import EngineClient
from app.engine import protocol as p
from app.engine.client import EventWaiter
from app.engine.load_plan import LoadPlan

PHRASE = "once upon a time there was a little fox "
READY_TIMEOUT_S = 60


@dataclass(frozen=True)
class Measurement:
    baseline: int  # the worker before any model (Ready.rss_bytes)
    peak: int  # the worker's peak resident memory from the load to the end of the answer
    prompt_tokens: int
    loaded: p.Loaded


def measure(model: Path, plan: LoadPlan, fill: float = 0.5) -> Measurement:
    engine = EngineClient()
    try:
        with EventWaiter(engine) as waiter:
            engine.start()
            ready = waiter.wait_for((p.Ready,), READY_TIMEOUT_S)
        assert isinstance(ready, p.Ready)
        loaded = engine.load_blocking(model, plan=plan)
        prompt = _prompt(engine, int(loaded.context_length * fill))
        finished = engine.chat_blocking([{"role": "user", "content": prompt}], max_tokens=8, temperature=0.0)
        return Measurement(ready.rss_bytes, finished.metrics.peak_rss_bytes, finished.metrics.prompt_tokens, loaded)
    finally:
        engine.shutdown()


def _prompt(engine: EngineClient, tokens: int) -> str:
    def prompt_tokens(phrases: int) -> int:
        finished = engine.chat_blocking([{"role": "user", "content": PHRASE * phrases}], max_tokens=1,
                                        temperature=0.0)
        return finished.metrics.prompt_tokens

    short, longer = prompt_tokens(4), prompt_tokens(12)
    per_phrase = max((longer - short) / 8, 1.0)
    template = max(short - 4 * per_phrase, 0.0)
    return PHRASE * max(int((tokens - template) / per_phrase), 1)
