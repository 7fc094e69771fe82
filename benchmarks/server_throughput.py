"""``hearth serve`` against the engine it serves: what the API costs a client.

1. **decode**: an answer streamed through the server with the official ``openai`` client, against the same answer
   from the engine directly (as the window asks it), both timed on the client's side from the first token to the
   last; alternated, the median of each. Target: the server's tokens/s at least 0.97 of the engine's.
2. **concurrent**: ``--clients`` streaming clients (8) asking one after another for ``--seconds`` (60). Target: no
   failed request other than a 503 with Retry-After; the p95 time to the first token is printed.
3. **remote**: the same model behind llama-cpp-python's own server (``python -m llama_cpp.server``, an engine Hearth
   did not write), chatted with through Hearth's remote engine (``app.remote.worker``, as the window does) against
   the ``openai`` client calling that server directly; both count the streamed pieces (one token each there) from
   the first to the last. Target: Hearth's rate at least 0.95 of the direct one. ``--only remote`` runs this alone.

The model is the real SmolLM2 135M the tests fetch (``tests/helpers/fetch_test_model.py smollm2``), or ``--model``.

    .venv/bin/python benchmarks/server_throughput.py [--model M.gguf] [--runs 5] [--clients 8] [--seconds 60]
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT)]

import openai  # noqa: E402
from busy_load import busy_cores, machine_words  # noqa: E402

from app.cli.serve import checked_plan  # noqa: E402
from app.engine import EngineClient  # noqa: E402
from app.forecast.model_check import assess  # noqa: E402
from app.hardware.detect import detect  # noqa: E402
from app.history import HistoryStore, open_database  # noqa: E402
from app.library import Library  # noqa: E402
from app.server.options import ServerOptions  # noqa: E402
from app.server.served_engine import ServedEngine  # noqa: E402
from app.server.serving import build_app, uvicorn_server  # noqa: E402
from app.settings import Settings  # noqa: E402

from tests.helpers.fetch_test_model import locate_real  # noqa: E402

QUESTION = [{"role": "user", "content": "Write a long story about a lighthouse keeper and a storm."}]
TOKENS = 200


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _rate(stamps: list[float], tokens: int) -> float:
    return (tokens - 1) / (stamps[-1] - stamps[0]) if tokens > 1 and len(stamps) > 1 else 0.0


def direct(engine: EngineClient) -> float:
    stamps: list[float] = []
    finished = engine.chat_blocking(QUESTION, max_tokens=TOKENS, temperature=0.0, seed=1,
                                    on_token=lambda _text: stamps.append(time.perf_counter()))
    return _rate(stamps, finished.metrics.completion_tokens)


def served(client: openai.OpenAI, model: str) -> float:
    stamps: list[float] = []
    tokens = 0
    for chunk in client.chat.completions.create(model=model, messages=QUESTION, max_tokens=TOKENS, temperature=0,
                                                seed=1, stream=True, stream_options={"include_usage": True}):
        if chunk.choices and chunk.choices[0].delta.content:
            stamps.append(time.perf_counter())
        if chunk.usage is not None:
            tokens = chunk.usage.completion_tokens
    return _rate(stamps, tokens)


def concurrent(url: str, model: str, clients: int, seconds: float) -> dict[str, Any]:
    deadline = time.monotonic() + seconds
    first_tokens: list[float] = []
    outcomes: dict[str, int] = {}
    lock = threading.Lock()

    def one_client() -> None:
        client = openai.OpenAI(base_url=url, api_key="none", max_retries=0, timeout=600)
        while time.monotonic() < deadline:
            started = time.perf_counter()
            first: float | None = None
            try:
                for chunk in client.chat.completions.create(model=model, messages=QUESTION, max_tokens=32,
                                                            temperature=0.7, stream=True):
                    if first is None and chunk.choices and chunk.choices[0].delta.content:
                        first = time.perf_counter() - started
                outcome = "ok"
            except openai.APIStatusError as error:
                retry = error.response.headers.get("retry-after")
                outcome = f"{error.status_code}{' with Retry-After' if retry else ''}"
                time.sleep(float(retry or 1))
            except openai.APIError as error:
                outcome = type(error).__name__
            with lock:
                outcomes[outcome] = outcomes.get(outcome, 0) + 1
                if first is not None:
                    first_tokens.append(first)

    threads = [threading.Thread(target=one_client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    first_tokens.sort()
    p95 = first_tokens[min(len(first_tokens) - 1, int(0.95 * len(first_tokens)))] if first_tokens else float("nan")
    return {"outcomes": outcomes, "p95_ttft_s": p95, "median_ttft_s": statistics.median(first_tokens or [0.0])}


# llama_cpp.server, with llama.cpp's extra weight layouts off where the processor has AMX: there they crash on
# quantized models (llama.cpp #20824), as Hearth's own worker knows (``LoadPlan.extra_buffers``); elsewhere as it is.
SERVER_WITHOUT_EXTRA_LAYOUTS = """
import runpy
from app.engine.tuning import cpu_has_amx
if cpu_has_amx():
    import llama_cpp.llama_cpp as native
    original = native.llama_model_default_params
    def without_extra_layouts():
        params = original()
        params.use_extra_bufts = False
        return params
    native.llama_model_default_params = without_extra_layouts
