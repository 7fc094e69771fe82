"""``hearth compare``: one input on 2–4 models, with their outputs and a table of load time, speed and memory.

Progress goes to stderr and the outputs and figures to stdout (one JSON object with ``--json``). The
comparison is saved in history, so the window's Compare page lists it and can take the vote.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path
from typing import Any

from app.cli.tasks import language
from app.outcomes import RunStatus
from app.paths import Paths

COMMANDS = ("compare",)


def add_commands(commands: Any) -> None:
    compare = commands.add_parser("compare", help="run one prompt or document task on 2–4 models, side by side")
    compare.add_argument("models", nargs="+", metavar="MODEL", help="2 to 4 models: library ids, names or .gguf paths")
    given = compare.add_mutually_exclusive_group(required=True)
    given.add_argument("--prompt", help="a chat prompt to give every model")
    given.add_argument("--task", choices=["summarize", "translate", "classify"], help="a document task (with --file)")
    compare.add_argument("--file", type=Path, help="the document for --task (classify: one text per line)")
    compare.add_argument("--length", choices=["short", "points", "detailed"], default="points",
                         help="summarize: one paragraph, key points (the default) or detailed")
    compare.add_argument("--to", dest="target", help="translate: the target language")
    compare.add_argument("--labels", help="classify: labels separated by commas")
    compare.add_argument("--password", help="the password of an encrypted PDF")
    compare.add_argument("--seed", type=int, help="the seed every model uses (default: a random one, printed)")
    compare.add_argument("--deterministic", action="store_true", help="temperature 0: each model's likeliest answer")
    compare.add_argument("--temperature", type=float, help="the temperature every model uses")
    compare.add_argument("--max-tokens", type=int, default=512, help="chat: the longest answer, in tokens")
    compare.add_argument("--ctx", type=int, help="context length in tokens (default: the app's setting)")
    schedule = compare.add_mutually_exclusive_group()
    schedule.add_argument("--together", action="store_true",
                          help="run the models at the same time when they fit in memory (they share the processor, "
                               "so the speeds are not each model's own)")
    schedule.add_argument("--one-at-a-time", action="store_true",
                          help="each model alone, one after another (the default)")
    compare.add_argument("--json", action="store_true", help="print one JSON object with the outputs and figures")


def run(args: argparse.Namespace, paths: Paths) -> int:
    from app.cli.loading import open_history, remote_model
    from app.compare.runner import CompareEnded, Comparer, CompareStarted, EntryChanged, EntryEnded
    from app.compare.spec import MAX_MODELS, MIN_MODELS, CompareRequest, Contender, Sampling
    from app.hardware.detect import detect, with_memory_now
    from app.library import Library
    from app.remote.computers import Computers
    from app.settings import Settings
    from app.tasks.inputs import InputError

    if not MIN_MODELS <= len(args.models) <= MAX_MODELS:
        raise InputError(f"Give {MIN_MODELS} to {MAX_MODELS} models to compare (you gave {len(args.models)}).")
    settings = Settings.load(paths.settings_file)
    store = open_history(paths)
    library = Library(store, paths.models_dir)
    contenders = []
    for ref in args.models:
        model = remote_model(ref, paths, settings) or library.resolve(ref)
        contenders.append(Contender(model.name, model.path,
                                    Path(model.path).stat().st_size if isinstance(model.path, Path) else 0))
    compare_input = _input(args)
    temperature = args.temperature if args.temperature is not None else (
        settings.generation.temperature if compare_input.task is None else 0.2)
    seed = args.seed if args.seed is not None else random.randrange(2**31)
    request = CompareRequest(tuple(contenders), compare_input,
                             Sampling(temperature=temperature, max_tokens=args.max_tokens, seed=seed,
                                      deterministic=args.deterministic),
                             one_at_a_time=not args.together,
                             context_length=args.ctx or settings.generation.context_length,
                             system_prompt=settings.generation.system_prompt)
    machine = detect(cache_dir=paths.cache_dir)
    comparer = Comparer(store, lambda: with_memory_now(machine), log_file=paths.log_file,
                        gpu_layers=lambda: settings.gpu_layers, threads=lambda: settings.threads,
                        computers=Computers(settings))
    names = [c.name for c in contenders]
    groups: list[list[int]] = []

    def on_event(event: Any) -> None:
        if isinstance(event, CompareStarted):
            groups.extend(event.groups)
            if not args.json:
                _say(_schedule_words(groups, names) + f" Seed {seed}.")
        elif isinstance(event, EntryChanged) and not args.json:
            _say(f"{names[event.position]}: {event.detail}")
        elif isinstance(event, EntryEnded) and not args.json:
            _say(f"{names[event.entry.position]}: {event.entry.status}")
        elif isinstance(event, CompareEnded) and event.record.status == RunStatus.CANCELLED and not args.json:
            _say("Stopped.")

    try:
        record = comparer.run_blocking(request, on_event=on_event)
    except KeyboardInterrupt:
        comparer.close()
        raise
    if args.json:
        print(json.dumps(_json(record, groups), indent=2, ensure_ascii=False))
    else:
        _print(record)
    if record.status == RunStatus.FAILED:
        reasons = "; ".join(f"{e.model_name}: {e.error}" for e in record.entries if e.error)
        print(f"hearth: every model failed. {reasons}", file=sys.stderr)
        return 1
    return 0


def _input(args: argparse.Namespace) -> Any:
    from app.compare.spec import CompareInput
    from app.documents.reader import read_document
    from app.tasks import inputs
    from app.tasks.spec import Classify, Passage, Summarize, TaskInput, Translate

    if args.prompt is not None:
        if not args.prompt.strip():
            raise inputs.InputError("The prompt is empty.")
        return CompareInput.prompt(args.prompt)
    if args.file is None:
        raise inputs.InputError(f"Give the document to {args.task} with --file.")
    if args.task == "classify":
        if not args.labels:
            raise inputs.InputError("Give the labels with --labels, e.g. --labels \"billing,bug,praise\".")
        try:
            text = args.file.read_text(encoding="utf-8-sig", errors="replace")
        except OSError as error:
            raise inputs.InputError(f"“{args.file.name}” cannot be opened: {error.strerror or error}.") from error
        rows = inputs.rows_from_lines(text)
        task = TaskInput(Classify(inputs.parse_labels(args.labels)), tuple(Passage(row) for row in rows))
        return CompareInput(name=args.file.name, input_kind="lines", text="\n".join(rows), task=task)
    document = read_document(args.file, password=args.password)
    if document.warning:
        print(f"hearth: note: {document.warning}", file=sys.stderr)
    kind: Summarize | Translate
    if args.task == "summarize":
        kind = Summarize(args.length)
    else:
        if not args.target:
            raise inputs.InputError("Say which language to translate into with --to, e.g. --to French.")
        kind = Translate(language(args.target))
    task = TaskInput(kind, inputs.passages_of(document), title=Path(document.name).stem)
    return CompareInput(name=document.name, input_kind=document.kind, text=document.text, task=task)


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _schedule_words(groups: list[list[int]], names: list[str]) -> str:
    if len(groups) == 1:
        return "All models fit in memory together: running them at the same time."
    if all(len(group) == 1 for group in groups):
        return "Not enough free memory to run them together: one after another."
    together = " then ".join(" + ".join(names[i] for i in group) for group in groups)
    return f"Running in turns by free memory: {together}."


def _print(record: Any) -> None:
    from app.compare.figures import figure_rows, label, shown_entries

    entries = shown_entries(record)
    for entry in entries:
        print(f"=== {label(record, entry)} ===")
        print(entry.output if entry.status != RunStatus.FAILED else f"(failed: {entry.error})")
        print()
    rows = [("", [label(record, entry) for entry in entries]), *figure_rows(record)]
    widths = [max(len(row[0]) for row in rows)] + [
        max(len(row[1][i]) for row in rows) for i in range(len(entries))]
    for title, cells in rows:
        print("  ".join([title.ljust(widths[0]), *(cell.ljust(w) for cell, w in zip(cells, widths[1:], strict=True))])
              .rstrip())
    print(f"\nSaved as comparison {record.id}: vote on it in Hearth's Compare page.", file=sys.stderr)


def _json(record: Any, groups: list[list[int]]) -> dict[str, Any]:
    return {"comparison_id": record.id, "kind": record.kind, "status": record.status,
            "seed": record.settings.get("seed"), "deterministic": record.settings.get("deterministic"),
            "temperature": record.settings.get("temperature"), "schedule": groups,
            "models": [{"name": e.model_name, "path": e.model_path, "status": e.status, "output": e.output,
                        "error": e.error, **e.metrics} for e in record.entries]}
