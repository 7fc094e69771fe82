"""Apps that die and leave an engine worker behind, as separate processes a test can kill.

``python -m tests.helpers.orphans busy``: starts an engine worker (the real ``run_worker``) whose main thread
is stuck, as in a long prompt llama.cpp cannot be interrupted in, prints its process id and waits to be killed.

``python -m tests.helpers.orphans stale FOLDER``: starts a process that sleeps, records it in FOLDER as its
engine worker (``app.engine.watchdog.register_worker``), prints its process id and exits: the worker of an app
that died without it noticing (a worker that was stopped, or from a version without the watchdog).
"""

from __future__ import annotations

import multiprocessing
import subprocess
import sys
import time
from multiprocessing.connection import Connection
from pathlib import Path


def busy_worker(conn: Connection) -> None:
    import app.engine.worker as worker

    def stuck(_self: object) -> None:
        time.sleep(3600)

    worker._Worker.serve = stuck  # type: ignore[method-assign,assignment]
    worker.run_worker(conn)


def main(argv: list[str]) -> int:
    if argv[0] == "busy":
        context = multiprocessing.get_context("spawn")
        _kept_open, child = context.Pipe()  # the app's end, held until it is killed
        process = context.Process(target=busy_worker, args=(child,), daemon=False)
        process.start()
        print(process.pid, flush=True)
        time.sleep(3600)
        return 0
    from app.engine.watchdog import register_worker

    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    register_worker(Path(argv[1]), sleeper.pid)
    print(sleeper.pid, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
