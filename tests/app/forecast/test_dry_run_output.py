"""When llama.cpp aborts during the dry run, what it prints (its message, and a gdb backtrace where gdb is
installed) goes to the log, not to the terminal or into ``hearth inspect --json``; people get one sentence."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from app.engine.load_plan import LoadPlan
from app.forecast.dry_run import dry_run

from tests.helpers.command import hearth
from tests.helpers.gguf_fixtures import duplicate_tokens


def test_an_abort_is_one_sentence_and_its_output_is_in_the_log(
        test_model_path: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str],
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="app.forecast.dry_run")
    result = dry_run(duplicate_tokens(test_model_path, tmp_path), LoadPlan(context_length=256))
    assert not result.ok and result.message == "llama.cpp stopped while reading this model."
    printed = capfd.readouterr()  # the child shares this process's standard output and error
    assert printed.out == "" and "GGML_ASSERT" not in printed.err
    assert "GGML_ASSERT(id_to_token.size() == token_to_id.size()) failed" in caplog.text


def test_inspect_json_stays_json_when_llama_cpp_aborts(test_model_path: Path, tmp_path: Path) -> None:
    path = duplicate_tokens(test_model_path, tmp_path)
    result = hearth(tmp_path / "home", "inspect", str(path), "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)  # a gdb backtrace on standard output broke this
    assert data["verdict"] == "This version of Hearth cannot run this model"
    assert data["reason"] == "llama.cpp stopped while reading this model."
    assert result.stderr == ""
    assert "GGML_ASSERT" in (tmp_path / "home" / "logs" / "hearth.log").read_text(encoding="utf-8")
