"""The forecast against llama.cpp itself: generated models of several shapes and real vocabulary sizes, and a
real model, loaded in the real worker and measured from outside."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from app.engine import EngineClient
from app.engine import protocol as p
from app.engine.client import EventWaiter
from app.engine.load_plan import LoadPlan
from app.engine.saved_states import MEMORY_BUDGET_BYTES
from app.forecast.dry_run import dry_run
from app.forecast.estimate import (
    GIB,
    MIB,
    PROCESS_BASELINE,
    Confidence,
    Speed,
    Verdict,
    compute_bytes,
    decide_plan,
    forecast,
    kv_bytes_per_layer,
    largest_context,
    pad,
    sliding_layers,
    weights_split,
)
from app.forecast.model_check import measured_speed
from app.forecast.placement import placement
from app.forecast.task_time import duration_words, estimate_seconds
from app.gguf.facts import ModelFacts, read_facts
from app.hardware.description import describe
from app.hardware.detect import detect
from app.hardware.machine import Gpu, Machine
from app.history import LoadRecordData
from app.tasks.spec import Plan

from tests.helpers.model_builders import Vocabulary, llama_gqa, mixture_of_experts, odd_heads, sharded, sliding_window
from tests.helpers.peak_memory import measure

pytestmark = pytest.mark.engine

LOG_PRECISION = round(0.005 * MIB)  # llama.cpp prints sizes to 0.01 MiB

BUILDERS: dict[str, Callable[[Path], Path]] = {
    "llama-gqa-f16": lambda d: llama_gqa(d),
    "llama-gqa-q8_0": lambda d: llama_gqa(d, dtype="Q8_0"),
    "gemma3-sliding-window": lambda d: sliding_window(d),
    "qwen3moe-experts": lambda d: mixture_of_experts(d),
    "qwen3-odd-heads": lambda d: odd_heads(d),
    "llama-sharded": lambda d: sharded(d)[0],
}


@pytest.fixture(scope="module")
def machine() -> Machine:
    return detect()


@pytest.fixture(scope="module")
def worker() -> Iterator[tuple[EngineClient, int]]:
    engine = EngineClient()
    with EventWaiter(engine) as waiter:
        engine.start()
        ready = waiter.wait_for((p.Ready,), 60)
    assert isinstance(ready, p.Ready) and ready.rss_bytes > 0
    yield engine, ready.rss_bytes
    engine.shutdown()


@pytest.mark.parametrize("context", [512, 2048])
@pytest.mark.parametrize("name", list(BUILDERS))
def test_kv_and_weights_match_what_llama_cpp_allocates(
        tmp_path: Path, name: str, context: int, machine: Machine, worker: tuple[EngineClient, int]) -> None:
    engine, _baseline = worker
    model = BUILDERS[name](tmp_path)
    facts = read_facts(model)
    plan = decide_plan(facts, machine, context_length=context)
    loaded = engine.load_blocking(model, plan=plan)
    kv = sum(kv_bytes_per_layer(facts, loaded.plan))
    layers_logged = len(loaded.buffers["kv_cells"])
    assert abs(kv - loaded.buffers["kv_total"]) <= LOG_PRECISION * layers_logged, (kv, loaded.buffers)
    cpu, gpu = weights_split(facts, loaded.plan.gpu_layers)
    assert cpu + gpu == loaded.weights_bytes


# Real models have vocabularies of 32k-262k tokens, of both tokenizer families, with tied and untied output
# matrices; the vocabulary drives the logits, the output matrix and llama.cpp's token tables.
SPM32K, BPE49K, BPE128K, SPM262K = (Vocabulary(32000, "spm"), Vocabulary(49152, "bpe"), Vocabulary(128256, "bpe"),
                                    Vocabulary(262144, "spm"))
SHAPE = {"n_embd": 128, "n_layer": 4, "ctx": 32768, "dtype": "Q8_0"}
PEAK_CASES: dict[str, tuple[Callable[[Path], Path], int]] = {
    **{f"llama-{v.label}{'-tied' if tied else ''}-4096": (
        lambda d, v=v, tied=tied: llama_gqa(d, vocabulary=v, tied=tied, **SHAPE), 4096)
       for v in (SPM32K, BPE49K, BPE128K, SPM262K) for tied in (False, True)},
    **{f"llama-{v.label}-{context}": (lambda d, v=v: llama_gqa(d, vocabulary=v, **SHAPE), context)
       for v in (BPE49K, SPM262K) for context in (512, 16384)},
    "gemma3-sliding-window-spm262144-4096": (
        lambda d: sliding_window(d, vocabulary=SPM262K, ctx=32768, dtype="Q8_0"), 4096),
    "qwen3moe-experts-bpe128256-4096": (
        lambda d: mixture_of_experts(d, vocabulary=BPE128K, ctx=32768, dtype="Q8_0"), 4096),
    "qwen3-odd-heads-bpe49152-4096": (lambda d: odd_heads(d, vocabulary=BPE49K, ctx=32768, dtype="Q8_0"), 4096),
    "llama-sharded-spm32000-4096": (lambda d: sharded(d, vocabulary=SPM32K, ctx=32768, dtype="Q8_0")[0], 4096),
}


@pytest.fixture(scope="module")
def model_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("forecast-models")


def _check_peak(model: Path, context: int, machine: Machine) -> None:
    """Within 10% of the worker's measured peak, and never more than 5% below it (a forecast that is low
    lets a model load that then pushes the computer into swap)."""
    facts = read_facts(model)
    plan = decide_plan(facts, machine, context_length=context)
    measured = measure(model, plan)
    assert measured.prompt_tokens >= 0.4 * plan.context_length, measured.prompt_tokens  # the prompt filled it
    predicted = forecast(facts, machine, plan, baseline=measured.baseline).memory
    error = (predicted.ram_bytes - measured.peak) / measured.peak
    assert -0.05 <= error <= 0.10, (model.name, context, predicted.ram_bytes, measured.peak, f"{error:+.1%}")


@pytest.mark.parametrize("case", list(PEAK_CASES))
def test_resident_peak_is_forecast_for_real_vocabulary_sizes(case: str, model_folder: Path,
                                                              machine: Machine) -> None:
    build, context = PEAK_CASES[case]
    _check_peak(build(model_folder), context, machine)


@pytest.mark.parametrize("context", [512, 2048])
def test_resident_peak_is_forecast_for_real_models(context: int, machine: Machine, test_model_path: Path,
                                                   real_model_path: Path) -> None:
    for model in (real_model_path, test_model_path):
        _check_peak(model, context, machine)


def test_only_the_last_tokens_logits_are_reserved(model_folder: Path, machine: Machine) -> None:
    """llama.cpp reserves logits for a whole micro-batch by default (vocabulary x 512 x 4 bytes); Hearth asks it
    for one row, and the forecast's analytic compute buffer follows what llama.cpp sizes either way."""
    facts = read_facts(llama_gqa(model_folder, vocabulary=SPM262K, **SHAPE))
    for rows in (1, 0):  # 0: llama.cpp's default, n_batch rows
        plan = LoadPlan(context_length=4096, max_outputs=rows, extra_buffers=False)
        dry = dry_run(facts.path, plan)
        assert dry.ok, dry.message
        assert abs(compute_bytes(facts, plan) - dry.buffers.compute_total) <= 0.1 * dry.buffers.compute_total
        if rows == 1:
            capped = dry.buffers.compute_total
    assert dry.buffers.compute_total - capped >= 4 * 262144 * 500  # the rows Hearth never reads
    capped = forecast(facts, machine, LoadPlan(context_length=4096)).memory
    uncapped = forecast(facts, machine, LoadPlan(context_length=4096, max_outputs=0)).memory
    assert capped.reserved_ram_bytes - capped.ram_bytes == 4 * 262144  # the binding's one row
    assert uncapped.reserved_ram_bytes - uncapped.ram_bytes == pytest.approx(4 * 262144 * 512, rel=0.01)  # never read
    assert uncapped.ram_bytes == capped.ram_bytes and uncapped.reserved_words() and not capped.reserved_words()


