"""A remote engine as Hearth talks to it: llama-cpp-python's own OpenAI-compatible server (an engine Hearth did not
write) and a second Hearth (``hearth serve``'s app), both on 127.0.0.1, plus a server that drops the connection in
the middle of an answer."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from app import network
from app.outcomes import FinishReason
from app.remote.server import RemoteError, RemoteServer

from tests.helpers.free_port import free_port

pytestmark = pytest.mark.engine

QUESTION = [{"role": "user", "content": "Once upon a time"}]



@pytest.fixture(scope="module")
def llama_server(test_model_path: Path) -> Iterator[str]:
    """``python -m llama_cpp.server`` on a free port; its base URL."""
    pytest.importorskip("llama_cpp.server.app", reason="llama-cpp-python's server extra is not installed")
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "llama_cpp.server", "--model", str(test_model_path),
                               "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "1024",
                               "--chat_format", "chatml"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              env={**os.environ, "NO_PROXY": "127.0.0.1"})
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            urllib.request.urlopen(url + "/v1/models", timeout=2).read()
            break
        except OSError:
            assert server.poll() is None, server.stderr.read().decode() if server.stderr else "it exited"
            assert time.monotonic() < deadline, "llama_cpp.server did not start"
            time.sleep(0.2)
    yield url
    server.terminate()
    server.wait(30)


@pytest.fixture(autouse=True)
def recorded(monkeypatch: pytest.MonkeyPatch) -> list[network.RequestRecord]:
    """The Privacy log's records; and Hearth online (the tests keep the Hub offline), as a person has it."""
    records: list[network.RequestRecord] = []
    monkeypatch.setattr(network, "_recorder", records.append)
    monkeypatch.setattr(network, "is_offline", lambda: False)
    return records


def test_a_llama_cpp_server_lists_its_model_tokenizes_and_streams_answers(
        llama_server: str, test_model_path: Path, recorded: list[network.RequestRecord]) -> None:
    remote = RemoteServer(llama_server)  # the /v1 is added
    models = remote.models()
    assert [m.id for m in models] == [str(test_model_path)] and models[0].context_length is None
    assert remote.context_length(models[0].id) is None  # it does not say: the person is asked
    tokens = remote.tokenize(models[0].id, "Once upon a time")
    assert tokens is not None and 3 <= len(tokens) <= 8 and all(isinstance(t, int) for t in tokens)

    pieces: list[str] = []
    answer = remote.chat(models[0].id, QUESTION, max_tokens=12, temperature=0, seed=1, on_text=pieces.append)
    assert answer.text and "".join(pieces) == answer.text and not answer.error
    assert answer.finish_reason in (FinishReason.LENGTH, FinishReason.STOP)
    # It sends no usage: the answer's tokens are counted with its tokenizer (the prompt's stay unknown, 0).
    assert 0 < answer.completion_tokens <= 13 and answer.ttft_s is not None

    seen: list[str] = []
    stopped = remote.chat(models[0].id, QUESTION, max_tokens=400, temperature=0.8, on_text=seen.append,
                          cancelled=lambda: bool(seen))  # Stop, once the first text is there
    assert stopped.finish_reason is FinishReason.CANCELLED and stopped.text == seen[0]  # what was written stays

    assert recorded and {r.purpose for r in recorded} == {"Using a model on 127.0.0.1"}
    assert {r.path for r in recorded} >= {"/v1/models", "/extras/tokenize", "/v1/chat/completions"}
    assert all(r.outcome is network.Outcome.ANSWERED for r in recorded if r.path == "/v1/chat/completions")


def test_another_hearth_says_how_long_a_context_its_models_take(library_server: tuple[str, str]) -> None:
    url, name = library_server
    remote = RemoteServer(url + "/v1", api_key="right")
    assert [(m.id, m.context_length) for m in remote.models()] == [(name, 2048)]
    answer = remote.chat(name, QUESTION, max_tokens=6, temperature=0)
    assert answer.completion_tokens == 6 and answer.prompt_tokens > 0 and answer.tokens_per_s is not None
    with pytest.raises(RemoteError, match="has no model called “gone”"):
        remote.chat("gone", QUESTION, max_tokens=4)


def test_a_wrong_key_an_unreachable_server_and_work_offline_each_end_in_a_sentence(
        library_server: tuple[str, str], recorded: list[network.RequestRecord],
        monkeypatch: pytest.MonkeyPatch) -> None:
    url, _ = library_server
    with pytest.raises(RemoteError, match="refused Hearth's API key"):
        RemoteServer(url, api_key="wrong").models()  # this Hearth asks for "right"
    with pytest.raises(RemoteError, match=r"Could not reach 127\.0\.0\.1\. Is the computer on"):
        RemoteServer(f"http://127.0.0.1:{free_port()}").models()
    assert recorded[-1].outcome is network.Outcome.REFUSED
    monkeypatch.setattr(network, "is_offline", lambda: True)
    with pytest.raises(RemoteError, match="working offline"):
        RemoteServer(url, api_key="right").models()
    assert recorded[-1].outcome is network.Outcome.BLOCKED


def test_a_connection_dropped_mid_answer_keeps_what_was_written() -> None:
    port = free_port()
    listening = socket.socket()
    listening.bind(("127.0.0.1", port))
    listening.listen(1)

    def serve_half() -> None:
        connection, _ = listening.accept()
        connection.recv(65536)
        chunk = b'data: {"choices": [{"index": 0, "delta": {"content": "Once there was"}}]}\n\n'
        connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nContent-Length: 100000\r\n\r\n"
                           + chunk)
        time.sleep(0.2)
        connection.close()  # gone, in the middle of the answer

    thread = threading.Thread(target=serve_half, daemon=True)
    thread.start()
    try:
        answer = RemoteServer(f"http://127.0.0.1:{port}").chat("any", QUESTION, max_tokens=50)
    finally:
        thread.join(10)
        listening.close()
    assert answer.text == "Once there was" and answer.finish_reason is FinishReason.CANCELLED
    assert answer.error == "The connection to 127.0.0.1 was lost in the middle of the answer."


@pytest.fixture(scope="module")
def library_server(tmp_path_factory: pytest.TempPathFactory, test_model_path: Path) -> Iterator[tuple[str, str]]:
    """A second Hearth's API (``hearth serve``'s app, in this process), its key "right"; its URL and model name."""
    from app.engine import EngineClient
    from app.engine.load_plan import LoadPlan
    from app.history import HistoryStore, open_database
    from app.library import Library
    from app.server.options import ServerOptions
    from app.server.served_engine import ServedEngine
    from app.server.serving import build_app, uvicorn_server

    folder = tmp_path_factory.mktemp("other-hearth")
    library = Library(HistoryStore(open_database(folder / "history.sqlite3")), folder / "models")
    record = library.import_model(test_model_path, copy=False)
    engine = EngineClient()
    served = ServedEngine(engine, library.models, lambda _record: LoadPlan(context_length=1024))
    options = replace(ServerOptions(port=free_port()), api_key="right")
    server: Any = uvicorn_server(options, build_app(options, served))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    yield f"http://127.0.0.1:{options.port}", record.name
    server.should_exit = True
    thread.join(30)
    engine.shutdown()
