"""The streamed text holds back only what could still become a stop string, so the first words show at once."""

from __future__ import annotations

from app.engine.completion import _StopText


def _stream(stops: list[str], pieces: list[str]) -> tuple[list[str], bool, str]:
    stop_text = _StopText(stops)
    shown, stopped = [], False
    for piece in pieces:
        text, stopped = stop_text.add(piece)
        shown.append(text)
        if stopped:
            break
    return shown, stopped, "" if stopped else stop_text.rest()


def test_text_that_cannot_start_a_stop_string_is_shown_at_once() -> None:
    shown, stopped, rest = _stream(["<|im_end|>"], ["The", " cat", " sat"])
    assert shown == ["The", " cat", " sat"] and not stopped and rest == ""


def test_a_stop_string_split_over_tokens_is_never_shown() -> None:
    shown, stopped, _ = _stream(["<|im_end|>"], ["Done.", "<|", "im", "_end", "|>", "more"])
    assert "".join(shown) == "Done." and stopped
    assert shown[:2] == ["Done.", ""]  # "<|" waits: it may be the start of the stop string


def test_a_false_start_is_released_when_it_stops_matching() -> None:
    shown, stopped, rest = _stream(["<|im_end|>"], ["a <", "|x", "y"])
    assert shown == ["a ", "<|x", "y"] and not stopped and rest == ""


def test_held_text_comes_out_at_the_end() -> None:
    shown, stopped, rest = _stream(["\n\nUser:"], ["Hello", "\n"])
    assert shown == ["Hello", ""] and not stopped and rest == "\n"


def test_without_stop_strings_nothing_is_held() -> None:
    shown, stopped, rest = _stream([], ["a", "b"])
    assert shown == ["a", "b"] and not stopped and rest == ""
