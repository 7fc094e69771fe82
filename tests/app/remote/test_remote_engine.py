"""A model on another computer as Hearth's engine: the engine client loads it, chats, stops, runs the tasks and plans
them through ``llama_cpp.server`` (llama-cpp-python's own server) exactly as through its own worker, and goes back to
its own worker for a local model."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import keyring
import pytest

from app.engine import EngineClient
from app.engine import protocol as p
from app.engine.client import EventWaiter
from app.errors import ModelLoadError
from app.outcomes import FinishReason
from app.remote.address import RemoteAddress, is_remote, parse
from app.remote.computers import Computers, normalized
from app.remote.tokens import EstimatedTokens
from app.remote.worker import RemoteWorkers
from app.settings import Settings
from app.tasks.orchestration import READ_LABELS_NOTE, read_labels
from app.tasks.spec import Classify, Label, Passage, RunStatus, Summarize, TaskInput

from tests.helpers.memory_keyring import MemoryKeyring

pytestmark = pytest.mark.engine

STORY = ("Lily had a little dog. The dog liked to run in the park. One day the dog saw a big red ball and ran after "
         "it. Lily laughed and ran too.")


@pytest.fixture
def computers(llama_server: str) -> Iterator[Computers]:
    previous = keyring.get_keyring()
    keyring.set_keyring(MemoryKeyring())
    known = Computers(Settings())
    known.add(llama_server, "Study-PC", context_length=1024)
    yield known
    keyring.set_keyring(previous)


@pytest.fixture
def engine(computers: Computers) -> Iterator[EngineClient]:
    client = EngineClient(elsewhere=RemoteWorkers(computers))
    yield client
    client.shutdown()


def _remote(llama_server: str, test_model_path: Path) -> str:
    return str(RemoteAddress(normalized(llama_server), str(test_model_path)))


def test_an_address_names_the_computer_and_the_model() -> None:
    where = RemoteAddress("http://study-pc:8080", "qwen2.5:7b#q4")
    assert is_remote(str(where)) and not is_remote("/models/qwen.gguf")
    assert parse(str(where)) == where and where.host == "study-pc"
    assert normalized("study-pc:8080/v1/") == "http://study-pc:8080"
    with pytest.raises(ValueError):
        parse("remote+http://study-pc")


def test_chat_streams_stops_and_says_where_it_ran(engine: EngineClient, llama_server: str,
                                                  test_model_path: Path) -> None:
    loaded = engine.load_blocking(_remote(llama_server, test_model_path))
    assert loaded.remote == "Study-PC" and loaded.context_length == 1024 and loaded.chat_format == p.SERVER_TEMPLATE
    assert engine.pid is None  # no worker process here
    pieces: list[str] = []
    done = engine.chat_blocking([{"role": "user", "content": "Once upon a time"}], max_tokens=16, temperature=0,
                                seed=1, on_token=pieces.append)
    assert done.text and "".join(pieces) == done.text and not done.error
    assert 0 < done.metrics.completion_tokens <= 17 and done.metrics.ttft_s is not None

    with EventWaiter(engine) as waiter:
        request = engine.generate([{"role": "user", "content": "Tell me a long story"}], max_tokens=600,
                                  temperature=0.8)
        waiter.wait_for((p.Token,), 60)
        engine.stop()
        while True:
            event = waiter.wait_for((p.Finished,), 60)
            assert isinstance(event, p.Finished)
            if event.request_id == request:
                break
    assert event.finish_reason is FinishReason.CANCELLED and event.metrics.completion_tokens < 600


def test_a_long_conversation_is_cut_to_the_servers_context(engine: EngineClient, llama_server: str,
                                                           test_model_path: Path) -> None:
    """The server's own tokenizer sizes the history, so the oldest turns go rather than the request failing."""
    engine.load_blocking(_remote(llama_server, test_model_path))
    history: list[dict[str, str]] = []
    for turn in range(12):
        history += [{"role": "user", "content": f"Turn {turn}. {STORY * 2}"},
                    {"role": "assistant", "content": STORY * 2}]
    trimmed: list[int] = []
    done = engine.chat_blocking([*history, {"role": "user", "content": "And then?"}], max_tokens=8,
                                on_trimmed=trimmed.append)
    assert trimmed and trimmed[0] >= 2 and done.finish_reason in (FinishReason.STOP, FinishReason.LENGTH)


