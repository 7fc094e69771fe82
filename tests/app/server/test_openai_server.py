"""``hearth serve``'s OpenAI API, with the official ``openai`` client and raw HTTP, on 127.0.0.1: a real server
(uvicorn) over the real engine worker and the test model."""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import openai
import pytest

from app.cli.serve import checked_plan
from app.engine import EngineClient
from app.engine import protocol as p
from app.forecast.model_check import assess
from app.hardware.detect import detect
from app.history import HistoryStore, open_database
from app.library import Library
from app.outcomes import FinishReason
from app.server.options import ServerOptions
from app.server.served_engine import ServedEngine
from app.server.serving import ServerRefused, build_app, uvicorn_server
from app.settings import Settings

from tests.helpers.free_port import free_port

pytestmark = pytest.mark.engine

QUESTION = [{"role": "user", "content": "Once upon a time"}]


@dataclass
class Running:
    url: str
    port: int
    name: str
    engine: EngineClient
    served: ServedEngine
    events: list[p.Event]

    def client(self, key: str = "none") -> openai.OpenAI:
        return openai.OpenAI(base_url=self.url, api_key=key, max_retries=0, timeout=120)



@pytest.fixture(scope="module")
def library(tmp_path_factory: pytest.TempPathFactory, test_model_path: Path) -> Library:
    folder = tmp_path_factory.mktemp("served")
    library = Library(HistoryStore(open_database(folder / "history.sqlite3")), folder / "models")
    library.import_model(test_model_path, copy=False)
    return library


@pytest.fixture
def serve(library: Library) -> Iterator[Callable[..., Running]]:
    started: list[tuple[Any, threading.Thread, EngineClient]] = []

    def start(**changes: Any) -> Running:
        options = replace(ServerOptions(port=free_port()), **changes)
        machine, settings, store = detect(), Settings(), library.store
        engine = EngineClient()
        events: list[p.Event] = []
        engine.subscribe(events.append)
        served = ServedEngine(engine, library.models,
                              lambda record: checked_plan(assess, record, machine, settings, store),
                              max_waiting=options.max_waiting, idle_unload_s=options.idle_unload_s)
        server = uvicorn_server(options, build_app(options, served))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        started.append((server, thread, engine))
        deadline = time.monotonic() + 30
        while not server.started:
            assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
            time.sleep(0.02)
        return Running(f"http://127.0.0.1:{options.port}/v1", options.port, library.models()[0].name, engine,
                       served, events)

    yield start
    for server, thread, engine in started:
        server.should_exit = True
        thread.join(30)
        engine.shutdown()


def _wait_until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 60  # only a wait that never ends runs into it
    while not condition():
        assert time.monotonic() < deadline, "it never happened"
        time.sleep(0.02)


def _raw(port: int, method: str, path: str, body: bytes | None = None, **headers: str) -> tuple[int, dict[str, str],
                                                                                                 Any]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        connection.putrequest(method, path, skip_host="Host" in headers)
        for name, value in {"Content-Type": "application/json", **headers}.items():
            connection.putheader(name, value)
        if body is not None:
            connection.putheader("Content-Length", str(len(body)))
        connection.endheaders(body)
        answer = connection.getresponse()
        text = answer.read()
        return answer.status, {k.lower(): v for k, v in answer.getheaders()}, json.loads(text) if text else None
    finally:
        connection.close()


