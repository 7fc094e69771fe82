"""How to run a model fastest on this machine: measured, not assumed. Only the engine worker imports this.

Two parts:

- ``probe``: the first time a model loads with a plan, a few tokens are decoded with each candidate setting
  (flash attention on and off, one thread and every physical core) on small contexts of the loaded model,
  the way llama.cpp's own C API runs them: one decode call and one greedy sampler call per token, once just
  after a short prompt and once with the context nearly full. The best over a whole conversation (``choose``)
  is reported (``Tuning``) and remembered in the load records, so later loads use it without probing.
  Flash attention was faster for one small model here and 20-25% slower for another; more threads than
  physical cores never helps. Its cost also grows differently with the conversation: with one llama.cpp
  build, SmolLM2-135M decoded as fast with it as without it after 50 tokens, and 2.4 times slower after
  3,500, so a choice made at a short context alone made long chats slow.
- ``ThreadGovernor``: llama.cpp's OpenMP threads spin while they wait for each other, so when another program
  (or a second model, in a comparison) uses a core, a generation on every core collapses (3.4 tokens/s on
  two threads against 14.5 on one, measured on a 2-core machine). The governor watches how much of the
  processor other programs use while a generation runs and gives llama.cpp only the cores left
  (``llama_set_n_threads``), up to the probed best.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import psutil

from app.engine.load_plan import Tuning

PROBE_CONTEXT = 512
PROBE_PROMPT_TOKENS = 32
PROBE_TOKENS = 16
PROBE_BUDGET_S = 1.5  # per setting and round: a large model decodes fewer tokens rather than take longer
PROBE_ROUNDS = 2  # the settings alternate, and each keeps its best round, so a busy moment counts once
AGAIN_WITHIN = 0.7  # a setting slower than this share of the best after a round is not read again
FLASH_MARGIN = 1.03  # flash attention off must be this much faster to be chosen: runs differ by about that much
LONG_FILL_BUDGET_S = 2.0  # filling a probe context for the long reading, per flash-attention setting
LONG_FILL_MOST_S = 5.0  # ... and the longest a slower model may take to fill the fewest cells worth reading
LONG_TOKENS = 8
LONG_BUDGET_S = 0.75
# Without flash attention, llama.cpp computes attention over the cache rounded up to this many cells: measured
# here, a decode costs the same from 40 to 250 tokens and steps up past 256 (with it, the cost follows the
# tokens). So the long reading is taken past the first step, and each reading counts the cells really read.
NO_FLASH_PADDING = 256
LONG_MIN_CELLS = NO_FLASH_PADDING + 16  # a model too slow to fill this many is judged after a short prompt only


@dataclass(frozen=True)
class DecodeSpeed:
    generation: float  # tokens per second, one token per decode
    prompt: float  # tokens per second over the prompt
    at: float = 0.0  # how many tokens the context held, on average, while the generation was timed


def thread_choices(physical_cores: int) -> list[int]:
    cores = max(physical_cores, 1)
    return sorted({1, max(cores // 2, 1), cores})


def decode_speed(model: Any, prompt: Sequence[int], *, flash_attention: bool, threads: int,
                 tokens: int = PROBE_TOKENS, budget_s: float = PROBE_BUDGET_S, n_ctx: int = PROBE_CONTEXT,
                 context: Any = None) -> DecodeSpeed:
    """Decode ``prompt`` then up to ``tokens`` greedy tokens on a fresh context of ``model`` (a
    ``llama_model_p``), timing both. With ``context`` given (one made by ``probe_context``), that context is
    reused after clearing its memory."""
    import llama_cpp

    own = context is None
    ctx = probe_context(model, flash_attention=flash_attention, threads=threads, n_ctx=n_ctx) if own else context
    if not ctx:
        raise RuntimeError("llama.cpp could not make a context for the speed probe")
    sampler = llama_cpp.llama_sampler_init_greedy()
    try:
        llama_cpp.llama_set_n_threads(ctx, threads, threads)
        llama_cpp.llama_memory_clear(llama_cpp.llama_get_memory(ctx), True)
        ids = (llama_cpp.llama_token * len(prompt))(*prompt)
        started = time.perf_counter()
        if llama_cpp.llama_decode(ctx, llama_cpp.llama_batch_get_one(ids, len(prompt))) != 0:
            raise RuntimeError("llama.cpp could not decode the speed probe's prompt")
        prompt_s = time.perf_counter() - started
        decoded, generation = _timed_decodes(ctx, sampler, None, tokens, budget_s)
        return DecodeSpeed(generation=generation, prompt=len(prompt) / prompt_s if prompt_s > 0 else 0.0,
                           at=len(prompt) + decoded / 2)
    finally:
        llama_cpp.llama_sampler_free(sampler)
        if own:
            llama_cpp.llama_free(ctx)


def fill(context: Any, prompt: Sequence[int], cells: int) -> None:
    """Make ``context`` hold ``cells`` tokens: what attention reads in the long reading. What a short reading
    left is kept and ``prompt`` is read after it, over and over (the tokens' meaning does not change the
    time), which spares a slow model re-reading them."""
    import llama_cpp

    memory = llama_cpp.llama_get_memory(context)
    held = max(llama_cpp.llama_memory_seq_pos_max(memory, 0) + 1, 0)
    if held >= cells:
        llama_cpp.llama_memory_seq_rm(memory, 0, cells, -1)
        return
    tokens = [prompt[i % len(prompt)] for i in range(cells - held)]
    ids = (llama_cpp.llama_token * len(tokens))(*tokens)
    if llama_cpp.llama_decode(context, llama_cpp.llama_batch_get_one(ids, len(tokens))) != 0:
        raise RuntimeError("llama.cpp could not fill the speed probe's context")


def decode_speed_at(context: Any, cells: int, token: int, *, threads: int, tokens: int = LONG_TOKENS,
                    budget_s: float = LONG_BUDGET_S) -> DecodeSpeed:
    """Up to ``tokens`` decodes after the ``cells`` tokens ``fill`` read (what an earlier reading added is
    removed first), timed as ``decode_speed`` times them, a greedy sample included; ``token`` is read each
    time, whatever was sampled, so that every reading reads the same."""
    import llama_cpp

    llama_cpp.llama_set_n_threads(context, threads, threads)
    llama_cpp.llama_memory_seq_rm(llama_cpp.llama_get_memory(context), 0, cells, -1)
    sampler = llama_cpp.llama_sampler_init_greedy()
    try:
        decoded, generation = _timed_decodes(context, sampler, token, tokens, budget_s)
    finally:
        llama_cpp.llama_sampler_free(sampler)
    return DecodeSpeed(generation=generation, prompt=0.0, at=cells + decoded / 2)


def _timed_decodes(context: Any, sampler: Any, fixed: int | None, tokens: int, budget_s: float) -> tuple[int, float]:
    """Sample and decode one token at a time, up to ``tokens`` after a first one that warms caches and is not
    timed, stopping early past ``budget_s``; the token decoded is the one sampled, or ``fixed``. Returns how
    many were decoded and the tokens per second."""
    import llama_cpp

    one = (llama_cpp.llama_token * 1)()
    decoded, first_at = 0, 0.0
    deadline = time.perf_counter() + budget_s
    while decoded < tokens + 1:
        sampled = llama_cpp.llama_sampler_sample(sampler, context, -1)
        one[0] = sampled if fixed is None else fixed
        if llama_cpp.llama_decode(context, llama_cpp.llama_batch_get_one(one, 1)) != 0:
            break
        decoded += 1
        if decoded == 1:
            first_at = time.perf_counter()
        elif time.perf_counter() > deadline and decoded >= 3:
            break
    elapsed = time.perf_counter() - first_at
    return decoded, (decoded - 1) / elapsed if decoded > 1 and elapsed > 0 else 0.0


def mean_token_s(short: DecodeSpeed, long: DecodeSpeed | None, context_length: int, *,
                 flash_attention: bool = True) -> float:
    """Seconds per generated token over a conversation that fills ``context_length`` evenly. Attention's cost
    grows in step with the cells it reads, so a line through the short and the long reading gives the time
    at any length, and its mean is the time at half the context."""
    if short.generation <= 0:
        return math.inf
    per_token = 1 / short.generation
    step = 1 if flash_attention else NO_FLASH_PADDING
    short_cells, long_cells = (_read_cells(speed.at, step) for speed in (short, long or short))
    if long is None or long.generation <= 0 or long_cells <= short_cells:
        return per_token
    growth = max(1 / long.generation - per_token, 0.0) / (long_cells - short_cells)
    return per_token + growth * max(context_length / 2 - short_cells, 0.0)


def _read_cells(tokens: float, step: int) -> float:
    return math.ceil(tokens / step) * step


def choose(short: dict[tuple[bool, int], DecodeSpeed], long: dict[tuple[bool, int], DecodeSpeed],
           context_length: int, *, unread_without: bool = False) -> tuple[bool, int]:
    """The (flash attention, threads) fastest over a whole conversation; flash attention stays on unless
    going without it is clearly faster, as it keeps the compute buffer small. Where settings were read long,
    only those are weighed: one read short only would look as if attention cost nothing.

    ``unread_without``: where nothing could be read long, go without flash attention if it was read at all. The
    probe asks for that on the processor for a model whose every layer attends to the whole conversation, too
    slow to fill the long reading's cells within ``LONG_FILL_MOST_S`` (2B and up on two cores, a 1B one on a
    busy machine). Measured here with llama.cpp's C API over 3,600 cells, flash attention on against off: a
    24-token follow-up 6.2x as slow for SmolLM2-135M, 4.4x for a 1B-class shape and 1.7x for a 3B-class one,
    one decoded token 2.4x and 2.0x as slow for the first two; after 40 cells they were within 15%. Only Gemma
    3, with sliding-window layers, did better with it (0.74x), so such models keep the short reading's choice."""
    def cost(key: tuple[bool, int]) -> float:
        return mean_token_s(short[key], long.get(key), context_length, flash_attention=key[0])

    if unread_without and not long and context_length > PROBE_CONTEXT and any(not fa for fa, _ in short):
        return min((key for key in short if not key[0]), key=cost)
    candidates = [key for key in short if key in long] or list(short)
    best = min(candidates, key=cost)
    with_attention = min((key for key in candidates if key[0]), key=cost, default=None)
    if not best[0] and with_attention is not None and cost(with_attention) <= cost(best) * FLASH_MARGIN:
        return with_attention
    return best


