"""The forecast against llama.cpp itself: generated models of several shapes, loaded in the real worker."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from app.dry_run import dry_run
from app.engine import EngineClient
from app.engine import protocol as p
from app.engine.client import EventWaiter
from app.forecast import (
    GIB,
    MIB,
    Verdict,
    decide_plan,
    forecast,
    kv_bytes_per_layer,
    largest_context,
    pad,
    sliding_layers,
    weights_split,
)
from app.gguf_facts import ModelFacts, read_facts
from app.hardware import Gpu, Machine, detect
from app.load_plan import LoadPlan

from model_builders import llama_gqa, mixture_of_experts, odd_heads, sharded, sliding_window

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


def test_peak_memory_is_forecast_within_ten_percent(
        tmp_path: Path, machine: Machine, worker: tuple[EngineClient, int], test_model_path: Path) -> None:
    engine, baseline = worker
    for model in (test_model_path, llama_gqa(tmp_path, n_embd=256, n_layer=8, n_ff=768)):
        facts = read_facts(model)
        plan = decide_plan(facts, machine, context_length=2048)
        predicted = forecast(facts, machine, plan, baseline=baseline).memory.ram_bytes
        engine.shutdown()  # a fresh worker, so its peak belongs to this model alone
        engine.start()
        engine.load_blocking(model, plan=plan)
        half = [{"role": "user", "content": "once upon a time " * (plan.context_length // 10)}]  # ~half
        measured = engine.chat_blocking(half, max_tokens=16).metrics.peak_rss_bytes
        assert abs(predicted - measured) / measured <= 0.10, (model.name, predicted, measured)


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
    assert exact.confidence == "exact" and exact.memory.compute_ram >= dry.buffers.compute_total
    from gguf_fixtures import odd_metadata

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
    longest = largest_context(facts, _machine(16 * GIB, 10 * GIB), LoadPlan(context_length=4096))
    assert longest % 256 == 0 and pad(longest) <= 32768


def test_speed_range_is_in_words(tmp_path: Path) -> None:
    facts = _big(read_facts(llama_gqa(tmp_path)), 4 * GIB)
    speed = forecast(facts, _machine(32 * GIB, 24 * GIB), LoadPlan()).speed
    assert speed is not None and 0 < speed.low < speed.high
    assert "words per second" in speed.words()