def test_the_openai_client_lists_the_library_and_gets_answers_with_their_usage(
        serve: Callable[..., Running]) -> None:
    running = serve()
    client = running.client()
    listed = client.models.list().data
    assert [model.id for model in listed] == [running.name]
    assert listed[0].model_extra and listed[0].model_extra["hearth"]["file"] == "stories260K.gguf"

    answer = client.chat.completions.create(model=running.name, messages=QUESTION, max_tokens=12, temperature=0,
                                            seed=1)
    assert answer.object == "chat.completion" and answer.model == running.name
    choice = answer.choices[0]
    assert choice.message.role == "assistant" and choice.message.content
    assert choice.finish_reason in ("stop", "length") and answer.usage is not None
    assert answer.usage.prompt_tokens > 0 and 0 < answer.usage.completion_tokens <= 12
    assert answer.usage.total_tokens == answer.usage.prompt_tokens + answer.usage.completion_tokens

    stream = client.chat.completions.create(model=running.name, messages=QUESTION, max_tokens=12, temperature=0,
                                            seed=1, stream=True, stream_options={"include_usage": True})
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == choice.message.content  # the same answer, streamed
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == choice.finish_reason
    usage = chunks[-1].usage
    assert chunks[-1].choices == [] and usage is not None
    assert (usage.prompt_tokens, usage.completion_tokens) == (answer.usage.prompt_tokens,
                                                              answer.usage.completion_tokens)
    assert usage.prompt_tokens_details and usage.prompt_tokens_details.cached_tokens  # the same prompt, cached

    stopped = client.chat.completions.create(model=running.name, messages=QUESTION, max_tokens=12, temperature=0,
                                             seed=1, stop=[choice.message.content[3:6]])
    assert stopped.choices[0].message.content == choice.message.content[:3]
    assert stopped.choices[0].finish_reason == "stop"


def test_a_text_completion_goes_on_from_the_prompt_as_it_is(serve: Callable[..., Running]) -> None:
    running = serve()
    client = running.client()
    whole = client.completions.create(model=running.name, prompt="Once upon a time", max_tokens=10, temperature=0,
                                      seed=3)
    assert whole.object == "text_completion" and whole.choices[0].text and whole.usage is not None
    assert whole.usage.completion_tokens == 10 and whole.choices[0].finish_reason == "length"
    assert whole.usage.prompt_tokens == 5  # the prompt as it is: no chat format around it (BOS and 4 tokens)
    pieces = list(client.completions.create(model=running.name, prompt="Once upon a time", max_tokens=10,
                                            temperature=0, seed=3, stream=True))
    assert "".join(c.choices[0].text for c in pieces) == whole.choices[0].text
    with pytest.raises(openai.BadRequestError, match="does not support “echo”"):
        client.completions.create(model=running.name, prompt="Once", echo=True)


def test_the_anthropic_client_gets_messages_whole_and_streamed(serve: Callable[..., Running]) -> None:
    import anthropic

    running = serve()
    # Temperature 0, so that the same question gets the same answer: the client's newest versions no longer take
    # it as an argument, but the Messages API still reads it.
    same = {"temperature": 0}
    client = anthropic.Anthropic(base_url=running.url.removesuffix("/v1"), api_key="none", max_retries=0,
                                 timeout=120)
    message = client.messages.create(model=running.name, max_tokens=12, system="You tell stories.", extra_body=same,
                                     messages=[{"role": "user", "content": "Once upon a time"}])
    assert message.type == "message" and message.role == "assistant" and message.model == running.name
    assert message.content[0].type == "text" and message.content[0].text
    assert message.stop_reason in ("end_turn", "max_tokens") and message.usage.input_tokens > 0
    assert 0 < message.usage.output_tokens <= 12
    text = message.content[0].text
    with client.messages.stream(model=running.name, max_tokens=12, system="You tell stories.", extra_body=same,
                                messages=[{"role": "user", "content": "Once upon a time"}]) as stream:
        streamed = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert streamed == text and final.stop_reason == message.stop_reason
    assert final.usage.output_tokens == message.usage.output_tokens
    stopped = client.messages.create(model=running.name, max_tokens=12, system="You tell stories.", extra_body=same,
                                     messages=[{"role": "user", "content": "Once upon a time"}],
                                     stop_sequences=[text[3:6]])
    assert stopped.stop_reason == "stop_sequence" and stopped.stop_sequence == text[3:6]
    assert stopped.content[0].text == text[:3]
    with pytest.raises(anthropic.NotFoundError) as missing:
        client.messages.create(model="no-such-model", max_tokens=4, messages=[{"role": "user", "content": "Hi"}])
    assert missing.value.body == {"type": "error", "error": {"type": "not_found_error", "message": (
        "The model “no-such-model” is not in Hearth's library. GET /v1/models lists the models.")}}


