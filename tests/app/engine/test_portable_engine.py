"""The portable engine (``make engine``: llama.cpp's backends as modules, CPU code for every x86-64 level, Vulkan),
run here on Mesa's software Vulkan device (lavapipe), a real Vulkan driver on the CPU: its backends load, llama.cpp
picks the CPU code for this processor, and a model runs with every layer on the Vulkan device.

Skipped, with the reason, where the portable engine is not built (``make engine``; ``.ci/run`` builds it).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.engine import EngineClient
from app.engine import protocol as p
from app.engine.backends import ENGINE_ENV, Backends
from app.engine.client import EventWaiter
from app.forecast.dry_run import dry_run
from app.forecast.estimate import decide_plan, forecast
from app.gguf.facts import read_facts
from app.hardware.detect import detect

from tests.helpers import ROOT
from tests.helpers.model_builders import Vocabulary, llama_gqa
from tests.helpers.portable_engine import ENGINE, VULKAN_ENV, need_portable_engine

pytestmark = pytest.mark.engine

# ggml's x86-64 CPU code by the widest vector extension each uses, widest first: llama.cpp must pick one of the
# widest this processor has (which one within a family depends on finer features).
FAMILIES = [
    ("avx512f", {"skylakex", "cannonlake", "cascadelake", "icelake", "cooperlake", "zen4", "sapphirerapids"}),
    ("avx2", {"haswell", "alderlake"}),
    ("avx", {"sandybridge", "ivybridge", "piledriver"}),
    ("sse4_2", {"sse42"}),
]


@pytest.fixture(scope="module", autouse=True)
def portable_engine() -> Path:
    return need_portable_engine()


@pytest.fixture
def vulkan_engine(monkeypatch: pytest.MonkeyPatch) -> Iterator[EngineClient]:
    for name, value in VULKAN_ENV.items():
        monkeypatch.setenv(name, value)  # the worker is spawned with this process's environment
    client = EngineClient()
    client.start()
    yield client
    client.shutdown()


def _backends() -> Backends:
    script = ("import json, dataclasses; from app.engine.backends import prepare_llama; "
              "print(json.dumps(dataclasses.asdict(prepare_llama())))")
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env={**os.environ, **VULKAN_ENV},
                          capture_output=True, text=True, timeout=120, check=True)
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    return Backends(**{**answer, "names": tuple(answer["names"])})


def test_the_portable_engine_loads_its_backends_and_the_cpu_code_for_this_processor() -> None:
    backends = _backends()
    assert backends.modules and backends.folder.startswith(str(ENGINE))
    assert {"CPU", "Vulkan"} <= set(backends.names)
    if not Path("/proc/cpuinfo").is_file():
        pytest.skip("this processor's features are read from /proc/cpuinfo")
    flags = set(Path("/proc/cpuinfo").read_text().split())
    expected = next((variants for feature, variants in FAMILIES if feature in flags), {"x64"})
    assert backends.cpu_variant in expected


def test_a_model_runs_with_every_layer_on_the_vulkan_device(vulkan_engine: EngineClient,
                                                          test_model_path: Path) -> None:
    loaded = vulkan_engine.load_blocking(test_model_path, context_length=512, gpu_layers=-1)
    vulkan = {kind: sum(size for name, size in buffers.items() if name.startswith("Vulkan"))
              for kind, buffers in loaded.buffers.items() if isinstance(buffers, dict)}
    assert vulkan["model"] > 0 and vulkan["kv"] > 0, loaded.buffers
    with EventWaiter(vulkan_engine) as waiter:
        vulkan_engine.generate([{"role": "user", "content": "Once upon a time"}], max_tokens=16, temperature=0)
        text = ""
        while True:
            event = waiter.wait_for((p.Token, p.Finished, p.Failed), 120)
            if isinstance(event, p.Token):
                text += event.text
            else:
                break
    assert isinstance(event, p.Finished), event
    assert text.strip() and event.metrics.completion_tokens > 0


def test_the_forecast_of_graphics_memory_matches_what_llama_cpp_puts_on_the_vulkan_device(
        vulkan_engine: EngineClient, tmp_path: Path) -> None:
    model = llama_gqa(tmp_path, vocabulary=Vocabulary(32000, "spm"), n_embd=256, n_layer=4, ctx=4096, dtype="Q8_0")
    machine = detect()  # llama.cpp's device list, asked of a child with this environment: lavapipe is a GPU
    assert machine.usable_gpus and machine.offload_backends, machine
    facts = read_facts(model)
    plan = decide_plan(facts, machine, context_length=2048)
    assert plan.gpu_layers != 0, plan  # every layer fits on the card's 2 GiB
    memory = forecast(facts, machine, plan, dry=dry_run(model, plan)).memory  # as the Models page has it
    loaded = vulkan_engine.load_blocking(model, plan=plan)
    on_card = sum(size for kind in ("model", "kv", "compute") for name, size in loaded.buffers[kind].items()
                  if name.startswith("Vulkan") and not name.endswith("_Host"))  # "_Host": pinned, in memory
    predicted = memory.weights_vram + memory.kv_vram + memory.compute_vram
    assert on_card > 0 and abs(predicted - on_card) <= 0.10 * on_card, (predicted, on_card, loaded.buffers)


def test_the_worker_says_which_backends_and_cpu_code_it_runs_on(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in VULKAN_ENV.items():
        monkeypatch.setenv(name, value)
    client = EngineClient()
    try:
        with EventWaiter(client) as waiter:
            client.start()
            ready = waiter.wait_for((p.Ready,), 120)
    finally:
        client.shutdown()
    assert isinstance(ready, p.Ready)
    assert {"CPU", "Vulkan"} <= set(ready.backends) and ready.cpu_variant == _backends().cpu_variant


def test_a_card_that_cannot_take_the_model_leaves_it_on_the_processor_with_a_sentence(
        monkeypatch: pytest.MonkeyPatch, test_model_path: Path) -> None:
    for name, value in VULKAN_ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("GGML_VK_FORCE_MAX_BUFFER_SIZE", "4096")  # the driver's own limit, too small for a KV cache
    client = EngineClient()
    client.start()
    try:
        loaded = client.load_blocking(test_model_path, context_length=512, gpu_layers=-1)
        assert loaded.plan.gpu_layers == 0 and not any(name.startswith("Vulkan0") for name in loaded.buffers["kv"])
        assert loaded.gpu_fallback == ("The graphics card could not run “stories260K.gguf” (it has too little free "
                                       "memory for it), so it runs on the processor instead.")
        assert _answer(client)
    finally:
        client.shutdown()


def test_without_its_gpu_module_the_engine_runs_the_model_on_the_processor_with_a_sentence(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, test_model_path: Path) -> None:
    engine = tmp_path / "engine"
    shutil.copytree(ENGINE, engine, symlinks=True)
    for module in (engine / "llama_cpp" / "lib").glob("*ggml-vulkan*"):
        module.unlink()  # as on a computer whose graphics driver cannot be loaded
    monkeypatch.setenv(ENGINE_ENV, str(engine))
    client = EngineClient()
    client.start()
    try:
        loaded = client.load_blocking(test_model_path, context_length=512, gpu_layers=-1)
        assert loaded.plan.gpu_layers == 0
        assert loaded.gpu_fallback == ("The graphics card could not run “stories260K.gguf” (no graphics card driver "
                                       "could be loaded), so it runs on the processor instead.")
        assert _answer(client)
    finally:
        client.shutdown()


def _answer(client: EngineClient) -> str:
    with EventWaiter(client) as waiter:
        client.generate([{"role": "user", "content": "Once upon a time"}], max_tokens=8, temperature=0)
        text = ""
        while True:
            event = waiter.wait_for((p.Token, p.Finished, p.Failed), 120)
            if not isinstance(event, p.Token):
                return text if isinstance(event, p.Finished) else ""
            text += event.text
