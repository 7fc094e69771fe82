"""Another computer's models from the command line: added with `hearth computers add` (checked first), named
MODEL@COMPUTER by `hearth chat`, the task commands and `hearth compare`, and removed again; the server here is
llama-cpp-python's own (``python -m llama_cpp.server``) on 127.0.0.1."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.paths import Paths
from app.settings import Settings

from tests.helpers.command import hearth
from tests.helpers.free_port import free_port

pytestmark = pytest.mark.engine


def test_add_use_and_remove_a_computer(llama_server: str, test_model_path: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    nobody = hearth(home, "computers", "add", f"127.0.0.1:{free_port()}", online=True)
    assert nobody.returncode == 1 and nobody.stderr.startswith("hearth: Could not reach 127.0.0.1.")

    added = hearth(home, "computers", "add", llama_server, "--name", "Study-PC", "--context", "1024", online=True)
    assert added.returncode == 0, added.stderr
    assert added.stdout.startswith(f"Added Study-PC ({llama_server}) with 1 model; it does not say its context")
    assert f"  {test_model_path}@Study-PC" in added.stdout
    assert Settings.load(Paths.under(home).settings_file).remote_computers == {llama_server: "Study-PC"}

    listed = hearth(home, "computers", "list", online=True)
    assert listed.returncode == 0 and listed.stdout.splitlines()[1] == "  stories260K@Study-PC"

    answered = hearth(home, "chat", "stories260K@Study-PC", "--prompt", "Once upon a time", "--max-tokens", "8",
                      "--json", online=True)
    assert answered.returncode == 0, answered.stderr
    result = json.loads(answered.stdout)
    assert result["text"] and result["model"] == "stories260K on Study-PC"

    document = tmp_path / "story.txt"
    document.write_text("Lily had a little dog. The dog liked to run in the park.\n\nOne day it saw a ball.",
                        encoding="utf-8")
    summarized = hearth(home, "summarize", str(document), "--model", "stor@study-pc", "--length", "short",
                        online=True)
    assert summarized.returncode == 0, summarized.stderr
    assert summarized.stdout.strip()

    compared = hearth(home, "compare", str(test_model_path), "stories260K@Study-PC", "--prompt", "Once upon a time",
                      "--max-tokens", "8", "--json", online=True)
    assert compared.returncode == 0, compared.stderr
    entries = json.loads(compared.stdout)["models"]
    assert [e["status"] for e in entries] == ["done", "done"] and all(e["output"] for e in entries)

    missing = hearth(home, "chat", "gone@Study-PC", "--prompt", "Hi", online=True)
    assert missing.returncode == 1 and missing.stderr == "hearth: Study-PC has no model called “gone”. It has: " \
                                                        "stories260K.\n"
    offline = Paths.under(home)
    settings = Settings.load(offline.settings_file)
    settings.work_offline = True
    settings.save(offline.settings_file)
    blocked = hearth(home, "chat", "stories260K@Study-PC", "--prompt", "Hi", online=True)
    assert blocked.returncode == 1 and "offline" in blocked.stderr

    removed = hearth(home, "computers", "remove", "study-pc")
    assert removed.returncode == 0 and removed.stdout == "Removed Study-PC.\n"
    assert Settings.load(offline.settings_file).remote_computers == {}
