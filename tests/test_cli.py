"""The `hearth` command as a person runs it: a real process, real model, real database."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gguf_fixtures import not_gguf, truncated

HEARTH = [sys.executable, "-m", "ui.entry"]
ROOT = Path(__file__).resolve().parent.parent


def hearth(home: Path, *args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HEARTH_HOME": str(home)}
    return subprocess.run([*HEARTH, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
                          input=input)


@pytest.mark.engine
def test_chat_json_prints_text_and_metrics(tmp_path: Path, test_model_path: Path) -> None:
    result = hearth(tmp_path, "chat", str(test_model_path), "--prompt", "Once upon a time", "--json",
                    "--max-tokens", "24", "--seed", "2")
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert answer["text"].strip()
    assert answer["completion_tokens"] == 24 and answer["prompt_tokens"] > 0
    assert answer["ttft_s"] > 0 and answer["tokens_per_s"] > 0
    assert answer["peak_rss_bytes"] > test_model_path.stat().st_size
    assert answer["finish_reason"] == "length"


def test_models_import_then_list(tmp_path: Path, test_model_path: Path) -> None:
    imported = hearth(tmp_path, "models", "import", str(test_model_path), "--in-place")
    assert imported.returncode == 0, imported.stderr
    assert "stories260K" in imported.stdout
    listed = hearth(tmp_path, "models", "list", "--json")
    models = json.loads(listed.stdout)
    assert len(models) == 1 and models[0]["path"] == str(test_model_path.resolve()) and models[0]["in_place"]
    assert models[0]["parameter_count"] == 292_800
    table = hearth(tmp_path, "models", "list")
    assert "stories260K" in table.stdout and "293K" in table.stdout


@pytest.mark.engine
def test_chat_by_library_name_and_interactive(tmp_path: Path, test_model_path: Path) -> None:
    assert hearth(tmp_path, "models", "import", str(test_model_path)).returncode == 0
    result = hearth(tmp_path, "chat", "stories260K", "--max-tokens", "8", input="Hello\n/quit\n")
    assert result.returncode == 0, result.stderr
    assert "stories260K> " in result.stdout and len(result.stdout) > len("stories260K> ")


@pytest.mark.parametrize(
    ("make", "words"),
    [(lambda src, d: not_gguf(d), "is not a GGUF model file"), (truncated, "incomplete"),
     (lambda src, d: d / "missing.gguf", "could not be found")],
    ids=["not-gguf", "truncated", "missing"])
@pytest.mark.parametrize("command", ["import", "chat"])
def test_expected_failures_are_one_line_on_stderr(tmp_path: Path, test_model_path: Path, make: object,
                                                   words: str, command: str) -> None:
    bad = make(test_model_path, tmp_path)  # type: ignore[operator]
    args = ("models", "import", str(bad)) if command == "import" else ("chat", str(bad), "--prompt", "hi")
    result = hearth(tmp_path / "home", *args)
    assert result.returncode == 1
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("hearth: ")
    if command == "import" or words != "could not be found":
        assert words in result.stderr
    else:
        assert "No model called" in result.stderr


def test_version_and_help(tmp_path: Path) -> None:
    assert hearth(tmp_path, "--version").stdout.startswith("Hearth ")
    assert "chat" in hearth(tmp_path, "--help").stdout


@pytest.mark.engine
def test_interactive_chat_survives_a_message_too_long_and_says_when_it_trims(
        tmp_path: Path, test_model_path: Path) -> None:
    turns = "Hello\n" + "word " * 400 + "\n" + "\n".join(f"Tell me more about the red bird number {i}, please."
                                                         for i in range(12)) + "\n/quit\n"
    result = hearth(tmp_path, "chat", str(test_model_path), "--ctx", "256", "--max-tokens", "24", input=turns)
    assert result.returncode == 0, result.stderr
    assert "too long for this model's context window" in result.stderr
    assert "left out to fit the context window" in result.stderr
    assert result.stdout.count("stories260K> ") == 14
