"""Threads and flash attention chosen by measurement: the probe at a first load, the settings remembered in
the load records, and the governor that leaves cores to other programs while a generation runs."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import psutil
import pytest

from app.engine import EngineClient
from app.engine.llama_log import capture_llama_log, parse_log
from app.engine.load_plan import FLASH_ATTENTION_OPTIONAL_UP_TO, NO_FLASH_UBATCH, LoadPlan, Tuning
from app.engine.tuning import (
    AGAIN_WITHIN,
    FLASH_MARGIN,
    LONG_FILL_MOST_S,
    LONG_MIN_CELLS,
    NO_FLASH_PADDING,
    PROBE_CONTEXT,
    DecodeSpeed,
    ThreadGovernor,
    between,
    choose,
    long_fill,
    mean_token_s,
    read_again,
    thread_choices,
)
from app.forecast.estimate import GIB, decide_plan, memory_for, remembered_tuning, with_memory_forecast
from app.forecast.load_tracker import LoadTracker
from app.gguf.facts import read_facts
from app.hardware.detect import detect
from app.history import HistoryStore, open_database


class _Calls:
    def __init__(self) -> None:
        self.calls: list[tuple[int, int]] = []

    def __call__(self, threads: int, batch: int) -> None:
        self.calls.append((threads, batch))


def test_the_governor_leaves_busy_cores_after_two_readings() -> None:
    calls = _Calls()
    governor = ThreadGovernor(calls, most=4, physical_cores=4, batch_most=4, watch=False)
    governor.apply()
    assert calls.calls == [(4, 4)]
    governor.observe(0.8)  # another program used most of one core: one reading is not enough
    governor.tick()
    assert governor.threads == 4 and len(calls.calls) == 1
    governor.observe(0.3)  # even a little of a core costs a whole one: spinning threads wait for it
    governor.tick()
    assert governor.threads == 3 and calls.calls[-1] == (3, 3)
    governor.observe(0.05)  # noise
    governor.observe(1.05)
    governor.tick()
    assert governor.threads == 3, "two different readings are not two in a row"
    governor.observe(6.0)  # more than every core: still one thread
    governor.observe(6.0)
    governor.tick()
    assert calls.calls[-1] == (1, 1)
    governor.observe(0.0)
    governor.observe(0.08)
    governor.tick()
    assert calls.calls[-1] == (4, 4), "back to every tuned core once the others are done"


def test_the_governor_never_exceeds_the_tuned_threads() -> None:
    calls = _Calls()
    governor = ThreadGovernor(calls, most=2, physical_cores=8, batch_most=6, watch=False)
    governor.observe(0.0)
    governor.observe(0.0)
    governor.tick()
    assert governor.threads == 2 and calls.calls == []
    governor.observe(7.0)
    governor.observe(7.0)
    governor.tick()
    assert calls.calls == [(1, 1)]


def test_others_are_what_the_machine_used_beyond_this_process() -> None:
    assert between((0.0, 10.0, 1.0), (1.0, 11.8, 1.5)) == pytest.approx(1.3)
    assert between((0.0, 10.0, 1.0), (1.0, 10.2, 1.5)) == 0.0  # never below nothing


def test_thread_choices_never_pass_the_physical_cores() -> None:
    assert thread_choices(1) == [1]
    assert thread_choices(2) == [1, 2]
    assert thread_choices(8) == [1, 4, 8]


@pytest.fixture
def store(tmp_path: Path) -> HistoryStore:
    return HistoryStore(open_database(tmp_path / "history.sqlite3"))


@pytest.mark.engine
def test_a_first_load_measures_its_settings_and_the_next_one_uses_them(
        test_model_path: Path, store: HistoryStore, tmp_path: Path) -> None:
    machine = detect()
    facts = read_facts(test_model_path)
    plan = decide_plan(facts, machine, context_length=1024, tune=True)
    assert plan.tune and plan.threads is None
    engine = EngineClient()
    LoadTracker(store, engine, tmp_path)
    engine.start()
    try:
        loaded = engine.load_blocking(test_model_path, plan=plan)
        tuning = loaded.tuning
        assert tuning is not None and tuning.tokens_per_s > 0
        assert tuning.threads in thread_choices(machine.physical_cores)
        assert {"fa/1", "no-fa/1"} <= set(tuning.measured), tuning.measured
        # Flash attention on and off, each read again with the context nearly full on its fastest thread count.
        read_long = [key.split("@") for key in tuning.measured if "@" in key]
        assert sorted(setting.split("/")[0] for setting, _ in read_long) == ["fa", "no-fa"], tuning.measured
        for setting, cells in read_long:
            same_attention = {k: v for k, v in tuning.measured.items() if "@" not in k
                              and k.split("/")[0] == setting.split("/")[0]}
            assert tuning.measured[setting] == max(same_attention.values())
            assert int(cells) > NO_FLASH_PADDING
        assert not loaded.plan.tune
        # The setting measured faster is the one this load runs with, as llama.cpp's own log says.
        assert loaded.plan.flash_attention == tuning.flash_attention
        assert loaded.plan.ubatch == (512 if tuning.flash_attention else NO_FLASH_UBATCH)
        assert loaded.buffers["flash_attention"] == tuning.flash_attention
        # Measured while other programs were busy, a thread count is not trusted: every core, governed.
        assert loaded.plan.threads == (machine.physical_cores if tuning.busy else tuning.threads)
        finished = engine.chat_blocking([{"role": "user", "content": "Once upon a time"}], max_tokens=16)
        assert finished.metrics.threads is not None and 1 <= finished.metrics.threads <= machine.physical_cores
    finally:
        engine.shutdown()
    remembered = remembered_tuning(store.load_records(), str(test_model_path.resolve()), plan)
    if tuning.busy:
        assert remembered is None, "a tuning measured on a busy machine is measured again next time"
        remembered = replace(tuning, busy=False)
    else:
        assert remembered == tuning
    again = decide_plan(facts, machine, context_length=1024, tuning=remembered)
    assert not again.tune and again.threads == tuning.threads and again.flash_attention == tuning.flash_attention
    other_context = decide_plan(facts, machine, context_length=2048)
    assert remembered_tuning(store.load_records(), str(test_model_path.resolve()), other_context) is None
    chosen = decide_plan(facts, machine, context_length=1024, tuning=remembered, threads=1)
    assert chosen.threads == 1, "a thread count the person chose is kept"


def test_a_context_made_again_without_flash_attention_is_one_made_so(real_model_path: Path) -> None:
    from app.engine.llama_kv import identity
    from app.engine.worker import llama_here, remake_context

    prompt = "The capital of France is"
    llm = llama_here(str(real_model_path), n_ctx=1024, flash_attn=True, verbose=False)
    before = identity(llm, str(real_model_path))
    with capture_llama_log() as lines:
        assert remake_context(llm, flash_attention=False, ubatch=NO_FLASH_UBATCH)
    made = parse_log("".join(lines))
    assert made.flash_attention is False and made.context_length == 1024 and made.kv_total > 0
    assert llm.context_params.n_ubatch == NO_FLASH_UBATCH
    assert identity(llm, str(real_model_path)) != before  # states saved with the old layout are not loaded
    answer = llm.create_completion(prompt, max_tokens=24, temperature=0.0)["choices"][0]["text"]
    fresh = llama_here(str(real_model_path), n_ctx=1024, flash_attn=False, verbose=False)
    assert answer and answer == fresh.create_completion(prompt, max_tokens=24, temperature=0.0)["choices"][0]["text"]


def test_a_load_that_may_turn_flash_attention_off_is_allowed_the_memory_for_it(real_model_path: Path) -> None:
    facts, machine = read_facts(real_model_path), detect()
    tuned = decide_plan(facts, machine, context_length=4096, tune=True)
    assert tuned.flash_attention and tuned.flash_attention_optional
    on = with_memory_forecast(facts, machine, replace(tuned, tune=False))
    off = with_memory_forecast(facts, machine, replace(tuned, tune=False).with_flash_attention(False))
    assert off.memory_forecast > on.memory_forecast  # without it, the compute buffer grows with the context
    assert tuned.memory_forecast == off.memory_forecast
    # Where only the plan with it fits the memory free, the probe keeps it on, and the cap is that plan's.
    need = {fa: memory_for(facts, tuned.with_flash_attention(fa), machine).ram_with_saved_states
            for fa in (True, False)}
    reserve = max(GIB, machine.memory_total // 10)
    short = replace(machine, memory_available=reserve + (need[True] + need[False]) // 2)
    kept = decide_plan(facts, short, context_length=4096, tune=True)
    assert kept.keep_flash_attention and not kept.flash_attention_optional
    assert kept.memory_forecast == with_memory_forecast(facts, short, replace(kept, tune=False)).memory_forecast
    beyond = replace(tuned, context_length=FLASH_ATTENTION_OPTIONAL_UP_TO * 2)  # the probe keeps it on there
    assert with_memory_forecast(facts, machine, beyond).memory_forecast \
        == with_memory_forecast(facts, machine, replace(beyond, tune=False)).memory_forecast


def test_only_a_model_whose_every_layer_sees_the_whole_conversation_counts_as_full_attention(
        real_model_path: Path, tmp_path: Path) -> None:
    from app.engine.tuning import full_attention
    from app.engine.worker import llama_here

    from tests.helpers.model_builders import sliding_window

    for path, expected in ((real_model_path, True), (sliding_window(tmp_path), False)):
        llm = llama_here(str(path), n_ctx=256, verbose=False)
        assert full_attention(llm.model) is expected, path.name


def _speed(tokens_per_s: float, at: float) -> DecodeSpeed:
    return DecodeSpeed(generation=tokens_per_s, prompt=0.0, at=at)


def test_flash_attention_is_judged_over_the_whole_conversation() -> None:
    """Readings like SmolLM2-135M's here: flash attention a little faster after a short prompt, much slower
    once the context fills."""
    short = {(True, 2): _speed(114, 38.5), (False, 2): _speed(98, 38.5)}
    long = {(True, 2): _speed(74, 338.5), (False, 2): _speed(100, 338.5)}
    assert choose(short, {}, 4096) == (True, 2)  # a model too slow for the long reading: the short one decides
    assert choose(short, long, 4096) == (False, 2)
    assert choose(short, long, 256) == (True, 2)  # a conversation that never gets long
    # Too slow to read long, a model whose every layer attends to the whole conversation goes without it on
    # the processor; readings long, a short conversation, or nothing read without it still decide as above.
    assert choose(short, {}, 4096, unread_without=True) == (False, 2)
    assert choose(short, long, 256, unread_without=True) == (True, 2)
    assert choose(short, {}, 512, unread_without=True) == (True, 2)
    assert choose({(True, 2): _speed(114, 38.5)}, {}, 4096, unread_without=True) == (True, 2)
    # 1 / 74 s per token at 339 tokens against 1 / 114 at 39: the line through them, at half of 4,096.
    growth = (1 / 74 - 1 / 114) / (339 - 39)
    assert mean_token_s(short[(True, 2)], long[(True, 2)], 4096) == pytest.approx(1 / 114 + growth * (2048 - 39))


def test_without_flash_attention_the_cells_read_are_counted_in_whole_steps() -> None:
    """Without flash attention, llama.cpp reads the cache in steps of 256 cells: a reading at 39 tokens costs
    what one at 256 does, so the growth is measured between 256 and 512, not 39 and 339."""
    short, long = _speed(100, 39), _speed(50, 339)
    growth = (1 / 50 - 1 / 100) / (2 * NO_FLASH_PADDING - NO_FLASH_PADDING)
    assert mean_token_s(short, long, 8192, flash_attention=False) == pytest.approx(
        1 / 100 + growth * (4096 - NO_FLASH_PADDING))
    same_step = _speed(99, 200)  # no step passed: nothing known of the growth, so none is assumed
    assert mean_token_s(short, same_step, 8192, flash_attention=False) == pytest.approx(1 / 100)


def test_flash_attention_stays_on_unless_going_without_is_clearly_faster() -> None:
    short = {(True, 1): _speed(100, 39), (False, 1): _speed(100 * FLASH_MARGIN * 0.99, 39)}
    assert choose(short, {}, 4096) == (True, 1)
    short[(False, 1)] = _speed(100 * FLASH_MARGIN * 1.01, 39)
    assert choose(short, {}, 4096) == (False, 1)
    assert choose({(True, 1): _speed(100, 39), (True, 2): _speed(150, 39)}, {}, 4096) == (True, 2)


def test_only_settings_read_long_are_weighed_once_any_is() -> None:
    """One thread read short only would look as if attention cost it nothing against two threads read long."""
    short = {(True, 1): _speed(90, 39), (True, 2): _speed(114, 39), (False, 1): _speed(92, 39),
             (False, 2): _speed(110, 39)}
    long = {(True, 2): _speed(60, 339), (False, 2): _speed(105, 339)}
    assert choose(short, long, 8192) == (False, 2)
    assert choose(short, {}, 8192) == (True, 2)


def _prompt_speeds(per_s: float) -> dict[tuple[bool, int], DecodeSpeed]:
    return {(fa, n): DecodeSpeed(generation=10.0, prompt=per_s * (1.5 if fa else 1.0) * n / 2)
            for fa in (True, False) for n in (1, 2)}


def test_the_long_reading_fills_what_a_slower_model_can_within_its_limit() -> None:
    # Fast: nearly the whole probe context, filled on the slower setting's fastest thread count for prompts.
    assert long_fill(_prompt_speeds(1000.0), 8192) == (PROBE_CONTEXT - 10, 2)
    # A 1B-class model on two cores (about 70 tokens/s): more than its two seconds, the fewest worth reading.
    assert long_fill(_prompt_speeds(70.0), 8192) == (LONG_MIN_CELLS, 2)
    # Too slow to fill them within the limit: judged after a short prompt only.
    assert long_fill(_prompt_speeds(LONG_MIN_CELLS / LONG_FILL_MOST_S * 0.9), 8192)[0] == 0
    assert long_fill(_prompt_speeds(1000.0), 256)[0] == 0  # a context that never gets long
    assert long_fill({}, 8192) == (0, 1)


def test_a_setting_far_behind_after_a_round_is_not_read_again() -> None:
    speeds = {(True, 1): _speed(60, 39), (True, 2): _speed(100, 39)}
    assert not read_again(speeds, (True, 1))
    assert read_again(speeds, (True, 2))
    assert read_again(speeds, (False, 2)), "a setting not read yet is read"
    speeds[(True, 1)] = _speed(100 * AGAIN_WITHIN, 39)
    assert read_again(speeds, (True, 1))


def test_tuning_survives_its_round_trip_and_rejects_damage() -> None:
    tuning = Tuning(threads=2, flash_attention=False, tokens_per_s=31.5, prompt_tokens_per_s=250.0,
                    batch_threads=2, measured={"fa/2": 29.0, "no-fa/2": 31.5})
    assert Tuning.from_dict(tuning.to_dict()) == tuning
    assert Tuning.from_dict({"threads": "two"}) is None
    assert tuning.applied_to(LoadPlan(tune=True)) == LoadPlan(threads=2, batch_threads=2, flash_attention=False,
                                                              ubatch=NO_FLASH_UBATCH)
    busy = replace(tuning, busy=True)
    assert busy.applied_to(LoadPlan(threads=4, tune=True)) == LoadPlan(threads=4, flash_attention=False,
                                                                       ubatch=NO_FLASH_UBATCH)
    on_card = LoadPlan(gpu_layers=8, tune=True)  # a card reads prompts faster in larger micro-batches
    assert tuning.applied_to(on_card).ubatch == on_card.ubatch


@pytest.fixture
def busy_core() -> Iterator[None]:
    """Another program keeping one core busy for as long as the test runs."""
    hog = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        yield
    finally:
        hog.kill()
        hog.wait()


@pytest.mark.engine
@pytest.mark.skipif((psutil.cpu_count(logical=False) or 1) < 2, reason="needs two cores to leave one free")
def test_a_generation_leaves_a_core_to_a_busy_program(real_model_path: Path, busy_core: None) -> None:
    """The outcome, not a speed: with a core taken, the generation ends on fewer threads than cores."""
    cores = psutil.cpu_count(logical=False) or 1
    engine = EngineClient()
    engine.start()
    try:
        engine.load_blocking(real_model_path, plan=LoadPlan(context_length=1024, threads=cores, batch_threads=cores))
        finished = engine.chat_blocking([{"role": "user", "content": "Tell me a long story about a fox."}],
                                        max_tokens=96, temperature=0.0)
        assert finished.metrics.completion_tokens > 16
        assert finished.metrics.threads is not None and finished.metrics.threads <= cores - 1
    finally:
        engine.shutdown()