def probe_context(model: Any, *, flash_attention: bool, threads: int, n_ctx: int = PROBE_CONTEXT) -> Any:
    """A small context of ``model``, set up as Hearth's loads are (one logits row, no full sliding-window
    cache): its KV cache is a few megabytes, so probing costs little memory beside the loaded model's."""
    import llama_cpp

    params = llama_cpp.llama_context_default_params()
    params.n_ctx = n_ctx
    params.n_batch = params.n_ubatch = n_ctx
    params.n_threads = params.n_threads_batch = threads
    params.flash_attn_type = (llama_cpp.LLAMA_FLASH_ATTN_TYPE_ENABLED if flash_attention
                              else llama_cpp.LLAMA_FLASH_ATTN_TYPE_DISABLED)
    params.swa_full = False
    params.n_outputs_max = 1
    return llama_cpp.llama_init_from_model(model, params)


def probe(model: Any, prompt: Sequence[int], physical_cores: int, *, context_length: int = PROBE_CONTEXT,
          flash_attention_allowed: bool = True, fixed_threads: int | None = None, on_processor: bool = True,
          cancelled: Callable[[], bool] = lambda: False) -> Tuning:
    """The fastest setting for ``model`` here over a conversation that fills ``context_length``.
    ``fixed_threads``: the person chose a thread count, so only flash attention is probed.
    ``flash_attention_allowed=False`` keeps it on (without it the compute buffer grows with the context, and the
    forecast said only the plan with it fits). ``on_processor``: no layer is on a graphics card."""
    import llama_cpp

    threads = [fixed_threads] if fixed_threads else thread_choices(physical_cores)
    attention = [True, False] if flash_attention_allowed else [True]
    prompt = list(prompt)[:PROBE_PROMPT_TOKENS] or [0]
    contexts = {fa: probe_context(model, flash_attention=fa, threads=max(threads)) for fa in attention}
    speeds: dict[tuple[bool, int], DecodeSpeed] = {}
    long: dict[tuple[bool, int], DecodeSpeed] = {}
    watch = OtherPrograms()

    def keep_best(found: dict[tuple[bool, int], DecodeSpeed], key: tuple[bool, int], speed: DecodeSpeed) -> None:
        if key not in found or speed.generation > found[key].generation:
            found[key] = speed

    try:
        for round_ in range(PROBE_ROUNDS):
            for fa, ctx in contexts.items():
                for n in threads:
                    if not cancelled() and ctx and (round_ == 0 or read_again(speeds, (fa, n))):
                        keep_best(speeds, (fa, n), decode_speed(model, prompt, flash_attention=fa, threads=n,
                                                                context=ctx))
        cells, fill_threads = long_fill(speeds, context_length)
        if cells and len(contexts) > 1 and not cancelled():
            for ctx in contexts.values():
                llama_cpp.llama_set_n_threads(ctx, fill_threads, fill_threads)
                fill(ctx, prompt, cells)
            # Each setting is read long on its best thread count only: the context's length changes which
            # attention is faster, not how the threads compare, and a slow model's probe stays short.
            fastest = {fa: max((s.generation, n) for (f, n), s in speeds.items() if f == fa)[1] for fa in contexts
                       if any(f == fa for f, _ in speeds)}
            for _round in range(PROBE_ROUNDS):
                for fa, n in fastest.items():
                    if not cancelled():
                        keep_best(long, (fa, n), decode_speed_at(contexts[fa], cells, prompt[-1], threads=n))
    finally:
        for ctx in contexts.values():
            if ctx:
                llama_cpp.llama_free(ctx)
    # Another program on a core makes every setting with all cores collapse (below), so a thread count measured
    # then says nothing about a quiet machine: such a tuning is used for this load only and measured again.
    busy = watch.cores() > OTHERS_SLACK
    if not speeds:
        return Tuning(threads=max(threads), flash_attention=True, tokens_per_s=0.0, prompt_tokens_per_s=0.0,
                      busy=busy)
    fa, n = choose(speeds, long, context_length,
                   unread_without=on_processor and full_attention(model))
    prompt_threads = max((s.prompt, t) for (f, t), s in speeds.items() if f == fa)[1]
    measured = {f"{'fa' if f else 'no-fa'}/{t}": round(s.generation, 2) for (f, t), s in speeds.items()}
    measured |= {f"{'fa' if f else 'no-fa'}/{t}@{round(s.at)}": round(s.generation, 2) for (f, t), s in long.items()}
    return Tuning(threads=n, flash_attention=fa, tokens_per_s=speeds[(fa, n)].generation,
                  prompt_tokens_per_s=speeds[(fa, prompt_threads)].prompt, batch_threads=prompt_threads,
                  measured=measured, busy=busy)


