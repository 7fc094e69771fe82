"""The network door: every request recorded for the Privacy page, and the Work offline switch."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from app import network
from app.history import HistoryStore, open_database
from app.hub import search as hub_api

from tests.helpers.hub_stand_in import HubStandIn, hub_fixture  # noqa: F401


@pytest.fixture
def store(tmp_path: Path) -> Iterator[HistoryStore]:
    db = open_database(tmp_path / "history.sqlite3")
    network.configure(HistoryStore(db).add_network_request)
    yield HistoryStore(db)
    network.configure(None)
    db.close()


def test_every_request_is_recorded_with_its_purpose(hub: HubStandIn, store: HistoryStore,
                                                    test_model_path: Path) -> None:
    hub.add_repo("ggml-org/stories-GGUF", {"stories260K-F32.gguf": test_model_path})
    hub_api.search_models("stories")
    hub_api.repo_files("ggml-org/stories-GGUF")
    requests = [r for r in store.network_requests() if r.method != network.CONNECTION_CHECK]
    purposes = [r.purpose for r in reversed(requests)]
    assert "Searching for models" in purposes and "Reading a model's details" in purposes
    assert all(r.host == "127.0.0.1" and r.status == 200 and r.outcome is network.Outcome.ANSWERED
               for r in requests)


def test_work_offline_blocks_requests_before_they_are_sent(
        hub: HubStandIn, store: HistoryStore, monkeypatch: pytest.MonkeyPatch) -> None:
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", constants.HF_HUB_OFFLINE)
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    hub.reset_log()
    network.set_offline(True)
    assert network.is_offline()
    with pytest.raises(hub_api.HubError, match="offline") as raised:
        hub_api.search_models("anything")
    assert raised.value.failure is hub_api.HubFailure.WORKING_OFFLINE
    assert hub.log == []  # nothing was sent, and the block is on the record
    [blocked] = store.network_requests()
    assert (blocked.outcome, blocked.host, blocked.path, blocked.status) == (
        network.Outcome.BLOCKED, "127.0.0.1", "/api/models", 0)
    network.set_offline(False)
    assert hub_api.search_models("anything") == []
    assert store.network_requests()[0].outcome is network.Outcome.ANSWERED


def test_telemetry_is_off() -> None:
    import os

    network.disable_telemetry()
    assert os.environ["HF_HUB_DISABLE_TELEMETRY"] == "1" and os.environ["DO_NOT_TRACK"] == "1"


def _closed_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_without_a_network_a_search_says_so_at_once_without_retrying(monkeypatch: pytest.MonkeyPatch) -> None:
    import huggingface_hub
    from huggingface_hub import constants

    from app.hub.search import HubError

    class NeverCalled:
        def __init__(self, *_args: object, **_kwargs: object) -> None:
            raise AssertionError("the Hub client was used without a network")

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)  # online, but no network
    monkeypatch.setattr(constants, "ENDPOINT", f"http://127.0.0.1:{_closed_port()}")
    monkeypatch.setattr(huggingface_hub, "HfApi", NeverCalled)
    assert not network.reachable(constants.ENDPOINT)
    with pytest.raises(HubError, match="No network"):
        hub_api.search_models("phi")
    with pytest.raises(HubError, match="No network"):
        hub_api.SearchPager("phi").next_page()


def test_a_server_that_answers_is_reachable_and_a_proxy_is_trusted(hub: HubStandIn,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from huggingface_hub import constants

    assert network.reachable(constants.ENDPOINT)
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    assert network.reachable(f"http://127.0.0.1:{_closed_port()}")


def test_the_command_line_search_without_a_network_is_one_line(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.helpers.command import hearth

    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{_closed_port()}")
    result = hearth(tmp_path, "models", "search", "phi", online=True)
    assert result.returncode != 0 and result.stderr.strip().count("\n") == 0, result.stderr
    assert "No network" in result.stderr


def _silent_server() -> Iterator[int]:
    """A port on 127.0.0.1 that takes connections and closes them without a word."""
    import socket
    import threading

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                connection, _ = server.accept()
            except OSError:
                return
            connection.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield int(server.getsockname()[1])
    stop.set()
    server.close()
    thread.join(timeout=5)


silent_server = pytest.fixture(_silent_server)


def test_every_attempt_is_recorded_answered_or_not(hub: HubStandIn, store: HistoryStore, silent_server: int,
                                                   test_model_path: Path) -> None:
    """A refused connection, one that never answers and a redirect are attempts too: the Privacy page said "No
    network request has been made" after twenty failed ones."""
    import httpx2
    from huggingface_hub import get_session

    hub.add_repo("ggml-org/stories-GGUF", {"stories260K-F32.gguf": test_model_path})
    session = get_session()
    closed = _closed_port()
    with pytest.raises(httpx2.ConnectError):
        session.get(f"http://127.0.0.1:{closed}/api/models")
    with pytest.raises(httpx2.TransportError):
        session.get(f"http://127.0.0.1:{silent_server}/api/models")
    answer = session.get(hub.resolve_url("ggml-org/stories-GGUF", "stories260K-F32.gguf"))
    assert answer.status_code == 200 and len(answer.history) == 1  # the Hub sent it on to its download server
    assert not network.reachable(f"http://127.0.0.1:{closed}", purpose="Searching for models")

    check, file, redirect, silent, refused = store.network_requests()  # newest first
    assert (refused.outcome, refused.host, refused.path, refused.status) == (
        network.Outcome.REFUSED, "127.0.0.1", "/api/models", 0)
    assert (silent.outcome, silent.purpose) == (network.Outcome.FAILED, "Searching for models")
    assert (redirect.outcome, redirect.status, redirect.purpose) == (
        network.Outcome.ANSWERED, 302, "Downloading a model file")
    assert (file.outcome, file.status) == (network.Outcome.ANSWERED, 200)
    assert file.bytes == test_model_path.stat().st_size
    assert (check.method, check.outcome, check.purpose) == (
        network.CONNECTION_CHECK, network.Outcome.REFUSED, "Searching for models")
