"""Time to the first token of a follow-up in a long conversation, against the same message in an empty one.

- **Empty**: a ~20-token message as the first turn of a new conversation.
- **Follow-up**: the same message as the next turn of a 3,000-token conversation (a long first message, then
  real turns through the worker until the prompt passes ``--tokens``), pasted and sent a second after its
  previous answer ended (``--reading``: nobody sends sooner), in which the worker reads the next turn's
  opening (``TurnOpened``). **Sent the instant the answer ends** (no target): the same with no pause.
- **After a switch**: the same, after another conversation was answered in between (the long one is set
  aside and restored from memory).
- **After a reload** (no target): the model was unloaded and loaded again, so the state comes from disk.
- **Without a saved state** (no target, once): the same conversation under a name the worker has kept nothing
  for, after another conversation: what switching back cost before conversations' caches were kept.

The same three again with the message *typed*, as the window sends it: after each word the app has the model
read the draft ahead (``ChatRunner.read_ahead``; each read-ahead is waited for, as typing is slower than
reading). **Enter after a pause**: the whole message was read ahead before it was sent. **Enter straight
after the last word**: the last word was not (a follow-up, against an empty conversation typed the same way).

Every message is sent ``--reading`` seconds after the previous answer, or its typing starts then.
Each round measures all of them one after another with the same message, so a busy moment of the machine
touches all; medians over ``--runs`` rounds. Every round adds six turns to the long conversation, so it is
measured between ``--tokens`` and several hundred more (printed), and must stay
within ``--context`` (a trimmed conversation would be read again). Times are taken on the app's side of
the pipe, from sending the request to the first streamed text, so setting one cache aside and restoring the
other count. The tokens the model really read are printed beside each figure.

Targets: follow-up <= 1.3 x empty, after a switch <= 1.5 x empty.

    .venv/bin/python benchmarks/turn_latency.py [--model smollm2|gemma3|llama-1b|PATH ...] [--runs 4]
                                                [--tokens 3000] [--context 8192] [--flash-attention auto|on|off]

``llama-1b`` is Llama 3.2 1B's shape (16 layers of 2,048, 32 query and 8 KV heads, a feed-forward of 8,192,
tied output), Q4_0, with SmolLM2's real tokenizer and chat template and random weights, built on first use
(about 20 s) into ``tests/.cache/shaped``: no 1B-class model is on the package index, and the time to a first
token depends on the shape and the weight type, not on what the weights say. At that size the weights, not
attention over the conversation, are most of a turn's work, as they are for the models most people run.

``auto`` (the default) is the app's way: a first load measures the fastest settings (``engine/tuning.py``)
and goes on with them, and the conversation runs on a load with those settings.
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT)]  # a plain script: the root makes app, ui and tests.helpers importable

from app.engine import EngineClient  # noqa: E402
from app.engine import protocol as p  # noqa: E402
from app.engine.client import EventWaiter  # noqa: E402
from app.engine.load_plan import LoadPlan  # noqa: E402

from tests.helpers.fetch_test_model import REAL_MODELS, locate, locate_real  # noqa: E402

ANSWER_TOKENS = 8  # only the first token is timed; short answers keep the conversation's length steady
READING_S = 1.0  # from an answer's end to the next message: reading it, at the least
FOLLOW_UP_TARGET = 1.3
SWITCH_TARGET = 1.5
QUESTIONS = [
    "In one short sentence, what did the story say about the old harbour and its boats?",
    "In one short sentence, what did the story say about the keeper and his lamp?",
    "In one short sentence, what did the story say about the town and its windows?",
    "In one short sentence, what did the story say about the storm and the sea?",
    "In one short sentence, what did the story say about the children and the beach?",
]
PARAGRAPH = ("Chapter {n}. The old lighthouse keeper climbed the stairs every evening, counting the steps and "
             "listening to the sea, while the town below lit its windows one by one. The boats in the harbour "
             "rocked against their ropes, and the children ran along the beach until their mothers called "
             "them home. When the storm came in the autumn, the lamp burned all night and the keeper wrote "
             "down every ship that passed. ")


@dataclass
class Timed:
    ttft_s: float
    read: int
    prompt: int


@dataclass
class Results:
    empty: list[Timed] = field(default_factory=list)
    follow_up: list[Timed] = field(default_factory=list)
    instant_follow_up: list[Timed] = field(default_factory=list)
    switched: list[Timed] = field(default_factory=list)
    reloaded: list[Timed] = field(default_factory=list)
    uncached: list[Timed] = field(default_factory=list)
    typed_empty: list[Timed] = field(default_factory=list)
    typed_follow_up: list[Timed] = field(default_factory=list)
    typed_switched: list[Timed] = field(default_factory=list)
    quick_empty: list[Timed] = field(default_factory=list)
    quick_follow_up: list[Timed] = field(default_factory=list)


def timed_turn(engine: EngineClient, conversation: str | None, messages: list[dict[str, str]], text: str,
               max_tokens: int = ANSWER_TOKENS, reading_s: float | None = None) -> Timed:
    """One turn, appended to ``messages`` with its answer, sent ``reading_s`` (default ``--reading``) after the
    previous one ended; timed from the request to the first text."""
    time.sleep(READING_S if reading_s is None else reading_s)
    messages.append({"role": "user", "content": text})
    with EventWaiter(engine) as waiter:
        started = time.perf_counter()
        request = engine.generate(messages, max_tokens=max_tokens, temperature=0.0, seed=1,
                                  conversation=conversation)
        first: float | None = None
        while True:
            event = waiter.wait_for((p.Token, p.Finished, p.Failed), 600)
            if isinstance(event, p.Token) and event.request_id == request and first is None:
                first = time.perf_counter()
            elif isinstance(event, p.Finished) and event.request_id == request:
                break
            elif isinstance(event, p.Failed):
                raise SystemExit(event.message)
    messages.append({"role": "assistant", "content": event.text})
    m = event.metrics
    ended = first if first is not None else time.perf_counter()  # an empty answer: its end is its first token
    return Timed(ended - started, m.prompt_tokens - m.cached_prompt_tokens, m.prompt_tokens)


def typed_turn(engine: EngineClient, conversation: str, messages: list[dict[str, str]], text: str, *,
               pause_before_enter: bool) -> Timed:
    """``timed_turn`` after the message was typed a word at a time, read ahead after each word (all of them
    with ``pause_before_enter``, else all but the last)."""
    words = text.split(" ")
    time.sleep(READING_S)
    for n in range(1, len(words) + (1 if pause_before_enter else 0)):
        draft = [*messages, {"role": "user", "content": " ".join(words[:n])}]
        with EventWaiter(engine) as waiter:
            if not engine.read_ahead(draft, conversation=conversation, max_tokens=ANSWER_TOKENS):
                raise SystemExit("the engine refused to read ahead")
            waiter.wait_for((p.ReadAheadDone,), 600)
    return timed_turn(engine, conversation, messages, text, reading_s=0.0)


def build_conversation(engine: EngineClient, tokens: int) -> list[dict[str, str]]:
    """A long first message sized from a probe of this model's tokens per character, then real turns."""
    probe = timed_turn(engine, None, [], PARAGRAPH.format(n=0), max_tokens=1)
    per_char = probe.prompt / len(PARAGRAPH)
    chapters = max(int(tokens * 0.85 / per_char / len(PARAGRAPH)), 1)
    messages: list[dict[str, str]] = []
    document = "".join(PARAGRAPH.format(n=n + 1) for n in range(chapters))
    turn = timed_turn(engine, "long", messages, document + "\nRemember this story.", max_tokens=32)
    n = chapters
    while turn.prompt < tokens:
        n += 1
        turn = timed_turn(engine, "long", messages, PARAGRAPH.format(n=n) + "\nAnd this chapter too.", max_tokens=32)
    return messages