def test_sliding_window_layers_keep_a_small_cache(tmp_path: Path) -> None:
    facts = read_facts(sliding_window(tmp_path))
    layers = sliding_layers(facts)
    assert any(layers) and not all(layers)
    full = sum(kv_bytes_per_layer(facts, LoadPlan(context_length=8192, swa_full=True)))
    small = sum(kv_bytes_per_layer(facts, LoadPlan(context_length=8192)))
    assert small < full / 2


def test_dry_run_agrees_and_refuses_what_it_cannot_run(tmp_path: Path, machine: Machine) -> None:
    facts = read_facts(llama_gqa(tmp_path))
    plan = LoadPlan(context_length=1024, extra_buffers=False)
    dry = dry_run(facts.path, plan)
    assert dry.ok and dry.weights_bytes == sum(weights_split(facts, 0))
    assert abs(dry.buffers.kv_total - sum(kv_bytes_per_layer(facts, plan))) <= LOG_PRECISION
    exact = forecast(facts, machine, plan, dry)
    assert exact.confidence is Confidence.EXACT and exact.memory.compute_ram >= dry.buffers.compute_total
    from tests.helpers.gguf_fixtures import odd_metadata

    unknown = odd_metadata(tmp_path)
    refused = forecast(read_facts(unknown), machine, plan, dry_run(unknown, plan))
    assert refused.verdict is Verdict.UNSUPPORTED and "does not know how to run" in refused.reason


