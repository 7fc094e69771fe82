"""Comparisons: scheduling by free memory, real runs on two and three tiny models, cancel, votes and the
leaderboard across a restart, reports, re-runs, and `hearth compare`."""

from __future__ import annotations

import dataclasses
import json
import queue
import sqlite3
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import psutil
import pytest

from app.cli.main import main as cli_main
from app.compare.figures import FIGURES, concurrency_note, figure_rows, label, shown_entries
from app.compare.report import render_html, render_markdown, save_report
from app.compare.runner import CompareEnded, Comparer, CompareStarted, EntryText, prepare
from app.compare.schedule import Need, schedule
from app.compare.spec import CompareInput, CompareRequest, Contender, Sampling, input_of, sampling_of
from app.hardware.detect import detect
from app.hardware.machine import Machine
from app.history import ComparisonRecord, HistoryStore, open_database
from app.tasks.spec import Passage, Summarize, TaskInput

from tests.helpers.model_builders import llama_gqa

pytestmark = pytest.mark.engine
GIB = 1024**3
MB = 10**6


@pytest.fixture(scope="module")
def machine() -> Machine:
    return detect()


@pytest.fixture(scope="module")
def models(test_model_path: Path, tmp_path_factory: pytest.TempPathFactory) -> list[Contender]:
    """The real test model and two generated ones of other sizes (random weights, real llama.cpp)."""
    folder = tmp_path_factory.mktemp("compare-models")
    paths = [test_model_path, llama_gqa(folder, n_embd=256, n_layer=4), llama_gqa(folder, n_embd=128, n_layer=2)]
    return [Contender(f"model-{i}", path, path.stat().st_size) for i, path in enumerate(paths)]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[HistoryStore]:
    yield HistoryStore(open_database(tmp_path / "history.sqlite3"))


def with_free(machine: Machine, free: int) -> Machine:
    """This computer, pretending ``free`` bytes are available now (8 GiB in all, so the reserve is 1 GiB)."""
    return dataclasses.replace(machine, memory_total=8 * GIB, memory_available=free)


def chat_request(contenders: list[Contender], **options: object) -> CompareRequest:
    sampling = Sampling(max_tokens=24, seed=7, deterministic=True)
    return CompareRequest(tuple(contenders), CompareInput.prompt("Once upon a time"), sampling,
                          context_length=1024, **options)  # type: ignore[arg-type]


def lifetimes(record: ComparisonRecord) -> list[tuple[float, float]]:
    return [(e.metrics["worker_started_at"], e.metrics["worker_exited_at"]) for e in record.entries]


# --- scheduling ---


def test_schedule_groups_models_that_fit_together_in_the_order_chosen() -> None:
    needs = [Need(300), Need(300), Need(300), Need(300)]
    assert schedule(needs, ram_free=1000) == [[0, 1, 2], [3]]
    assert schedule(needs, ram_free=600) == [[0, 1], [2, 3]]
    assert schedule(needs, ram_free=299) == [[0], [1], [2], [3]]  # too large even alone: still run, alone
    assert schedule(needs, ram_free=10_000, together=False) == [[0], [1], [2], [3]]


def test_schedule_counts_graphics_memory_too() -> None:
    needs = [Need(100, vram_bytes=600), Need(100, vram_bytes=600)]
    assert schedule(needs, ram_free=10_000, vram_free=1000) == [[0], [1]]
    assert schedule(needs, ram_free=10_000, vram_free=1200) == [[0, 1]]


def test_prepare_forecasts_each_model_and_reports_an_unreadable_one(models: list[Contender], machine: Machine,
                                                                    tmp_path: Path) -> None:
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"GGUF" + b"\0" * 20)
    request = chat_request([models[0], Contender("broken", broken, broken.stat().st_size)])
    good, bad = prepare(request, machine)
    assert good.error is None and good.plan is not None
    assert good.need.ram_bytes > good.contender.file_bytes
    assert good.estimate["verdict"]
    assert bad.plan is None and bad.error


