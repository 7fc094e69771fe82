"""Runs a comparison: every model in its own engine worker, as many at once as memory allows.

Each model gets a fresh ``EngineClient`` (one worker process), which is shut down as soon as its answer
is done, so the memory of a model really returns before the next group loads. Models of one group share
the processor's cores between them. Everything is saved in history as it happens: the comparison is
written as ``running`` with a waiting entry per model, each entry is closed with its output and figures,
and a crash leaves the comparison ``interrupted``.

Listeners get ``CompareEvent``s on the entries' threads (the Qt bridge re-emits them as signals).
"""

from __future__ import annotations

import dataclasses
import logging
import queue
import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.compare.schedule import Need, schedule
from app.compare.spec import CompareRequest, Contender
from app.engine import protocol as p
from app.engine.client import EngineClient, EventWaiter
from app.engine.load_plan import LoadPlan
from app.errors import EngineError, HearthError
from app.events import Listeners
from app.forecast.estimate import decide_plan, forecast, ram_budget, remembered_tuning, vram_budget
from app.gguf.facts import read_facts
from app.hardware.description import describe
from app.hardware.machine import Machine
from app.history import ComparisonRecord, EntryRecord, HistoryStore, LoadRecordData
from app.outcomes import FinishReason, RunStatus
from app.remote.address import is_remote, parse
from app.remote.computers import Computers
from app.remote.worker import RemoteWorkers
from app.settings import DEFAULT_SYSTEM_PROMPT

log = logging.getLogger(__name__)

ANSWER_TIMEOUT_S = 6 * 3600


@dataclass(frozen=True)
class Prepared:
    """One model's load settings and forecast, worked out before anything loads."""

    contender: Contender
    plan: LoadPlan | None
    need: Need
    estimate: dict[str, Any]
    error: str | None = None  # the file cannot be read: this model fails, the others still run


@dataclass(frozen=True)
class CompareStarted:
    record: ComparisonRecord
    groups: list[list[int]]  # positions run together, group after group


@dataclass(frozen=True)
class EntryChanged:
    comparison_id: int
    position: int
    status: str  # "loading" or "running"
    detail: str  # for people: "Loading the model…", "Reading part 2 of 5"


@dataclass(frozen=True)
class EntryText:
    """The text of the model call now running, so far."""

    comparison_id: int
    position: int
    text: str


@dataclass(frozen=True)
class EntryEnded:
    comparison_id: int
    entry: EntryRecord


@dataclass(frozen=True)
class CompareEnded:
    record: ComparisonRecord


CompareEvent = CompareStarted | EntryChanged | EntryText | EntryEnded | CompareEnded


@dataclass
class _Run:
    record: ComparisonRecord
    request: CompareRequest
    prepared: list[Prepared]
    groups: list[list[int]]
    cancelled: threading.Event = field(default_factory=threading.Event)
    engines: dict[int, EngineClient] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    thread: threading.Thread | None = None


def prepare(request: CompareRequest, machine: Machine, *, gpu_layers: int | None = None,
            threads: int | None = None, records: Sequence[LoadRecordData] = ()) -> list[Prepared]:
    """Read each model's header and forecast its memory and speed with part 2's estimator, with the settings
    an earlier load of the model measured (no probing here: models running together would disturb it)."""
    prepared = []
    for contender in request.contenders:
        if is_remote(contender.path):  # its server there decides its memory: nothing of this computer's to plan
            computer = parse(str(contender.path)).host
            prepared.append(Prepared(contender, LoadPlan(context_length=request.context_length), Need(0),
                                     {"remote": computer}))
            continue
        try:
            facts = read_facts(Path(contender.path))
            base = decide_plan(facts, machine, context_length=request.context_length, gpu_layers=gpu_layers,
                               threads=threads)
            plan = decide_plan(facts, machine, context_length=request.context_length, gpu_layers=gpu_layers,
                               threads=threads, tuning=remembered_tuning(records, str(facts.path.resolve()), base))
            fc = forecast(facts, machine, plan)
        except HearthError as error:
            prepared.append(Prepared(contender, None, Need(0), {}, str(error)))
            continue
        estimate = {"ram_bytes": fc.memory.ram_bytes, "vram_bytes": fc.memory.vram_bytes,
                    "verdict": fc.verdict.value,
                    "tokens_per_s": [fc.speed.low, fc.speed.high] if fc.speed else None,
                    "alone_tokens_per_s": alone_speed(records, str(facts.path.resolve()))}
        prepared.append(Prepared(contender, fc.plan, Need(fc.memory.ram_bytes, fc.memory.vram_bytes), estimate))
    return prepared