def _machine(memory_total: int, available: int, gpu_memory: int = 0) -> Machine:
    gpus = (Gpu(name="Test GPU", vendor="NVIDIA", memory_total=gpu_memory, memory_free=gpu_memory, unified=False,
                source="test", backend="CUDA"),) if gpu_memory else ()
    return Machine(memory_total=memory_total, memory_available=available, cpu_name="Test CPU", physical_cores=4,
                   logical_cores=8, cpu_features=("AVX2",), gpus=gpus, offload_backends=("CUDA",) if gpus else (),
                   bandwidth_bytes_per_s=50e9)


def _big(facts: ModelFacts, weights: int) -> ModelFacts:
    """The same shape with heavier layers, to test verdicts without writing gigabytes."""
    per_layer = weights // max(len(facts.layer_bytes), 1)
    return replace(facts, layer_bytes=tuple(per_layer for _ in facts.layer_bytes))


def test_verdicts_follow_the_memory_free(tmp_path: Path) -> None:
    facts = _big(read_facts(llama_gqa(tmp_path)), 6 * GIB)
    plan = LoadPlan(context_length=4096)
    assert forecast(facts, _machine(32 * GIB, 24 * GIB), plan).verdict is Verdict.RUNS_WELL
    tight = forecast(facts, _machine(16 * GIB, 5 * GIB), plan)
    assert tight.verdict is Verdict.TIGHT and "free right now" in tight.reason
    # the free memory in the same words as the machine's description ("16 GB of memory, 5.4 GB free right now")
    assert describe(_machine(16 * GIB, 5 * GIB))[0] == "16 GB of memory, 5.4 GB free right now."
    assert "5.4 GB is free right now" in tight.reason
    too_large = forecast(facts, _machine(4 * GIB, 3 * GIB), plan)
    assert too_large.reason.endswith("this computer has 4 GB in all.")  # the installed memory as it is sold
    assert forecast(facts, _machine(8 * GIB, 6 * GIB), plan).verdict is Verdict.TOO_LARGE


def test_gpu_layers_and_context_that_fit(tmp_path: Path) -> None:
    facts = _big(read_facts(llama_gqa(tmp_path, ctx=32768)), 8 * GIB)
    machine = _machine(32 * GIB, 24 * GIB, gpu_memory=6 * GIB)
    plan = decide_plan(facts, machine, context_length=4096)
    assert 0 < plan.gpu_layers < (facts.block_count or 0) + 1  # part of it fits on a 6 GB card
    result = forecast(facts, machine, plan)
    assert result.verdict is Verdict.RUNS_SLOWLY and result.memory.vram_bytes > 0
    everything = decide_plan(facts, _machine(32 * GIB, 24 * GIB, gpu_memory=24 * GIB), context_length=4096)
    assert everything.gpu_layers == (facts.block_count or 0) + 1
    layers = (facts.block_count or 0) + 1
    assert placement(facts, plan, machine).words() == \
        f"Runs on: Test GPU and the processor ({plan.gpu_layers} of {layers} layers on the graphics card)"
    assert placement(facts, everything, machine).words() == f"Runs on: Test GPU (all {layers} layers)"
    assert placement(facts, replace(plan, gpu_layers=0), machine).words() == "Runs on: the processor"
    assert placement(facts, plan, _machine(32 * GIB, 24 * GIB)).words() == "Runs on: the processor"
    longest = largest_context(facts, _machine(16 * GIB, 10 * GIB), LoadPlan(context_length=4096))
    assert longest % 256 == 0 and pad(longest) <= 32768