def test_a_json_schema_holds_the_answer_to_it(serve: Callable[..., Running]) -> None:
    running = serve()
    schema = {"type": "object", "properties": {"answer": {"enum": ["yes", "no"]}}, "required": ["answer"],
              "additionalProperties": False}
    answer = running.client().chat.completions.create(
        model=running.name, messages=QUESTION, max_tokens=64, temperature=0,
        response_format={"type": "json_schema", "json_schema": {"name": "verdict", "schema": schema}})
    content = answer.choices[0].message.content
    assert content is not None and json.loads(content)["answer"] in ("yes", "no")


def test_what_cannot_be_done_is_refused_in_the_api_s_own_error_shape(serve: Callable[..., Running]) -> None:
    running = serve()
    client = running.client()
    with pytest.raises(openai.NotFoundError) as missing:
        client.chat.completions.create(model="no-such-model", messages=QUESTION)
    assert "is not in Hearth's library" in missing.value.message
    assert missing.value.body and missing.value.body["code"] == "model_not_found"  # type: ignore[index]
    with pytest.raises(openai.BadRequestError, match="one answer per request"):
        client.chat.completions.create(model=running.name, messages=QUESTION, n=2)
    with pytest.raises(openai.NotFoundError):  # a path is never a model name
        client.chat.completions.create(model=str(Path(running.served.models()[0].path)), messages=QUESTION)


def test_requests_from_elsewhere_are_refused(serve: Callable[..., Running]) -> None:
    running = serve(max_body_bytes=4096)
    body = json.dumps({"model": running.name, "messages": QUESTION, "max_tokens": 1}).encode()
    status, _, error = _raw(running.port, "POST", "/v1/chat/completions", body, Host="attacker.example:8089")
    assert status == 403 and error["error"]["code"] == "host_not_allowed"  # a DNS-rebinding page
    status, _, error = _raw(running.port, "OPTIONS", "/v1/chat/completions", None, Origin="https://a.example",
                            **{"Access-Control-Request-Method": "POST"})
    assert status == 403 and error["error"]["code"] == "origin_not_allowed"  # no CORS unless configured
    status, _, error = _raw(running.port, "POST", "/v1/chat/completions", b"x" * 5000)
    assert status == 413 and error["error"]["code"] == "request_too_large"
    for loopback in ("localhost:8089", "[::1]:8089", "127.0.0.1"):
        status, _, models = _raw(running.port, "GET", "/v1/models", Host=loopback)
        assert status == 200 and models["data"][0]["id"] == running.name, loopback
    with pytest.raises(ServerRefused, match="needs an API key"):
        build_app(ServerOptions(host="0.0.0.0"), running.served)


def test_a_key_is_required_when_one_is_set(serve: Callable[..., Running]) -> None:
    running = serve(api_key="hearth-secret")
    with pytest.raises(openai.AuthenticationError, match="Incorrect API key"):
        running.client("wrong").models.list()
    assert running.client("hearth-secret").models.list().data[0].id == running.name
    status, _, _ = _raw(running.port, "GET", "/v1/models", **{"x-api-key": "hearth-secret"})
    assert status == 200


def test_a_full_queue_says_when_to_come_back_and_a_client_that_leaves_stops_its_answer(
        serve: Callable[..., Running]) -> None:
    running = serve(max_waiting=0)
    client = running.client()
    client.chat.completions.create(model=running.name, messages=QUESTION, max_tokens=1)  # loaded
    long = client.chat.completions.create(model=running.name, messages=QUESTION, max_tokens=4000, stream=True)
    next(iter(long))  # it holds the engine
    body = json.dumps({"model": running.name, "messages": QUESTION, "max_tokens": 1}).encode()
    status, headers, error = _raw(running.port, "POST", "/v1/chat/completions", body)
    assert status == 503 and error["error"]["code"] == "overloaded" and int(headers["retry-after"]) > 0
    long.close()  # the client goes away mid-answer
    _wait_until(lambda: any(isinstance(e, p.Finished) and e.finish_reason is FinishReason.CANCELLED
                            for e in running.events) and not running.served.busy)
    answer = client.chat.completions.create(model=running.name, messages=QUESTION, max_tokens=2)
    assert answer.usage is not None and answer.usage.completion_tokens == 2  # the engine was free again
    finished = [e for e in running.events if isinstance(e, p.Finished)]
    assert [e.finish_reason for e in finished][1:] == [FinishReason.CANCELLED, FinishReason.LENGTH]
    assert finished[1].metrics.completion_tokens < 4000


