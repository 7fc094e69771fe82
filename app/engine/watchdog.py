"""No engine worker outlives the app or command that started it.

Two halves. **In the worker**, ``watch_parent`` waits on the sentinel ``multiprocessing`` gives every spawned
process (the write end of a pipe the parent holds on Linux and macOS, a handle of the parent process on Windows),
which wakes the moment the parent dies however it died (kill -9, a crash). The worker then has
``ORPHAN_GRACE_S`` to end as usual (its reader thread sees the pipe close too, and an idle worker sets its
conversations' caches aside and leaves) before it ends itself, so a worker busy in llama.cpp (a long prompt
cannot be interrupted) does not go on for seconds or minutes. ``PR_SET_PDEATHSIG`` is not used: on Linux it
fires when the *thread* that started the worker ends, and the app starts workers from short-lived threads
(a forced stop restarts it from a timer).

**In the app**, each ``EngineClient`` records the workers it starts in a folder (``Paths.engines_dir``): the
worker's and its parent's process ids with their start times, so a recycled process id is never mistaken for
either. ``end_stale_workers`` (called before each start) ends a recorded worker whose parent is gone: one that
was stopped or frozen when its app died, or left by a version without the watchdog. Workers of an app or a
command still running are left alone.
"""

from __future__ import annotations

import contextlib
import json
import logging
import multiprocessing
import os
import threading
from multiprocessing.connection import wait
from pathlib import Path

import psutil

log = logging.getLogger(__name__)

ORPHAN_GRACE_S = 0.5
_SAME_START_S = 1.0  # start times are read twice from the system clock's record; they agree to far better
_RECORD = "engine-{pid}.json"


def watch_parent(grace_s: float = ORPHAN_GRACE_S) -> bool:
    """In a spawned worker: end the process ``grace_s`` after its parent dies. ``False`` when there is no parent
    to watch (the function runs in the app's own process, as in some tests)."""
    parent = multiprocessing.parent_process()
    sentinel = getattr(parent, "sentinel", None) if parent is not None else None
    if sentinel is None:
        return False

    def watch() -> None:
        wait([sentinel])
        log.warning("the app that started the engine is gone: the engine ends")
        threading.Event().wait(grace_s)  # the main thread may end on its own meanwhile
        os._exit(0)

    threading.Thread(target=watch, name="parent-watchdog", daemon=True).start()
    return True


def register_worker(folder: Path, pid: int) -> None:
    """Record that this process started the worker ``pid``; a failure only costs the stale-worker check."""
    try:
        record = {"worker": pid, "worker_started": psutil.Process(pid).create_time(),
                  "parent": os.getpid(), "parent_started": psutil.Process().create_time()}
        folder.mkdir(parents=True, exist_ok=True)
        (folder / _RECORD.format(pid=pid)).write_text(json.dumps(record), encoding="utf-8")
    except (OSError, psutil.Error):
        log.warning("could not record engine worker %d", pid, exc_info=True)


def unregister_worker(folder: Path, pid: int) -> None:
    with contextlib.suppress(OSError):
        (folder / _RECORD.format(pid=pid)).unlink(missing_ok=True)


def end_stale_workers(folder: Path, timeout: float = 5.0) -> list[int]:
    """End every recorded worker whose parent is gone, and forget the records of workers that are gone; returns
    the process ids ended."""
    ended: list[psutil.Process] = []
    for path in sorted(folder.glob(_RECORD.format(pid="*"))):
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
            worker, worker_started = int(record["worker"]), float(record["worker_started"])
            parent, parent_started = int(record["parent"]), float(record["parent_started"])
        except (OSError, ValueError, KeyError, TypeError):
            log.warning("an unreadable engine record %s is removed", path.name)
            path.unlink(missing_ok=True)
            continue
        if _running(parent, parent_started):
            continue  # another window or command that is still running
        process = _running(worker, worker_started)
        if process is not None:
            log.warning("ending engine worker %d: the app that started it is gone", worker)
            with contextlib.suppress(psutil.Error):
                process.kill()
                ended.append(process)
        path.unlink(missing_ok=True)
    if ended:
        psutil.wait_procs(ended, timeout=timeout)
    return [process.pid for process in ended]


def _running(pid: int, started: float) -> psutil.Process | None:
    """The process ``pid`` if it is the one that started at ``started`` and has not ended."""
    try:
        process = psutil.Process(pid)
        if abs(process.create_time() - started) > _SAME_START_S or process.status() == psutil.STATUS_ZOMBIE:
            return None
        return process
    except psutil.Error:
        return None
