"""The app's one door to the network, and what people can check about it.

Every request Hearth makes (Hub search, model files, downloads, the catalog update) goes through
huggingface_hub's shared HTTP client. This module builds that client: telemetry of every library off, a
"Work offline" switch that blocks every request before it is sent, and a record of every attempt (time, host,
purpose, outcome, bytes) for the Privacy page: answered, refused, failed to connect, or blocked by Work offline.
Chat, tasks and comparisons never reach here: they use no network at all.
"""

from __future__ import annotations

import errno
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

log = logging.getLogger(__name__)

TELEMETRY_SWITCHES = ("HF_HUB_DISABLE_TELEMETRY", "DO_NOT_TRACK", "HF_HUB_DISABLE_IMPLICIT_TOKEN")
CONNECTION_CHECK = "TCP"  # the method recorded for ``reachable``'s connection, which sends no request at all


class Outcome(StrEnum):
    """What became of one attempt to reach the network (the history keeps these values)."""

    ANSWERED = "answered"  # the server answered (whatever it said: the status tells)
    REFUSED = "refused"  # the computer at that address refused the connection
    FAILED = "failed"  # no connection, or none that answered: no network, no such name, timed out, cut off
    BLOCKED = "blocked"  # Work offline stopped it before anything was sent

    @property
    def words(self) -> str:
        return {Outcome.ANSWERED: "Answered", Outcome.REFUSED: "Refused", Outcome.FAILED: "Failed to connect",
                Outcome.BLOCKED: "Blocked by Work offline"}[self]


@dataclass(frozen=True)
class RequestRecord:
    """One attempt to reach the network, never its content. ``status`` is the HTTP status when it was answered
    (0 otherwise), ``bytes`` the size of the answer as announced."""

    at: datetime
    method: str
    host: str
    path: str
    purpose: str
    status: int
    bytes: int
    outcome: Outcome = Outcome.ANSWERED
    incoming: bool = False  # another program's request to the local server: ``host`` is where it came from


Recorder = Callable[[RequestRecord], None]
_lock = threading.Lock()
_recorder: Recorder | None = None


def disable_telemetry() -> None:
    """Before huggingface_hub is imported: it reads these once."""
    for name in TELEMETRY_SWITCHES:
        os.environ.setdefault(name, "1")


def configure(recorder: Recorder | None) -> None:
    """Give huggingface_hub a client that reports every attempt to ``recorder`` (None: record nothing)."""
    global _recorder
    import huggingface_hub
    from huggingface_hub.utils import _http

    disable_telemetry()
    with _lock:
        _recorder = recorder

    def factory() -> Any:
        client: Any = _http.default_client_factory()
        client.send = _recording(client.send)
        return client

    huggingface_hub.set_client_factory(factory)


def _recording(send: Callable[..., Any], purpose: str | None = None) -> Callable[..., Any]:
    """``send`` that records every attempt. httpx's ``Client.send`` is the one public method that every request,
    stream, retry and redirect goes through, and the only place that sees how each attempt ended: its event hooks
    report responses, never a refused connection or the Work offline switch's refusal (huggingface_hub raises it
    from its own request hook). Wrapping the instance's method keeps huggingface_hub's client exactly as it makes
    it (proxies from the environment included)."""

    def recorded(request: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            response = send(request, *args, **kwargs)
        except OfflineError:
            raise  # recorded as blocked where it was refused
        except Exception as error:
            _record(_request_of(error) or request, _failure(error), purpose=purpose)
            raise
        for hop in (*response.history, response):  # the redirects to the download servers are attempts too
            size = int(hop.headers.get("Content-Length") or 0)
            _record(hop.request, Outcome.ANSWERED, status=hop.status_code, size=size, purpose=purpose)
        return response

    return recorded


def _request_of(error: Exception) -> Any:
    """The request that failed, which a redirect may have made; httpx's errors raise if they carry none."""
    try:
        return getattr(error, "request", None)
    except RuntimeError:
        return None


def _failure(error: BaseException) -> Outcome:
    from huggingface_hub.errors import OfflineModeIsEnabled

    if isinstance(error, OfflineModeIsEnabled):
        return Outcome.BLOCKED
    return Outcome.REFUSED if _refused(error) else Outcome.FAILED


def _refused(error: BaseException | None) -> bool:
    """Whether the connection was refused, wherever in the chain of causes the operating system said so."""
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, ConnectionRefusedError) or getattr(error, "errno", None) == errno.ECONNREFUSED:
            return True
        if "Connection refused" in str(error):  # httpcore keeps only the operating system's words
            return True
        error = error.__cause__ or error.__context__
    return False


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