def full_attention(model: Any) -> bool:
    """Whether every layer of ``model`` attends to the whole conversation: no sliding window, not recurrent."""
    import llama_cpp

    return llama_cpp.llama_model_n_swa(model) == 0 and not llama_cpp.llama_model_is_recurrent(model)


def read_again(speeds: dict[tuple[bool, int], DecodeSpeed], key: tuple[bool, int]) -> bool:
    """Whether a setting is read again in a later round: not one far behind the best, as a busy moment does
    not halve a reading (it is the settings on every core that collapse, and the best is then on fewer)."""
    best = max((speed.generation for speed in speeds.values()), default=0.0)
    return key not in speeds or speeds[key].generation >= best * AGAIN_WITHIN


def long_fill(speeds: dict[tuple[bool, int], DecodeSpeed], context_length: int) -> tuple[int, int]:
    """How many tokens the long reading fills the probe contexts with, and on how many threads: nearly all of
    them, fewer where filling would take longer than ``LONG_FILL_BUDGET_S`` with the slower flash-attention
    setting on its fastest thread count for prompts, but at least ``LONG_MIN_CELLS`` for a model that fills
    them within ``LONG_FILL_MOST_S`` (a 1B-class model on two cores: its long chats are where the choice
    matters most), and none for a slower one or a context that never holds more than the short reading."""
    fastest: dict[bool, tuple[float, int]] = {}
    for (fa, threads), speed in speeds.items():
        fastest[fa] = max(fastest.get(fa, (0.0, threads)), (speed.prompt, threads))
    if not fastest:
        return 0, 1
    prompt_speed, threads = min(fastest.values())
    if prompt_speed * LONG_FILL_MOST_S < LONG_MIN_CELLS:
        return 0, threads
    cells = min(PROBE_CONTEXT - LONG_TOKENS - 2, max(int(prompt_speed * LONG_FILL_BUDGET_S), LONG_MIN_CELLS),
                context_length)
    return (cells if cells >= LONG_MIN_CELLS else 0), threads


