"""``hearth serve``: the library's models to other programs through the OpenAI API, in the foreground, a line per
request, until Ctrl+C."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
from pathlib import Path
from typing import Any

from app.paths import Paths

COMMANDS = ("serve",)


def add_commands(commands: Any) -> None:
    serve = commands.add_parser("serve", help="serve the library's models through the OpenAI API")
    serve.add_argument("--host", default="127.0.0.1",
                       help="the address to listen on (default 127.0.0.1: this computer only; any other needs "
                            "--api-key-from-keyring)")
    serve.add_argument("--port", type=int, default=8089)
    serve.add_argument("--ttl", type=float, default=10.0, metavar="MIN",
                       help="unload a model no request has used for this many minutes (default 10; 0: never)")
    serve.add_argument("--api-key-from-keyring", action="store_true",
                       help="require the API key kept in the password store (made, and printed once, if there is "
                            "none yet)")
    serve.add_argument("--keep-history", action="store_true",
                       help="keep each answered chat request as a conversation in the history (as the window's "
                            "“Keep API conversations in history”; off: requests are never saved)")


def run(args: argparse.Namespace, paths: Paths) -> int:
    from app.cli.loading import open_history
    from app.engine import EngineClient
    from app.forecast.model_check import assess
    from app.hardware.detect import detect, with_memory_now
    from app.history import ModelRecord
    from app.library import Library
    from app.server.api_key import new_key, stored_key
    from app.server.hearth_api import HearthFacts
    from app.server.options import ServerOptions
    from app.server.served_engine import ServedEngine
    from app.server.served_history import history_keeper
    from app.server.serving import build_app, check_options, uvicorn_server
    from app.settings import Settings

    key = None
    if args.api_key_from_keyring:
        key = stored_key()
        if key is None:
            key = new_key()
            print(f"hearth: a new API key, shown this once (it is kept in the password store): {key}",
                  file=sys.stderr)
    options = ServerOptions(host=args.host, port=args.port, api_key=key, idle_unload_s=max(args.ttl, 0) * 60)
    check_options(options)
    settings = Settings.load(paths.settings_file)
    store = open_history(paths)
    library = Library(store, paths.models_dir)
    machine = detect(cache_dir=paths.cache_dir)

    def plan_for(record: ModelRecord) -> Any:
        return checked_plan(assess, record, machine, settings, store)

    engine = EngineClient(log_file=paths.log_file, registry_dir=paths.engines_dir)
    keep = args.keep_history or settings.server_keep_history
    served = ServedEngine(engine, library.models, plan_for, max_waiting=options.max_waiting,
                          idle_unload_s=options.idle_unload_s, keep=history_keeper(store, lambda: keep))
    facts = HearthFacts(lambda: with_memory_now(machine), settings, store)
    server = uvicorn_server(options, build_app(options, served, facts))
    requests = logging.getLogger("hearth.server.requests")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    requests.addHandler(handler)
    requests.setLevel(logging.INFO)
    count = len(library.models())
    print(f"hearth: serving {count} model{'s' if count != 1 else ''} at http://{_url_host(args.host)}:{args.port}/v1 "
          "(Ctrl+C stops)", file=sys.stderr)
    try:
        server.run()  # uvicorn ends its requests on Ctrl+C, then raises it again (KeyboardInterrupt: exit 130)
    finally:
        engine.shutdown()
        print("hearth: the server has stopped", file=sys.stderr)
    return 0


def checked_plan(assess: Any, record: Any, machine: Any, settings: Any, store: Any) -> Any:
    """The plan to load ``record`` with, after the window's forecast check; a model that cannot run here is refused
    with the forecast's reason (the memory it needs and what is free), never loaded to run out of memory."""
    from app.forecast.estimate import Verdict
    from app.server.api_errors import ApiError

    assessment = assess(Path(record.path), machine, context_length=settings.generation.context_length,
                        gpu_layers=settings.gpu_layers_for(record.path, machine.card), threads=settings.threads,
                        exact=True, records=store.load_records())
    result = assessment.forecast
    if result.verdict in (Verdict.TOO_LARGE, Verdict.UNSUPPORTED):
        raise ApiError(507 if result.verdict is Verdict.TOO_LARGE else 400,
                       f"“{record.name}” cannot run on this computer: {result.reason}", "server_error",
                       "model_does_not_fit" if result.verdict is Verdict.TOO_LARGE else "model_unsupported",
                       param="model")
    return dataclasses.replace(result.plan, chatml=True) if settings.uses_chatml(record.path) else result.plan


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host
