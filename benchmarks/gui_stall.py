"""The window stays responsive: the longest the GUI thread's event loop is held up while an answer streams, a
download runs and a document is read, all at once.

The real window (offscreen unless a display is set) starts as ``hearth`` starts it, on real services in a private
``HEARTH_HOME``, and is driven through its controls as a person would (the calls the GUI tests make):

- Chats: the test model (or ``--model``) is loaded with the Load button; a question is typed and sent with Enter,
  and each answer, once finished, is asked again with its Regenerate button, so answers stream the whole time
  (answers as long as Hearth's default allows, or ``--max-tokens``); at the end, back on Chats, Stop ends the last.
- Discover: a search on the project's Hub stand-in (its own process on 127.0.0.1, as the Hub is another computer),
  a result and a file are chosen and Download is pressed; the file (40 MB by default) is sent at a throttled
  speed, so it downloads for several seconds, then is checked and lands in the library.
- Tasks: a generated PDF of many pages is opened (as a drop opens it) and read in Hearth's document reader.

A timer on the GUI thread ticks every 5 ms from the moment the three start until all have ended; the time between
two ticks is how long the event loop could not run. Prints the largest gap, the 99th percentile, and every stall
above the target with what was going on (``--trace`` adds the GUI thread's stack and the garbage collector's runs).
Beside it, a bare Qt window in a process of its own runs the same timer: what it sees is the machine's own share of
the gaps (other processes, the scheduler), printed for reference.

    .venv/bin/python benchmarks/gui_stall.py [--model BIGGER.gguf] [--seconds 12] [--max-tokens 512] [--pages 150]
                                             [--busy 2] [--trace]
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import types
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QEventLoop, QObject, Qt, QTimer
from PySide6.QtGui import QIcon
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QPushButton, QWidget

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT)]  # a plain script: the root makes app, ui and tests.helpers importable

from busy_load import busy_cores, machine_words  # noqa: E402
from summarize_long import write_document  # noqa: E402

from app.paths import Paths  # noqa: E402
from app.settings import GenerationSettings, Settings  # noqa: E402
from ui.main import apply_style, resource_path, start_window  # noqa: E402
from ui.main_window import MainWindow  # noqa: E402

from tests.helpers.fetch_test_model import locate  # noqa: E402
from tests.helpers.hub_stand_in import Fault, start_hub, use_stand_in, write_big_gguf  # noqa: E402

TICK_MS = 5
PAUSE_MS = 150  # between a person's actions
KEY_MS = 40  # between keys: 25 keys a second, a fast typist
TARGET_MS = 50.0
TIMEOUT_S = 300.0
REPO = "bench/responsive-GGUF"
NAME = "responsive-Q4_K_M.gguf"
MIB = 1 << 20


REFERENCE = """
import statistics, sys, threading, time
from PySide6.QtCore import QTimer, Qt
from PySide6.QtWidgets import QApplication, QMainWindow

app = QApplication([])
window = QMainWindow()
window.show()
gaps, last, done = [], [time.perf_counter()], threading.Event()

def tick():
    now = time.perf_counter()
    gaps.append((now - last[0]) * 1000)
    last[0] = now

