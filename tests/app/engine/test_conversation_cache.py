"""Conversations' KV caches in the worker: a follow-up reads only its new tokens, switching away and back reads
nothing again and changes no answer, a sliding-window model never continues from a window it lost, and a
deleted conversation's saved state goes with it. Real llama.cpp and real models throughout; token counts,
never timings."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from app.chat import ChatRunner, conversation_key
from app.engine import EngineClient
from app.engine import protocol as p
from app.engine.saved_states import StateStore, file_name, remove_files
from app.history import HistoryStore, open_database
from app.settings import GenerationSettings

from tests.helpers.fetch_test_model import locate_real

STORY = ("Once upon a time there was a little girl named Lily who lived in a small house by the sea. Every "
         "morning she walked to the harbour to watch the boats. ") * 6


def _ask(engine: EngineClient, conversation: str | None, messages: list[dict[str, str]], text: str,
         max_tokens: int = 24, trimmed: list[int] | None = None) -> p.Finished:
    """One turn: ``text`` is added to ``messages``, answered at temperature 0, and the answer added too."""
    messages.append({"role": "user", "content": text})
    finished = engine.chat_blocking(messages, max_tokens=max_tokens, temperature=0.0, seed=3,
                                    conversation=conversation,
                                    on_trimmed=trimmed.append if trimmed is not None else None)
    messages.append({"role": "assistant", "content": finished.text})
    return finished


def _read(finished: p.Finished) -> int:
    return finished.metrics.prompt_tokens - finished.metrics.cached_prompt_tokens


def _new_tokens(before: p.Finished, after: p.Finished) -> int:
    """Tokens the later prompt adds after the earlier prompt and its answer."""
    return after.metrics.prompt_tokens - before.metrics.prompt_tokens - before.metrics.completion_tokens


def _wait_until(condition: Callable[[], bool]) -> None:
    """Until ``condition`` holds: a wait that never ends is ended by the suite's timeout (pytest-timeout, see
    pyproject.toml), which shows where it hung; no clock of its own to run out on a busy machine."""
    while not condition():
        time.sleep(0.05)


@pytest.fixture
def states_dir(tmp_path: Path) -> Path:
    return tmp_path / "states"


@pytest.fixture
def engine(test_model_path: Path, states_dir: Path) -> Iterator[EngineClient]:
    client = EngineClient(states_dir=states_dir)
    client.start()
    client.load_blocking(test_model_path, context_length=2048)
    yield client
    client.shutdown()


# --- the store (no model) ---


def test_states_beyond_the_memory_budget_spill_to_disk_and_come_back_whole(tmp_path: Path) -> None:
    store = StateStore(tmp_path, memory_budget=2_000)
    store.use_identity("model-a")
    for name in ("one", "two", "three"):
        assert store.reserve(800)
        store.keep(name, [1, 2, 3], bytearray((name * 400).encode()[:800]))
    assert store.in_memory() == ["two", "three"] and store.memory_bytes == 1_600
    assert [path.name for path in store.on_disk()] == [file_name("one", "model-a")]
    spilled = store.take("one")
    assert spilled is not None and spilled.from_disk and spilled.tokens == [1, 2, 3]
    assert bytes(spilled.data) == (b"one" * 400)[:800]
    kept = store.take("three")
    assert kept is not None and not kept.from_disk and store.in_memory() == ["two"]
    assert not store.reserve(2_001)  # bigger than the budget: straight to disk, never a copy in memory


def test_a_spare_is_mapped_only_from_the_budget_left_and_holds_the_next_state(tmp_path: Path) -> None:
    store = StateStore(tmp_path, memory_budget=4 << 20)
    store.use_identity("model-a")
    assert store.reserve(1_000)
    store.keep("other", [1], bytearray(1_000))
    store.prepare_spare(1 << 20)
    assert store.memory_bytes > 1_000 + (1 << 20)  # the spare counts, headroom included
    assert store.spare_for(4 << 20) is None, "a state bigger than the spare gets memory of its own"
    taken = store.spare_for((1 << 20) + 100)  # the conversation grew a little since: it still fits
    assert taken is not None
    buffer, headroom = taken
    assert len(buffer) == (1 << 20) + 100 and headroom > 0 and store.memory_bytes == 1_000
    buffer[:3] = bytes((7, 8, 9))
    assert store.reserve(len(buffer) + headroom)
    store.keep("live", [1, 2], buffer, headroom=headroom)
    assert store.memory_bytes == 1_000 + len(buffer) + headroom
    assert bytes(store.take("live").data[:3]) == bytes((7, 8, 9))  # type: ignore[union-attr]
    # No state is spilled for a spare, and a state that needs the room drops it.
    store.prepare_spare(3 << 20)
    assert store.in_memory() == ["other"] and store.memory_bytes == 1_000
    store.prepare_spare(2 << 20)
    assert store.memory_bytes > 2 << 20
    assert store.reserve(3 << 20) and store.in_memory() == ["other"] and store.memory_bytes == 1_000


def test_disk_keeps_the_last_few_and_forget_removes_a_conversation(tmp_path: Path) -> None:
    store = StateStore(tmp_path, memory_budget=0, disk_keep=3)
    store.use_identity("model-a")
    for i in range(5):
        store.write(f"chat-{i}", lambda path: path.write_bytes(b"x" * 10) > 0)
        # The order is by modification time, most recently used first: give each its own, in the past, so the
        # next write comes after them whatever the file system's clock resolution.
        os.utime(tmp_path / file_name(f"chat-{i}", "model-a"), ns=(0, (i + 1) * 10**9))
    assert sorted(path.name for path in store.on_disk()) == sorted(file_name(f"chat-{i}", "model-a") for i in (2, 3, 4))
    store.use_identity("model-b")  # another model: its states are kept apart, these stay for when it is back
    assert store.take("chat-4") is None
    store.write("chat-4", lambda path: path.write_bytes(b"y") > 0)
    assert [path.name for path in store.on_disk()] == [
        file_name("chat-4", "model-b"), file_name("chat-4", "model-a"), file_name("chat-3", "model-a")]
    store.forget("chat-4")  # every model's state of it
    assert [path.name for path in store.on_disk()] == [file_name("chat-3", "model-a")]
    assert remove_files(tmp_path, "chat-3") == 1 and store.on_disk() == []


def test_a_file_left_by_a_worker_ended_mid_write_is_removed(tmp_path: Path) -> None:
    partial = tmp_path / (file_name("chat-1", "model-a") + ".partial")
    partial.write_bytes(b"half")
    StateStore(tmp_path)
    assert not partial.exists()


# --- one model in this process: what the worker predicts and how it trims ---


def _in_process(path: Path, context_length: int) -> Any:
    from app.engine.load_plan import LoadPlan
    from app.engine.worker import llama_here

    llm = llama_here(str(path), **LoadPlan(context_length=context_length).llama_kwargs(), verbose=False)
    if "tokenizer.chat_template" not in llm.metadata:
        llm.chat_format = "chatml"
    return llm


@pytest.mark.parametrize("which", ["tiny", "smollm2", "gemma3"])
def test_the_tokens_kept_for_the_next_turn_are_those_it_reuses(which: str, test_model_path: Path) -> None:
    """What the worker keeps of a conversation set aside on a sliding-window model (``kv_reusable``) must never
    be more than the next prompt reuses (the restored cache would then be read again in full), and less only
    by an end marker written as text (Gemma's ChatML: ``<|im_end|>`` is no token there, and the answer's text
    stops before it). SmolLM2's BPE; the tiny model's SentencePiece, which gives text tokenized alone a leading
    space."""
    from app.engine.completion import LlamaModel

    path = test_model_path if which == "tiny" else locate_real(which)
    if path is None:
        pytest.skip(f"{which} is not fetched (tests/helpers/fetch_test_model.py {which})")
    llm = _in_process(path, 2048)
    model = LlamaModel(llm, lambda: False)
    messages = [{"role": "system", "content": "You tell short stories."}, {"role": "user", "content": STORY}]
    for question in ("What is her name?", "Where does she live?", "What does she watch?"):
        first = model.complete(messages, max_tokens=20, temperature=0.0, seed=1)
        predicted = model.reusable_tokens
        assert first.prompt_tokens + (1 if first.text else 0) <= predicted <= llm.n_tokens
        messages += [{"role": "assistant", "content": first.text}, {"role": "user", "content": question}]
        second = model.complete(messages, max_tokens=1, temperature=0.0, seed=1)
        reused = second.prompt_tokens - model.prompt_read
        assert predicted <= reused <= predicted + (first.completion_tokens if which == "gemma3" else 0)
    llm.close()


def test_trimming_keeps_the_same_start_for_several_turns(test_model_path: Path) -> None:
    from app.engine.fitting import fit_messages, token_estimate

    llm = _in_process(test_model_path, 1024)
    messages = [{"role": "system", "content": "Be kind."}]
    starts = []
    for i in range(40):
        messages += [{"role": "user", "content": f"{i}: and then?"}, {"role": "assistant", "content": "The bird sang."}]
        fitted = fit_messages(llm, messages, max_tokens=64)
        assert fitted is not None and fitted[0]["role"] == "system" and fitted[1]["role"] == "user"
        assert token_estimate(llm, fitted) <= 1024 - 64
        starts.append(next(j for j, m in enumerate(messages) if m is fitted[1]))
    trimmed = [start for start in starts if start > 1]
    assert len(trimmed) >= 10 and trimmed == sorted(trimmed)
    # The start stays put for runs of turns instead of moving at every turn.
    assert len(set(trimmed)) <= len(trimmed) // 3
    llm.close()


# --- the worker ---


@pytest.mark.engine
def test_a_follow_up_reads_only_its_new_tokens(engine: EngineClient) -> None:
    messages: list[dict[str, str]] = []
    first = _ask(engine, "a", messages, STORY)
    second = _ask(engine, "a", messages, "What is her name?")
    assert _read(first) == first.metrics.prompt_tokens
    assert second.metrics.cached_prompt_tokens >= first.metrics.prompt_tokens
    assert _read(second) <= _new_tokens(first, second) + 2


@pytest.mark.engine
def test_switching_away_and_back_reads_nothing_again(engine: EngineClient, test_model_path: Path,
                                                     states_dir: Path) -> None:
    a: list[dict[str, str]] = []
    b: list[dict[str, str]] = []
    a1 = _ask(engine, "a", a, STORY)
    b1 = _ask(engine, "b", b, "Tell me about a dog.")
    _ask(engine, None, [], "A question on its own.")  # as a task would, it sets b aside and keeps nothing
    a2 = _ask(engine, "a", a, "What is her name?")  # a comes back from memory
    assert _read(a2) <= _new_tokens(a1, a2) + 2
    b2 = _ask(engine, "b", b, "And then?")
    assert _read(b2) <= _new_tokens(b1, b2) + 2
    # Unloading sets both aside on disk: b (live) as llama.cpp writes it, a (in memory) as it was kept.
    engine.unload()
    engine.load_blocking(test_model_path, context_length=2048)
    assert len(list(states_dir.iterdir())) == 2
    a3 = _ask(engine, "a", a, "Where does she live?")
    b3 = _ask(engine, "b", b, "What colour was it?")
    assert _read(a3) <= _new_tokens(a2, a3) + 2
    assert _read(b3) <= _new_tokens(b2, b3) + 2
    # Another context length is another cache layout: those states are not used.
    engine.load_blocking(test_model_path, context_length=1024)
    a4 = _ask(engine, "a", a, "Who is her friend?")
    assert a4.metrics.cached_prompt_tokens < a3.metrics.prompt_tokens


@pytest.mark.engine
def test_the_conversation_in_the_model_is_the_one_kept_on_disk_after_an_unload(
        engine: EngineClient, test_model_path: Path, states_dir: Path) -> None:
    """Unloading writes the set-aside conversations first and the one in the model last: with more of them than
    the disk keeps, the oldest go, never the one in use."""
    for i in range(8):
        _ask(engine, f"short-{i}", [], "Hello.", max_tokens=4)
    a: list[dict[str, str]] = []
    a1 = _ask(engine, "a", a, STORY)
    engine.unload()
    engine.load_blocking(test_model_path, context_length=2048)
    assert len(list(states_dir.iterdir())) == 6
    a2 = _ask(engine, "a", a, "What is her name?")
    assert _read(a2) <= _new_tokens(a1, a2) + 2


@pytest.mark.engine
def test_switching_conversations_changes_no_answer(test_model_path: Path, tmp_path: Path) -> None:
    """Temperature 0: one conversation answered by a worker that switches to another conversation before every
    turn and goes through its disk states, and by a worker that only ever answers this one, through follow-ups,
    a regenerated answer, an edit from an earlier message and a context that overflows. Both must read the
    same tokens and write the same answers.

    The reference reads the conversation in the same pieces (each turn's new tokens): llama.cpp's results
    depend on how a prompt is split into batches (measured on this model: up to 0.018 apart in a logit
    between one batch and five), so an answer read in one piece by a fresh worker can differ at a near tie
    whatever any cache does. One thread for the same reason: the thread governor changes the count with the
    machine's load."""
    questions = ("What did she do?", "And then?", "Who was her friend?", "Where did they go?",
                 "What happened at the harbour?", "And after that?", "Was she happy?", "What did she see?")

    def conversation(engine: EngineClient, switch: bool) -> list[p.Finished]:
        a: list[dict[str, str]] = []
        b: list[dict[str, str]] = []
        trimmed: list[int] = []
        answers = [_ask(engine, "a", a, STORY[:300], trimmed=trimmed)]
        for i, question in enumerate(questions):
            if switch:
                _ask(engine, "b", b, f"Tell me about dog number {i}.")
                if i == 2:
                    engine.unload()
                    engine.load_blocking(test_model_path, context_length=512, threads=1)
            answers.append(_ask(engine, "a", a, question, trimmed=trimmed))
        assert trimmed, "the conversation should outgrow the context"
        if switch:
            _ask(engine, "b", b, "And then?")
        del a[-2:]  # regenerate the last answer
        answers.append(_ask(engine, "a", a, questions[-1], trimmed=trimmed))
        if switch:
            _ask(engine, "b", b, "What colour was it?")
        del a[4:]  # edit from the second question on
        answers.append(_ask(engine, "a", a, "Tell me something else about Lily.", trimmed=trimmed))
        return answers

    results = []
    for switch in (True, False):
        engine = EngineClient(states_dir=tmp_path / f"states-{switch}")
        engine.start()
        try:
            engine.load_blocking(test_model_path, context_length=512, threads=1)
            results.append(conversation(engine, switch))
        finally:
            engine.shutdown()
    switching, staying = results
    assert [f.text for f in switching] == [f.text for f in staying]
    assert [f.metrics.prompt_tokens for f in switching] == [f.metrics.prompt_tokens for f in staying]
    assert [f.metrics.cached_prompt_tokens for f in switching] == [f.metrics.cached_prompt_tokens for f in staying]
    assert switching[-2].text == switching[-3].text  # the regenerated answer


@pytest.mark.engine
def test_deleting_a_conversation_deletes_its_saved_state(test_model_path: Path, tmp_path: Path) -> None:
    db = open_database(tmp_path / "history.sqlite3")
    store = HistoryStore(db)
    states = tmp_path / "states"
    engine = EngineClient(states_dir=states)
    engine.start()
    try:
        engine.load_blocking(test_model_path, context_length=1024)
        runner = ChatRunner(store, engine)
        done: list[object] = []
        runner.subscribe(done.append)
        settings = GenerationSettings(max_tokens=8, seed=1).to_dict()
        kept, deleted = (store.create_conversation(title, settings).id for title in ("Kept", "Deleted"))
        for conversation in (deleted, kept):
            runner.send(conversation, "Tell me a story.")
            _wait_until(lambda: not runner.busy)
        engine.unload()  # both go to disk
        _wait_until(lambda: len(list(states.iterdir())) == 2)
        runner.delete_conversation(deleted)
        _wait_until(lambda: len(list(states.iterdir())) == 1)
        assert next(iter(states.iterdir())).name.startswith(file_name(conversation_key(kept), "")[:16])
        # Undo brings the conversation back; it is read again from the start, and it answers.
        store.restore_conversation(deleted)
        engine.load_blocking(test_model_path, context_length=1024)
        runner.send(deleted, "And then?")
        _wait_until(lambda: not runner.busy)
        answer = store.messages(deleted)[-1]
        assert answer.finish_reason == "length" and answer.content
    finally:
        engine.shutdown()
        db.close()
    # With no worker running, the client deletes the files itself.
    assert len(list(states.iterdir())) >= 1
    engine.forget(conversation_key(kept))
    engine.forget(conversation_key(deleted))
    assert list(states.iterdir()) == []


# --- a sliding-window model (Gemma 3) ---


@pytest.mark.engine
def test_a_sliding_window_model_continues_from_a_restored_state_and_never_from_a_missing_window(
        tmp_path: Path) -> None:
    """Gemma 3 loads with a cache for only the window of its sliding-window layers: a restored state can be
    continued from its end, but a prompt departing from the cache further back than the window must be read
    in full (llama-cpp-python would reuse the prefix, and attend to a window with cells missing)."""
    path = locate_real("gemma3")
    if path is None:
        pytest.skip("Gemma 3 270M is not fetched (tests/helpers/fetch_test_model.py gemma3)")
    long = STORY * 8  # ~1,700 tokens: longer than the 1,024 cells the window layers keep
    engine = EngineClient(states_dir=tmp_path / "states")
    engine.start()
    try:
        engine.load_blocking(path, context_length=4096, threads=1)
        a: list[dict[str, str]] = []
        a1 = _ask(engine, "a", a, long)
        _ask(engine, "b", [], "Tell me about a dog.")
        a2 = _ask(engine, "a", a, "What is her name?")
        # Its answer ended with "<|im_end|>" written as text (ChatML on a model without those tokens), which
        # the next prompt tokenizes otherwise: the restored cache ends before it, and those few are read.
        assert a2.metrics.cached_prompt_tokens >= a1.metrics.prompt_tokens
        assert _read(a2) <= _new_tokens(a1, a2) + a1.metrics.completion_tokens + 2
        edited = [{"role": "user", "content": long[: len(long) // 2] + " What is her name?"}]
        changed = engine.chat_blocking(edited, max_tokens=24, temperature=0.0, seed=3, conversation="a")
        assert changed.metrics.cached_prompt_tokens == 0
    finally:
        engine.shutdown()
    fresh = EngineClient()
    fresh.start()
    try:
        fresh.load_blocking(path, context_length=4096, threads=1)
        assert fresh.chat_blocking(edited, max_tokens=24, temperature=0.0, seed=3).text == changed.text
    finally:
        fresh.shutdown()
