"""Hearth's decode speed against the best llama.cpp's own C API reaches for the same model on this machine.

- **Reference**: a child process loads the model through llama.cpp's C API (llama-cpp-python's ctypes layer)
  and, for flash attention on and off and for one thread and every physical core, decodes the prompt and then
  ``--tokens`` tokens greedily: one decode call and one sampler call per token (``engine/tuning.decode_speed``,
  the same loop the worker's probe uses). The best of those settings is the reference.
- **Hearth**: a real engine worker loads the model as the app does the first time (measuring its settings),
  then again with the settings it measured (as every later load does), and answers the same prompt at
  temperature 0; its tokens per second are taken on the app's side of the pipe, from the first token to the
  last, so the process hop counts.
- **Busy**: both again while a second generation runs (a child process decoding without pause on one thread),
  as when a comparison runs two models or another program is busy.

Target: Hearth / reference >= 0.95, quiet and busy.

    .venv/bin/python benchmarks/engine_overhead.py [--model PATH] [--runs 3] [--tokens 256] [--no-busy]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT)]  # a plain script: the root makes app, ui and tests.helpers importable

from app.engine import EngineClient  # noqa: E402
from app.engine import protocol as p  # noqa: E402
from app.engine.client import EventWaiter  # noqa: E402
from app.forecast.estimate import decide_plan  # noqa: E402
from app.gguf.facts import read_facts  # noqa: E402
from app.hardware.detect import detect  # noqa: E402

from tests.helpers.fetch_test_model import fetch_real, locate_real  # noqa: E402

PROMPT = "Write a short story about a lighthouse keeper who finds a message in a bottle."
CONTEXT = 2048
TARGET = 0.95


_QUIET: list[object] = []  # llama.cpp keeps the log callback: it must outlive the call that sets it


def _load_reference(model: Path) -> object:
    """The model loaded through the C API as the worker loads it: without llama.cpp's extra weight layouts
    where AMX would crash them (``LoadPlan.extra_buffers``)."""
    import llama_cpp

    from app.engine.tuning import cpu_has_amx

    _QUIET.append(llama_cpp.llama_log_callback(lambda *_: None))
    llama_cpp.llama_log_set(_QUIET[-1], None)
    llama_cpp.llama_backend_init()
    params = llama_cpp.llama_model_default_params()
    params.use_extra_bufts = not cpu_has_amx()
    loaded = llama_cpp.llama_model_load_from_file(str(model).encode(), params)
    if not loaded:
        raise SystemExit(f"llama.cpp could not load {model}")
    return loaded


def _prompt_tokens(model_ptr: object) -> list[int]:
    import llama_cpp

    vocab = llama_cpp.llama_model_get_vocab(model_ptr)
    text = PROMPT.encode()
    buffer = (llama_cpp.llama_token * 512)()
    count = llama_cpp.llama_tokenize(vocab, text, len(text), buffer, 512, True, False)
    return list(buffer[:count])


def reference_child(model: Path, tokens: int, runs: int, cores: int) -> None:
    """Prints one JSON object: tokens/s per setting (median of ``runs``)."""
    from app.engine.tuning import decode_speed, thread_choices

    model_ptr = _load_reference(model)
    prompt = _prompt_tokens(model_ptr)
    results: dict[str, list[float]] = {}
    for _ in range(runs):
        for fa in (True, False):
            for threads in sorted({1, cores} | set(thread_choices(cores))):
                speed = decode_speed(model_ptr, prompt, flash_attention=fa, threads=threads, tokens=tokens,
                                     budget_s=120.0, n_ctx=CONTEXT)
                results.setdefault(f"{'fa' if fa else 'no-fa'}/{threads}", []).append(speed.generation)
                time.sleep(0.3)  # lets the OpenMP threads of one setting stop spinning before the next
    print(json.dumps({name: statistics.median(speeds) for name, speeds in results.items()}), flush=True)


def background_child(model: Path) -> None:
    """A second generation that never pauses: one thread, decoding until it is killed."""
    from app.engine.tuning import decode_speed

    model_ptr = _load_reference(model)
    prompt = _prompt_tokens(model_ptr)
    while True:
        decode_speed(model_ptr, prompt, flash_attention=True, threads=1, tokens=400, budget_s=30.0, n_ctx=CONTEXT)


def hearth_speeds(model: Path, tokens: int, runs: int) -> tuple[list[float], str]:
    machine = detect()
    facts = read_facts(model)
    engine = EngineClient()
    engine.start()
    try:
        first = engine.load_blocking(model, plan=decide_plan(facts, machine, context_length=CONTEXT, tune=True))
        tuning = first.tuning
        plan = decide_plan(facts, machine, context_length=CONTEXT, tuning=tuning)
        engine.unload()
        loaded = engine.load_blocking(model, plan=plan)
        messages = [{"role": "user", "content": PROMPT}]
        engine.chat_blocking(messages, max_tokens=8, temperature=0.0)  # warm
        speeds, threads = [], []
        for _ in range(runs):
            time.sleep(0.3)
            speed, used = _timed_answer(engine, messages, tokens)
            speeds.append(speed)
            threads.append(used)
        described = (f"threads {loaded.plan.threads}, used {'/'.join(str(t) for t in threads)}, flash attention "
                     f"{'on' if loaded.plan.flash_attention else 'off'}"
                     + (f"; probe{' (busy)' if tuning.busy else ''}: {tuning.measured}" if tuning else ""))
        return speeds, described
    finally:
        engine.shutdown()


def _timed_answer(engine: EngineClient, messages: list[dict[str, str]], tokens: int) -> tuple[float, int | None]:
    with EventWaiter(engine) as waiter:
        request = engine.generate(messages, max_tokens=tokens, temperature=0.0, seed=1)
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
    return (event.metrics.completion_tokens - 1) / (ended - first), event.metrics.threads


def measure(model: Path, tokens: int, runs: int, cores: int) -> tuple[float, str, float, str]:
    reference = subprocess.run([sys.executable, __file__, "--reference-child", str(model), "--tokens", str(tokens),
                                "--runs", str(runs), "--cores", str(cores)], check=True, capture_output=True,
                               text=True)
    settings = json.loads(reference.stdout.strip().splitlines()[-1])
    best_name = max(settings, key=settings.get)
    speeds, described = hearth_speeds(model, tokens, runs)
    return settings[best_name], f"{best_name} (all: " + ", ".join(
        f"{k} {v:.1f}" for k, v in settings.items()) + ")", statistics.median(speeds), described


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, action="append", help="a GGUF model (repeatable)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--tokens", type=int, default=256)
    parser.add_argument("--no-busy", action="store_true", help="skip the run with a second generation")
    parser.add_argument("--reference-child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--background-child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--cores", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.reference_child:
        reference_child(args.reference_child, args.tokens, args.runs, args.cores)
        return 0
    if args.background_child:
        background_child(args.background_child)
        return 0
    import psutil

    cores = psutil.cpu_count(logical=False) or 1
    # The tiny test model writes thousands of tokens a second, where any per-token work in Python shows; real
    # models are what the target is for (pass it with --model to see).
    models = args.model or [locate_real(name) or fetch_real(name) for name in ("smollm2", "gemma3")]
    conditions = ["quiet"] + ([] if args.no_busy else ["busy"])
    print(f"{cores} physical cores; {args.tokens} tokens per answer, {args.runs} runs; context {CONTEXT}")
    worst = float("inf")
    for model in models:
        for condition in conditions:
            background = None
            if condition == "busy":
                background = subprocess.Popen([sys.executable, __file__, "--background-child", str(model)],
                                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                time.sleep(3.0)  # loaded and decoding
            try:
                best, best_name, hearth, described = measure(model, args.tokens, args.runs, cores)
            finally:
                if background is not None:
                    background.kill()
                    background.wait()
            ratio = hearth / best
            worst = min(worst, ratio)
            print(f"{model.name} [{condition}]: llama.cpp C API best {best:.1f} tokens/s with {best_name}; "
                  f"Hearth {hearth:.1f} tokens/s ({described}); ratio {ratio:.3f} "
                  f"-> {'OK' if ratio >= TARGET else 'BELOW'}", flush=True)
    print(f"worst ratio {worst:.3f} (target >= {TARGET})")
    return 0


if __name__ == "__main__":
    multiprocessing.freeze_support()
    sys.exit(main())