def measure(model: Path, runs: int, tokens: int, reloads: int, plan: LoadPlan) -> tuple[Results, int]:
    results = Results()
    with tempfile.TemporaryDirectory() as states:
        engine = EngineClient(states_dir=Path(states))
        engine.start()
        try:
            context = engine.load_blocking(model, plan=plan).context_length
            timed_turn(engine, None, [], "Hello.")  # the first answer after a load is slower for reasons of its own
            long = build_conversation(engine, tokens)
            length = len(long)
            timed_turn(engine, "other", [], "Hello.")  # so that the first round, too, switches back to it
            # Each empty conversation starts with the long one in the cache, so only the system prompt is
            # shared, as in a new chat; each switch starts with another conversation in it.
            for run in range(runs):
                question = QUESTIONS[run % len(QUESTIONS)]
                results.switched.append(timed_turn(engine, "long", long, question))
                results.follow_up.append(timed_turn(engine, "long", long, question))
                results.instant_follow_up.append(timed_turn(engine, "long", long, question, reading_s=0.0))
                results.quick_follow_up.append(typed_turn(engine, "long", long, question, pause_before_enter=False))
                results.empty.append(timed_turn(engine, f"empty-{run}", [], question))
                results.typed_empty.append(typed_turn(engine, f"typed-{run}", [], question, pause_before_enter=True))
                results.typed_switched.append(typed_turn(engine, "long", long, question, pause_before_enter=True))
                results.typed_follow_up.append(typed_turn(engine, "long", long, question, pause_before_enter=True))
                results.quick_empty.append(typed_turn(engine, f"quick-{run}", [], question, pause_before_enter=False))
            timed_turn(engine, "other", [], "Hello.")
            results.uncached.append(timed_turn(engine, "copy", list(long), QUESTIONS[0]))
            for run in range(reloads):
                engine.unload()
                engine.load_blocking(model, plan=plan)
                timed_turn(engine, None, [], "Hello.")
                results.reloaded.append(timed_turn(engine, "long", long, QUESTIONS[run % len(QUESTIONS)]))
            assert len(long) == length + 2 * (6 * runs + reloads)
        finally:
            engine.shutdown()
    return results, context