# --- real runs ---


def test_models_run_one_after_another_by_default_so_each_speed_is_its_own(
        models: list[Contender], machine: Machine, store: HistoryStore) -> None:
    comparer = Comparer(store, lambda: with_free(machine, 2 * GIB))
    started: list[CompareStarted] = []
    record = comparer.run_blocking(chat_request(models[:2]),
                                   on_event=lambda e: started.append(e) if isinstance(e, CompareStarted) else None)
    assert started[0].groups == [[0], [1]], "they fit together, but would share the processor"
    (_, first_exited), (second_started, _) = lifetimes(record)
    assert first_exited <= second_started
    assert all(entry.metrics["ran_with"] == 0 and entry.metrics["tokens_per_s"] > 0 for entry in record.entries)
    assert not any(concurrency_note(entry) for entry in record.entries)


def test_models_that_fit_run_at_the_same_time_when_asked_with_plausible_figures(
        models: list[Contender], machine: Machine, store: HistoryStore) -> None:
    comparer = Comparer(store, lambda: with_free(machine, 2 * GIB))
    started: list[CompareStarted] = []
    record = comparer.run_blocking(chat_request(models[:2], one_at_a_time=False),
                                   on_event=lambda e: started.append(e) if isinstance(e, CompareStarted) else None)
    assert started[0].groups == [[0, 1]]
    assert record.status == "done"
    (start_a, end_a), (start_b, end_b) = lifetimes(record)
    assert max(start_a, start_b) < min(end_a, end_b), "the two workers never lived at the same time"
    for entry in record.entries:
        m = entry.metrics
        assert entry.status == "done" and entry.output
        assert m["tokens_per_s"] > 0 and m["output_tokens"] > 0
        assert m["load_s"] > 0 and m["ttft_s"] > 0
        assert m["peak_rss_bytes"] > entry.file_bytes  # the mapped weights are resident
        assert m["estimate_bytes"] > entry.file_bytes
        assert m["ran_with"] == 1
        assert not psutil.pid_exists(m["worker_pid"]) or psutil.Process(m["worker_pid"]).status() == "zombie"
    assert store.get_comparison(record.id).status == "done"


def test_models_run_one_after_another_when_memory_is_short(models: list[Contender], machine: Machine,
                                                           store: HistoryStore) -> None:
    # Room for one model's forecast (about 80 MB here) but not for two.
    comparer = Comparer(store, lambda: with_free(machine, GIB + 120 * MB))
    started: list[CompareStarted] = []
    record = comparer.run_blocking(chat_request(models[:2], one_at_a_time=False),
                                   on_event=lambda e: started.append(e) if isinstance(e, CompareStarted) else None)
    assert started[0].groups == [[0], [1]]
    assert record.status == "done"
    (_, first_exited), (second_started, _) = lifetimes(record)
    assert first_exited <= second_started, "the second model loaded before the first one's worker exited"
    assert all(entry.metrics["ran_with"] == 0 for entry in record.entries)


def test_three_models_are_grouped_by_what_fits(models: list[Contender], machine: Machine,
                                               store: HistoryStore) -> None:
    needs = [item.need.ram_bytes for item in prepare(chat_request(models), with_free(machine, 2 * GIB))]
    free = GIB + needs[0] + needs[1] + 1  # the first two together, the third after them
    comparer = Comparer(store, lambda: with_free(machine, free))
    started: list[CompareStarted] = []
    record = comparer.run_blocking(chat_request(models, one_at_a_time=False),
                                   on_event=lambda e: started.append(e) if isinstance(e, CompareStarted) else None)
    assert started[0].groups == [[0, 1], [2]]
    assert [e.status for e in record.entries] == ["done"] * 3
    spans = lifetimes(record)
    assert max(spans[0][1], spans[1][1]) <= spans[2][0]