def reachable(url: str, timeout: float = REACH_TIMEOUT_S, *, purpose: str = "Checking the connection") -> bool:
    """Whether a connection to ``url``'s host can be opened now: name lookup and a TCP connection, within
    ``timeout``. Written by hand because huggingface_hub retries a failed connection five times with growing
    waits (about 25 s before a search said "offline"), and its retries cannot be set per call. A success is
    remembered for a minute; behind a proxy the proxy decides, so the check is left to the client. The connection
    is an attempt like any other: it is recorded (``CONNECTION_CHECK``, for ``purpose``), though nothing is sent."""
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
    except OSError as error:
        _record_check(host, purpose, Outcome.REFUSED if _refused(error) else Outcome.FAILED)
        return False
    _record_check(host, purpose, Outcome.ANSWERED)
    with _lock:
        _reached[(host, port)] = time.monotonic()
    return True


def purpose_of(path: str) -> str:
    if path.startswith("/api/models") and path.rstrip("/") == "/api/models":
        return "Searching for models"
    if path.startswith("/api/models/"):
        return "Reading a model's details"
    if path.lower().endswith("/readme.md"):
        return "Reading a model's card"
    if "/resolve/" in path:
        return "Downloading a model file"
    if path.endswith(".json"):
        return "Updating the model catalog"
    return "Downloading a model file"  # the CDN the Hub redirects downloads to


def _record_check(host: str, purpose: str, outcome: Outcome) -> None:
    _deliver(RequestRecord(at=datetime.now(UTC), method=CONNECTION_CHECK, host=host, path="", purpose=purpose,
                           status=0, bytes=0, outcome=outcome))


def recording_client(purpose: str, timeout_s: float) -> Any:
    """An HTTP client (httpx2, as huggingface_hub and the ``openai`` client use) whose every attempt is recorded
    for the Privacy page under ``purpose``, as the Hub's are; with Work offline on it sends nothing."""
    import httpx2

    client: Any = httpx2.Client(timeout=timeout_s)
    send = client.send

    def checked(request: Any, *args: Any, **kwargs: Any) -> Any:
        if is_offline():
            _record(request, Outcome.BLOCKED, purpose=purpose)
            raise OfflineError("Hearth is working offline (File → Work offline), so it does not reach other "
                               "computers.")
        return send(request, *args, **kwargs)

    client.send = _recording(checked, purpose)
    return client


class OfflineError(ConnectionError):
    """Work offline is on: the request was not sent."""


def _record(request: Any, outcome: Outcome, *, status: int = 0, size: int = 0, purpose: str | None = None) -> None:
    try:
        url = urlsplit(str(request.url))
        record = RequestRecord(at=datetime.now(UTC), method=str(request.method), host=url.hostname or "",
                               path=url.path, purpose=purpose or purpose_of(url.path), status=status, bytes=size,
                               outcome=outcome)
    except Exception:
        log.exception("could not describe a network request")
        return
    _deliver(record)


def _deliver(record: RequestRecord) -> None:
    with _lock:
        recorder = _recorder
    if recorder is None:
        return
    try:
        recorder(record)
    except Exception:
        log.exception("could not record a network request")
