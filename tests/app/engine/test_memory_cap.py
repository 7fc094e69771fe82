"""The engine worker has a memory cap derived from the forecast plus a margin: a runaway allocation ends in
``MemoryError`` (and a sentence) instead of swapping the computer to a halt, and normal loads fit under it."""

from __future__ import annotations

import multiprocessing
import sys
from multiprocessing.connection import Connection
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="the cap is RLIMIT_DATA on Linux; Windows uses a Job Object, macOS has none yet")


def _data_limit(pid: int) -> int | None:
    """The soft limit on the data segment of process ``pid`` (``None``: unlimited)."""
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max data size"):
            soft = line.split()[3]
            return None if soft == "unlimited" else int(soft)
    raise AssertionError("no data limit line")


GIB = 1 << 30


def _try_allocations(conn: Connection) -> None:
    import ctypes

    from app.engine.memory import MemoryCap

    libc = ctypes.CDLL(None)
    libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
    cap = MemoryCap()
    limit = cap.expect(0)
    assert limit is not None
    outcome = {}
    try:
        bytearray(limit + GIB)  # a runaway: more than the cap in one go
        outcome["capped"] = "allocated"
    except MemoryError:
        outcome["capped"] = "MemoryError"
    cap.lift()
    pointer = libc.malloc(limit + GIB)  # untouched, so it costs no memory
    outcome["lifted"] = "allocated" if pointer else "refused"
    libc.free(ctypes.c_void_p(pointer))
    conn.send(outcome)


def test_a_runaway_allocation_beyond_the_cap_is_a_memory_error_and_lift_restores() -> None:
    context = multiprocessing.get_context("spawn")
    parent, child = context.Pipe(duplex=False)
    process = context.Process(target=_try_allocations, args=(child,))
    process.start()
    child.close()
    assert parent.poll(120), "the child did not answer"
    assert parent.recv() == {"capped": "MemoryError", "lifted": "allocated"}
    process.join(30)


@pytest.mark.engine
def test_a_forecast_load_is_capped_and_normal_use_fits(
        real_model_path: Path, test_model_path: Path, tmp_path: Path) -> None:
    from app.engine import EngineClient
    from app.forecast.estimate import decide_plan
    from app.gguf.facts import read_facts
    from app.hardware.detect import detect

    machine = detect(cache_dir=tmp_path)
    engine = EngineClient()
    try:
        engine.start()
        for path, context in ((real_model_path, 4096), (test_model_path, 512)):
            plan = decide_plan(read_facts(path), machine, context_length=context)
            assert plan.memory_forecast > 0
            engine.load_blocking(path, plan=plan)
            assert engine.pid is not None
            limit = _data_limit(engine.pid)
            assert limit is not None and limit >= plan.memory_forecast + GIB  # the margin: at least 1 GiB
            words = "Tell me a story about a lighthouse. " * (100 if context > 1000 else 10)
            finished = engine.chat_blocking([{"role": "user", "content": words}], max_tokens=32)
            assert finished.metrics.completion_tokens > 0  # never refused: the cap leaves the margin free
        engine.unload()
        engine.load_blocking(test_model_path, context_length=512)  # a plan made by hand: no forecast, no cap
        assert _data_limit(engine.pid) is None
    finally:
        engine.shutdown()
