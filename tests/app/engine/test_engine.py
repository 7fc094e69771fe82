"""The engine worker with the real llama.cpp and the real test model: load, stream, stop, unload, crash."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from app.engine import EngineClient, EngineState
from app.engine import protocol as p
from app.engine.client import EventWaiter
from app.errors import EngineError, ModelLoadError

from tests.helpers.gguf_fixtures import corrupted_tensor_data, odd_metadata, truncated, with_chat_template

pytestmark = pytest.mark.engine

PROMPT = [{"role": "user", "content": "Once upon a time"}]


def _collect(engine: EngineClient, until: tuple[type, ...], timeout: float = 60) -> list[p.Event]:
    events: list[p.Event] = []
    with EventWaiter(engine) as waiter:
        while True:
            event = waiter.wait_for((object,), timeout)
            events.append(event)
            if isinstance(event, until):
                return events


def test_load_reports_progress_then_the_model(engine: EngineClient, test_model_path: Path) -> None:
    with EventWaiter(engine) as waiter:
        engine.load(test_model_path, context_length=1024)
        progress: list[float] = []
        while True:
            event = waiter.wait_for((p.LoadProgress, p.Loaded, p.Failed), 60)
            if not isinstance(event, p.LoadProgress):
                break
            progress.append(event.fraction)
    assert isinstance(event, p.Loaded), event
    assert progress and progress == sorted(progress) and progress[-1] == pytest.approx(1.0)
    assert event.context_length == 1024 and event.trained_context_length == 2048
    assert not event.has_chat_template and "ChatML" in event.chat_format
    assert engine.state is EngineState.READY and engine.loaded == event


def test_context_is_capped_at_the_trained_length(engine: EngineClient, test_model_path: Path) -> None:
    assert engine.load_blocking(test_model_path, context_length=8192).context_length == 2048


def test_streams_tokens_and_reports_metrics(loaded_engine: EngineClient) -> None:
    tokens: list[str] = []
    finished = loaded_engine.chat_blocking(PROMPT, on_token=tokens.append, max_tokens=48, seed=7)
    assert finished.finish_reason == "length"
    assert len(tokens) >= 1 and "".join(tokens) == finished.text and finished.text.strip()
    m = finished.metrics
    assert m.completion_tokens == 48
    assert m.prompt_tokens > 3
    assert m.ttft_s is not None and m.ttft_s > 0
    assert m.tokens_per_s is not None and m.tokens_per_s > 0
    assert m.peak_rss_bytes > 0


def test_same_seed_gives_the_same_answer(loaded_engine: EngineClient) -> None:
    first = loaded_engine.chat_blocking(PROMPT, max_tokens=32, seed=3, temperature=0.8)
    second = loaded_engine.chat_blocking(PROMPT, max_tokens=32, seed=3, temperature=0.8)
    assert first.text == second.text


def test_stop_ends_the_answer_softly(loaded_engine: EngineClient) -> None:
    full = loaded_engine.chat_blocking(PROMPT, max_tokens=1800, seed=5)
    assert full.metrics.completion_tokens > 1000, "needs a long answer to stop in the middle of"
    pid = loaded_engine.pid
    with EventWaiter(loaded_engine) as waiter:
        request = loaded_engine.generate(PROMPT, max_tokens=1800, seed=5)
        waiter.wait_for((p.Token,), 30)
        loaded_engine.stop()
        finished = waiter.wait_for((p.Finished,), 30)
    assert isinstance(finished, p.Finished) and finished.request_id == request
    assert finished.finish_reason == "cancelled"
    assert 0 < finished.metrics.completion_tokens < full.metrics.completion_tokens
    assert full.text.startswith(finished.text)
    # The soft path answered: the worker was not ended and restarted to force the stop.
    assert loaded_engine.pid == pid and loaded_engine.state is EngineState.READY


def test_a_second_request_while_answering_is_refused(loaded_engine: EngineClient) -> None:
    with EventWaiter(loaded_engine) as waiter:
        loaded_engine.generate(PROMPT, max_tokens=1500, seed=1)
        with pytest.raises(EngineError, match="still answering"):
            loaded_engine.generate(PROMPT)
        loaded_engine.stop()
        waiter.wait_for((p.Finished,), 30)


def test_long_conversation_drops_oldest_turns(engine: EngineClient, test_model_path: Path) -> None:
    engine.load_blocking(test_model_path, context_length=256)
    turn = "Tell me about the little red bird who lived in the old oak tree by the river. " * 2
    messages = [{"role": "system", "content": "Be kind."}]
    for i in range(12):
        messages += [{"role": "user", "content": f"{i}: {turn}"}, {"role": "assistant", "content": turn}]
    messages.append({"role": "user", "content": "And then?"})
    events = _collect(engine, (p.Finished, p.Failed)) if engine.generate(messages, max_tokens=32) else []
    trimmed = [e for e in events if isinstance(e, p.ContextTrimmed)]
    assert isinstance(events[-1], p.Finished), events[-1]
    assert trimmed and trimmed[0].dropped_messages >= 2
    assert events[-1].metrics.prompt_tokens <= 256


def test_a_message_too_long_for_the_window_is_a_clear_error(engine: EngineClient, test_model_path: Path) -> None:
    engine.load_blocking(test_model_path, context_length=256)
    with pytest.raises(EngineError, match="too long for this model's context window"):
        engine.chat_blocking([{"role": "user", "content": "word " * 600}], max_tokens=16)
    assert engine.chat_blocking(PROMPT, max_tokens=4).finish_reason == "length"


def test_model_with_a_chat_template_uses_it(engine: EngineClient, test_model_path: Path, tmp_path: Path) -> None:
    templated = with_chat_template(test_model_path, tmp_path)
    loaded = engine.load_blocking(templated)
    assert loaded.has_chat_template and loaded.chat_format == "the model's own template"
    assert engine.chat_blocking(PROMPT, max_tokens=8).metrics.completion_tokens == 8


def test_unload_reports_peak_memory(engine: EngineClient, test_model_path: Path) -> None:
    engine.load_blocking(test_model_path)
    engine.chat_blocking(PROMPT, max_tokens=8)
    with EventWaiter(engine) as waiter:
        engine.unload()
        event = waiter.wait_for((p.Unloaded,), 30)
    assert isinstance(event, p.Unloaded)
    assert event.peak_rss_bytes > test_model_path.stat().st_size
    assert engine.state is EngineState.IDLE and engine.loaded is None
    with pytest.raises(EngineError, match="No model is loaded"):
        engine.chat_blocking(PROMPT)


@pytest.mark.parametrize("make", [truncated, lambda src, dest: odd_metadata(dest)], ids=["truncated", "unknown-arch"])
def test_bad_model_files_fail_to_load_and_the_worker_survives(
        engine: EngineClient, test_model_path: Path, tmp_path: Path, make: object) -> None:
    bad = make(test_model_path, tmp_path)  # type: ignore[operator]
    pid = engine.pid
    with pytest.raises(ModelLoadError) as error:
        engine.load_blocking(bad)
    assert bad.name in str(error.value) and "Traceback" not in str(error.value)
    assert engine.pid == pid and engine.running
    assert engine.load_blocking(test_model_path).path == str(test_model_path.resolve())


def test_garbage_weights_load_and_generate_without_taking_the_app_down(
        engine: EngineClient, test_model_path: Path, tmp_path: Path) -> None:
    garbage = corrupted_tensor_data(test_model_path, tmp_path)
    try:
        engine.load_blocking(garbage)
        engine.chat_blocking(PROMPT, max_tokens=8)
    except (EngineError, ModelLoadError) as error:
        assert "Traceback" not in str(error)
    # Whatever llama.cpp made of it, the app side is intact and a worker can run the real model.
    engine.start()
    engine.load_blocking(test_model_path)
    assert engine.chat_blocking(PROMPT, max_tokens=4).finish_reason == "length"


def test_killed_worker_is_reported_and_a_new_one_starts(engine: EngineClient, test_model_path: Path) -> None:
    engine.load_blocking(test_model_path)
    with EventWaiter(engine) as waiter:
        engine.generate(PROMPT, max_tokens=1800)
        waiter.wait_for((p.Token,), 30)
        assert engine.pid is not None
        os.kill(engine.pid, signal.SIGKILL)
        exited = waiter.wait_for((p.WorkerExited,), 30)
    assert isinstance(exited, p.WorkerExited)
    assert not exited.expected and exited.exitcode == -signal.SIGKILL
    assert "stopped unexpectedly" in exited.message
    assert engine.state is EngineState.STOPPED and engine.loaded is None
    engine.start()
    engine.load_blocking(test_model_path)
    assert engine.chat_blocking(PROMPT, max_tokens=4).metrics.completion_tokens == 4


def test_a_worker_that_dies_loading_on_the_graphics_card_loads_the_model_on_the_processor(
        engine: EngineClient, test_model_path: Path) -> None:
    """As when a graphics driver takes the process down with it: the worker ends while loading with layers on the
    card (frozen before it reads the load, then killed, so that it ends mid-load every time)."""
    with EventWaiter(engine) as waiter:
        crashed = engine.pid
        assert crashed is not None
        os.kill(crashed, signal.SIGSTOP)
        engine.load(test_model_path, context_length=512, gpu_layers=-1)
        os.kill(crashed, signal.SIGKILL)
        started = waiter.wait_for((p.LoadStarted,), 30)  # the load asked of the dead worker
        again = waiter.wait_for((p.LoadStarted, p.WorkerExited), 60)
        loaded = waiter.wait_for((p.Loaded, p.Failed, p.WorkerExited), 120)
    assert isinstance(started, p.LoadStarted) and started.plan.gpu_layers == -1
    assert isinstance(again, p.LoadStarted) and again.plan.gpu_layers == 0
    assert isinstance(loaded, p.Loaded) and loaded.plan.gpu_layers == 0 and engine.pid != crashed
    assert loaded.gpu_fallback == ("The graphics card could not run “stories260K.gguf” (its driver stopped the "
                                   "engine), so it runs on the processor instead.")
    assert engine.loaded is not None and engine.loaded.gpu_fallback == loaded.gpu_fallback
    assert engine.chat_blocking(PROMPT, max_tokens=4).metrics.completion_tokens == 4


def test_shutdown_is_clean_and_expected(test_model_path: Path) -> None:
    client = EngineClient()
    client.start()
    client.load_blocking(test_model_path)
    with EventWaiter(client) as waiter:
        client.shutdown()
        exited = waiter.wait_for((p.WorkerExited,), 10)
    assert isinstance(exited, p.WorkerExited) and exited.expected and exited.exitcode == 0
    assert not client.running


def test_a_stop_the_worker_cannot_answer_ends_and_restarts_it(test_model_path: Path) -> None:
    """As when llama.cpp is deep in a long prompt: the worker is frozen, so the client ends it, reports the
    answer as cancelled, and brings the same model back in a fresh worker."""
    client = EngineClient(stop_grace_s=0.3)
    client.start()
    try:
        client.load_blocking(test_model_path, context_length=1024)
        with EventWaiter(client) as waiter:
            client.generate(PROMPT, max_tokens=1000)
            waiter.wait_for((p.Token,), 30)
            frozen = client.pid
            assert frozen is not None
            os.kill(frozen, signal.SIGSTOP)
            client.stop()
            finished = waiter.wait_for((p.Finished,), 30)
            reloaded = waiter.wait_for((p.Loaded,), 60)
        assert isinstance(finished, p.Finished) and finished.finish_reason == "cancelled"
        assert isinstance(reloaded, p.Loaded) and reloaded.context_length == 1024
        assert client.pid != frozen and client.running
        assert client.chat_blocking(PROMPT, max_tokens=4).finish_reason == "length"
    finally:
        client.shutdown()


@pytest.mark.parametrize("dtype", ["Q8_0", "Q4_0"])
def test_quantized_models_generate(engine: EngineClient, tmp_path: Path, dtype: str) -> None:
    """Quantized weights go through llama.cpp's extra CPU layouts; on AMX CPUs those crash (llama.cpp
    #20824), so the worker turns them off there. Either way the answer must come."""
    from tests.helpers.model_builders import llama_gqa

    model = llama_gqa(tmp_path, dtype=dtype)
    loaded = engine.load_blocking(model, context_length=512)
    # Random weights write broken UTF-8, which llama-cpp-python holds back; the answer still ends at max_tokens.
    finished = engine.chat_blocking(PROMPT, max_tokens=4)
    assert finished.metrics.completion_tokens == 4 and finished.finish_reason == "length"
    assert loaded.buffers["model"], "llama.cpp's buffer sizes are reported after a load"


def test_an_answer_that_never_makes_text_still_ends_at_its_length(engine: EngineClient, tmp_path: Path) -> None:
    """llama-cpp-python checks max_tokens only when a token completes some text. This model (random weights, a
    byte-level vocabulary) writes one byte fragment after another, which once ran on until the context was
    full and llama.cpp failed ("failed to find a memory slot")."""
    from tests.helpers.model_builders import Vocabulary, llama_gqa

    model = llama_gqa(tmp_path, vocabulary=Vocabulary(128256, "bpe"), tied=True, ctx=32768, dtype="Q8_0")
    engine.load_blocking(model, context_length=4096)
    finished = engine.chat_blocking([{"role": "user", "content": "once upon a time there was a little fox " * 60}],
                                    max_tokens=8, temperature=0.0)
    assert finished.finish_reason == "length" and finished.metrics.completion_tokens == 8