timer = QTimer(interval=5)
timer.setTimerType(Qt.TimerType.PreciseTimer)
timer.timeout.connect(tick)
timer.start()
threading.Thread(target=lambda: (sys.stdin.read(), done.set()), daemon=True).start()
poll = QTimer(interval=100)
poll.timeout.connect(lambda: done.is_set() and app.quit())
poll.start()
app.exec()
print(f"{max(gaps):.1f} {statistics.quantiles(gaps, n=100)[98]:.1f}")
"""


class StallMeter(QObject):
    """Ticks every 5 ms on the GUI thread and keeps the time between ticks, with a note of what was running."""

    def __init__(self, doing: Callable[[], str]) -> None:
        super().__init__()
        self._doing = doing
        self._timer = QTimer(self, interval=TICK_MS)
        self._timer.setTimerType(Qt.TimerType.PreciseTimer)
        self._timer.timeout.connect(self._tick)
        self.gaps: list[float] = []
        self.stalls: list[tuple[float, float, str]] = []  # at (s since start), gap (ms), what was running
        self.stall_spans: list[tuple[float, float]] = []  # perf_counter from, to
        self._start = self._last = 0.0

    def start(self) -> None:
        self._start = self._last = time.perf_counter()
        self._timer.start()

    def stop(self) -> None:
        self._timer.stop()

    def _tick(self) -> None:
        now = time.perf_counter()
        gap = (now - self._last) * 1000
        self.gaps.append(gap)
        if gap > TARGET_MS:
            self.stalls.append((now - self._start, gap, self._doing()))
            self.stall_spans.append((self._last, now))
        self._last = now


def wait_until(condition: Callable[[], bool], what: str, timeout_s: float = TIMEOUT_S) -> None:
    """Runs the event loop (blocked, not spinning: the meter must not count the benchmark's own polling) until
    ``condition`` holds."""
    if condition():
        return
    loop = QEventLoop()
    deadline = time.monotonic() + timeout_s
    failed: list[bool] = []

    def check() -> None:
        if condition():
            loop.quit()
        elif time.monotonic() > deadline:
            failed.append(True)
            loop.quit()

    poll = QTimer(interval=20)
    poll.timeout.connect(check)
    poll.start()
    loop.exec()
    poll.stop()
    if failed:
        raise SystemExit(f"gave up waiting for {what} after {timeout_s:g} s")


def pause(ms: int) -> None:
    """Lets the event loop run for ``ms`` (blocked, not sleeping on the GUI thread)."""
    loop = QEventLoop()
    QTimer.singleShot(ms, loop.quit)
    loop.exec()


def click(button: QPushButton) -> None:
    """A click, then the moment a person takes before the next action: done in one go, a whole scripted sequence
    would run in one event-loop turn and be counted as the window's stall."""
    QTest.mouseClick(button, Qt.MouseButton.LeftButton)
    pause(PAUSE_MS)


def type_text(widget: QWidget, text: str) -> None:
    for character in text:
        QTest.keyClicks(widget, character)
        pause(KEY_MS)


class StackSampler:
    """``--trace``: a thread that samples the GUI thread's Python stack every 2 ms, to tell what a stall was made of
    (Qt's own work shows as the Python line that led into it). Off by default: it costs the GUI thread the GIL."""

    def __init__(self) -> None:
        self.samples: list[tuple[float, str]] = []
        self.held: list[tuple[float, float, list[str]]] = []  # from, to, every other thread's place: the GIL was held
        self.collections: list[tuple[float, float, int]] = []  # from, to, generation: the cycle collector's runs
        self._gui = threading.main_thread().ident
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._collecting = 0.0

    def start(self) -> None:
        gc.callbacks.append(self._collection)
        self._thread.start()

    def stop(self) -> None:
        gc.callbacks.remove(self._collection)
        self._stop.set()
        self._thread.join()

    def _collection(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._collecting = time.perf_counter()
        else:
            self.collections.append((self._collecting, time.perf_counter(), info["generation"]))

    def _run(self) -> None:
        last = time.perf_counter()
        while not self._stop.wait(0.002):
            now = time.perf_counter()
            frames = sys._current_frames()
            frame = frames.get(self._gui)  # type: ignore[arg-type]
            if frame is not None:
                self.samples.append((now, _where(frame, 8)))
            if now - last > 0.03:  # this thread could not run: where every other thread is now tells who held on
                names = {thread.ident: thread.name for thread in threading.enumerate()}
                self.held.append((last, now, [f"{names.get(ident, ident)}: {_where(f, 3)}"
                                              for ident, f in frames.items()
                                              if ident not in (threading.get_ident(), self._gui)]))
            last = now

    def during(self, start: float, end: float) -> list[tuple[int, str]]:
        counts = Counter(stack for at, stack in self.samples if start <= at <= end)
        counts.update(f"garbage collection of generation {generation}, {(stop - begin) * 1000:.0f} ms"
                      for begin, stop, generation in self.collections if begin <= end and stop >= start)
        for begin, stop, places in self.held:
            if begin <= end and stop >= start:
                counts.update(f"sampler held off {(stop - begin) * 1000:.0f} ms; then {place}" for place in places)
        return [(n, stack) for stack, n in counts.most_common(12)]


def _where(frame: Any, depth: int) -> str:
    return " <- ".join(f"{Path(f.filename).name}:{f.lineno} {f.name}"
                       for f in reversed(traceback.extract_stack(frame)[-depth:]))


class Answers(QObject):
    """Keeps an answer streaming: each finished answer is asked again with its Regenerate button, until told to stop."""

    def __init__(self, window: MainWindow) -> None:
        super().__init__()
        self.window = window
        self.finished = self.deltas = self.characters = 0
        self.streaming_since: float | None = None
        self.streamed_s = 0.0
        self.stopping = False
        window.bridge.answerStarted.connect(self._started)
        window.bridge.answerDelta.connect(self._delta)
        window.bridge.answerFinished.connect(self._finished)

    def ask(self, text: str) -> None:
        composer = self.window.chat.view.composer
        composer.setFocus()
        type_text(composer, text)
        QTest.keyClick(composer, Qt.Key.Key_Return)

    def stop(self) -> None:
        """Back to the chat and Stop, as a person ends an answer; returns when it has ended."""
        self.stopping = True
        click(self.window.chats_tab)
        stop = self.window.chat.view.stop_button
        if stop.isVisible():
            finished = self.finished
            click(stop)
            wait_until(lambda: self.finished > finished, "the answer to stop")

    def _started(self, _event: object) -> None:
        self.streaming_since = time.perf_counter()

    def _delta(self, _conversation: int, _message: int, text: str) -> None:
        self.deltas += 1
        self.characters = max(self.characters, len(text))

    def _finished(self, event: Any) -> None:
        self.finished += 1
        if self.streaming_since is not None:
            self.streamed_s += time.perf_counter() - self.streaming_since
            self.streaming_since = None
        if not self.stopping:
            QTimer.singleShot(0, lambda: self._again(event.message.id))

    def _again(self, message_id: int) -> None:
        view = self.window.chat.view.message_view(message_id)
        if view is not None and not self.stopping:
            QTest.mouseClick(view.regenerate_button, Qt.MouseButton.LeftButton)


def serve(folder: Path, size_mb: int, link_mb_s: float) -> int:
    """The stand-in in a process of its own: serving from the window's process would make the GUI thread share
    the interpreter lock with the server, which the real Hub does not."""
    with start_hub() as hub:
        source = folder / NAME
        if not source.exists():
            write_big_gguf(source, size=size_mb * MIB)
        hub.add_repo(REPO, {NAME: source}, downloads=7)
        hub.fail(f"*/{NAME}", Fault.slow(link_mb_s * 1e6), times=None, method="GET")
        print(hub.url, flush=True)
        sys.stdin.read()
    return 0


def open_window(folder: Path, max_tokens: int) -> MainWindow:
    """Hearth as a start opens it (``start_window``), for someone who has seen the welcome page before."""
    paths = Paths.under(folder).ensure()
    settings = Settings.load(paths.settings_file)
    settings.welcome_done = True
    settings.generation.max_tokens = max_tokens
    settings.save(paths.settings_file)
    failures: list[BaseException] = []
    ready: list[bool] = []
    window = start_window(paths, Settings.load(paths.settings_file), QIcon(str(resource_path("icons", "hearth.svg"))),
                          failed=failures.append)
    window.ready.connect(lambda: ready.append(True))
    wait_until(lambda: bool(ready or failures), "the window's services")
    if failures:
        raise SystemExit(f"Hearth could not start: {failures[0]}")
    window.settings.generation.max_tokens = max_tokens
    return window


def add_models(window: MainWindow, models: list[Path]) -> None:
    for count, model in enumerate(models, start=1):
        window.library.import_model(model, copy=False)
        wait_until(lambda count=count: window.library_model.rowCount() == count, f"{model.name} in the library")  # type: ignore[misc]


def load_for_chat(window: MainWindow, model: Path) -> None:
    record = next(m for m in window.library_model.items() if Path(m.path) == model)
    window.chat.view.model_bar.select(record.id)
    loaded: list[object] = []
    window.bridge.modelLoaded.connect(loaded.append)
    click(window.chat.view.model_bar.load_button)
    wait_until(lambda: bool(loaded), f"{model.name} to load")


def start_download(window: MainWindow) -> None:
    click(window.discover_tab)
    view = window.discover.view
    type_text(view.query, "responsive")
    click(next(b for b in view.findChildren(QPushButton) if b.text() == "Search"))
    wait_until(lambda: view.results.count() == 1 and REPO in view.results.item(0).text(), "the Hub search")
    view.results.setCurrentRow(0)
    wait_until(lambda: view.files.rowCount() == 1, "the repository's files")
    pause(PAUSE_MS)
    view.files.selectRow(0)
    pause(PAUSE_MS)
    click(view.download_button)


def download_state(window: MainWindow) -> str:
    jobs = window.services.downloads.jobs()
    return jobs[0].state.value if jobs else "none"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="a larger model to chat with (default: the test model)")
    parser.add_argument("--seconds", type=float, default=12.0, help="stream answers at least this long")
    parser.add_argument("--max-tokens", type=int, default=GenerationSettings().max_tokens,
                        help="the answer length asked for (default: Hearth's own default)")
    parser.add_argument("--pages", type=int, default=150, help="pages of the PDF the Tasks page reads")
    parser.add_argument("--download-mb", type=int, default=40)
    parser.add_argument("--link-mb-s", type=float, default=5.0, help="the download's speed (default 5 MB/s)")
    parser.add_argument("--busy", type=int, default=0, help="busy loops running beside it (default 0: quiet)")
    parser.add_argument("--trace", action="store_true", help="sample the GUI thread's stack to explain stalls")
    parser.add_argument("--serve", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        return serve(args.serve, args.download_mb, args.link_mb_s)
    model = args.model.expanduser().resolve() if args.model else locate()
    if model is None:
        raise SystemExit("the test model is missing: run `make test` or tests/helpers/fetch_test_model.py")
    if not os.environ.get("QT_QPA_PLATFORM") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
    os.environ["PYTHON_KEYRING_BACKEND"] = "keyring.backends.null.Keyring"  # a person's token is never read

    with tempfile.TemporaryDirectory(prefix="hearth-gui-stall-") as tmp, busy_cores(args.busy):
        folder = Path(tmp)
        server = subprocess.Popen([sys.executable, __file__, "--serve", str(folder), "--download-mb",
                                   str(args.download_mb), "--link-mb-s", str(args.link_mb_s)],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert server.stdin is not None and server.stdout is not None
        patch = pytest.MonkeyPatch()
        try:
            endpoint = server.stdout.readline().strip()
            use_stand_in(types.SimpleNamespace(url=endpoint), patch, folder / "hf-home")  # type: ignore[arg-type]
            return measure(args, model, folder)
        finally:
            server.stdin.close()
            server.wait(30)
            patch.undo()


def measure(args: argparse.Namespace, model: Path, folder: Path) -> int:
    app = QApplication.instance() or QApplication([sys.argv[0]])
    assert isinstance(app, QApplication)
    apply_style(app)
    window = open_window(folder / "home", args.max_tokens)
    test_model = locate()
    models = [model] + ([test_model] if test_model is not None and test_model != model else [])
    add_models(window, models)
    load_for_chat(window, model)
    document = write_document(folder / "long.pdf", args.pages)
    answers = Answers(window)
    read_at: list[float] = []

    def doing() -> str:
        running = ["an answer streaming" if answers.streaming_since else "between answers",
                   f"download {download_state(window)}",
                   "document read" if read_at else "document being read"]
        return ", ".join(running)

    meter = StallMeter(doing)
    sampler = StackSampler() if args.trace else None
    if sampler is not None:
        sampler.start()
    reference = subprocess.Popen([sys.executable, "-c", REFERENCE], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                 text=True)
    meter.start()
    started = time.perf_counter()
    answers.ask("Once upon a time")
    wait_until(lambda: answers.deltas > 0, "the answer to start streaming")
    start_download(window)
    wait_until(lambda: download_state(window) == "downloading", "the download to start")
    click(window.tasks_tab)
    window.tasks.open_file(document)
    details = window.tasks.view.drop_zone.details
    wait_until(lambda: details.text().startswith("PDF · "), "the document to be read")
    read_at.append(time.perf_counter())
    wait_until(lambda: download_state(window) == "done", "the download to finish")
    downloaded_at = time.perf_counter()
    wait_until(lambda: window.library_model.rowCount() == len(models) + 1, "the download in the library")
    wait_until(lambda: time.perf_counter() - started >= args.seconds, "the answers to stream long enough")
    answers.stop()
    meter.stop()
    reference_gaps, _ = reference.communicate(timeout=60)
    if sampler is not None:
        sampler.stop()
    elapsed = time.perf_counter() - started
    machine = machine_words(args.busy)
    window.close()

    gaps = sorted(meter.gaps)
    largest = gaps[-1]
    p99 = statistics.quantiles(gaps, n=100)[98]
    print(f"GUI event loop while streaming, downloading and reading at once; machine {machine}; "
          f"Qt platform: {app.platformName()}")
    print(f"  {elapsed:.1f} s measured, {len(gaps)} ticks of {TICK_MS} ms: largest gap {largest:.1f} ms, "
          f"99th percentile {p99:.1f} ms, median {statistics.median(gaps):.1f} ms")
    bare_largest, bare_p99 = reference_gaps.split()
    print(f"  beside it, a bare Qt window in its own process: largest gap {bare_largest} ms, 99th percentile "
          f"{bare_p99} ms (the machine's share)")
    print(f"  chat: {model.name}, answers of up to {args.max_tokens} tokens: {answers.finished} answers, the longest "
          f"{answers.characters:,} characters, {answers.deltas} streamed updates over {answers.streamed_s:.1f} s")
    print(f"  download: {args.download_mb} MB at {args.link_mb_s:g} MB/s, done after {downloaded_at - started:.1f} s; "
          f"document: {args.pages}-page PDF read after {read_at[0] - started:.1f} s ({details.text()})")
    for (at, gap, what), (begin, end) in zip(meter.stalls, meter.stall_spans, strict=True):
        print(f"  stall of {gap:.0f} ms at {at:.2f} s ({what})")
        for count, stack in sampler.during(begin, end) if sampler is not None else []:
            print(f"      {count} × {stack}")
    print(f"target ≤ {TARGET_MS:g} ms: {'OK' if largest <= TARGET_MS else 'ABOVE'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