def test_every_model_gets_the_same_seed_and_deterministic_answers_repeat(
        models: list[Contender], machine: Machine, store: HistoryStore) -> None:
    comparer = Comparer(store, lambda: with_free(machine, 2 * GIB))
    first = comparer.run_blocking(chat_request(models[:2]))
    again = comparer.run_blocking(chat_request(models[:2]))
    assert [e.output for e in first.entries] == [e.output for e in again.entries]
    assert first.settings["seed"] == 7 and first.settings["deterministic"] is True


def test_a_model_that_cannot_load_fails_alone(models: list[Contender], machine: Machine, store: HistoryStore,
                                              tmp_path: Path) -> None:
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"GGUF" + b"\0" * 20)
    comparer = Comparer(store, lambda: with_free(machine, 2 * GIB))
    record = comparer.run_blocking(chat_request([models[0], Contender("broken", broken, 24)]))
    good, bad = record.entries
    assert good.status == "done" and good.output
    assert bad.status == "failed" and bad.error
    assert record.status == "done"


def test_cancel_stops_every_worker_and_keeps_what_was_written(models: list[Contender], machine: Machine,
                                                             store: HistoryStore) -> None:
    comparer = Comparer(store, lambda: with_free(machine, 2 * GIB))
    events: queue.Queue[object] = queue.Queue()
    comparer.subscribe(events.put)
    request = CompareRequest(tuple(models[:2]), CompareInput.prompt("Once upon a time"),
                             Sampling(max_tokens=100_000, seed=1, deterministic=True), context_length=4096,
                             one_at_a_time=False)
    record = comparer.start(request)
    writing: set[int] = set()
    while writing != {0, 1}:
        event = events.get(timeout=60)
        if isinstance(event, EntryText):
            writing.add(event.position)
    pids = [comparer._run.engines[i].pid for i in (0, 1)] if comparer._run else []
    comparer.cancel()
    while True:
        event = events.get(timeout=60)
        if isinstance(event, CompareEnded):
            break
    ended = event.record
    assert ended.id == record.id and ended.status == "cancelled"
    assert [e.status for e in ended.entries] == ["cancelled", "cancelled"]
    assert all(e.output for e in ended.entries), "the text written before the stop was lost"
    for pid in [*pids, *(e.metrics["worker_pid"] for e in ended.entries)]:
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == "zombie"
    assert not comparer.busy


def test_summarize_comparison_runs_the_task_on_each_model(models: list[Contender], machine: Machine,
                                                          store: HistoryStore) -> None:
    passages = (Passage("The cat sat on the mat. It was warm.", page=1),
                Passage("Then the dog came and the cat ran up a tree.", page=2))
    task = TaskInput(Summarize("short"), passages, title="cats")
    request = CompareRequest(tuple(models[:2]), CompareInput("cats.txt", "txt", "\n\n".join(p.text for p in passages),
                                                            task), Sampling(seed=3, deterministic=True),
                             context_length=1024)
    record = Comparer(store, lambda: with_free(machine, 2 * GIB)).run_blocking(request)
    assert record.kind == "summarize" and record.status == "done"
    for entry in record.entries:
        assert entry.status == "done" and entry.output
        assert entry.result["task"] == "summarize" and entry.result["covered_tokens"] == entry.result[
            "document_tokens"]
        assert entry.metrics["tokens_per_s"] > 0 and entry.metrics["ttft_s"] > 0 and entry.metrics["calls"] >= 1
    # Saved so that it can run again on the same input, pages included.
    again = input_of(record.kind, record.input_name, record.input_kind, record.input_text, record.settings)
    assert again.task is not None and again.task.passages == passages and again.task.kind == Summarize("short")
    assert sampling_of(record.settings) == request.sampling


# --- history: blind mode, votes and the leaderboard ---


