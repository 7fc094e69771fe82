"""The one observer type: every listener hears each event once, in order; a failing one is logged and the
others still hear it; unsubscribing (even from inside a listener, even twice) takes effect for the next event."""

from __future__ import annotations

import logging

import pytest

from app.engine import protocol as p
from app.events import Listeners


def test_listeners_hear_events_until_they_unsubscribe() -> None:
    listeners: Listeners[int] = Listeners()
    heard: list[tuple[str, int]] = []
    stop_a = listeners.subscribe(lambda n: heard.append(("a", n)))
    listeners.subscribe(lambda n: heard.append(("b", n)))
    listeners.emit(1)
    stop_a()
    stop_a()
    listeners.emit(2)
    assert heard == [("a", 1), ("b", 1), ("b", 2)] and len(listeners) == 1


def test_a_failing_listener_is_logged_and_the_others_still_hear(caplog: pytest.LogCaptureFixture) -> None:
    listeners: Listeners[str] = Listeners()
    heard: list[str] = []

    def broken(_event: str) -> None:
        raise RuntimeError("a bug in one page")

    listeners.subscribe(broken)
    listeners.subscribe(heard.append)
    with caplog.at_level(logging.ERROR, logger="app.events"):
        listeners.emit("token")
    assert heard == ["token"]
    assert "a listener failed on str" in caplog.text and "a bug in one page" in caplog.text


def test_a_listener_may_unsubscribe_itself_while_it_is_called() -> None:
    listeners: Listeners[int] = Listeners()
    heard: list[int] = []
    unsubscribe = listeners.subscribe(lambda n: (heard.append(n), unsubscribe()))
    listeners.emit(1)
    listeners.emit(2)
    assert heard == [1]


def test_every_command_that_can_fail_names_what_it_was_doing() -> None:
    commands: list[p.Command] = [
        p.Load(path="m.gguf"), p.Generate(request_id=1, messages=[]), p.RunTask.__new__(p.RunTask),
        p.PlanTask.__new__(p.PlanTask), p.ReadAhead(conversation="c", messages=[]), p.Forget("c"), p.Unload(),
    ]
    assert [p.During.of(command) for command in commands] == list(p.During)
