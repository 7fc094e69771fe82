"""The `hearth` command as a person runs it: a real process, real model, real database."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.helpers.command import hearth
from tests.helpers.gguf_fixtures import not_gguf, truncated


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
    assert "stories260K · F32" in table.stdout and "293K" in table.stdout and "none: base model" in table.stdout
    assert "This is a base model" in imported.stderr


def test_models_rename_is_what_every_command_shows(tmp_path: Path, test_model_path: Path) -> None:
    assert hearth(tmp_path, "models", "import", str(test_model_path), "--in-place").returncode == 0
    renamed = hearth(tmp_path, "models", "rename", "stories", "Bedtime stories")
    assert renamed.returncode == 0, renamed.stderr
    assert renamed.stdout.strip() == "“stories260K · F32” is now shown as “Bedtime stories”."
    [model] = json.loads(hearth(tmp_path, "models", "list", "--json").stdout)
    assert (model["name"], model["default_name"], model["base_model"]) == ("Bedtime stories", "stories260K · F32", True)
    assert hearth(tmp_path, "inspect", "bedtime").stdout.startswith("Bedtime stories\n")
    assert test_model_path.is_file()  # the file keeps its name
    reset = hearth(tmp_path, "models", "rename", "bedtime", "--reset")
    assert reset.returncode == 0 and "is now shown as “stories260K · F32”" in reset.stdout


@pytest.mark.engine
def test_chat_by_library_name_and_interactive(tmp_path: Path, test_model_path: Path) -> None:
    assert hearth(tmp_path, "models", "import", str(test_model_path)).returncode == 0
    result = hearth(tmp_path, "chat", "stories260K", "--max-tokens", "8", input="Hello\n/quit\n")
    assert result.returncode == 0, result.stderr
    assert "stories260K · F32> " in result.stdout and len(result.stdout) > len("stories260K · F32> ")
    assert "This is a base model: it continues text rather than answering" in result.stderr


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
    assert result.stdout.count("stories260K · F32> ") == 14


def test_hw_describes_this_machine(tmp_path: Path) -> None:
    as_json = hearth(tmp_path, "hw", "--json")
    assert as_json.returncode == 0, as_json.stderr
    machine = json.loads(as_json.stdout)
    assert machine["memory_total"] > 0 and machine["logical_cores"] >= 1
    assert machine["bandwidth_bytes_per_s"] > 0  # measured once, then cached
    assert (tmp_path / "cache" / "hardware.json").is_file()
    text = hearth(tmp_path, "hw").stdout
    assert "of memory" in text and "Processor:" in text


@pytest.mark.engine
def test_inspect_a_local_model(tmp_path: Path, test_model_path: Path) -> None:
    result = hearth(tmp_path, "inspect", str(test_model_path), "--ctx", "1024", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["facts"]["architecture"] == "llama" and report["plan"]["context_length"] == 1024
    assert report["ram_bytes"] > test_model_path.stat().st_size and report["vram_bytes"] == 0
    assert report["verdict"] == "Runs well" and report["confidence"] == "exact"
    assert set(report["breakdown"]) >= {"weights_ram", "kv_ram", "compute_ram", "overhead_ram"}
    text = hearth(tmp_path, "inspect", str(test_model_path), "--kv-type", "q8_0").stdout
    # Its 8-wide heads cannot hold a q8_0 cache (blocks of 32): the dry run finds that out before any load.
    assert "cannot use these settings" in text and "n_embd_head_k=8" in text
    from tests.helpers.model_builders import llama_gqa

    wide = llama_gqa(tmp_path, n_embd=256, n_head=8, n_head_kv=2)
    f16 = json.loads(hearth(tmp_path, "inspect", str(wide), "--json", "--ctx", "4096").stdout)
    q8 = json.loads(hearth(tmp_path, "inspect", str(wide), "--json", "--ctx", "4096", "--kv-type", "q8_0").stdout)
    assert q8["verdict"] == "Runs well" and q8["kv_ram"] < f16["kv_ram"] * 0.6


@pytest.mark.engine
def test_inspect_a_remote_model_reads_only_its_header(tmp_path: Path) -> None:
    from tests.helpers.model_builders import llama_gqa
    from tests.helpers.range_server import serve_folder

    folder = tmp_path / "hub"
    folder.mkdir()
    model = llama_gqa(folder, n_embd=256, n_layer=8, n_ff=1024)
    with serve_folder(folder) as server:
        result = hearth(tmp_path / "home", "inspect", server.url(f"/resolve/{model.name}"), "--json", online=True)
        server.wait_idle()
        sent = server.bytes_sent
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["facts"]["block_count"] == 8 and report["confidence"] == "exact"
    assert sent < model.stat().st_size / 2


def test_inspect_reports_an_unreachable_model_plainly(tmp_path: Path) -> None:
    result = hearth(tmp_path, "inspect", "http://127.0.0.1:9/nothing/model.gguf")
    assert result.returncode == 1 and result.stderr.startswith("hearth: ") and "Traceback" not in result.stderr


def test_chat_refuses_an_empty_prompt_and_lists_its_commands(tmp_path: Path, test_model_path: Path) -> None:
    empty = hearth(tmp_path, "chat", str(test_model_path), "--prompt", "  ")
    assert empty.returncode != 0 and "--prompt is empty" in empty.stderr
    helped = hearth(tmp_path, "chat", str(test_model_path), "--max-tokens", "8", input="/help\n/quit\n")
    assert helped.returncode == 0 and "/quit    leave" in helped.stderr


def test_ctrl_c_stops_the_answer_and_the_chat_goes_on(tmp_path: Path, test_model_path: Path) -> None:
    """Ctrl+C reaches the whole process group, the engine worker too: it must stop the answer, not the worker."""
    import signal
    import subprocess
    import time

    from tests.helpers import ROOT
    from tests.helpers.command import HEARTH, ctrl_c_reaches_children

    env = {**os.environ, "HEARTH_HOME": str(tmp_path)}
    with ctrl_c_reaches_children():
        chat = subprocess.Popen([*HEARTH, "chat", str(test_model_path), "--max-tokens", "4000", "--ctx", "4096"],
                                cwd=ROOT, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, start_new_session=True)
    assert chat.stdin is not None and chat.stdout is not None
    try:
        chat.stdin.write("Tell me a very long story\n")
        chat.stdin.flush()
        seen = ""
        while not seen.endswith("stories260K · F32> "):  # "you> " first: input()'s prompt
            seen += chat.stdout.read(1)
        assert chat.stdout.read(20)  # the answer is being written
        os.killpg(chat.pid, signal.SIGINT)
        time.sleep(0.5)  # a moment for the stop; the next message waits for it in any case
        out, err = chat.communicate("Once upon a time\n/quit\n", timeout=120)
    finally:
        if chat.poll() is None:
            chat.kill()
    assert chat.returncode == 0, err
    assert "[stopped]" in err and "Traceback" not in err and "No model is loaded" not in err
    assert out.count("stories260K · F32> ") >= 1  # the second message was answered after the stop


@pytest.mark.engine
def test_chat_without_a_model_uses_the_only_one_in_the_library(tmp_path: Path, test_model_path: Path) -> None:
    none = hearth(tmp_path, "chat", "--prompt", "Hello")
    assert none.returncode != 0 and "the library has none yet" in none.stderr
    assert hearth(tmp_path, "models", "import", str(test_model_path)).returncode == 0
    result = hearth(tmp_path, "chat", "--prompt", "Hello", "--max-tokens", "8", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["model"] == "stories260K · F32"


@pytest.mark.parametrize("keep", [1000, 4096], ids=["inside-the-tensor-list", "inside-the-metadata"])
def test_a_file_cut_short_is_called_cut_short_as_the_window_says(tmp_path: Path, test_model_path: Path,
                                                                 keep: int) -> None:
    """A download stopped within the header: its counts are real, the file too short for them. The window's
    sentence (the library's, which the Models page shows) and the command's are the same."""
    from app.errors import InvalidModelError
    from app.history import HistoryStore, open_database
    from app.library import Library

    cut = tmp_path / "cut-Q4_K_M.gguf"
    cut.write_bytes(test_model_path.read_bytes()[:keep])
    with pytest.raises(InvalidModelError) as window:
        Library(HistoryStore(open_database(tmp_path / "window.sqlite3")), tmp_path / "models").import_model(cut)
    assert "cut short" in str(window.value) and "unreasonable" not in str(window.value)
    for args in (("inspect", str(cut)), ("models", "import", str(cut)), ("chat", str(cut), "--prompt", "hi")):
        result = hearth(tmp_path / "home", *args)
        assert result.returncode == 1 and result.stderr.strip() == f"hearth: {window.value}"


def test_a_document_that_does_not_read_like_text_is_noted_on_stderr(tmp_path: Path) -> None:
    import random

    rng = random.Random(1)
    odd = tmp_path / "odd.txt"
    odd.write_bytes(bytes(rng.randrange(0xA0, 0x100) if index % 6 else 0x20 for index in range(3000)))
    result = hearth(tmp_path / "home", "summarize", str(odd), "--model", "no-such-model")
    assert "hearth: note: Parts of “odd.txt” do not read like text" in result.stderr
    assert result.returncode == 1 and "No model called" in result.stderr


@pytest.mark.engine
def test_chat_says_when_it_stopped_a_loop(tmp_path: Path, real_model_path: Path) -> None:
    """The terminal gets the same stop as the window: without a repeat penalty SmolLM2 loops, and the answer ends
    with a line that says why (and ``--json`` says "degenerate")."""
    from app.paths import Paths
    from app.settings import Settings

    settings_file = Paths.under(tmp_path).ensure().settings_file
    settings = Settings()
    settings.generation.repeat_penalty = 1.0
    settings.save(settings_file)
    loop = ("chat", str(real_model_path), "--prompt", "Write the list: Section 1, Section 2, Section 3, and go on.",
            "--temperature", "0", "--seed", "1", "--max-tokens", "400")
    result = hearth(tmp_path, *loop)
    assert result.returncode == 0, result.stderr
    assert "Section 5:" in result.stdout and result.stdout.count("\n") < 20
    assert "[stopped: the model began repeating itself]" in result.stderr
    answer = json.loads(hearth(tmp_path, *loop, "--json").stdout)
    assert answer["finish_reason"] == "degenerate" and answer["completion_tokens"] < 200