def _finished_comparison(store: HistoryStore, names: tuple[str, ...], *, blind: bool = False,
                         speeds: tuple[float, ...] = (10.0, 20.0)) -> ComparisonRecord:
    record = store.start_comparison(
        "chat", title="t", settings={"blind": blind, "shown_order": list(reversed(range(len(names))))},
        input_name="Prompt", input_kind="prompt", input_text="Hello", machine={"summary": ["8 GB of memory."]},
        models=[(name, f"/m/{name}.gguf", 1000) for name in names])
    for position in range(len(names)):
        store.update_entry(record.id, position, status="done", output=f"Answer number {position + 1}.",
                           metrics={"tokens_per_s": speeds[position], "peak_rss_bytes": 100 * MB + position,
                                    "load_s": 0.5, "ttft_s": 0.05, "output_tokens": 12,
                                    "estimate_bytes": 90 * MB})
    return store.finish_comparison(record.id, "done")


def test_blind_comparisons_hide_names_until_the_vote(store: HistoryStore) -> None:
    record = _finished_comparison(store, ("alpha", "beta"), blind=True)
    assert record.names_hidden
    assert [label(record, e) for e in shown_entries(record)] == ["Model A", "Model B"]
    assert [e.model_name for e in shown_entries(record)] == ["beta", "alpha"]  # shuffled column order kept
    assert "alpha" not in render_html(record) and "beta" not in render_markdown(record)
    voted = store.vote(record.id, "winner", winner_position=0)
    assert not voted.names_hidden
    assert [label(voted, e) for e in shown_entries(voted)] == ["beta", "alpha"]


def test_votes_and_the_leaderboard_survive_a_restart(tmp_path: Path) -> None:
    database = tmp_path / "history.sqlite3"
    store = HistoryStore(open_database(database))
    first = _finished_comparison(store, ("alpha", "beta"))
    store.vote(first.id, "winner", winner_position=1)
    second = _finished_comparison(store, ("alpha", "beta"), speeds=(12.0, 30.0))
    store.vote(second.id, "tie")
    third = _finished_comparison(store, ("alpha", "gamma"))
    store.vote(third.id, "both_bad")
    _finished_comparison(store, ("alpha", "beta"))  # not voted: not counted
    store._db.engine.dispose()  # type: ignore[attr-defined]

    reopened = HistoryStore(open_database(database))
    board = {row.model_name: row for row in reopened.leaderboard("chat")}
    assert list(board) == ["beta", "alpha", "gamma"]  # most wins first
    beta, alpha = board["beta"], board["alpha"]
    assert (beta.voted, beta.wins, beta.ties, beta.losses) == (2, 1, 1, 0)
    assert (alpha.voted, alpha.wins, alpha.ties, alpha.both_bad, alpha.losses) == (3, 0, 1, 1, 1)
    assert beta.win_rate == 0.5
    assert beta.tokens_per_s == 25.0  # the median of 20 and 30
    assert reopened.leaderboard("summarize") == []
    assert reopened.get_comparison(first.id).verdict == "winner"

    reopened.delete_comparison(first.id)  # a deleted comparison's vote leaves the board
    assert {r.model_name: r.wins for r in reopened.leaderboard("chat")}["beta"] == 0
    reopened.restore_comparison(first.id)
    assert {r.model_name: r.wins for r in reopened.leaderboard("chat")}["beta"] == 1


def test_a_vote_must_name_a_model_of_the_comparison(store: HistoryStore) -> None:
    record = _finished_comparison(store, ("alpha", "beta"))
    with pytest.raises(ValueError):
        store.vote(record.id, "winner")
    with pytest.raises(ValueError):
        store.vote(record.id, "winner", winner_position=5)
    with pytest.raises(ValueError):
        store.vote(record.id, "tie", winner_position=0)
    assert store.vote(record.id, "tie").verdict == "tie"
    assert store.vote(record.id, "winner", winner_position=0).winner_position == 0  # a vote can change


def test_a_comparison_left_running_is_interrupted_at_the_next_start(tmp_path: Path) -> None:
    database = tmp_path / "history.sqlite3"
    store = HistoryStore(open_database(database))
    record = store.start_comparison("chat", title="t", settings={}, input_name="Prompt", input_kind="prompt",
                                    input_text="Hi", machine={}, models=[("a", "/a", 1), ("b", "/b", 1)])
    store.update_entry(record.id, 0, status="running")
    assert store.mark_unfinished_comparisons_as_interrupted() == 1
    after = store.get_comparison(record.id)
    assert after.status == "interrupted" and [e.status for e in after.entries] == ["interrupted", "interrupted"]


