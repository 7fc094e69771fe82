"""What the commands that use models share: the library, and a model loaded as the window loads it.

The command line builds its objects here and in each command (paths, settings, history, library, engine), the
way ``ui/main.py`` does for the window.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path
from typing import Any

from app.paths import Paths


def open_history(paths: Paths) -> Any:
    """The history, checked first as the window checks it (``app.history.backups.look_over``): a damaged one is not
    opened for writing, and the error says how to restore a backup from here."""
    from app.history import HistoryStore, open_database
    from app.history.backups import DamagedHistoryError, look_over

    try:
        look_over(paths.database, paths.backups_dir)
    except DamagedHistoryError as error:
        way_out = ("`hearth history backups` lists the backups, and `hearth history restore BACKUP` puts one in its "
                   "place (or open Hearth's window, which offers the newest good one).")
        raise DamagedHistoryError(error.path, error.finding, error.newest_good, way_out) from None
    return HistoryStore(open_database(paths.database, paths.backups_dir))


def open_library(paths: Paths) -> Any:
    from app.library import Library

    return Library(open_history(paths), paths.models_dir)


def record_network(paths: Paths, settings: Any) -> None:
    """Requests from here go in the Privacy log, as the window's do, and Work offline (a setting) blocks them."""
    from app import network

    network.configure(open_history(paths).add_network_request)
    if settings.work_offline:
        network.set_offline(True)


def remote_model(ref: str, paths: Paths, settings: Any) -> Any:
    """``MODEL@COMPUTER``: a model on a computer added with ``hearth computers add`` (by its name or address),
    named by its id there or the start of it; None where ``ref`` names no computer."""
    from app.errors import ModelNotFoundError
    from app.library import ModelRef
    from app.remote.computers import Computers
    from app.remote.listing import remote_record
    from app.remote.server import RemoteServer

    model, _, where = ref.rpartition("@")
    computers = Computers(settings)
    computer = next((c for c in computers.all() if where.casefold() in (c.name.casefold(), c.base_url.casefold())),
                    None) if model and where else None
    if computer is None:
        return None
    record_network(paths, settings)
    server = RemoteServer(computer.base_url, computers.key(computer.base_url))
    try:
        listed = server.models()
    finally:
        server.close()
    records = [remote_record(computer, m.id, m.context_length or computer.context_length or None) for m in listed]
    lowered = model.casefold()
    for matches in ([r for r in records if lowered in (r.name.casefold(), str(r.path).rpartition("#")[2].casefold())],
                    [r for r in records if r.name.casefold().startswith(lowered)]):
        if len(matches) == 1:
            return ModelRef(matches[0].path, f"{matches[0].name} on {computer.name}", matches[0])
    raise ModelNotFoundError(f"{computer.name} has no model called “{model}”. It has: "
                             f"{', '.join(r.name for r in records) or 'none'}.")


def load_model(args: argparse.Namespace, paths: Paths, settings: Any, store: Any = None) -> tuple[Any, Any]:
    """Start an engine and load ``args.model`` as the window would (the forecast decides the plan, with the
    settings measured by an earlier load, or measuring them now); the caller shuts the engine down. A model on
    another computer (``MODEL@COMPUTER``) is loaded there, with the context its server says."""
    from app.engine import EngineClient
    from app.forecast.estimate import decide_plan, remembered_tuning
    from app.forecast.load_tracker import LoadTracker
    from app.gguf.facts import read_facts
    from app.hardware.detect import detect
    from app.library import Library

    remote = remote_model(args.model, paths, settings) if args.model else None
    if remote is not None:
        from app.engine.load_plan import LoadPlan
        from app.remote.computers import Computers
        from app.remote.worker import RemoteWorkers

        engine = EngineClient(log_file=paths.log_file, elsewhere=RemoteWorkers(Computers(settings)))
        try:
            engine.load_blocking(remote.path, plan=LoadPlan(context_length=args.ctx or
                                                            settings.generation.context_length))
        except BaseException:
            engine.shutdown()
            raise
        return engine, remote
    store = store or open_history(paths)
    library = Library(store, paths.models_dir)
    model = library.resolve(args.model) if args.model else library.default(settings.last_model_id)
    facts, machine = read_facts(Path(model.path)), detect(cache_dir=paths.cache_dir)
    options = {"context_length": args.ctx or settings.generation.context_length,
               "gpu_layers": settings.gpu_layers_for(model.path, machine.card),
               "threads": args.threads or settings.threads}
    tuning = remembered_tuning(store.load_records(), str(facts.path.resolve()),
                               decide_plan(facts, machine, **options))
    plan = decide_plan(facts, machine, **options, tuning=tuning, tune=tuning is None)
    if getattr(args, "chatml", False) or settings.uses_chatml(model.path):  # or chosen in the window
        plan = dataclasses.replace(plan, chatml=True)
    engine = EngineClient(log_file=paths.log_file, registry_dir=paths.engines_dir)
    LoadTracker(store, engine, paths.cache_dir, machine)  # remembers what this load measures, as the window does
    engine.start()
    try:
        loaded = engine.load_blocking(model.path, plan=plan)
    except BaseException:
        engine.shutdown()
        raise
    if loaded.gpu_fallback:
        print(f"hearth: note: {loaded.gpu_fallback}", file=sys.stderr)
        if machine.card is not None:
            settings.card_failed(model.path, machine.card)
            settings.save(paths.settings_file)
    return engine, model
