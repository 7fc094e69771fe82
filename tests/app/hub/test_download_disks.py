"""A download that cannot be saved says why in a sentence, on real disks: too small, read-only, or a folder Hearth
may not write to (``tests/helpers/disks.py``), with the Hub stand-in on 127.0.0.1 serving the file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import ROOT
from tests.helpers.disks import as_ordinary_user, file_modes_can_bind, run_on_small_disk, small_disks_available
from tests.helpers.hub_stand_in import HubStandIn, hub_fixture, write_big_gguf  # noqa: F401

CHILD = """
import json, subprocess, sys
from pathlib import Path
from app.hub.downloads import DownloadManager

models, condition, repo, name = Path(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
if condition == "read-only":
    models.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-o", "remount,ro", str(models.parent)], check=True)
manager = DownloadManager(models / ".downloads", models)
final = manager.wait(manager.enqueue(repo, [name]), 120)
print(json.dumps([final.state.value, final.error]))
"""
REPO, NAME = "owner/big-GGUF", "big-Q4_K_M.gguf"


@pytest.fixture
def served(hub: HubStandIn, tmp_path: Path) -> HubStandIn:
    hub.add_repo(REPO, {NAME: write_big_gguf(tmp_path / NAME, size=24 << 20)})
    return hub


def _outcome(done: subprocess.CompletedProcess[str]) -> tuple[str, str]:
    assert done.returncode == 0, done.stderr
    state, error = json.loads(done.stdout.strip().splitlines()[-1])
    return state, error or ""


@pytest.mark.skipif(not small_disks_available(), reason="needs a private tmpfs (Linux user namespaces)")
@pytest.mark.parametrize(("condition", "words"), [
    ("small", "Not enough free disk space: the download needs 25.2 MB and "),
    ("read-only", "The models folder is on a read-only disk"),
])
def test_a_disk_that_cannot_take_the_download_is_named_in_a_sentence(
        served: HubStandIn, tmp_path: Path, condition: str, words: str) -> None:
    disk = tmp_path / "disk"
    state, error = _outcome(run_on_small_disk(disk, "8m", sys.executable, "-c", CHILD, str(disk / "models"),
                                              condition, REPO, NAME))
    assert state == "failed" and words in error, error
    assert "unexpectedly" not in error and "Errno" not in error


@pytest.mark.skipif(not file_modes_can_bind(), reason="root without setpriv ignores file modes")
def test_a_models_folder_hearth_may_not_write_is_named_in_a_sentence(served: HubStandIn, tmp_path: Path) -> None:
    models = tmp_path / "models"
    models.mkdir()
    models.chmod(0o555)
    try:
        done = subprocess.run(as_ordinary_user([sys.executable, "-c", CHILD, str(models), "forbidden", REPO, NAME]),
                              cwd=ROOT, env=os.environ.copy(), capture_output=True, text=True, timeout=120)
    finally:
        models.chmod(0o755)
    state, error = _outcome(done)
    assert state == "failed" and f"Hearth is not allowed to write in {models / '.downloads'}" in error, error