def test_speed_range_is_in_words(tmp_path: Path) -> None:
    facts = _big(read_facts(llama_gqa(tmp_path)), 4 * GIB)
    speed = forecast(facts, _machine(32 * GIB, 24 * GIB), LoadPlan()).speed
    assert speed is not None and 0 < speed.low < speed.high
    assert "words per second" in speed.words()


def test_the_engine_measured_on_this_machine_is_the_forecasts_baseline(tmp_path: Path) -> None:
    facts = read_facts(llama_gqa(tmp_path))
    plan = LoadPlan(context_length=1024)
    typical = forecast(facts, _machine(16 * GIB, 8 * GIB), plan).memory
    measured = forecast(facts, replace(_machine(16 * GIB, 8 * GIB), engine_baseline_bytes=200 * MIB), plan).memory
    assert measured.overhead_ram - typical.overhead_ram == 200 * MIB - PROCESS_BASELINE
    given = forecast(facts, replace(_machine(16 * GIB, 8 * GIB), engine_baseline_bytes=200 * MIB), plan,
                     baseline=90 * MIB).memory
    assert given.overhead_ram - typical.overhead_ram == 90 * MIB - PROCESS_BASELINE


def _record(path: str, tokens_per_s: float | None, *, gpu_layers: int = 0, prompt: float | None = None,
            record_id: int = 1) -> LoadRecordData:
    measured = {"tuning": {"prompt_tokens_per_s": prompt}} if prompt else {}
    return LoadRecordData(id=record_id, model_path=path, created_at=datetime.now(UTC), plan={"gpu_layers": gpu_layers},
                          estimate={}, measured=measured, tokens_per_s=tokens_per_s)


def test_a_models_own_measured_speed_replaces_the_forecast_from_memory_speed() -> None:
    plan = LoadPlan(context_length=2048)
    records = [_record("/m/a.gguf", 20.0, prompt=180.0, record_id=3), _record("/m/a.gguf", 24.0, record_id=2),
               _record("/m/a.gguf", 90.0, gpu_layers=33, record_id=1), _record("/m/b.gguf", 5.0)]
    speed = measured_speed(records, "/m/a.gguf", plan)
    assert speed is not None and speed.measured and speed.prompt_tokens_per_s == 180.0
    assert speed.low == pytest.approx(22.0 * 0.85) and speed.high == pytest.approx(24.0 * 1.05)  # not the GPU load
    assert measured_speed(records, "/m/c.gguf", plan) is None


def test_task_time_uses_the_measured_prompt_speed_and_says_when_the_machine_is_busy() -> None:
    plan = Plan(document_tokens=20_000, chunks=10, context_length=4096, chunk_budget=3000, model_calls=11,
                prompt_tokens=24_000, output_tokens=3_000)
    speed = Speed(low=17.0, high=25.0, measured=True, prompt_tokens_per_s=200.0)
    quiet = estimate_seconds(plan, speed)
    busy = estimate_seconds(plan, speed, busy=0.5)
    assert quiet is not None and busy is not None
    assert quiet[1] == pytest.approx(24_000 / 200 + 3_000 / 17)
    assert busy[0] == pytest.approx(2 * quiet[0]) and busy[1] == pytest.approx(2 * quiet[1])
    assert "busy" not in duration_words(quiet) and duration_words(busy, busy=0.5).endswith(
        "(longer than usual: other programs are busy)")


def test_other_conversations_saved_states_count_in_the_verdict_up_to_one_context(tmp_path: Path) -> None:
    facts = read_facts(llama_gqa(tmp_path, ctx=32768))
    memory = forecast(facts, _machine(16 * GIB, 8 * GIB), LoadPlan(context_length=4096)).memory
    assert memory.saved_states == memory.kv_ram and memory.saved_states_words().startswith("Up to ")
    assert memory.ram_with_saved_states == memory.ram_bytes + memory.saved_states
    huge = replace(facts, block_count=400, head_count_kv_per_layer=(8,) * 400)
    assert forecast(huge, _machine(64 * GIB, 48 * GIB), LoadPlan(context_length=32768)).memory.saved_states \
        == MEMORY_BUDGET_BYTES
