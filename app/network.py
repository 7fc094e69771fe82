"""The app's one door to the network, and what people can check about it.

Every request Hearth makes (Hub search, model files, downloads, the catalog update) goes through
huggingface_hub's shared HTTP client. This module builds that client: telemetry of every library off, a
"Work offline" switch that blocks every request before it is sent, and a hook that records each request
(time, host, purpose, bytes) for the Privacy page. Chat, tasks and comparisons never reach here: they use
no network at all.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

log = logging.getLogger(__name__)

TELEMETRY_SWITCHES = ("HF_HUB_DISABLE_TELEMETRY", "DO_NOT_TRACK", "HF_HUB_DISABLE_IMPLICIT_TOKEN")


@dataclass(frozen=True)
class RequestRecord:
    at: datetime
    method: str
    host: str
    path: str
    purpose: str
    status: int
    bytes: int


Recorder = Callable[[RequestRecord], None]
_lock = threading.Lock()
_recorder: Recorder | None = None


def disable_telemetry() -> None:
    """Before huggingface_hub is imported: it reads these once."""
    for name in TELEMETRY_SWITCHES:
        os.environ.setdefault(name, "1")


def configure(recorder: Recorder | None) -> None:
    """Give huggingface_hub a client that reports every request to ``recorder`` (None: record nothing)."""
    global _recorder
    import huggingface_hub
    from huggingface_hub.utils import _http

    disable_telemetry()
    with _lock:
        _recorder = recorder

    def factory() -> Any:
        client = _http.default_client_factory()
        client.event_hooks["response"] = [*client.event_hooks.get("response", []), _record]
        return client

    huggingface_hub.set_client_factory(factory)


def set_offline(offline: bool) -> None:
    """The Work offline switch: huggingface_hub refuses every request (before sending it) while it is on."""
    from huggingface_hub import constants

    constants.HF_HUB_OFFLINE = offline
    os.environ["HF_HUB_OFFLINE"] = "1" if offline else "0"


def is_offline() -> bool:
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE)


REACH_TIMEOUT_S = 3.0
_PROXY_VARIABLES = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy")
_reached: dict[tuple[str, int], float] = {}  # host and port -> when a connection to it last worked


def reachable(url: str, timeout: float = REACH_TIMEOUT_S) -> bool:
    """Whether a connection to ``url``'s host can be opened now: name lookup and a TCP connection, within
    ``timeout``. Written by hand because huggingface_hub retries a failed connection five times with growing
    waits (about 25 s before a search said "offline"), and its retries cannot be set per call. A success is
    remembered for a minute; behind a proxy the proxy decides, so the check is left to the client."""
    if any(os.environ.get(name) for name in _PROXY_VARIABLES):
        return True
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    with _lock:
        last = _reached.get((host, port))
    if last is not None and time.monotonic() - last < 60:
        return True
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except OSError:
        return False
    with _lock:
        _reached[(host, port)] = time.monotonic()
    return True


def purpose_of(path: str) -> str:
    if path.startswith("/api/models") and path.rstrip("/") == "/api/models":
        return "Searching for models"
    if path.startswith("/api/models/"):
        return "Reading a model's details"
    if "/resolve/" in path:
        return "Downloading a model file"
    if path.endswith(".json"):
        return "Updating the model catalog"
    return "Downloading a model file"  # the CDN the Hub redirects downloads to


def _record(response: Any) -> None:
    with _lock:
        recorder = _recorder
    if recorder is None:
        return
    try:
        url = urlsplit(str(response.request.url))
        size = int(response.headers.get("Content-Length") or 0)
        recorder(RequestRecord(at=datetime.now(UTC), method=response.request.method, host=url.hostname or "",
                               path=url.path, purpose=purpose_of(url.path), status=response.status_code,
                               bytes=size))
    except Exception:
        log.exception("could not record a network request")