def test_tasks_run_and_are_planned_on_the_remote_model(engine: EngineClient, llama_server: str,
                                                       test_model_path: Path) -> None:
    path = _remote(llama_server, test_model_path)
    document = tuple(Passage(STORY) for _ in range(6))
    with EventWaiter(engine) as waiter:
        request = engine.plan_task(path, 1024, TaskInput(Summarize("short"), document))  # before any load
        planned = waiter.wait_for((p.TaskPlanned, p.Failed), 60)
    assert isinstance(planned, p.TaskPlanned) and planned.request_id == request
    assert planned.plan.document_tokens > 100 and planned.plan.context_length == 1024

    engine.load_blocking(path)
    with EventWaiter(engine) as waiter:
        engine.run_task(TaskInput(Summarize("short"), document, max_output_tokens=24, seed=2))
        finished = waiter.wait_for((p.TaskFinished, p.Failed), 300)
    assert isinstance(finished, p.TaskFinished), getattr(finished, "message", "")
    assert finished.result.finish_reason is RunStatus.DONE and finished.result.text.strip()
    assert finished.result.document_tokens == planned.plan.document_tokens  # one tokenizer, the server's

    labels = Classify((Label("dog"), Label("cat")))
    with EventWaiter(engine) as waiter:
        engine.run_task(TaskInput(labels, (Passage("The dog ran."), Passage("The cat slept.")), seed=2))
        classified = waiter.wait_for((p.TaskFinished, p.Failed), 300)
    assert isinstance(classified, p.TaskFinished), getattr(classified, "message", "")
    rows = classified.result.rows
    assert len(rows) == 2 and classified.result.note == READ_LABELS_NOTE
    for row in rows:  # held to the labels by the grammar llama.cpp's server reads; each row says what it read
        assert set(row.labels) <= {"dog", "cat"} and sum(row.confidence.values()) in (0, 1)


def test_a_local_model_after_a_remote_one_starts_the_worker_again(engine: EngineClient, llama_server: str,
                                                                  test_model_path: Path) -> None:
    engine.load_blocking(_remote(llama_server, test_model_path))
    engine.load_blocking(test_model_path, context_length=512)
    assert engine.pid is not None and engine.loaded is not None and not engine.loaded.remote
    assert engine.chat_blocking([{"role": "user", "content": "Hi"}], max_tokens=4).metrics.completion_tokens > 0


def test_a_computer_not_added_is_never_contacted(engine: EngineClient, test_model_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="no longer among the computers Hearth may use"):
        engine.load_blocking(str(RemoteAddress("http://127.0.0.1:9", "any")))


def test_labels_are_read_strictly_from_an_answer() -> None:
    names = ["happy", "sad"]
    assert read_labels("Happy.", names, multi=False) == ("happy",)
    assert read_labels("The answer is: sad", names, multi=False) == ("sad",)
    assert read_labels("happy or sad, hard to say", names, multi=False) == ()  # two: none chosen
    assert read_labels("unhappy", names, multi=False) == ()  # a label inside a word is not the label
    assert read_labels("sad, happy", names, multi=True) == ("happy", "sad")


def test_the_estimate_gives_back_the_text_and_counts_more_than_words() -> None:
    estimate = EstimatedTokens()
    text = "Hearth runs small models — even 日本語 — on your own computer.\n\nIt is private."
    tokens = estimate.tokenize(text)
    assert estimate.detokenize(tokens) == text
    assert estimate.detokenize(tokens[:5]) + estimate.detokenize(tokens[5:]) == text
    assert len(tokens) >= 1.3 * len(text.split())


def test_a_local_and_a_remote_model_compared_side_by_side(computers: Computers, llama_server: str,
                                                          test_model_path: Path, tmp_path: Path) -> None:
    from app.compare.runner import Comparer
    from app.compare.spec import CompareInput, CompareRequest, Contender, Sampling
    from app.hardware.detect import detect
    from app.history import HistoryStore, open_database

    machine = detect()
    comparer = Comparer(HistoryStore(open_database(tmp_path / "history.sqlite3")), lambda: machine,
                        computers=computers)
    remote = _remote(llama_server, test_model_path)
    request = CompareRequest((Contender("here", test_model_path, test_model_path.stat().st_size),
                              Contender("on Study-PC", remote, 0)), CompareInput.prompt("Once upon a time"),
                             Sampling(max_tokens=16, seed=7, deterministic=True), context_length=1024)
    record = comparer.run_blocking(request)
    here, there = record.entries
    assert here.status is RunStatus.DONE and there.status is RunStatus.DONE, (here.error, there.error)
    assert here.output and there.output and there.model_path == remote
    assert there.metrics["worker_pid"] is None and here.metrics["worker_pid"]  # no worker here for the remote one
    assert there.metrics["tokens_per_s"] and there.metrics["ttft_s"] is not None  # measured on this side