# --- reports ---


def test_the_report_holds_every_output_figure_the_chart_and_the_machine(store: HistoryStore, tmp_path: Path) -> None:
    record = store.vote(_finished_comparison(store, ("alpha", "beta")).id, "winner", winner_position=0)
    chart = b"\x89PNG\r\n\x1a\n-chart-bytes-"
    for suffix in (".html", ".md"):
        path = save_report(record, tmp_path / f"report{suffix}", chart_png=chart)
        text = path.read_text(encoding="utf-8")
        for entry in record.entries:
            assert entry.output in text and entry.model_name in text
        for _title, cells in figure_rows(record):
            for cell in cells:
                assert cell in text
        for figure in FIGURES:
            assert figure.title in text
        assert "data:image/png;base64," in text
        assert "8 GB of memory." in text and "Better: alpha" in text and "Hello" in text
    html_text = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert html_text.startswith("<!DOCTYPE html>") and "<script" not in html_text and "http" not in html_text
    assert save_report(record, tmp_path / "plain").suffix == ".html"


def test_report_text_is_escaped(store: HistoryStore) -> None:
    record = store.start_comparison("chat", title="t", settings={}, input_name="Prompt", input_kind="prompt",
                                    input_text="<b>hi</b>", machine={}, models=[("<i>a</i>", "/a", 1), ("b", "/b", 1)])
    store.update_entry(record.id, 0, status="done", output="```\n<script>alert(1)</script>")
    record = store.finish_comparison(record.id, "done")
    assert "<script>" not in render_html(record) and "&lt;script&gt;" in render_html(record)
    assert "````text" in render_markdown(record)  # a longer fence than the output's own


# --- the command line ---


def test_hearth_compare_summarizes_with_two_models(models: list[Contender], hearth_home: Path, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    document = tmp_path / "story.txt"
    document.write_text("The cat sat on the mat.\n\nThen the dog came, and the cat ran up a tree.\n", encoding="utf-8")
    code = cli_main(["compare", str(models[0].path), str(models[1].path), "--task", "summarize", "--file",
                     str(document), "--seed", "5", "--deterministic", "--ctx", "1024", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0
    assert out["kind"] == "summarize" and out["status"] == "done" and out["seed"] == 5
    assert len(out["models"]) == 2 and out["schedule"]
    for model in out["models"]:
        assert model["status"] == "done" and model["output"]
        assert model["tokens_per_s"] > 0 and model["peak_rss_bytes"] > 0 and model["load_s"] > 0
    with closing(sqlite3.connect(hearth_home / "data" / "history.sqlite3")) as conn:
        assert conn.execute("SELECT kind, status FROM comparisons").fetchall() == [("summarize", "done")]


def test_hearth_compare_prints_outputs_and_a_figures_table(models: list[Contender], hearth_home: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    code = cli_main(["compare", str(models[0].path), str(models[2].path), "--prompt", "Once upon a time",
                     "--max-tokens", "16", "--seed", "1", "--ctx", "512"])
    captured = capsys.readouterr()
    assert code == 0
    assert "=== stories260K · F32 ===" in captured.out and "=== Llama Gqa · F16 ===" in captured.out  # shown names
    for figure in FIGURES:
        assert figure.title in captured.out
    assert "Seed 1" in captured.err


def test_hearth_compare_explains_wrong_use(models: list[Contender], hearth_home: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["compare", str(models[0].path), "--prompt", "hi"]) == 1
    assert "2 to 4 models" in capsys.readouterr().err
    assert cli_main(["compare", str(models[0].path), str(models[1].path), "--task", "summarize"]) == 1
    assert "--file" in capsys.readouterr().err