def alone_speed(records: Sequence[LoadRecordData], path: str) -> float | None:
    """The model's generation speed with the machine to itself, as measured here before: the best of its recent
    loads' answers, else its first load's probe."""
    own = [r for r in records if r.model_path == path]
    answered = [r.tokens_per_s for r in own if r.tokens_per_s]
    if answered:
        return max(answered[:5])
    probed = [r.measured["tuning"].get("tokens_per_s") for r in own if isinstance(r.measured.get("tuning"), dict)]
    return float(probed[0]) if probed and probed[0] else None


def plan_groups(request: CompareRequest, prepared: list[Prepared], machine: Machine) -> list[list[int]]:
    """The schedule for the memory free right now (``machine`` is read just before the run)."""
    ram_now, _ = ram_budget(machine)
    return schedule([item.need for item in prepared], ram_now, vram_budget(machine),
                    together=not request.one_at_a_time)


def shared_threads(machine: Machine, together: int, chosen: int | None) -> int | None:
    """Models running at the same time split the cores; one alone uses the person's setting."""
    if together <= 1:
        return chosen
    cores = machine.physical_cores or machine.logical_cores or 1
    return max(1, cores // together)


class Comparer:
    """Starts comparisons, one at a time, and saves them.

    Args:
        machine: returns this computer with its free memory read now (``hardware.detect.with_memory_now``).
        gpu_layers, threads: the person's load settings (None: decided by the forecast / llama.cpp).
        computers: the other computers the person added, whose models may be compared with this one's.
    """

    def __init__(self, store: HistoryStore, machine: Callable[[], Machine], *, log_file: Path | None = None,
                 gpu_layers: Callable[[], int | None] = lambda: None,
                 threads: Callable[[], int | None] = lambda: None, computers: Computers | None = None) -> None:
        self.store = store
        self.computers = computers
        self.machine = machine
        self.log_file = log_file
        self.gpu_layers, self.threads = gpu_layers, threads
        self._lock = threading.Lock()
        self._run: _Run | None = None
        self._listeners: Listeners[CompareEvent] = Listeners()

    def subscribe(self, listener: Callable[[CompareEvent], None]) -> Callable[[], None]:
        return self._listeners.subscribe(listener)

    def _emit(self, event: CompareEvent) -> None:
        self._listeners.emit(event)

    @property
    def busy(self) -> bool:
        return self._run is not None

    # --- actions (they read model files and write history: call them off the GUI thread) ---

    def start(self, request: CompareRequest) -> ComparisonRecord:
        """Forecast, schedule and save the comparison, then run it in the background."""
        with self._lock:
            if self._run is not None:
                raise EngineError("A comparison is already running. Stop it first.")
            machine = self.machine()
            prepared = prepare(request, machine, gpu_layers=self.gpu_layers(), threads=self.threads(),
                               records=self.store.load_records(limit=200))
            groups = plan_groups(request, prepared, machine)
            order = list(range(len(request.contenders)))
            if request.blind:
                random.shuffle(order)
            record = self.store.start_comparison(
                request.input.kind, title=request.title, settings=request.settings(order),
                input_name=request.input.name, input_kind=request.input.input_kind, input_text=request.input.text,
                machine={"summary": describe(machine), "cpu": machine.cpu_name,
                         "memory_bytes": machine.memory_total, "gpus": [g.name for g in machine.usable_gpus]},
                models=[(c.name, str(c.path), c.file_bytes) for c in request.contenders])
            run = self._run = _Run(record, request, prepared, groups)
            run.thread = threading.Thread(target=self._run_all, args=(run, machine), name="compare", daemon=True)
        self._emit(CompareStarted(record, groups))
        run.thread.start()
        return record

    def cancel(self) -> None:
        """Stop every model: the workers are shut down (each keeps what it wrote so far), none that was
        waiting starts. Returns at once; ``CompareEnded`` follows."""
        run = self._run
        if run is None:
            return
        run.cancelled.set()
        with run.lock:
            engines = list(run.engines.values())
        for engine in engines:
            threading.Thread(target=engine.shutdown, name="compare-cancel", daemon=True).start()

    def close(self, timeout: float = 10.0) -> None:
        """The app is going away: stop, and wait (a little) for the comparison to be saved."""
        run = self._run
        self.cancel()
        if run is not None and run.thread is not None:
            run.thread.join(timeout)

    # --- the run ---

    def _run_all(self, run: _Run, machine: Machine) -> None:
        try:
            for group in run.groups:
                if run.cancelled.is_set():
                    break
                threads = [threading.Thread(target=self._run_entry, args=(run, position, len(group), machine),
                                            name=f"compare-{position}", daemon=True) for position in group]
                for thread in threads:
                    thread.start()
                for thread in threads:
                    thread.join()
        except Exception:
            log.exception("comparison %s failed", run.record.id)
        finally:
            entries = self.store.get_comparison(run.record.id).entries
            if run.cancelled.is_set():
                status = RunStatus.CANCELLED
            else:
                status = RunStatus.DONE if any(e.status == RunStatus.DONE for e in entries) else RunStatus.FAILED
            record = self.store.finish_comparison(run.record.id, status)
            with self._lock:
                self._run = None
            self._emit(CompareEnded(record))

    def _run_entry(self, run: _Run, position: int, together: int, machine: Machine) -> None:
        item = run.prepared[position]
        cid = run.record.id
        metrics: dict[str, Any] = {"estimate_bytes": item.estimate.get("ram_bytes"),
                                   "estimate_vram_bytes": item.estimate.get("vram_bytes"),
                                   "estimate_tokens_per_s": item.estimate.get("tokens_per_s"),
                                   "estimate_verdict": item.estimate.get("verdict"),
                                   "alone_tokens_per_s": item.estimate.get("alone_tokens_per_s"),
                                   "ran_with": together - 1}
        if item.error is not None or item.plan is None:
            self._end_entry(run, position, RunStatus.FAILED, "", {}, metrics, item.error or "The model cannot be read.")
            return
        plan = dataclasses.replace(item.plan, threads=shared_threads(machine, together, item.plan.threads))
        metrics.update(threads=plan.threads, gpu_layers=plan.gpu_layers, context_length=plan.context_length)
        engine = EngineClient(log_file=self.log_file,
                              elsewhere=RemoteWorkers(self.computers) if self.computers is not None else None)
        remote = is_remote(item.contender.path)
        with run.lock:  # so that a cancel either sees this worker or stops it from starting
            if run.cancelled.is_set():
                return
            metrics["worker_started_at"] = time.time()
            try:
                if not remote:  # a remote model's engine starts with its load
                    engine.start()
            except Exception as start_error:
                log.exception("the engine worker for comparison %s did not start", cid)
                self._end_entry(run, position, RunStatus.FAILED, "", {}, metrics,
                                f"The model engine did not start: {start_error}")
                return
            run.engines[position] = engine
        metrics["worker_pid"] = engine.pid
        self.store.update_entry(cid, position, status=RunStatus.RUNNING, metrics=metrics)
        self._emit(EntryChanged(cid, position, "loading", "Loading the model…"))
        status, output, error = RunStatus.FAILED, "", None
        result: dict[str, Any] = {}
        try:
            loaded = engine.load_blocking(item.contender.path, plan=plan)
            metrics.update(load_s=loaded.load_s, context_length=loaded.context_length,
                           loaded_rss_bytes=loaded.rss_bytes)
            self._emit(EntryChanged(cid, position, RunStatus.RUNNING, "Writing…"))
            if run.request.input.task is None:
                status, output, figures = self._chat(run, position, engine)
            else:
                status, output, result, figures = self._task(run, position, engine)
            metrics.update(figures)
        except HearthError as error_:
            status, error = (RunStatus.CANCELLED, None) if run.cancelled.is_set() else (RunStatus.FAILED, str(error_))
        except Exception as error_:
            log.exception("comparison %s, model %s failed", cid, position)
            status, error = RunStatus.FAILED, f"Something went wrong: {error_}"
        finally:
            engine.shutdown()
            metrics["worker_exited_at"] = time.time()
            with run.lock:
                run.engines.pop(position, None)
        self._end_entry(run, position, status, output, result, metrics, error)

    def _end_entry(self, run: _Run, position: int, status: RunStatus, output: str, result: dict[str, Any],
                   metrics: dict[str, Any], error: str | None) -> None:
        self.store.update_entry(run.record.id, position, status=status, output=output, result=result,
                                metrics=metrics, error=error)
        entry = self.store.get_comparison(run.record.id).entries[position]
        self._emit(EntryEnded(run.record.id, entry))

    def _chat(self, run: _Run, position: int, engine: EngineClient) -> tuple[RunStatus, str, dict[str, Any]]:
        request, sampling = run.request, run.request.sampling
        system = request.system_prompt.strip() or DEFAULT_SYSTEM_PROMPT
        messages = [{"role": "system", "content": system}, {"role": "user", "content": request.input.text}]
        text: list[str] = []

        def on_token(delta: str) -> None:
            text.append(delta)
            self._emit(EntryText(run.record.id, position, "".join(text)))

        # Not stopped when it loops: a comparison shows what each model writes, loops included (they are part of
        # what is compared), and its speed figures need the whole answer.
        finished = engine.chat_blocking(messages, on_token=on_token, timeout=ANSWER_TIMEOUT_S,
                                        max_tokens=sampling.max_tokens, temperature=sampling.effective_temperature,
                                        top_p=sampling.top_p, seed=sampling.seed, watched=False)
        m = finished.metrics
        figures = {"ttft_s": m.ttft_s, "tokens_per_s": m.tokens_per_s, "output_tokens": m.completion_tokens,
                   "prompt_tokens": m.prompt_tokens, "total_s": m.total_s, "peak_rss_bytes": m.peak_rss_bytes,
                   "finish_reason": finished.finish_reason}
        stopped = finished.finish_reason == FinishReason.CANCELLED or run.cancelled.is_set()
        status = RunStatus.CANCELLED if stopped else RunStatus.DONE
        return status, finished.text, figures

    def _task(self, run: _Run, position: int, engine: EngineClient
              ) -> tuple[RunStatus, str, dict[str, Any], dict[str, Any]]:
        sampling, task = run.request.sampling, run.request.input.task
        assert task is not None
        task = dataclasses.replace(task, seed=sampling.seed, temperature=sampling.effective_temperature)
        cid = run.record.id
        step: list[str] = []
        with EventWaiter(engine) as waiter:
            request_id = engine.run_task(task)
            while True:
                event = waiter.wait_for((p.TaskProgress, p.Token, p.TaskFinished, p.Finished, p.Failed,
                                         p.WorkerExited), ANSWER_TIMEOUT_S)
                if isinstance(event, p.WorkerExited):
                    raise EngineError(event.message or "The model engine stopped.")
                if getattr(event, "request_id", None) != request_id:
                    continue
                if isinstance(event, p.TaskProgress):
                    step.clear()
                    self._emit(EntryChanged(cid, position, RunStatus.RUNNING, event.progress.label))
                elif isinstance(event, p.Token):
                    step.append(event.text)
                    self._emit(EntryText(cid, position, "".join(step)))
                elif isinstance(event, p.Failed):
                    raise EngineError(event.message)
                elif isinstance(event, p.Finished):  # a forced stop
                    return RunStatus.CANCELLED, "".join(step), {}, {}
                elif isinstance(event, p.TaskFinished):
                    m, result = event.metrics, event.result
                    figures = {"ttft_s": m.ttft_s, "tokens_per_s": m.tokens_per_s, "output_tokens": m.completion_tokens,
                               "prompt_tokens": m.prompt_tokens, "total_s": m.total_s,
                               "peak_rss_bytes": m.peak_rss_bytes, "calls": m.calls,
                               "finish_reason": result.finish_reason}
                    whole = result.finish_reason == RunStatus.DONE and not run.cancelled.is_set()
                    status = RunStatus.DONE if whole else RunStatus.CANCELLED
                    return status, result.text, result.to_dict(), figures

    # --- blocking (CLI, tests; never the GUI thread) ---

    def run_blocking(self, request: CompareRequest, on_event: Callable[[CompareEvent], None] | None = None,
                     timeout: float = 24 * 3600) -> ComparisonRecord:
        events: queue.Queue[CompareEvent] = queue.Queue()
        unsubscribe = self.subscribe(events.put)
        try:
            record = self.start(request)
            while True:
                try:
                    event = events.get(timeout=timeout)
                except queue.Empty:
                    raise EngineError("The comparison did not finish in time.") from None
                if on_event is not None:
                    on_event(event)
                if isinstance(event, CompareEnded) and event.record.id == record.id:
                    return event.record
        finally:
            unsubscribe()
