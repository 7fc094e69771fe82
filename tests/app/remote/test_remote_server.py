"""A remote engine as Hearth talks to it: llama-cpp-python's own OpenAI-compatible server (an engine Hearth did not
write) and a second Hearth (``hearth serve``'s app), both on 127.0.0.1, plus a server that drops the connection in
the middle of an answer."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import pytest

from app import network
from app.outcomes import FinishReason
from app.remote.server import RemoteError, RemoteServer

from tests.helpers.free_port import free_port

pytestmark = pytest.mark.engine

QUESTION = [{"role": "user", "content": "Once upon a time"}]



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


def test_another_hearth_describes_its_computer_and_forecasts_its_models(library_server: tuple[str, str]) -> None:
    """Before anything is loaded there: what the Models page says of a model on another Hearth."""
    from app.remote.computers import Computer
    from app.remote.listing import remote_record

    url, name = library_server
    remote = RemoteServer(url, api_key="right")
    hardware = remote.hardware()
    assert hardware is not None and hardware["memory_total_bytes"] > 0 and hardware["sentences"]
    forecast = remote.forecast(name)
    assert forecast is not None and forecast["verdict_words"] == "Runs well" and forecast["ram_bytes"] > 0
    assert forecast["speed_words"].startswith("about ") and forecast["speed_words"].endswith(" words per second")
    assert remote.forecast("gone") is None  # a model it does not have: no forecast, no error
    record = remote_record(Computer(url, "Study-PC"), name, 2048, forecast)
    assert record.facts["forecast"] == f"Runs well on Study-PC, {forecast['speed_words']} there."
    assert RemoteServer(url + "/v1", api_key="right").models()[0].hearth


def test_the_listing_asks_a_hearth_for_its_forecasts(library_server: tuple[str, str], llama_server: str) -> None:
    import keyring

    from app.remote.computers import Computers
    from app.remote.listing import list_remote_models
    from app.settings import Settings

    from tests.helpers.memory_keyring import MemoryKeyring

    url, name = library_server
    previous = keyring.get_keyring()
    keyring.set_keyring(MemoryKeyring())
    try:
        computers = Computers(Settings())
        computers.add(url, "Study-PC", key="right")
        computers.add(llama_server, "Laptop")
        computers.add(f"http://127.0.0.1:{free_port()}", "Gone")
        listing = list_remote_models(computers)
    finally:
        keyring.set_keyring(previous)
    by_computer = {str(m.facts["computer"]): m for m in listing.models}
    assert set(by_computer) == {"Study-PC", "Laptop"} and by_computer["Study-PC"].name == name
    assert by_computer["Study-PC"].facts["verdict"] == "Runs well"
    assert by_computer["Laptop"].facts["forecast"] == ""  # llama.cpp's server forecasts nothing
    assert len(listing.problems) == 1 and listing.problems[0].startswith("Gone: Could not reach 127.0.0.1")
