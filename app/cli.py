"""The `hearth` command line: the same core as the window, from a terminal (`ui/entry.py` opens the
window when `hearth` runs without arguments).

This module is where the command line builds its objects (paths, settings, history, library, engine), the
way ``ui/main.py`` does for the window. Expected failures print one plain sentence to stderr and exit 1;
anything else is a bug and keeps its traceback (also in the log file).
"""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from app import __version__
from app.engine.load_plan import KV_TYPES
from app.errors import HearthError, WorkerCrashedError
from app.paths import Paths

log = logging.getLogger(__name__)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hearth", description="Run small language models on this computer.")
    parser.add_argument("--version", action="version", version=f"Hearth {__version__}")
    commands = parser.add_subparsers(dest="command")

    models = commands.add_parser("models", help="the model library")
    model_commands = models.add_subparsers(dest="models_command", required=True)
    importing = model_commands.add_parser("import", help="add a .gguf file to the library")
    importing.add_argument("path", type=Path)
    importing.add_argument("--in-place", action="store_true", help="register the file where it is, without copying")
    listing = model_commands.add_parser("list", help="list the models in the library")
    listing.add_argument("--json", action="store_true")
    search = model_commands.add_parser("search", help="search the Hugging Face Hub for GGUF models")
    search.add_argument("query", nargs="?", default="")
    search.add_argument("--sort", choices=["downloads", "likes", "trending"], default="downloads")
    search.add_argument("--limit", type=int, default=20)
    search.add_argument("--json", action="store_true")
    files = model_commands.add_parser("files", help="a Hub repository's GGUF files, by quantization")
    files.add_argument("repo")
    files.add_argument("--json", action="store_true")
    pull = model_commands.add_parser("pull", help="download a model from the Hub (run again to resume)")
    pull.add_argument("repo")
    which = pull.add_mutually_exclusive_group()
    which.add_argument("--quant", help="e.g. Q4_K_M (the default when the repository has it)")
    which.add_argument("--file", help="an exact file name in the repository")

    hw = commands.add_parser("hw", help="what this computer can run: memory, processor, graphics")
    hw.add_argument("--json", action="store_true")

    inspect = commands.add_parser("inspect", help="a model's facts, and whether and how it runs here")
    inspect.add_argument("model", help="library id or name, a .gguf path, a Hub file as OWNER/REPO/FILE.gguf, "
                                       "or an http(s) URL of a .gguf")
    inspect.add_argument("--ctx", type=int, help="context length in tokens (default: the model's, up to 4096)")
    inspect.add_argument("--gpu-layers", type=int, help="layers to put on the graphics card (default: what fits)")
    inspect.add_argument("--kv-type", choices=sorted(KV_TYPES), default="f16", help="KV cache precision")
    inspect.add_argument("--json", action="store_true")

    chat = commands.add_parser("chat", help="chat with a model (one prompt, or interactively)")
    chat.add_argument("model", help="library id, name, or path to a .gguf file")
    chat.add_argument("--prompt", help="answer this prompt and exit (without it: interactive chat)")
    chat.add_argument("--system", help="system prompt")
    chat.add_argument("--temperature", type=float)
    chat.add_argument("--top-p", type=float)
    chat.add_argument("--max-tokens", type=int)
    chat.add_argument("--ctx", type=int, help="context length in tokens")
    chat.add_argument("--seed", type=int)
    chat.add_argument("--threads", type=int)
    chat.add_argument("--json", action="store_true", help="print one JSON object with the text and metrics")

    from app import cli_compare, cli_tasks

    cli_tasks.add_commands(commands)
    cli_compare.add_command(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    multiprocessing.freeze_support()
    args = build_parser().parse_args(argv)
    if args.command is None:
        build_parser().print_help()
        return 2
    paths = Paths.from_environment().ensure()
    from app.logs import configure_logging

    configure_logging(paths)
    try:
        if args.command in ("summarize", "translate", "classify"):
            from app import cli_tasks

            return cli_tasks.run(args, paths)
        if args.command == "compare":
            from app import cli_compare

            return cli_compare.run(args, paths)
        if args.command == "models":
            return _models(args, paths)
        if args.command == "hw":
            return _hw(args, paths)
        if args.command == "inspect":
            return _inspect(args, paths)
        return _chat(args, paths)
    except HearthError as error:
        print(f"hearth: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _library(paths: Paths) -> Any:
    from app.history import HistoryStore, open_database
    from app.library import Library

    return Library(HistoryStore(open_database(paths.database)), paths.models_dir)


def _models(args: argparse.Namespace, paths: Paths) -> int:
    from app.words import format_bytes, format_count

    if args.models_command in ("search", "files", "pull"):
        return _hub_command(args, paths)
    library = _library(paths)
    if args.models_command == "import":
        record = library.import_model(args.path, copy=not args.in_place)
        print(f"Added “{record.name}” (id {record.id}) to the library.")
        return 0
    records = library.models()
    if args.json:
        print(json.dumps([_model_json(r) for r in records], indent=2))
        return 0
    if not records:
        print("The library is empty. Add a model with: hearth models import PATH")
        return 0
    rows = [("ID", "NAME", "ARCH", "PARAMS", "QUANT", "SIZE", "CONTEXT", "TEMPLATE")]
    rows += [(str(r.id), r.name, r.architecture, format_count(r.parameter_count), r.quantization or "–",
              format_bytes(r.file_size), str(r.context_length or "–"), "yes" if r.has_chat_template else "no")
             for r in records]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
    return 0


def _hub_command(args: argparse.Namespace, paths: Paths) -> int:
    from app import network
    from app.history import HistoryStore, open_database
    from app.hub import search as hub
    from app.settings import Settings

    network.configure(HistoryStore(open_database(paths.database)).add_network_request)
    if Settings.load(paths.settings_file).work_offline:
        network.set_offline(True)
    from app.words import format_bytes, format_count

    if args.models_command == "search":
        found = hub.search_models(args.query, sort=args.sort, limit=args.limit)
        if args.json:
            print(json.dumps([{**m.__dict__, "last_modified": str(m.last_modified or "")} for m in found], indent=2))
            return 0
        for m in found:
            facts = ", ".join(x for x in (format_count(m.parameters) if m.parameters else "", m.architecture or "",
                                          f"{m.context_length:,} ctx" if m.context_length else "") if x)
            print(f"{m.repo_id:60} {m.downloads:>10,} downloads  {facts}{'  (gated)' if m.gated else ''}")
        return 0
    groups = hub.repo_files(args.repo)
    if args.models_command == "files":
        from app.forecast.estimate import size_verdict
        from app.hardware.detect import detect

        machine = detect(cache_dir=paths.cache_dir)
        rows: list[dict[str, Any]] = [
            {"quant": g.quant, "files": [f.name for f in g.files], "size": g.size, "projector": g.projector,
             "fit": None if g.projector else size_verdict(g.size, machine).value} for g in groups]
        if args.json:
            print(json.dumps(rows, indent=2))
            return 0
        for row in rows:
            label = "vision projector" if row["projector"] else row["fit"]
            parts = f" ({len(row['files'])} parts)" if len(row["files"]) > 1 else ""
            print(f"{row['quant']:10} {format_bytes(row['size']):>10}  {label}{parts}  {row['files'][0]}")
        return 0
    return _pull(hub.pick_group(groups, quant=args.quant, filename=args.file), args.repo, paths)


def _pull(group: Any, repo_id: str, paths: Paths) -> int:
    from tqdm import tqdm

    from app.hub.downloads import DownloadError, DownloadManager, JobState
    from app.words import format_bytes

    manager = DownloadManager(paths.models_dir / ".downloads", paths.models_dir)
    bar = tqdm(total=group.size, unit="B", unit_scale=True, unit_divisor=1024, desc=group.first.name,
               file=sys.stderr, disable=None)
    steps_shown: set[int] = set()

    def show(job: Any) -> None:
        bar.n = job.done_bytes
        bar.refresh()
        if bar.disable and job.total_bytes:  # not a terminal: a line every 10% instead of a bar
            step = job.done_bytes * 10 // job.total_bytes
            if step not in steps_shown:
                steps_shown.add(step)
                print(f"{group.first.name}: {step * 10}% of {format_bytes(job.total_bytes)}", file=sys.stderr)

    manager.subscribe(show)
    job_id = manager.enqueue(repo_id, [f.name for f in group.files])
    try:
        final = manager.wait(job_id)
    except KeyboardInterrupt:
        manager.shutdown()
        bar.close()
        print("\nPaused. Run the same command again to continue.", file=sys.stderr)
        return 130
    bar.close()
    if final.state is not JobState.DONE or final.result is None:
        raise DownloadError(final.error or "The download did not finish.")
    record = _library(paths).register_download(final.result)
    print(f"Downloaded “{record.name}” (id {record.id}) into the library.")
    return 0


def _model_json(record: Any) -> dict[str, Any]:
    return {
        "id": record.id, "name": record.name, "path": record.path, "in_place": record.in_place,
        "file_size": record.file_size, "architecture": record.architecture,
        "parameter_count": record.parameter_count, "quantization": record.quantization,
        "context_length": record.context_length, "has_chat_template": record.has_chat_template,
    }


def _hw(args: argparse.Namespace, paths: Paths) -> int:
    from app.hardware.description import describe
    from app.hardware.detect import detect

    machine = detect(cache_dir=paths.cache_dir, measure=True)
    if args.json:
        print(json.dumps(machine.to_dict(), indent=2))
    else:
        print("\n".join(describe(machine)))
    return 0


def _inspect(args: argparse.Namespace, paths: Paths) -> int:
    from app.forecast.dry_run import dry_run
    from app.forecast.estimate import decide_plan, forecast
    from app.gguf.facts import read_facts
    from app.gguf.remote import fetch_header, parse_model_reference, write_sparse_copy
    from app.hardware.detect import detect
    from app.words import format_bytes, format_count

    url = parse_model_reference(args.model) if not Path(args.model).expanduser().exists() else None
    if url is not None:
        remote = fetch_header(url)
        facts = remote.facts
        sized = write_sparse_copy(remote, paths.cache_dir / "headers" / Path(url.split("?")[0]).name)
        name = Path(url.split("?")[0]).name
    else:
        model = _library(paths).resolve(args.model)
        facts, sized, name = read_facts(model.path), model.path, model.name
    machine = detect(cache_dir=paths.cache_dir, measure=True)
    plan = decide_plan(facts, machine, context_length=args.ctx, gpu_layers=args.gpu_layers, kv_type=args.kv_type)
    result = forecast(facts, machine, plan, dry_run(sized, plan))
    if args.json:
        print(json.dumps({"model": name, "source": url or str(sized), "facts": facts.to_dict(),
                          **result.to_dict()}, indent=2))
        return 0
    m = result.memory
    lines = [
        f"{name}: {facts.architecture}, {format_count(facts.parameter_count)} parameters, {facts.quantization}, "
        f"{format_bytes(facts.file_size)}",
        f"Trained context {facts.context_length or '?'} tokens; chat template: "
        f"{'yes' if facts.has_chat_template else 'no (ChatML is used)'}",
        "",
        f"{result.verdict.value}. {result.reason}",
        f"Memory with a {plan.context_length:,}-token context: {format_bytes(m.ram_bytes)}"
        + (f" plus {format_bytes(m.vram_bytes)} on the graphics card" if m.vram_bytes else "")
        + f" ({m.breakdown_words()}). {m.saved_states_words()}",
        *([reserved] if (reserved := m.reserved_words()) else []),
        f"Longest context that fits now: {result.max_context:,} tokens"
        + (f"; graphics card layers that fit: {result.max_gpu_layers}" if machine.offload_backends else ""),
        f"Expected speed: {result.speed.words()}" if result.speed else "Expected speed: unknown",
        f"Confidence: {result.confidence.value}",
    ]
    print("\n".join(lines))
    return 0


def _chat(args: argparse.Namespace, paths: Paths) -> int:
    from app.settings import GenerationSettings, Settings

    settings = Settings.load(paths.settings_file)
    defaults = settings.generation
    generation = GenerationSettings(
        system_prompt=args.system if args.system is not None else defaults.system_prompt,
        temperature=args.temperature if args.temperature is not None else defaults.temperature,
        top_p=args.top_p if args.top_p is not None else defaults.top_p,
        max_tokens=args.max_tokens if args.max_tokens is not None else defaults.max_tokens,
        context_length=args.ctx if args.ctx is not None else defaults.context_length,
        seed=args.seed if args.seed is not None else defaults.seed,
    ).validated()
    args.ctx = generation.context_length
    engine, model = load_model(args, paths, settings)
    loaded = engine.loaded
    try:
        if args.prompt is None:
            return _interactive(engine, generation, model.name)
        return _one_prompt(engine, generation, args, model.name, loaded)
    finally:
        engine.shutdown()


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
    model = Library(store, paths.models_dir).resolve(args.model)
    facts, machine = read_facts(model.path), detect(cache_dir=paths.cache_dir)
    options = {"context_length": args.ctx or settings.generation.context_length, "gpu_layers": settings.gpu_layers,
               "threads": args.threads or settings.threads}
    tuning = remembered_tuning(store.load_records(), str(facts.path.resolve()),
                               decide_plan(facts, machine, **options))
    plan = decide_plan(facts, machine, **options, tuning=tuning, tune=tuning is None)
    engine = EngineClient(log_file=paths.log_file)
    LoadTracker(store, engine, paths.cache_dir, machine)  # remembers what this load measures, as the window does
    engine.start()
    try:
        engine.load_blocking(model.path, plan=plan)
    except BaseException:
        engine.shutdown()
        raise
    return engine, model


def _options(generation: Any) -> dict[str, Any]:
    return {"max_tokens": generation.max_tokens, "temperature": generation.temperature,
            "top_p": generation.top_p, "seed": generation.seed}


def _one_prompt(engine: Any, generation: Any, args: argparse.Namespace, name: str, loaded: Any) -> int:
    from app.chat import build_messages

    messages = build_messages(generation, [])
    messages.append({"role": "user", "content": args.prompt})

    def echo(text: str) -> None:
        sys.stdout.write(text)
        sys.stdout.flush()

    dropped: list[int] = []
    finished = engine.chat_blocking(messages, on_token=None if args.json else echo, on_trimmed=dropped.append,
                                    **_options(generation))
    if args.json:
        print(json.dumps({"model": name, "text": finished.text, "finish_reason": finished.finish_reason,
                          "chat_format": loaded.chat_format, "context_length": loaded.context_length,
                          "context_dropped": sum(dropped), **finished.metrics.to_dict()}, indent=2))
    else:
        m = finished.metrics
        speed = f"{m.tokens_per_s:.1f} tokens/s" if m.tokens_per_s else "–"
        print(f"\n\n[{m.completion_tokens} tokens, first after {m.ttft_s or 0:.2f}s, {speed}]", file=sys.stderr)
    return 0


def _interactive(engine: Any, generation: Any, name: str) -> int:
    from app.chat import build_messages

    messages = build_messages(generation, [])
    print(f"Chatting with {name}. Ctrl+C stops an answer; Ctrl+D (or /quit) leaves.", file=sys.stderr)
    while True:
        try:
            prompt = input("\nyou> ").strip()
        except EOFError:
            print(file=sys.stderr)
            return 0
        if prompt in ("/quit", "/exit"):
            return 0
        if not prompt:
            continue
        messages.append({"role": "user", "content": prompt})
        sys.stdout.write(f"{name}> ")
        try:
            finished = engine.chat_blocking(
                messages, on_token=lambda t: (sys.stdout.write(t), sys.stdout.flush()),
                on_trimmed=_say_trimmed, **_options(generation))
        except KeyboardInterrupt:
            _stop_and_wait(engine)
            print("\n[stopped]", file=sys.stderr)
            messages.pop()
            continue
        except WorkerCrashedError:
            raise
        except HearthError as error:  # e.g. a message too long for the context: say so and go on
            print(f"\nhearth: {error}", file=sys.stderr)
            messages.pop()
            continue
        messages.append({"role": "assistant", "content": finished.text})
        print()


def _say_trimmed(dropped: int) -> None:
    print(f"[{dropped} older message{'s' if dropped != 1 else ''} left out to fit the context window]",
          file=sys.stderr)


def _stop_and_wait(engine: Any) -> None:
    from app.engine import EngineState
    from app.engine import protocol as p
    from app.engine.client import EventWaiter

    with EventWaiter(engine) as waiter:
        engine.stop()
        if engine.state is EngineState.GENERATING:
            waiter.wait_for((p.Finished, p.Failed, p.WorkerExited), 10)


if __name__ == "__main__":
    sys.exit(main())
