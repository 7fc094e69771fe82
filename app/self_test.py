"""The Qt-free half of ``--self-test``: proof that an installed Hearth can do its core work on this computer.

A frozen app breaks in ways a source checkout never shows: a shared library or a data file left out of the bundle,
or a child process that cannot start because the bundle's executable is not a Python interpreter. So every check
goes through the code the app itself uses (the engine worker, the spawned document reader, the Alembic migrations)
instead of a shortcut, and works only inside the folder it is given, so a person's own data is never touched.
Each check imports the core modules it needs itself: the window check runs first and times the start, which must
not count them.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from app.errors import HearthError

if TYPE_CHECKING:
    from app.engine import EngineClient
    from app.engine import protocol as p

Say = Callable[[str], None]

WORKER_START_TIMEOUT_S = 120.0  # a first start reads the whole bundle from disk, and antivirus may scan it first
LOAD_TIMEOUT_S = 300.0
GENERATE_TIMEOUT_S = 300.0
MAX_TOKENS = 8
PROMPT = "Once upon a time"


class CheckFailed(Exception):
    """One check did not pass; ``check`` names it in the ``FAIL`` line, ``reason`` says why in a sentence."""

    def __init__(self, check: str, reason: str) -> None:
        super().__init__(f"{check}: {reason}")
        self.check = check
        self.reason = reason


@contextlib.contextmanager
def checking(name: str) -> Iterator[None]:
    """Turns any error inside the block into ``CheckFailed(name, …)``: a self-test reports, it never crashes."""
    try:
        yield
    except CheckFailed:
        raise
    except HearthError as error:
        raise CheckFailed(name, str(error)) from error
    except Exception as error:
        raise CheckFailed(name, f"{type(error).__name__}: {error}") from error


def ok(say: Say, line: str) -> None:
    say(f"ok   {line}")


def run_core_checks(workdir: Path, say: Say, model: Path | None = None) -> None:
    """The checks that need no window; the model ones only with ``model``, since no model ships with Hearth.

    Raises:
        CheckFailed: the first check that did not pass; the ones after it are not run.
    """
    from app.engine import EngineClient

    workdir.mkdir(parents=True, exist_ok=True)
    engine = EngineClient(log_file=workdir / "engine.log")
    try:
        check_worker(engine, say)
        if model is not None:
            check_model(engine, model, say)
            check_generation(engine, say)
            check_server(engine, model, workdir / "server", say)
    finally:
        engine.shutdown()
    check_history(workdir / "history", say)
    check_document_reader(workdir / "documents", say)


def check_worker(engine: EngineClient, say: Say) -> p.Ready:
    from app.engine import protocol as p
    from app.engine.client import EventWaiter

    with checking("engine worker"), EventWaiter(engine) as waiter:
        engine.start()
        event = waiter.wait_for((p.Ready, p.WorkerExited), WORKER_START_TIMEOUT_S)
        if isinstance(event, p.WorkerExited):
            raise CheckFailed("engine worker", f"the worker process exited with code {event.exitcode} before it "
                                               "was ready")
    assert isinstance(event, p.Ready)
    variant = f" with {event.cpu_variant} CPU code" if event.cpu_variant else ""
    ok(say, f"engine worker started (pid {event.pid}, llama.cpp {event.llama_cpp_version}; backends: "
            f"{', '.join(event.backends) or 'none'}{variant})")
    return event


def check_model(engine: EngineClient, model: Path, say: Say) -> p.Loaded:
    with checking("model"):
        if not model.is_file():
            raise CheckFailed("model", f"there is no file at {model}")
        loaded = engine.load_blocking(model, context_length=512, timeout=LOAD_TIMEOUT_S)
    ok(say, f"model loaded: {model.name} (context {loaded.context_length}, {loaded.load_s:.2f} s)")
    return loaded


def check_generation(engine: EngineClient, say: Say) -> p.Finished:
    with checking("generation"):
        finished = engine.chat_blocking([{"role": "user", "content": PROMPT}], max_tokens=MAX_TOKENS,
                                        temperature=0.0, seed=1, timeout=GENERATE_TIMEOUT_S)
        count = finished.metrics.completion_tokens
        if count <= 0 or not finished.text:
            raise CheckFailed("generation", f"the model produced no text (finish reason {finished.finish_reason!r})")
    ok(say, f"generated {count} tokens: {finished.text!r}")
    return finished


def check_history(folder: Path, say: Say) -> None:
    """Writes through one connection and reads through a second, so the text really went to the file (and the
    migrations, which a bundle must carry as source files, really ran)."""
    from app.history import HistoryStore, open_database

    path = folder / "history.sqlite3"
    with checking("history"):
        folder.mkdir(parents=True, exist_ok=True)
        text = "The self-test wrote this."
        writer = open_database(path)
        try:
            store = HistoryStore(writer)
            conversation = store.create_conversation("Self-test", {"temperature": 0.0})
            store.add_message(conversation.id, "user", text)
        finally:
            writer.engine.dispose()
        reader = open_database(path)
        try:
            messages = HistoryStore(reader).messages(conversation.id)
        finally:
            reader.engine.dispose()
        if [m.content for m in messages] != [text]:
            raise CheckFailed("history", f"read back {len(messages)} message(s) that differ from what was written")
    ok(say, "history written and read back")


def check_document_reader(folder: Path, say: Say) -> None:
    """A web page, because HTML (like PDF and Word) is parsed in a spawned child: the second kind of process a
    frozen app must be able to start."""
    from app.documents.reader import read_document

    with checking("document reader"):
        folder.mkdir(parents=True, exist_ok=True)
        page = folder / "page.html"
        page.write_text("<html><body><h1>Hearth</h1><p>First paragraph.</p><p>Second paragraph.</p></body></html>",
                        encoding="utf-8")
        document = read_document(page, timeout_s=60)
        if "Second paragraph." not in document.text:
            raise CheckFailed("document reader", "the page's text did not come back")
    ok(say, "document read in a separate process")


def check_server(engine: EngineClient, model: Path, folder: Path, say: Say) -> None:
    """``hearth serve`` on a free port of 127.0.0.1, over the engine with the model loaded: one chat completion."""
    import http.client
    import json
    import threading
    import time

    from app.engine.load_plan import LoadPlan
    from app.history import HistoryStore, open_database
    from app.library import Library
    from app.server.options import ServerOptions
    from app.server.served_engine import ServedEngine
    from app.server.serving import build_app, uvicorn_server

    with checking("server"):
        folder.mkdir(parents=True, exist_ok=True)
        library = Library(HistoryStore(open_database(folder / "history.sqlite3")), folder / "models")
        record = library.import_model(model, copy=False)
        served = ServedEngine(engine, library.models, lambda _record: LoadPlan(context_length=512))
        options = ServerOptions(port=0)
        server = uvicorn_server(options, build_app(options, served))
        thread = threading.Thread(target=server.run, name="self-test server", daemon=True)
        thread.start()
        try:
            deadline = time.monotonic() + 30
            while not server.started:
                if not thread.is_alive() or time.monotonic() > deadline:
                    raise CheckFailed("server", "the server did not start")
                time.sleep(0.05)
            port = server.servers[0].sockets[0].getsockname()[1]
            body = json.dumps({"model": record.name, "max_tokens": MAX_TOKENS, "temperature": 0,
                               "messages": [{"role": "user", "content": PROMPT}]})
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=GENERATE_TIMEOUT_S)
            connection.request("POST", "/v1/chat/completions", body, {"Content-Type": "application/json"})
            response = connection.getresponse()
            answer = json.loads(response.read())
            connection.close()
            if response.status != 200:
                raise CheckFailed("server", f"it answered {response.status}: {answer}")
        finally:
            server.should_exit = True
            thread.join(30)
    ok(say, f"server answered a chat completion on 127.0.0.1:{port} "
            f"({answer['usage']['completion_tokens']} tokens)")
