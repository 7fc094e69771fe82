"""No engine worker outlives its app: a worker notices its app died (kill -9) and ends even while busy, and the
next start ends a worker an app left behind without touching those of apps still running."""

from __future__ import annotations

import contextlib
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from tests.helpers import ROOT

GENEROUS_S = 60.0  # a wait for the event (the worker ends within ORPHAN_GRACE_S, half a second), not a measure


def _helper(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "tests.helpers.orphans", *args], cwd=ROOT,
                            stdout=subprocess.PIPE, text=True)


def _ends(pid: int) -> bool:
    """Whether the process ``pid`` ends (or is only a zombie left to reap) within the generous wait."""
    try:
        process = psutil.Process(pid)
        process.wait(timeout=GENEROUS_S)
    except psutil.TimeoutExpired:
        return process.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        pass
    return True


def _kill(pid: int) -> None:
    with contextlib.suppress(psutil.Error):
        psutil.Process(pid).kill()


def test_a_busy_worker_ends_when_its_app_is_killed() -> None:
    app = _helper("busy")
    assert app.stdout is not None
    worker = int(app.stdout.readline())
    assert psutil.Process(worker).is_running()
    app.kill()  # kill -9: no shutdown, no closing of anything
    app.wait()
    try:
        assert _ends(worker), "the worker went on after its app was killed"
    finally:
        _kill(worker)


@pytest.mark.engine
def test_the_next_start_ends_a_worker_left_by_a_dead_app_and_no_other(tmp_path: Path) -> None:
    from app.engine import EngineClient
    from app.engine.watchdog import register_worker

    folder = tmp_path / "engines"
    left = _helper("stale", str(folder))
    assert left.stdout is not None
    stale = int(left.stdout.readline())
    assert left.wait() == 0 and psutil.Process(stale).is_running()  # its app is gone, it is not
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    register_worker(folder, alive.pid)  # the worker of an app that still runs: this test
    engine = EngineClient(registry_dir=folder)
    try:
        engine.start()
        assert _ends(stale), "the stale worker was not ended"
        assert alive.poll() is None
        assert engine.pid is not None and (folder / f"engine-{engine.pid}.json").is_file()
    finally:
        engine.shutdown()
        alive.kill()
        alive.wait()
        _kill(stale)
    assert sorted(p.name for p in folder.iterdir()) == [f"engine-{alive.pid}.json"]  # its own record is gone
