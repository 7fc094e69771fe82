"""How much Hearth's worker process costs against calling llama.cpp directly.

Same model, prompt, seed, thread count and token budget; runs alternate between a direct in-process
``llama_cpp.Llama`` stream and Hearth's worker (measured from the app's side of the pipe, so the figure
includes the process hop). Prints medians and the ratio; the target is worker/direct >= 0.97 tokens/s.

    .venv/bin/python benchmarks/engine_overhead.py [--model PATH] [--runs 7] [--max-tokens 1024]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from app.engine import EngineClient  # noqa: E402
from app.engine import protocol as p  # noqa: E402
from app.engine.client import EventWaiter  # noqa: E402
from app.engine.worker import FALLBACK_CHAT_FORMAT, _model_params  # noqa: E402
from app.load_plan import LoadPlan, cpu_has_amx  # noqa: E402

from fetch_test_model import locate  # noqa: E402

PAUSE_S = 0.5
MESSAGES = [{"role": "system", "content": "You are a storyteller."},
            {"role": "user", "content": "Once upon a time there was a little fox who"}]


def direct_run(llm: object, max_tokens: int, seed: int) -> tuple[float, float, int]:
    started = time.perf_counter()
    first = None
    chunks = 0
    for chunk in llm.create_chat_completion(  # type: ignore[attr-defined]
            messages=MESSAGES, stream=True, max_tokens=max_tokens, seed=seed, temperature=0.8):
        if chunk["choices"][0]["delta"].get("content"):
            chunks += 1
            if first is None:
                first = time.perf_counter()
    ended = time.perf_counter()
    assert first is not None
    return first - started, (chunks - 1) / (ended - first), chunks


def worker_run(engine: EngineClient, max_tokens: int, seed: int) -> tuple[float, float, int]:
    with EventWaiter(engine) as waiter:
        started = time.perf_counter()
        request = engine.generate(MESSAGES, max_tokens=max_tokens, seed=seed, temperature=0.8)
        first = None
        while True:
            event = waiter.wait_for((p.Token, p.Finished, p.Failed), 600)
            if isinstance(event, p.Token) and first is None:
                first = time.perf_counter()
            elif isinstance(event, p.Finished) and event.request_id == request:
                ended = time.perf_counter()
                break
            elif isinstance(event, p.Failed):
                raise SystemExit(event.message)
    assert first is not None
    tokens = event.metrics.completion_tokens
    return first - started, (tokens - 1) / (ended - first), tokens


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=None)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--max-tokens", type=int, default=1024)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--ctx", type=int, default=2048)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    model = args.model or locate()
    if model is None:
        raise SystemExit("no model: pass --model PATH (or run `make test` once to fetch the test model)")

    from llama_cpp import Llama

    # Both paths load with the same plan: the settings the engine worker really uses.
    plan = LoadPlan(context_length=args.ctx, threads=args.threads, extra_buffers=not cpu_has_amx())
    with _model_params(lambda _fraction: None, extra_buffers=plan.extra_buffers):
        llm = Llama(model_path=str(model), **plan.llama_kwargs(), verbose=False)
    if "tokenizer.chat_template" not in llm.metadata:
        llm.chat_format = FALLBACK_CHAT_FORMAT
    engine = EngineClient()
    engine.start()
    engine.load_blocking(model, plan=plan)
    direct_run(llm, 16, args.seed)  # warm both paths
    worker_run(engine, 16, args.seed)

    results: dict[str, list[tuple[float, float, int]]] = {"direct": [], "worker": []}
    for _ in range(args.runs):
        # A pause after each run lets the other side's OpenMP threads stop spinning, so that neither path
        # runs while the other's threads still hold a core (this machine class has two).
        results["direct"].append(direct_run(llm, args.max_tokens, args.seed))
        time.sleep(PAUSE_S)
        results["worker"].append(worker_run(engine, args.max_tokens, args.seed))
        time.sleep(PAUSE_S)
    engine.shutdown()

    print(f"model {model.name}, {args.runs} runs each, {args.max_tokens} tokens, {args.threads} threads, "
          f"seed {args.seed}")
    print(f"{'path':8} {'ttft ms (median)':>18} {'tokens/s (median)':>18} {'tokens/s (min-max)':>20} {'tokens':>7}")
    medians: dict[str, float] = {}
    for name, runs in results.items():
        ttft = statistics.median(r[0] for r in runs) * 1000
        speeds = [r[1] for r in runs]
        medians[name] = statistics.median(speeds)
        print(f"{name:8} {ttft:18.2f} {medians[name]:18.1f} {min(speeds):9.1f}-{max(speeds):<10.1f} "
              f"{runs[0][2]:7d}")
    ratio = medians["worker"] / medians["direct"]
    print(f"worker / direct tokens per second: {ratio:.3f} (target >= 0.97) -> {'OK' if ratio >= 0.97 else 'BELOW'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
