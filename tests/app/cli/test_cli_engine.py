"""The command line when the model file is hostile: one sentence on stderr, clean standard output, and a way on
(ChatML for a broken chat template); the engine worker's own log goes to the log file, not the terminal."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.paths import Paths
from app.settings import Settings

from tests.helpers.command import hearth
from tests.helpers.gguf_fixtures import duplicate_tokens, with_chat_template

pytestmark = pytest.mark.engine

LOOPING = "{% for i in range(99999) %}{% for j in range(99999) %}{% endfor %}{% endfor %}"
BROKEN = "hearth: This model's chat template is broken: it does not finish. Hearth can write the conversation in " \
         "ChatML instead, a format most chat models understand."


def test_chat_with_a_looping_template_says_so_and_chatml_answers(test_model_path: Path, tmp_path: Path) -> None:
    model = str(with_chat_template(test_model_path, tmp_path, LOOPING))
    failed = hearth(tmp_path / "home", "chat", model, "--prompt", "Once upon a time", "--max-tokens", "8")
    assert failed.returncode == 1 and failed.stdout == ""
    assert failed.stderr == f"{BROKEN} Run the command again with --chatml to use it.\n"

    answered = hearth(tmp_path / "home", "chat", model, "--prompt", "Once upon a time", "--max-tokens", "8",
                      "--chatml")
    assert answered.returncode == 0, answered.stderr
    assert answered.stdout.strip()


def test_chatml_chosen_for_a_model_in_the_window_is_used_by_the_command_line_too(test_model_path: Path,
                                                                                tmp_path: Path) -> None:
    model = with_chat_template(test_model_path, tmp_path, LOOPING)
    home = tmp_path / "home"
    paths = Paths.under(home).ensure()
    settings = Settings.load(paths.settings_file)
    settings.chatml_models.append(str(model.resolve()))
    settings.save(paths.settings_file)
    answered = hearth(home, "chat", str(model), "--prompt", "Once upon a time", "--max-tokens", "8")
    assert answered.returncode == 0, answered.stderr
    assert answered.stdout.strip()


def test_interactive_chat_offers_chatml_and_answers_the_message_again(test_model_path: Path, tmp_path: Path) -> None:
    model = str(with_chat_template(test_model_path, tmp_path, LOOPING))
    result = hearth(tmp_path / "home", "chat", model, "--max-tokens", "8", input="Hello\n/chatml\n/quit\n")
    assert result.returncode == 0, result.stderr
    assert f"{BROKEN} Type /chatml to use it." in result.stderr
    assert "[The conversation is written in ChatML from now on.]" in result.stderr
    assert "Traceback" not in result.stderr and "WARNING" not in result.stderr  # the worker's log is in the file
    turns = [turn.split("> ", 1)[1].strip() for turn in result.stdout.split("you> ") if "> " in turn]
    assert len(turns) == 2 and turns[0] == "" and turns[1]  # the failed answer, then the same message in ChatML


def test_a_llama_cpp_abort_at_load_is_one_sentence(test_model_path: Path, tmp_path: Path) -> None:
    model = str(duplicate_tokens(test_model_path, tmp_path))
    result = hearth(tmp_path / "home", "chat", model, "--prompt", "Hello")
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.startswith("hearth: The model engine stopped") and result.stderr.count("\n") == 1