def test_hearth_serve_answers_logs_a_line_per_request_and_stops_on_ctrl_c(
        tmp_path: Path, test_model_path: Path) -> None:
    import os
    import signal
    import subprocess

    from tests.helpers import ROOT
    from tests.helpers.command import HEARTH, ctrl_c_reaches_children, hearth

    assert hearth(tmp_path, "models", "import", str(test_model_path), "--in-place").returncode == 0
    port = free_port()
    with ctrl_c_reaches_children():
        server = subprocess.Popen([*HEARTH, "serve", "--port", str(port), "--keep-history"], cwd=ROOT,
                                  env={**os.environ, "HEARTH_HOME": str(tmp_path)}, stderr=subprocess.PIPE,
                                  text=True, start_new_session=True)
    assert server.stderr is not None
    try:
        first = server.stderr.readline()
        assert first.startswith(f"hearth: serving 1 model at http://127.0.0.1:{port}/v1"), first
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="none", max_retries=0, timeout=120)
        answer = client.chat.completions.create(model="stories260K", messages=QUESTION, max_tokens=3)
        assert answer.model == "stories260K · F32" and answer.usage and answer.usage.completion_tokens == 3
        import json
        import urllib.request

        hardware = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/hearth/v1/hardware", timeout=60).read())
        assert hardware["memory_total_bytes"] > 0 and hardware["sentences"]
        os.killpg(server.pid, signal.SIGINT)
        _, rest = server.communicate(timeout=60)
    finally:
        if server.poll() is None:
            server.kill()
    assert server.returncode == 130, rest  # as a program ended by Ctrl+C exits
    assert rest.rstrip().endswith("hearth: the server has stopped")
    assert " 127.0.0.1 /v1/chat/completions stories260K · F32 " in rest and "+3 tokens" in rest
    assert "Traceback" not in rest
    from app.history import HistoryStore, open_database
    from app.paths import Paths

    store = HistoryStore(open_database(Paths.under(tmp_path).database))
    (kept,) = store.list_conversations()  # --keep-history
    assert kept.title == "API: Once upon a time" and store.messages(kept.id)[-1].completion_tokens == 3


def test_embeddings_come_one_per_text_as_floats_or_base64(serve: Callable[..., Running]) -> None:
    import math

    running = serve()
    client = running.client()
    texts = ["Once upon a time", "The fox ran into the woods", "Once upon a time"]
    answer = client.embeddings.create(model=running.name, input=texts)  # the client asks for base64, and decodes it
    vectors = [item.embedding for item in answer.data]
    assert [item.index for item in answer.data] == [0, 1, 2] and answer.model == running.name
    assert len({len(v) for v in vectors}) == 1 and len(vectors[0]) > 8  # the model's own width
    assert vectors[2] == pytest.approx(vectors[0], rel=1e-4, abs=1e-5)  # the same text, the same vector
    assert vectors[1] != pytest.approx(vectors[0], rel=1e-2)
    assert all(math.isfinite(x) for v in vectors for x in v)
    assert answer.usage.prompt_tokens == answer.usage.total_tokens > 6
    floats = client.embeddings.create(model=running.name, input="Once upon a time", encoding_format="float")
    assert floats.data[0].embedding == pytest.approx(vectors[0], rel=1e-4, abs=1e-5)
    with pytest.raises(openai.BadRequestError, match="dimensions"):
        client.embeddings.create(model=running.name, input="Once", dimensions=8)
    # the chat goes on as before beside the embedding context
    chat = client.chat.completions.create(model=running.name, messages=QUESTION, max_tokens=3)
    assert chat.usage is not None and chat.usage.completion_tokens == 3