def median(values: list[Timed]) -> float:
    return statistics.median(t.ttft_s for t in values)


def line(name: str, values: list[Timed], base: float, target: float | None) -> str:
    value = median(values)
    ratio = value / base
    verdict = "" if target is None else f"  target <= {target:.1f}x  {'OK' if ratio <= target else 'ABOVE'}"
    reads = statistics.median(t.read for t in values)
    runs = ", ".join(f"{t.ttft_s * 1000:.0f}" for t in values)
    return (f"  {name:<26} {value * 1000:7.0f} ms  {ratio:5.2f}x{verdict:<24}  read {reads:.0f} of "
            f"{values[-1].prompt} tokens  (ms: {runs})")


def other_load(before: tuple[float, float], after: tuple[float, float]) -> float:
    """Cores' worth of processor that other programs used between two samples (the machine's busy time less
    this benchmark's and its worker's)."""
    wall = after[0] - before[0]
    return max((after[1] - before[1]) / wall, 0.0) if wall > 0 else 0.0


def _sample() -> tuple[float, float]:
    import psutil

    busy = sum(getattr(psutil.cpu_times(), name, 0.0) for name in ("user", "system", "nice", "irq", "softirq"))
    me = psutil.Process()
    own = sum(me.cpu_times()[:4])  # with children already ended (user, system, children's user and system)
    for child in me.children(recursive=True):
        with contextlib.suppress(psutil.Error):
            own += sum(child.cpu_times()[:2])
    return time.monotonic(), busy - own


def resolve(name: str) -> Path | None:
    if name in REAL_MODELS:
        return locate_real(name)
    if name == "llama-1b":
        return llama_1b_shaped()
    return Path(name)


def llama_1b_shaped() -> Path | None:
    from tests.helpers.model_builders import llama_gqa

    tokenizer = locate_real("smollm2")
    if tokenizer is None:
        return None
    folder = ROOT / "tests" / ".cache" / "shaped"
    folder.mkdir(parents=True, exist_ok=True)
    built = folder / "llama-1b-shape-q4_0.gguf"
    if not built.is_file():
        with tempfile.TemporaryDirectory(dir=folder) as scratch:
            written = llama_gqa(Path(scratch), n_embd=2048, n_layer=16, n_head=32, n_head_kv=8, n_ff=8192,
                                ctx=32768, dtype="Q4_0", tied=True, vocabulary=tokenizer)
            written.replace(built)
    return built


def tuned_plan(model: Path, context: int) -> LoadPlan:
    """The plan a first load of ``model`` ends with (it measures the fastest settings and applies them, flash
    attention too), which every later load starts with."""
    plan = LoadPlan(context_length=context, tune=True)
    with tempfile.TemporaryDirectory() as states:
        engine = EngineClient(states_dir=Path(states))
        engine.start()
        try:
            tuning = engine.load_blocking(model, plan=plan).tuning
        finally:
            engine.shutdown()
    if tuning is None:
        raise SystemExit("the speed probe failed")
    print(f"{model.name}: measured {tuning.measured}{' (busy)' if tuning.busy else ''}", flush=True)
    return tuning.applied_to(plan)