# Other programs' use of the processor, in cores, below which llama.cpp keeps every core. Low on purpose: with
# OpenMP's spinning waits, a program that woke for 10% of one core cut two-thread decoding from 115 to 2-7
# tokens/s on a 2-core machine (one thread kept 80); measurement noise over a quarter second is about 0.04.
OTHERS_SLACK = 0.1


class OtherPrograms:
    """How much of the processor other programs used since the last reading, in physical cores' worth: the
    whole machine's busy time less this process's own CPU time."""

    def __init__(self) -> None:
        self._process = psutil.Process()
        self.physical = max(psutil.cpu_count(logical=False) or 1, 1)
        self.logical = max(psutil.cpu_count() or self.physical, self.physical)
        self._last = self._sample()

    def cores(self) -> float:
        sample = self._sample()
        used = between(self._last, sample) * self.physical / self.logical
        self._last = sample
        return used

    def _sample(self) -> tuple[float, float, float]:
        """(wall clock, the machine's busy CPU seconds, this process's CPU seconds)."""
        machine = psutil.cpu_times()
        busy = sum(machine) - machine.idle - getattr(machine, "iowait", 0.0)
        mine = self._process.cpu_times()
        return time.perf_counter(), busy, mine.user + mine.system


def between(before: tuple[float, float, float], after: tuple[float, float, float]) -> float:
    """Logical CPUs' worth other programs used between two ``OtherPrograms`` samples."""
    wall = after[0] - before[0]
    if wall <= 0:
        return 0.0
    return max(((after[1] - before[1]) - (after[2] - before[2])) / wall, 0.0)


