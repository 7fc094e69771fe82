"""What the commands that use models share: the library, and a model loaded as the window loads it.

The command line builds its objects here and in each command (paths, settings, history, library, engine), the
way ``ui/main.py`` does for the window.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from typing import Any

from app.paths import Paths


def open_library(paths: Paths) -> Any:
    from app.history import HistoryStore, open_database
    from app.library import Library

    return Library(HistoryStore(open_database(paths.database)), paths.models_dir)


def load_model(args: argparse.Namespace, paths: Paths, settings: Any, store: Any = None) -> tuple[Any, Any]:
    """Start an engine and load ``args.model`` as the window would (the forecast decides the plan, with the
    settings measured by an earlier load, or measuring them now); the caller shuts the engine down."""
    from app.engine import EngineClient
    from app.forecast.estimate import decide_plan, remembered_tuning
    from app.forecast.load_tracker import LoadTracker
    from app.gguf.facts import read_facts
    from app.hardware.detect import detect
    from app.history import HistoryStore, open_database
    from app.library import Library

    store = store or HistoryStore(open_database(paths.database))
    library = Library(store, paths.models_dir)
    model = library.resolve(args.model) if args.model else library.default(settings.last_model_id)
    facts, machine = read_facts(model.path), detect(cache_dir=paths.cache_dir)
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