def main() -> int:
    global READING_S
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", action="append", help="smollm2, gemma3, llama-1b or a GGUF path (repeatable); "
                                                         "default SmolLM2, else the tiny test model")
    parser.add_argument("--runs", type=int, default=4)
    parser.add_argument("--context", type=int, default=8192,
                        help="room for the conversation to grow by six turns a round without being trimmed")
    parser.add_argument("--flash-attention", choices=("auto", "on", "off"), default="auto",
                        help="auto: as the app measured it for this model (the default); on or off: forced")
    parser.add_argument("--reloads", type=int, default=3)
    parser.add_argument("--reading", type=float, default=READING_S,
                        help="seconds from an answer's end to the next message (default %(default)s)")
    parser.add_argument("--tokens", type=int, default=3000, help="the conversation's length before the follow-ups")
    args = parser.parse_args()
    READING_S = args.reading
    models = [resolve(name) for name in args.model] if args.model else [locate_real("smollm2") or locate()]
    worst_follow_up = worst_switch = 0.0
    worst_typed = [0.0, 0.0, 0.0]
    for model in models:
        if model is None or not model.is_file():
            print(f"model not found: {model} (tests/helpers/fetch_test_model.py smollm2 gemma3 fetches the real "
                  "ones; llama-1b needs smollm2's tokenizer)")
            return 1
        before = _sample()
        load_before = os.getloadavg()[0]
        plan = (tuned_plan(model, args.context) if args.flash_attention == "auto"
                else LoadPlan(context_length=args.context, flash_attention=args.flash_attention == "on"))
        results, context = measure(model, args.runs, args.tokens, args.reloads, plan)
        others = other_load(before, _sample())
        base = median(results.empty)
        follow_up, switched = median(results.follow_up) / base, median(results.switched) / base
        worst_follow_up, worst_switch = max(worst_follow_up, follow_up), max(worst_switch, switched)
        lengths = [t.prompt for t in results.switched + results.follow_up + results.reloaded]
        chosen = "on" if plan.flash_attention else "off"
        how = f" (measured: {chosen})" if args.flash_attention == "auto" else ""
        print(f"{model.name}: context {context}, flash attention {args.flash_attention}{how}, conversation of "
              f"{min(lengths):,} to {max(lengths):,} tokens, {args.runs} rounds, time to first token (median):")
        print(line("empty conversation", results.empty, base, None))
        print(line("follow-up", results.follow_up, base, FOLLOW_UP_TARGET))
        print(line("after a switch", results.switched, base, SWITCH_TARGET))
        print(line("follow-up, sent instantly", results.instant_follow_up, base, None))
        if results.reloaded:
            print(line("after a reload (disk)", results.reloaded, base, None))
        print(line("without a saved state", results.uncached, base, None))
        typed = median(results.typed_empty)
        quick = median(results.quick_empty)
        typed_ratios = (median(results.typed_follow_up) / typed, median(results.typed_switched) / typed,
                        median(results.quick_follow_up) / quick)
        worst_typed = [max(a, b) for a, b in zip(worst_typed, typed_ratios, strict=True)]
        print("  typed, read ahead as the window does it:")
        print(line("empty, Enter after a pause", results.typed_empty, typed, None))
        print(line("follow-up, after a pause", results.typed_follow_up, typed, FOLLOW_UP_TARGET))
        print(line("after a switch, a pause", results.typed_switched, typed, SWITCH_TARGET))
        print(line("empty, Enter at once", results.quick_empty, quick, None))
        print(line("follow-up, Enter at once", results.quick_follow_up, quick, FOLLOW_UP_TARGET))
        print(f"  other programs used {others:.2f} cores on average (load average {load_before:.1f} before"
              f"{', busy' if others > 0.25 else ''})", flush=True)
    print(f"worst: follow-up {worst_follow_up:.2f}x (target <= {FOLLOW_UP_TARGET}), after a switch "
          f"{worst_switch:.2f}x (target <= {SWITCH_TARGET})")
    print(f"worst, typed: follow-up {worst_typed[0]:.2f}x after a pause, {worst_typed[2]:.2f}x with Enter at once "
          f"(target <= {FOLLOW_UP_TARGET}); after a switch {worst_typed[1]:.2f}x (target <= {SWITCH_TARGET})")
    return 0


if __name__ == "__main__":
    multiprocessing.freeze_support()
    sys.exit(main())