class ThreadGovernor:
    """Gives a running generation the cores other programs leave free (see the module's docstring).

    A background thread reads, every ``interval_s``, how much of the processor other programs used
    (``OtherPrograms``); any use beyond ``OTHERS_SLACK`` takes a whole core from llama.cpp, which keeps at least
    one and at most the tuned count. A change needs two readings in a row, so one busy moment does not make the
    threads flap. The new count is applied between two decodes, on the thread that runs them (``tick``),
    because llama.cpp reads it when a decode starts.
    """

    def __init__(self, set_threads: Callable[[int, int], None], most: int, physical_cores: int,
                 batch_most: int | None = None, interval_s: float = 0.25, watch: bool = True) -> None:
        self._set_threads = set_threads
        self.most = max(most, 1)
        self.batch_most = max(batch_most or most, 1)
        self.physical = max(physical_cores, 1)
        self.interval_s = interval_s
        self.threads = self.most  # what llama.cpp was last given
        self.wanted = self.most  # what the readings ask for
        self._candidate: int | None = None
        self._stop = threading.Event()
        if watch:
            threading.Thread(target=self._watch, name="thread-governor", daemon=True).start()

    def apply(self) -> None:
        """Prompts keep their own tuned count while nothing else runs, and share the cores left otherwise."""
        self.threads = self.wanted
        self._set_threads(self.wanted, self.batch_most if self.wanted == self.most else min(self.batch_most,
                                                                                            self.wanted))

    def tick(self) -> None:
        if self.wanted != self.threads:
            self.apply()

    def close(self) -> None:
        self._stop.set()

    def observe(self, others: float) -> None:
        """One reading: ``others`` physical cores' worth used by other programs."""
        taken = max(math.ceil(others - OTHERS_SLACK), 0)
        wanted = min(max(self.physical - taken, 1), self.most)
        if wanted == self.wanted:
            self._candidate = None
        elif wanted == self._candidate:
            self.wanted, self._candidate = wanted, None
        else:
            self._candidate = wanted

    def _watch(self) -> None:
        others = OtherPrograms()
        while not self._stop.wait(self.interval_s):
            self.observe(others.cores())


def set_threads_of(llm: Any) -> Callable[[int, int], None]:
    """The governor's hook for a loaded ``llama_cpp.Llama``: generation and prompt threads."""
    import llama_cpp

    def apply(threads: int, batch_threads: int) -> None:
        llama_cpp.llama_set_n_threads(llm.ctx, threads, batch_threads)

    return apply


def pace_decodes(llm: Any, governor: ThreadGovernor) -> None:
    """Let the governor act before each of ``llm``'s decodes (each prompt chunk and each generated token),
    whatever code drives the generation."""
    context = llm._ctx
    decode = context.decode

    def paced(batch: Any) -> None:
        governor.tick()
        decode(batch)

    context.decode = paced


def cpu_has_amx(system_info: str | None = None) -> bool:
    """Whether llama.cpp's CPU backend uses AMX here (it reports ``AMX_INT8 = 1`` in its system info): the worker
    then loads without llama.cpp's extra weight layouts (``LoadPlan.extra_buffers``)."""
    if system_info is None:
        import llama_cpp

        system_info = llama_cpp.llama_print_system_info().decode("utf-8", "replace")
    return "AMX_INT8 = 1" in system_info
