"""Large histories stay smooth: how long the GUI thread is held up when Hearth starts on a history of many
conversations, and when a person opens a long conversation and scrolls back through it.

A private ``HEARTH_HOME`` gets a real history (migrated as Hearth migrates it) of ``--conversations`` chats (50,000 by
default); the second newest holds ``--messages`` messages (1,000): questions, and answers of a few paragraphs with
lists and code, as a model writes them. Then, in the real window (offscreen unless a display is set), started as
``hearth`` starts it:

1. **start**: from the moment the window is shown until the conversation list is filled and the newest chat is open;
2. **open**: the long conversation is clicked in the list; until its last messages are on screen;
3. **scroll back**: the messages are scrolled up to the first one, a page-up a person's moment apart;
4. **answers**: the list follows answers starting and ending in four chats, one far down the list.

``--search`` measures finding things instead: a history of 100,000 messages in 2,000 conversations (questions and
answers of realistic lengths, in English, French, German, Spanish, Japanese and Chinese) is written through the
triggers that index it, then 50 different searches run as the window runs them (``HistoryStore.search``, 50 matches
of each kind at most): their median and worst time (targets: 20 ms and 50 ms), after a first search in each script
(printed apart: it compiles the statements), and the database's size with and without the index. Then, on that
history against an empty one, the time to open the window (``hearth`` started afresh as ``cold_start.py`` starts it,
medians of ``--runs``; target: ready no more than 100 ms later than on the empty one), the cost of SQLite's two checks
(a start runs the quick one, ``app.history.backups.look_over``), and a full export to JSON (``hearth history export``,
end to end).

A timer on the GUI thread ticks every 5 ms (``gui_stall.StallMeter``); the time between two ticks is how long the
event loop could not run. Each step prints its longest gap and how long it took; the same start on an empty
history is printed first, as the floor that is not the history's. Target: the start and the open each < 50 ms.

    .venv/bin/python benchmarks/history_scale.py [--conversations 50000] [--messages 1000] [--busy 2]
    .venv/bin/python benchmarks/history_scale.py --search [--runs 7] [--busy 2]
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QIcon
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT)]  # a plain script: the root makes app, ui and tests.helpers importable

from busy_load import busy_cores, machine_words  # noqa: E402
from gui_stall import TARGET_MS, StackSampler, StallMeter, pause, wait_until  # noqa: E402
from sqlalchemy import insert  # noqa: E402

from app.history import open_database  # noqa: E402
from app.history.models import Conversation, Message  # noqa: E402
from app.paths import Paths  # noqa: E402
from app.settings import Settings  # noqa: E402
from ui.main import apply_style, resource_path, start_window  # noqa: E402
from ui.main_window import MainWindow  # noqa: E402
from ui.qt import background  # noqa: E402

LONG_TITLE = "A long conversation about bread"
WORDS = ["flour", "water", "salt", "yeast", "dough", "rise", "oven", "crust", "crumb", "knead", "proof", "starter",
         "hydration", "gluten", "bake", "loaf", "temperature", "hours", "overnight", "fold", "shape", "score", "steam"]


def answer_text(rng: random.Random) -> str:
    """An answer as a model writes one: paragraphs, a list, now and then a code block."""
    def sentence() -> str:
        words = [rng.choice(WORDS) for _ in range(rng.randint(8, 18))]
        return " ".join(words).capitalize() + "."

    parts = [" ".join(sentence() for _ in range(rng.randint(2, 5))) for _ in range(rng.randint(1, 3))]
    parts.append("\n".join(f"- **{rng.choice(WORDS)}**: {sentence()}" for _ in range(rng.randint(2, 5))))
    if rng.random() < 0.25:
        parts.append("```python\n" + "\n".join(f"{rng.choice(WORDS)} = {rng.randint(1, 500)}  # {sentence()}"
                                                for _ in range(rng.randint(3, 8))) + "\n```")
    parts.append(sentence())
    return "\n\n".join(parts)


def make_history(folder: Path, conversations: int, messages: int) -> None:
    """The history, written in bulk (Hearth's own writes would take minutes): every chat a few messages' worth of
    metadata, the long one second newest."""
    rng = random.Random(7)
    paths = Paths.under(folder).ensure()
    database = open_database(paths.database)
    start = datetime(2025, 1, 1, tzinfo=UTC)
    rows = [{"id": n + 1, "title": f"Chat number {n + 1}: " + " ".join(rng.choice(WORDS) for _ in range(4)),
             "created_at": start + timedelta(minutes=n), "updated_at": start + timedelta(minutes=n),
             "model_name": "stories260K", "system_prompt": "", "settings": {}}
            for n in range(conversations)]
    long_id = max(1, conversations - 1)
    if rows:
        rows[long_id - 1]["title"] = LONG_TITLE
    if not rows:
        database.close()
        return
    with database.session() as session:
        session.execute(insert(Conversation), rows)
        when = start
        session.execute(insert(Message), [
            {"conversation_id": long_id, "role": "user" if n % 2 == 0 else "assistant",
             "content": (f"Question {n // 2 + 1}: how do I " + " ".join(rng.choice(WORDS) for _ in range(8)) + "?")
             if n % 2 == 0 else answer_text(rng),
             "created_at": when + timedelta(seconds=n), "model_name": None if n % 2 == 0 else "stories260K",
             "finish_reason": None if n % 2 == 0 else "stop", "completion_tokens": None if n % 2 == 0 else 220,
             "ttft_s": None if n % 2 == 0 else 0.2, "tokens_per_s": None if n % 2 == 0 else 31.5}
            for n in range(messages)])
    database.close()


def seen_welcome(folder: Path) -> None:
    paths = Paths.under(folder).ensure()
    settings = Settings.load(paths.settings_file)
    settings.welcome_done = True
    settings.save(paths.settings_file)


class Step:
    """One step's figures: the longest gap while it ran, and how long it took; with a ``sampler`` (``--trace``),
    what the GUI thread was doing in each stall over the target."""

    sampler: StackSampler | None = None

    def __init__(self, name: str, meter: StallMeter, quiet: bool = False) -> None:
        self.name, self.meter, self.quiet = name, meter, quiet
        self._first = 0
        self._first_stall = 0

    def __enter__(self) -> Step:
        self._first = len(self.meter.gaps)
        self._first_stall = len(self.meter.stall_spans)
        self._started = time.perf_counter()
        return self

    def __exit__(self, *_exc: object) -> None:
        if self.quiet:
            return
        gaps = self.meter.gaps[self._first:] or [0.0]
        took = time.perf_counter() - self._started
        verdict = "" if self.name.startswith(("scroll", "answers")) else \
            ("  (target met)" if max(gaps) < TARGET_MS else "  (over the target)")
        print(f"  {self.name:<34} longest stall {max(gaps):6.1f} ms over {took:5.2f} s{verdict}", flush=True)
        if self.sampler is not None:
            for begin, end in self.meter.stall_spans[self._first_stall:]:
                print(f"    stall of {(end - begin) * 1000:.0f} ms")
                for count, stack in self.sampler.during(begin, end):
                    print(f"      {count} × {stack}")


def started(folder: Path, meter: StallMeter) -> MainWindow:
    failures: list[BaseException] = []
    paths = Paths.under(folder)
    window = start_window(paths, Settings.load(paths.settings_file), QIcon(str(resource_path("icons", "hearth.svg"))),
                          failed=failures.append)
    ready: list[bool] = []
    window.ready.connect(lambda: ready.append(True))
    meter.start()  # the window is shown: from here the GUI thread's event loop should run freely
    wait_until(lambda: bool(failures or ready), "the window's services")
    if failures:
        raise SystemExit(f"Hearth could not start: {failures[0]}")
    return window


def settled(window: MainWindow) -> bool:
    return not background._running and window.chat.view.is_settled()


def pages_built(window: MainWindow) -> bool:
    """The pages a start builds after the first paint (``MainWindow.build_pages``) are built: the start is over."""
    return window._tasks_page.is_built() and window._compare_page.is_built()


def measure(folder: Path, conversations: int, with_steps: bool, quiet: bool = False) -> None:
    meter = StallMeter(lambda: "")
    with Step(f"start ({conversations:,} conversations)", meter, quiet):
        window = started(folder, meter)
        chat = window.chat
        wait_until(lambda: settled(window) and pages_built(window)
                   and (conversations == 0 or (chat.current is not None
                                               and chat.view.conversation_id == chat.current.id)),
                   "the list, the newest chat and the pages built after the first paint")
        pause(300)
    if with_steps:
        row = chat.conversations.row_of(max(1, conversations - 1))
        list_view = chat.sidebar.list
        with Step("open (the long conversation)", meter):
            rect = list_view.visualRect(chat.conversations.index(row))
            QTest.mouseClick(list_view.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
            wait_until(lambda: chat.view.conversation_id == max(1, conversations - 1) and settled(window),
                       "the long conversation on screen")
            pause(200)
        shown = len(chat.view.message_ids())
        bar = chat.view.scroller.verticalScrollBar()
        with Step("scroll back to the first message", meter):
            deadline = time.monotonic() + 600
            while time.monotonic() < deadline:
                bar.setValue(max(0, bar.value() - bar.pageStep()))
                pause(60)
                if bar.value() == 0 and settled(window) and not chat.view.has_older():
                    break
        print(f"    {shown} messages shown on opening; {len(chat.view.message_ids())} after scrolling back")
        with Step("answers (the list follows)", meter):
            store = window.services.store
            for conversation_id in (1, 2, 3, max(1, conversations - 1)) * 3:  # an answer starts, then ends
                for _ in range(2):
                    store.touch_conversation(conversation_id)
                    chat.refresh_conversation(conversation_id)
                    pause(50)
            wait_until(lambda: settled(window), "the list")
        print(f"    the list holds {chat.conversations.rowCount()} rows; the long chat is row "
              f"{chat.conversations.row_of(max(1, conversations - 1))}")
    meter.stop()
    window.close()
    pause(200)


OTHER_LANGUAGES = [
    "Le pain se lève lentement pendant la nuit, et la croûte devient dorée au four très chaud.",
    "Der Teig muss über Nacht im Kühlschrank ruhen, damit das Brot später besser schmeckt.",
    "La masa madre necesita harina, agua y paciencia; después se hornea con vapor.",
    "パンの生地は一晩冷蔵庫で寝かせると、翌朝にはよく膨らんでいます。",
    "面包需要在烤箱里烤四十分钟，外皮才会变得又脆又香。",
]
SEARCHES = [*WORDS, "flo", "hydr", "overn", '"flour water"', '"crust crumb"', "salt yeast", "oven steam loaf",
            "croute", "four", "Kühlschrank", "kuhlschrank", "harina", "paciencia", "冷蔵庫", "生地は一晩", "烤箱",
            "四十分钟", "nothing-like-this", "zzz", "Chat number 1999", "bread", "question", "knead proof", "salt",
            "starter gluten bake", '"le pain"', "Brot"]


def make_searchable_history(folder: Path, conversations: int = 2000, per_conversation: int = 50) -> Path:
    """Written through the index's triggers, as Hearth writes: every message is indexed as it is added."""
    rng = random.Random(11)
    paths = Paths.under(folder).ensure()
    database = open_database(paths.database)
    start = datetime(2025, 1, 1, tzinfo=UTC)
    with database.session() as session:
        session.execute(insert(Conversation), [
            {"id": n + 1, "title": f"Chat number {n + 1}: " + " ".join(rng.choice(WORDS) for _ in range(4)),
             "created_at": start + timedelta(hours=n), "updated_at": start + timedelta(hours=n),
             "model_name": "stories260K", "system_prompt": "", "settings": {}} for n in range(conversations)])
    for n in range(conversations):
        with database.session() as session:
            session.execute(insert(Message), [
                {"conversation_id": n + 1, "role": "user" if m % 2 == 0 else "assistant",
                 "content": (rng.choice(OTHER_LANGUAGES) if rng.random() < 0.1 else
                             "Question: how do I " + " ".join(rng.choice(WORDS) for _ in range(10)) + "?")
                 if m % 2 == 0 else answer_text(rng),
                 "created_at": start + timedelta(hours=n, seconds=m),
                 "model_name": None if m % 2 == 0 else "stories260K"} for m in range(per_conversation)])
    database.close()
    return paths.database


def measure_search(folder: Path) -> None:
    import gc
    import shutil
    import sqlite3
    import statistics
    from contextlib import closing

    from app.history import HistoryStore
    from app.history.records import SearchQuery

    began = time.perf_counter()
    path = make_searchable_history(folder)
    print(f"  100,000 messages in 2,000 conversations written and indexed in {time.perf_counter() - began:.1f} s")
    store = HistoryStore(open_database(path))
    # Writing the history left this process a large heap: collected now, so that a full collection of it (60 ms
    # here, as it happened to fall in one search) is not timed as a search.
    gc.collect()
    for script, text in (("Latin", "dough"), ("Japanese", "翌朝には")):  # once per script: statements compiled
        began = time.perf_counter()
        store.search(SearchQuery(text))
        print(f"  the first search in {script} script after opening: {(time.perf_counter() - began) * 1000:.1f} ms "
              "(SQLAlchemy compiles its statements, once per script)")
    times: list[tuple[float, str]] = []
    found = 0
    for text in SEARCHES:
        began = time.perf_counter()
        hits = store.search(SearchQuery(text))
        times.append(((time.perf_counter() - began) * 1000, text))
        found += bool(hits)
    worst, worst_text = max(times)
    print(f"  {len(times)} searches ({found} with matches): median {statistics.median(t for t, _ in times):.1f} ms, "
          f"worst {worst:.1f} ms ({worst_text}) (targets: 20 ms and 50 ms)")
    indexed, bare = folder / "indexed.sqlite3", folder / "bare.sqlite3"
    with closing(sqlite3.connect(path)) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    shutil.copyfile(path, indexed)
    shutil.copyfile(path, bare)
    with closing(sqlite3.connect(bare)) as db:
        for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'").fetchall():
            db.execute(f"DROP TRIGGER {name}")
        for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND sql LIKE "
                                  "'CREATE VIRTUAL TABLE%'").fetchall():
            db.execute(f"DROP TABLE {name}")  # the index, with FTS5's own tables
        db.commit()
    for copy in (indexed, bare):
        with closing(sqlite3.connect(copy)) as db:
            db.execute("VACUUM")
    mib = 1024 * 1024
    print(f"  database: {indexed.stat().st_size / mib:.1f} MiB with the index, {bare.stat().st_size / mib:.1f} MiB "
          "without")


