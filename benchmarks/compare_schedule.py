"""Should a comparison run its models at the same time or one after another? Both, measured.

Runs the same two-model comparison (a chat prompt, a fixed answer length, temperature 0) through the real
``Comparer`` with each schedule, alternating, and prints for each: the time from start to the last answer, and
each model's tokens per second next to its speed alone (the one-after-another run).

    .venv/bin/python benchmarks/compare_schedule.py [--model A --model B] [--runs 2] [--tokens 128]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT)]  # a plain script: the root makes app, ui and tests.helpers importable

from app.compare.runner import Comparer  # noqa: E402
from app.compare.spec import CompareInput, CompareRequest, Contender, Sampling  # noqa: E402
from app.forecast.estimate import GIB  # noqa: E402
from app.hardware.detect import detect, with_memory_now  # noqa: E402
from app.history import HistoryStore, open_database  # noqa: E402

from tests.helpers.fetch_test_model import fetch_real, locate_real  # noqa: E402

PROMPT = "Write a short story about a lighthouse keeper who finds a message in a bottle."


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, action="append")
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--tokens", type=int, default=128)
    args = parser.parse_args()
    models = args.model or [locate_real(n) or fetch_real(n) for n in ("smollm2", "gemma3")]
    contenders = tuple(Contender(m.stem, m, m.stat().st_size) for m in models)
    machine = detect()
    if with_memory_now(machine).memory_available < 2 * GIB:
        raise SystemExit("needs 2 GB free so that the models fit together")
    results: dict[str, list[tuple[float, list[float]]]] = {"one after another": [], "at the same time": []}
    with tempfile.TemporaryDirectory() as scratch:
        store = HistoryStore(open_database(Path(scratch) / "history.sqlite3"))
        comparer = Comparer(store, lambda: with_memory_now(machine))
        for _ in range(args.runs):
            for name, alone in (("one after another", True), ("at the same time", False)):
                request = CompareRequest(contenders, CompareInput.prompt(PROMPT),
                                         Sampling(max_tokens=args.tokens, seed=1, deterministic=True),
                                         one_at_a_time=alone, context_length=2048)
                started = time.perf_counter()
                record = comparer.run_blocking(request)
                elapsed = time.perf_counter() - started
                speeds = [float(e.metrics.get("tokens_per_s") or 0) for e in record.entries]
                results[name].append((elapsed, speeds))
                time.sleep(1.0)
    alone_speeds = [statistics.median(run[1][i] for run in results["one after another"])
                    for i in range(len(contenders))]
    print(f"{len(contenders)} models, {args.tokens} tokens each, {args.runs} runs per schedule, "
          f"{machine.physical_cores} physical cores")
    for name, runs in results.items():
        total = statistics.median(run[0] for run in runs)
        speeds = [statistics.median(run[1][i] for run in runs) for i in range(len(contenders))]
        shares = ", ".join(f"{c.name} {s:.1f} tokens/s ({s / a:.0%} of alone)" for c, s, a in
                           zip(contenders, speeds, alone_speeds, strict=True) if a)
        print(f"{name:18} done in {total:6.1f} s; {shares}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
