"""Every load's forecast beside what it really used, kept in history.

The window shows "estimated X, used Y" from these records, and the measured speeds calibrate later speed
forecasts on this machine. The worker's own size when it starts is kept too (``hardware.cache.engine_baseline``),
so every forecast here, in the window or the terminal, starts from this computer's real engine. Listens to
the engine on its reader thread, so the writes never touch the GUI thread.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from app.engine import protocol as p
from app.engine.client import EngineClient
from app.forecast.estimate import bytes_per_token
from app.forecast.model_check import Assessment
from app.gguf.facts import read_facts
from app.hardware.cache import store_engine_baseline
from app.hardware.machine import Machine
from app.hardware.memory_speed import cached_bandwidth, mark_bandwidth_doubtful
from app.history import HistoryStore

log = logging.getLogger(__name__)


class LoadTracker:
    """Args:
        cache_dir, machine: where this machine's measurements are kept (``hardware.cache``), and the machine, so that
            a generation faster than the kept memory-speed readings allow marks them for measuring again.
    """

    def __init__(self, store: HistoryStore, engine: EngineClient, cache_dir: Path | None = None,
                 machine: Machine | None = None) -> None:
        self.store = store
        self.cache_dir = cache_dir
        self.machine = machine
        self._lock = threading.Lock()
        self._expected: dict[str, Assessment] = {}
        self._record_id: int | None = None
        self._bytes_per_token: int | None = None  # of the loaded model on the processor, for the check above
        engine.subscribe(self._on_event)

    def expect(self, path: Path | str, assessment: Assessment) -> None:
        """The forecast for the load about to start."""
        with self._lock:
            self._expected[str(Path(path).resolve())] = assessment

    def _on_event(self, event: p.Event) -> None:
        if isinstance(event, p.Ready | p.Loaded) and event.remote:
            with self._lock:
                self._record_id = None  # a model on another computer: nothing of this one's to measure
            return
        try:
            if isinstance(event, p.Ready) and self.cache_dir is not None:
                store_engine_baseline(self.cache_dir, event.rss_bytes, event.llama_cpp_version)
            elif isinstance(event, p.Loaded):
                self._loaded(event)
            elif isinstance(event, p.Finished) and event.metrics.tokens_per_s:
                with self._lock:
                    record_id = self._record_id
                if record_id is not None:
                    self.store.set_load_speed(record_id, event.metrics.tokens_per_s, event.metrics.peak_rss_bytes)
                self._check_bandwidth(event.metrics.tokens_per_s)
            elif isinstance(event, p.Unloaded | p.WorkerExited | p.LoadStarted):
                with self._lock:
                    self._record_id = None
        except Exception:
            log.exception("could not record the load of a model")

    def _loaded(self, event: p.Loaded) -> None:
        with self._lock:
            assessment = self._expected.pop(event.path, None)
        estimate = assessment.forecast.to_dict() if assessment else {}
        measured = {"rss_after_load": event.rss_bytes, "peak_rss_bytes": event.rss_bytes,
                    "weights_bytes": event.weights_bytes, "buffers": event.buffers, "load_s": event.load_s}
        if event.tuning is not None:
            measured.update(tuning=event.tuning.to_dict(), tuning_key=event.plan.tuning_key())
        facts = assessment.facts if assessment is not None else read_facts(Path(event.path))
        measured["bytes_per_token"] = per_token = bytes_per_token(facts, event.plan)
        record_id = self.store.add_load_record(event.path, plan=event.plan.to_dict(), estimate=estimate,
                                               measured=measured)
        with self._lock:
            self._record_id = record_id
            self._bytes_per_token = per_token if not event.plan.gpu_layers else None

    def _check_bandwidth(self, tokens_per_s: float) -> None:
        """Each token reads the whole model once: a speed that implies more than the best memory-speed reading
        means every reading was taken on a busy machine."""
        with self._lock:
            per_token = self._bytes_per_token
        if per_token and self.cache_dir is not None and self.machine is not None:
            best = cached_bandwidth(self.cache_dir, self.machine)
            if best and tokens_per_s * per_token > best * 1.05:
                mark_bandwidth_doubtful(self.cache_dir, self.machine)