def measure_open_and_export(full: Path, empty: Path, pycache: Path, runs: int) -> None:
    """The window opened on the 100,000 messages of ``measure_search`` and on an empty history, each start a fresh
    ``hearth`` as ``benchmarks/cold_start.py`` starts it (``HEARTH_EXIT_AFTER_START``): medians of when the window is
    shown and when it is ready (the history checked and opened, the lists filling), the runs alternating; then SQLite's
    two checks of that history, and ``hearth history export -o history.json`` of each history, end to end."""
    import sqlite3
    import statistics
    import subprocess
    from contextlib import closing

    from cold_start import child_env, hearth

    make_history(empty, 0, 0)
    for home in (empty, full):
        seen_welcome(home)
    hearth(pycache, empty)  # not counted: the bytecode is compiled, the files read once
    hearth(pycache, full)
    shown: dict[Path, list[float]] = {empty: [], full: []}
    ready: dict[Path, list[float]] = {empty: [], full: []}
    for _ in range(runs):
        for home in (empty, full):
            at_shown, at_ready = hearth(pycache, home)
            shown[home].append(at_shown)
            ready[home].append(at_ready)
    extra = (statistics.median(ready[full]) - statistics.median(ready[empty])) * 1000
    for home, words in ((empty, "an empty history"), (full, "100,000 messages")):
        print(f"  window opened on {words:<17} shown at {statistics.median(shown[home]):.3f} s, ready at "
              f"{statistics.median(ready[home]):.3f} s (medians of {runs})")
    print(f"  ready {extra:+.0f} ms with 100,000 messages (target: no more than +100 ms): "
          f"{'OK' if extra <= 100 else 'ABOVE'}")
    database = Paths.under(full).database
    for pragma in ("quick_check", "integrity_check"):
        times = []
        for _ in range(3):
            began = time.perf_counter()
            with closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True)) as db:
                db.execute(f"PRAGMA {pragma}").fetchall()
            times.append((time.perf_counter() - began) * 1000)
        print(f"  PRAGMA {pragma:<15} {statistics.median(times):6.0f} ms on {database.stat().st_size / 2**20:.0f} MiB "
              "(median of 3, the file in the page cache)")
    for home, words in ((empty, "an empty history"), (full, "100,000 messages")):
        times = []
        out = home / "history.json"
        for _ in range(3):
            began = time.perf_counter()
            result = subprocess.run([sys.executable, "-m", "ui.entry", "history", "export", "-o", str(out)], cwd=ROOT,
                                    env=child_env(pycache, home),
                                    capture_output=True, text=True, timeout=600, check=False)
            times.append(time.perf_counter() - began)
            if result.returncode != 0:
                raise SystemExit(f"the export failed: {result.stderr}")
        print(f"  hearth history export (JSON), {words:<17} {statistics.median(times):5.2f} s end to end "
              f"(median of 3), {out.stat().st_size / 2**20:.1f} MiB written")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--conversations", type=int, default=50_000)
    parser.add_argument("--messages", type=int, default=1_000)
    parser.add_argument("--busy", type=int, default=0, help="busy loops beside it")
    parser.add_argument("--trace", action="store_true", help="sample the GUI thread's stack to explain stalls")
    parser.add_argument("--search", action="store_true", help="measure searches at 100,000 messages instead, "
                                                                  "then the start and a full export on that history")
    parser.add_argument("--runs", type=int, default=7, help="with --search: starts of each history (default 7)")
    args = parser.parse_args()
    if args.search:
        print(f"history search on {machine_words(args.busy)}")
        with tempfile.TemporaryDirectory(prefix="hearth-history-search-") as tmp, busy_cores(args.busy):
            full = Path(tmp, "full")
            measure_search(full)
            measure_open_and_export(full, Path(tmp, "empty"), Path(tmp, "pycache"), args.runs)
        return 0
    if args.trace:
        Step.sampler = StackSampler()
        Step.sampler.start()
    app = QApplication.instance() or QApplication([sys.argv[0]])
    assert isinstance(app, QApplication)
    apply_style(app)
    print(f"history_scale on {machine_words(args.busy)}")
    with tempfile.TemporaryDirectory(prefix="hearth-history-scale-") as tmp, busy_cores(args.busy):
        empty, full = Path(tmp, "empty"), Path(tmp, "full")
        make_history(empty, 0, 0)
        seen_welcome(empty)
        began = time.perf_counter()
        make_history(full, args.conversations, args.messages)
        seen_welcome(full)
        print(f"  (history written in {time.perf_counter() - began:.1f} s)")
        print("  (a first start, not measured: Python's modules are read once)")
        measure(empty, 0, with_steps=False, quiet=True)
        measure(empty, 0, with_steps=False)
        measure(full, args.conversations, with_steps=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