runpy.run_module("llama_cpp.server", run_name="__main__")
"""


def _pieces_rate(stamps: list[float]) -> float:
    return _rate(stamps, len(stamps))


def remote(model: Path, runs: int) -> str:
    """Part 3; the sentence with its figures."""
    import subprocess
    import urllib.request

    import keyring
    from keyring.backends.null import Keyring as NoKeyring

    from app.remote.address import RemoteAddress
    from app.remote.computers import Computers
    from app.remote.worker import RemoteWorkers

    keyring.set_keyring(NoKeyring())  # no key for this server, and none to look up
    port = _free_port()
    server = subprocess.Popen([sys.executable, "-c", SERVER_WITHOUT_EXTRA_LAYOUTS, "--model", str(model), "--host",
                               "127.0.0.1", "--port", str(port), "--n_ctx", "2048"], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, env={**os.environ, "PYTHONPATH": str(ROOT)})
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            try:
                listed = urllib.request.urlopen(base + "/v1/models", timeout=2).read()
                break
            except OSError:
                time.sleep(0.2)
        else:
            raise SystemExit("llama_cpp.server did not start")
        import json

        model_id = str(json.loads(listed)["data"][0]["id"])
        computers = Computers(Settings())
        computers.settings.remote_computers[base] = "bench"
        computers.settings.remote_contexts[base] = 2048
        engine = EngineClient(elsewhere=RemoteWorkers(computers))
        client = openai.OpenAI(base_url=base + "/v1", api_key="none", max_retries=0, timeout=600)

        def through_hearth() -> float:
            stamps: list[float] = []
            engine.chat_blocking(QUESTION, max_tokens=TOKENS, temperature=0.0, seed=1,
                                 on_token=lambda _text: stamps.append(time.perf_counter()))
            return _pieces_rate(stamps)

        def directly() -> float:
            stamps: list[float] = []
            for chunk in client.chat.completions.create(model=model_id, messages=QUESTION, max_tokens=TOKENS,
                                                        temperature=0, seed=1, stream=True):
                if chunk.choices and chunk.choices[0].delta.content:
                    stamps.append(time.perf_counter())
            return _pieces_rate(stamps)

        try:
            engine.load_blocking(str(RemoteAddress(base, model_id)))
            through_hearth()
            directly()
            hearth_rates, direct_rates = [], []
            for _ in range(runs):
                hearth_rates.append(through_hearth())
                direct_rates.append(directly())
        finally:
            engine.shutdown()
        hearth_rate, direct_rate = statistics.median(hearth_rates), statistics.median(direct_rates)
        return (f"chat through Hearth's remote engine: {hearth_rate:.1f} tokens/s (median of {runs}); llama_cpp.server "
                f"called directly: {direct_rate:.1f} tokens/s; ratio {hearth_rate / direct_rate:.3f} (target >= 0.95)")
    finally:
        server.terminate()
        server.wait(30)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--busy", type=int, default=0, help="busy loops beside it")
    parser.add_argument("--only", choices=["remote"], help="run part 3 alone")
    args = parser.parse_args()
    model = args.model or locate_real("smollm2")
    if model is None:
        raise SystemExit("no model: pass --model, or fetch one (tests/helpers/fetch_test_model.py smollm2)")
    if args.only == "remote":
        with busy_cores(args.busy):
            print(f"{model.name}; {machine_words(args.busy)}")
            print(remote(model, args.runs))
        return 0
    with tempfile.TemporaryDirectory(prefix="hearth-serve-bench-") as folder:
        library = Library(HistoryStore(open_database(Path(folder) / "history.sqlite3")), Path(folder) / "models")
        record = library.import_model(model, copy=False)
        machine, settings, store = detect(), Settings(), library.store
        engine = EngineClient()
        served_engine = ServedEngine(engine, library.models,
                                     lambda r: checked_plan(assess, r, machine, settings, store))
        options = ServerOptions(port=_free_port())
        server = uvicorn_server(options, build_app(options, served_engine))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.05)
        url = f"http://127.0.0.1:{options.port}/v1"
        client = openai.OpenAI(base_url=url, api_key="none", max_retries=0, timeout=600)
        try:
            with busy_cores(args.busy):
                print(f"{record.name}; {machine_words(args.busy)}")
                served(client, record.name)  # loads the model, warms both
                direct(engine)
                through, alone = [], []
                for _ in range(args.runs):
                    through.append(served(client, record.name))
                    alone.append(direct(engine))
                server_rate, engine_rate = statistics.median(through), statistics.median(alone)
                print(f"decode through the server: {server_rate:.1f} tokens/s (median of {args.runs}); the engine "
                      f"directly: {engine_rate:.1f} tokens/s; ratio {server_rate / engine_rate:.3f} (target >= 0.97)")
                result = concurrent(url, record.name, args.clients, args.seconds)
                print(f"{args.clients} streaming clients for {args.seconds:.0f} s: {result['outcomes']}; time to first "
                      f"token: median {result['median_ttft_s']:.2f} s, p95 {result['p95_ttft_s']:.2f} s")
                print(remote(model, args.runs))
        finally:
            server.should_exit = True
            thread.join(30)
            engine.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
