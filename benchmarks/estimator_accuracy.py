"""How close the memory forecast comes to what the engine worker really uses.

For every GGUF model given (files, or folders searched for *.gguf; split models by their first part) and
context lengths 512, 2048 and 8192 (capped at the model's trained length): forecast the peak memory, load
the model in a fresh worker with the same plan, process a prompt that fills half the context, and compare
with the worker's measured peak resident memory. Target: every row within 10%.

    .venv/bin/python benchmarks/estimator_accuracy.py [PATH ...]

Without paths it uses the test model and generated models of several architectures.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from app.engine import EngineClient  # noqa: E402
from app.engine import protocol as p  # noqa: E402
from app.engine.client import EventWaiter  # noqa: E402
from app.forecast import decide_plan, forecast  # noqa: E402
from app.gguf_facts import read_facts  # noqa: E402
from app.hardware import detect  # noqa: E402
from app.units import format_bytes  # noqa: E402

from fetch_test_model import locate  # noqa: E402

CONTEXTS = (512, 2048, 8192)
PHRASE = "once upon a time there was a little fox "


def models_from(paths: list[Path]) -> list[Path]:
    found: list[Path] = []
    for path in paths:
        candidates = sorted(path.rglob("*.gguf")) if path.is_dir() else [path]
        found += [c for c in candidates if "-of-0" not in c.name or "-00001-of-" in c.name]
    return found


def generated(folder: Path) -> list[Path]:
    from model_builders import llama_gqa, mixture_of_experts, odd_heads, sharded, sliding_window

    test_model = locate()
    return [*([test_model] if test_model else []), llama_gqa(folder, n_embd=512, n_layer=8, n_ff=1536),
            llama_gqa(folder, n_embd=512, n_layer=8, n_ff=1536, dtype="Q8_0"), sliding_window(folder),
            mixture_of_experts(folder), odd_heads(folder), sharded(folder)[0]]


def prompt_for(model: Path, tokens: int) -> str:
    from llama_cpp import Llama

    from app.llama_log import capture_llama_log

    with capture_llama_log():  # keeps llama.cpp's chatter about a vocabulary-only load off the table
        vocab = Llama(model_path=str(model), vocab_only=True, verbose=False)
    per_phrase = max(len(vocab.tokenize(PHRASE.encode(), add_bos=False)), 1)
    return PHRASE * max(tokens // per_phrase, 1)


def measure(model: Path, plan: object, prompt: str) -> tuple[int, int, int]:
    """(baseline, peak, prompt tokens) from a fresh worker."""
    engine = EngineClient()
    try:
        with EventWaiter(engine) as waiter:
            engine.start()
            ready = waiter.wait_for((p.Ready,), 60)
        assert isinstance(ready, p.Ready)
        engine.load_blocking(model, plan=plan)
        finished = engine.chat_blocking([{"role": "user", "content": prompt}], max_tokens=8)
        return ready.rss_bytes, finished.metrics.peak_rss_bytes, finished.metrics.prompt_tokens
    finally:
        engine.shutdown()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="*", type=Path)
    args = parser.parse_args()
    machine = detect()
    with tempfile.TemporaryDirectory() as scratch:
        models = models_from(args.paths) if args.paths else generated(Path(scratch))
        print(f"{'model':34} {'ctx':>6} {'prompt':>7} {'estimate':>10} {'measured':>10} {'error':>7}")
        worst = 0.0
        for model in models:
            facts = read_facts(model)
            for context in sorted({min(c, facts.context_length or c) for c in CONTEXTS}):
                plan = decide_plan(facts, machine, context_length=context)
                prompt = prompt_for(model, context // 2)
                baseline, peak, prompt_tokens = measure(model, plan, prompt)
                estimate = forecast(facts, machine, plan, baseline=baseline).memory.ram_bytes
                error = (estimate - peak) / peak * 100
                worst = max(worst, abs(error))
                print(f"{model.name[:34]:34} {context:6d} {prompt_tokens:7d} {format_bytes(estimate):>10} "
                      f"{format_bytes(peak):>10} {error:+6.1f}%")
        print(f"worst error {worst:.1f}% (target: every row within 10%) -> {'OK' if worst <= 10 else 'ABOVE'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
