"""``hearth models``: the library (import, list, rename) and the Hub (search, files, pull)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from app.cli.loading import open_library
from app.paths import Paths

COMMANDS = ("models",)


def add_commands(commands: Any) -> None:
    models = commands.add_parser("models", help="the model library")
    model_commands = models.add_subparsers(dest="models_command", required=True)
    importing = model_commands.add_parser("import", help="add a .gguf file to the library")
    importing.add_argument("path", type=Path)
    importing.add_argument("--in-place", action="store_true", help="register the file where it is, without copying")
    listing = model_commands.add_parser("list", help="list the models in the library")
    listing.add_argument("--json", action="store_true")
    rename = model_commands.add_parser("rename", help="choose the name Hearth shows for a model (not its file's)")
    rename.add_argument("model", help="library id or name")
    given = rename.add_mutually_exclusive_group(required=True)
    given.add_argument("name", nargs="?", help="the new name")
    given.add_argument("--reset", action="store_true", help="go back to the name Hearth gives it")
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


def run(args: argparse.Namespace, paths: Paths) -> int:
    from app.errors import ModelNotFoundError
    from app.gguf.kind import BASE_MODEL_WARNING
    from app.words import format_bytes, format_count

    if args.models_command in ("search", "files", "pull"):
        return _hub_command(args, paths)
    library = open_library(paths)
    if args.models_command == "import":
        record = library.import_model(args.path, copy=not args.in_place)
        print(f"Added “{record.name}” (id {record.id}) to the library.")
        if record.is_base_model:
            print(BASE_MODEL_WARNING, file=sys.stderr)
        return 0
    if args.models_command == "rename":
        model = library.resolve(args.model)
        if model.record is None:
            raise ModelNotFoundError(f"“{args.model}” is not in the library: only library models can be renamed.")
        record = library.rename(model.record.id, None if args.reset else args.name)
        print(f"“{model.name}” is now shown as “{record.name}”.")
        return 0
    records = library.models()
    if args.json:
        print(json.dumps([_model_json(r) for r in records], indent=2))
        return 0
    if not records:
        print("The library is empty. Add a model with: hearth models import PATH")
        return 0
    rows = [("ID", "NAME", "PARAMETERS", "SIZE", "TRAINED CONTEXT", "CHAT TEMPLATE")]
    rows += [(str(r.id), r.name, format_count(r.parameter_count), format_bytes(r.file_size),
              f"{r.context_length:,}" if r.context_length else "–",
              "its own" if r.has_chat_template else "none: base model" if r.is_base_model else "none (ChatML)")
             for r in records]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
    return 0


def _hub_command(args: argparse.Namespace, paths: Paths) -> int:
    from app.cli.loading import record_network
    from app.hub import search as hub
    from app.settings import Settings

    record_network(paths, Settings.load(paths.settings_file))
    from app.hub.credentials import get_token
    from app.words import format_bytes, format_count

    token = get_token()  # the one saved in the window (File → Hugging Face token), from the password store
    if args.models_command == "search":
        found = hub.search_models(args.query, sort=args.sort, limit=args.limit, token=token)
        if args.json:
            print(json.dumps([{**m.__dict__, "last_modified": str(m.last_modified or "")} for m in found], indent=2))
            return 0
        for m in found:
            facts = ", ".join(x for x in (format_count(m.parameters) if m.parameters else "", m.architecture or "",
                                          f"{m.context_length:,} ctx" if m.context_length else "") if x)
            print(f"{m.repo_id:60} {m.downloads:>10,} downloads  {facts}{'  (gated)' if m.gated else ''}")
        return 0
    groups = hub.repo_files(args.repo, token=token)
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
    return _pull(hub.pick_group(groups, quant=args.quant, filename=args.file), args.repo, paths, token)


def _pull(group: Any, repo_id: str, paths: Paths, token: str | None) -> int:
    from tqdm import tqdm

    from app.hub.downloads import DownloadError, DownloadManager, JobState
    from app.words import format_bytes

    manager = DownloadManager(paths.models_dir / ".downloads", paths.models_dir, token=token)
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
    record = open_library(paths).register_download(final.result)
    print(f"Downloaded “{record.name}” (id {record.id}) into the library.")
    return 0


def _model_json(record: Any) -> dict[str, Any]:
    return {
        "id": record.id, "name": record.name, "default_name": record.default_name, "given_name": record.given_name,
        "base_model": record.is_base_model, "path": record.path, "in_place": record.in_place,
        "file_size": record.file_size, "architecture": record.architecture,
        "parameter_count": record.parameter_count, "quantization": record.quantization,
        "context_length": record.context_length, "has_chat_template": record.has_chat_template,
    }
