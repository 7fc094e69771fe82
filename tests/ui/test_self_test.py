"""`hearth --self-test`, run as a person (or CI, on the frozen app) runs it: a separate process, judged by its lines
and its exit status. The frozen bundle runs the same code through `make package-test`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import ROOT

pytestmark = pytest.mark.engine



def _run_self_test(tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], dict[str, Path]]:
    """With HOME, the XDG folders and the temporary folder all pointing into ``tmp_path``, so the test can tell
    that nothing outside the self-test's own temporary folder was written."""
    places = {name: tmp_path / name for name in ("home", "tmp")}
    for place in places.values():
        place.mkdir()
    env = {key: value for key, value in os.environ.items() if key != "HEARTH_HOME"}
    env.update(HOME=str(places["home"]), TMPDIR=str(places["tmp"]), XDG_DATA_HOME=str(places["home"] / "data"),
               XDG_CONFIG_HOME=str(places["home"] / "config"), XDG_STATE_HOME=str(places["home"] / "state"),
               XDG_CACHE_HOME=str(places["home"] / "cache"), QT_QPA_PLATFORM="offscreen")
    result = subprocess.run([sys.executable, "-m", "ui.entry", "--self-test", *args], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=600, check=False)
    return result, places


def _files_under(folder: Path) -> list[Path]:
    return [path for path in folder.rglob("*") if path.is_file()]


def test_self_test_with_a_model_passes_and_says_what_it_checked(tmp_path: Path, test_model_path: Path) -> None:
    result, places = _run_self_test(tmp_path, "--model", str(test_model_path))

    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    expected = ["ok   window shown in ", "ok   engine worker started (pid ",
                f"ok   model loaded: {test_model_path.name}", "ok   generated ",
                "ok   server answered a chat completion on 127.0.0.1:", "ok   history written and read back",
                "ok   document read in a separate process", "self-test passed"]
    assert len(lines) == len(expected), lines
    for line, start in zip(lines, expected, strict=True):
        assert line.startswith(start), lines
    assert " s after launch" in lines[0]
    assert lines[3].split()[2].isdigit() and int(lines[3].split()[2]) > 0
    assert _files_under(places["home"]) == []
    assert _files_under(places["tmp"]) == []


def test_self_test_without_a_model_checks_the_worker_only(tmp_path: Path) -> None:
    result, _ = _run_self_test(tmp_path)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "ok   engine worker started (pid " in result.stdout
    assert "model loaded" not in result.stdout and "generated" not in result.stdout
    assert result.stdout.splitlines()[-1] == "self-test passed"


def test_a_corrupt_model_fails_the_self_test_with_the_reason(tmp_path: Path, test_model_path: Path) -> None:
    corrupt = tmp_path / "corrupt.gguf"
    corrupt.write_bytes(test_model_path.read_bytes()[:4096])

    result, _ = _run_self_test(tmp_path, "--model", str(corrupt))

    assert result.returncode == 1, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[-1].startswith("FAIL model: "), lines
    assert "corrupt.gguf" in lines[-1]
    assert "self-test passed" not in result.stdout
