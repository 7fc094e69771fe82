"""Every load's forecast beside what it really used, kept in history.

The window shows "estimated X, used Y" from these records, and the measured speeds calibrate later speed
forecasts on this machine. Listens to the engine on its reader thread, so the writes never touch the GUI
thread.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from app.engine import protocol as p
from app.engine.client import EngineClient
from app.forecast import bytes_per_token
from app.history import HistoryStore
from app.model_check import Assessment

log = logging.getLogger(__name__)


class LoadTracker:
    def __init__(self, store: HistoryStore, engine: EngineClient) -> None:
        self.store = store
        self._lock = threading.Lock()
        self._expected: dict[str, Assessment] = {}
        self._record_id: int | None = None
        engine.subscribe(self._on_event)

    def expect(self, path: Path | str, assessment: Assessment) -> None:
        """The forecast for the load about to start."""
        with self._lock:
            self._expected[str(Path(path).resolve())] = assessment

    def _on_event(self, event: p.Event) -> None:
        try:
            if isinstance(event, p.Loaded):
                self._loaded(event)
            elif isinstance(event, p.Finished) and event.metrics.tokens_per_s:
                with self._lock:
                    record_id = self._record_id
                if record_id is not None:
                    self.store.set_load_speed(record_id, event.metrics.tokens_per_s, event.metrics.peak_rss_bytes)
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
        if assessment is not None:
            measured["bytes_per_token"] = bytes_per_token(assessment.facts, event.plan)
        record_id = self.store.add_load_record(event.path, plan=event.plan.to_dict(), estimate=estimate,
                                               measured=measured)
        with self._lock:
            self._record_id = record_id
