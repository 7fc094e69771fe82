"""Cold start: Hearth's window against a bare PySide6 window, each from its process's launch to the window on screen.

Every start is a fresh process, offscreen unless a display is set, with a private ``HEARTH_HOME`` in a temporary
folder. Hearth starts through its real entry point (``python -m ui.entry``, what the ``hearth`` command runs) with
``HEARTH_EXIT_AFTER_START=1``: the start runs as a double-click runs it, prints when the window was shown and when
it was ready (services attached), and closes. The bare window prints its figure through the same function
(``ui.qt.first_paint.seconds_until_shown``, which ``--self-test`` reports too), so both are measured the same way.

Hearth starts two ways: a first start (an empty folder: the history is created and migrated, the welcome page
offered) and a start on an existing history (conversations, the test model in the library, the migrations
checked on an up-to-date database). Runs alternate between the three; the medians are compared, target ≤ 3×.

Python's bytecode goes to a cache folder of the benchmark's own (``PYTHONPYCACHEPREFIX``), filled by one unmeasured
start of each kind first: an installed Hearth has its bytecode compiled, and the working tree stays clean. The
keychain is not asked (the null keyring backend), so a person's token is never read. ``--busy N`` measures with N
busy loops running beside it, one per core for a machine that is fully busy.

    .venv/bin/python benchmarks/cold_start.py [--runs 15] [--busy 2]
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT)]  # a plain script: the root makes app, ui and tests.helpers importable

from busy_load import busy_cores, machine_words  # noqa: E402

TARGET = 3.0
TIMEOUT_S = 120
SHOWN = re.compile(r"^window shown in ([0-9.]+) s after launch$", re.MULTILINE)
READY = re.compile(r"^ready in ([0-9.]+) s after launch$", re.MULTILINE)

BARE = """
from PySide6.QtWidgets import QApplication, QMainWindow

from ui.qt.first_paint import seconds_until_shown

app = QApplication([])
window = QMainWindow()
window.show()
print(f"window shown in {seconds_until_shown(window, 10):.3f} s after launch", flush=True)
"""


def child_env(pycache: Path, home: Path | None = None) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}
    env.update(PYTHONPYCACHEPREFIX=str(pycache), PYTHON_KEYRING_BACKEND="keyring.backends.null.Keyring",
               HF_HUB_OFFLINE="1")
    if not env.get("QT_QPA_PLATFORM") and not (env.get("DISPLAY") or env.get("WAYLAND_DISPLAY")):
        env["QT_QPA_PLATFORM"] = "offscreen"
    if home is not None:
        env.update(HEARTH_HOME=str(home), HEARTH_EXIT_AFTER_START="1")
    return env


def run(command: list[str], env: dict[str, str]) -> str:
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=TIMEOUT_S,
                            check=False)
    if result.returncode != 0 or not SHOWN.search(result.stdout):
        raise SystemExit(f"{command[1:3]} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result.stdout


def bare(pycache: Path) -> float:
    return float(SHOWN.findall(run([sys.executable, "-c", BARE], child_env(pycache)))[0])


def hearth(pycache: Path, home: Path) -> tuple[float, float]:
    out = run([sys.executable, "-m", "ui.entry"], child_env(pycache, home))
    ready = READY.findall(out)
    if not ready:
        raise SystemExit(f"Hearth's window never became ready:\n{out}")
    return float(SHOWN.findall(out)[0]), float(ready[0])


def existing_home(folder: Path) -> Path:
    """A history someone has used: conversations with messages, a model in the library, the welcome page seen."""
    from app.history import HistoryStore, open_database
    from app.library import Library
    from app.paths import Paths
    from app.settings import Settings

    from tests.helpers.fetch_test_model import locate

    paths = Paths.under(folder).ensure()
    database = open_database(paths.database)
    store = HistoryStore(database)
    for i in range(40):
        conversation = store.create_conversation(f"Conversation {i + 1}", {})
        for turn in range(5):
            store.add_message(conversation.id, "user", f"Question {turn} " + "words " * 40)
            store.add_message(conversation.id, "assistant", f"Answer {turn} " + "more words " * 120)
    model = locate()
    if model is not None:
        Library(store, paths.models_dir).import_model(model, copy=False)
    database.engine.dispose()
    settings = Settings.load(paths.settings_file)
    settings.welcome_done = True
    settings.save(paths.settings_file)
    return folder


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15, help="measured starts of each kind (default 15)")
    parser.add_argument("--busy", type=int, default=0, help="busy loops running beside it (default 0: quiet)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="hearth-cold-start-") as tmp:
        folder = Path(tmp)
        pycache = folder / "pycache"
        existing = existing_home(folder / "existing")
        firsts = iter(folder / f"first-{i}" for i in range(args.runs + 1))
        bare(pycache)  # these first three compile the bytecode; they are not counted
        hearth(pycache, next(firsts))
        hearth(pycache, existing)
        times: dict[str, list[float]] = {"bare": [], "first": [], "existing": []}
        ready: dict[str, list[float]] = {"first": [], "existing": []}
        with busy_cores(args.busy):
            for _ in range(args.runs):
                times["bare"].append(bare(pycache))
                for kind, home in (("first", next(firsts)), ("existing", existing)):
                    shown, ready_at = hearth(pycache, home)
                    times[kind].append(shown)
                    ready[kind].append(ready_at)
            machine = machine_words(args.busy)

    platform = child_env(Path(tempfile.gettempdir())).get("QT_QPA_PLATFORM") or "the display"
    print(f"cold start, window shown after launch; {args.runs} runs each, alternating; machine {machine}; "
          f"Qt platform: {platform}")
    base = statistics.median(times["bare"])
    print(f"  bare PySide6 window         median {base:.3f} s   (min {min(times['bare']):.3f}, "
          f"max {max(times['bare']):.3f})")
    worst = 0.0
    for kind, words in (("first", "Hearth, first start       "), ("existing", "Hearth, existing history  ")):
        shown = statistics.median(times[kind])
        ratio = shown / base
        worst = max(worst, ratio)
        print(f"  {words}  median {shown:.3f} s   (min {min(times[kind]):.3f}, max {max(times[kind]):.3f})"
              f"   {ratio:.2f}× the bare window;  ready (history open, lists filling) at "
              f"{statistics.median(ready[kind]):.3f} s")
    print(f"target ≤ {TARGET:g}×: {'OK' if worst <= TARGET else 'ABOVE'} (worst {worst:.2f}×)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
