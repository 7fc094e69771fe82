"""``hearth summarize``, ``hearth translate`` and ``hearth classify``: the document tasks from a terminal.

Progress goes to stderr (a bar on a terminal, plain lines otherwise) and the result to stdout, so
``hearth summarize report.pdf --model qwen > summary.md`` works; ``--json`` prints one object instead.
Every run is saved in history, as from the window.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from app.cli.loading import load_model
from app.paths import Paths
from app.tasks.spec import LANGUAGES

COMMANDS = ("summarize", "translate", "classify")


def add_commands(commands: Any) -> None:
    summarize = commands.add_parser("summarize", help="summarize a document (every part of it is read)")
    summarize.add_argument("file", type=Path, help="a .txt, .md, .pdf, .docx or .html file")
    _model_options(summarize)
    summarize.add_argument("--length", choices=["short", "points", "detailed"], default="points",
                           help="one paragraph, key points (the default) or a detailed summary")
    summarize.add_argument("--focus", default="", help="what to pay attention to, e.g. \"the tenant's duties\"")
    summarize.add_argument("--password", help="the password of an encrypted PDF")

    translate = commands.add_parser("translate", help="translate a document, part by part")
    translate.add_argument("file", type=Path)
    translate.add_argument("--to", required=True, dest="target", help=f"target language, e.g. {LANGUAGES[2]}")
    translate.add_argument("--from", dest="source", help="source language (default: recognised from the text)")
    _model_options(translate)
    translate.add_argument("--password", help="the password of an encrypted PDF")

    classify = commands.add_parser("classify", help="label texts with one (or several) of your labels")
    classify.add_argument("--labels", required=True, help='labels separated by commas, e.g. "billing,bug,praise"')
    given = classify.add_mutually_exclusive_group(required=True)
    given.add_argument("--text", help="one text to classify")
    given.add_argument("--file", type=Path, help="a text file: one text per line")
    given.add_argument("--csv", type=Path, help="a CSV file (with --column)")
    classify.add_argument("--column", help="the CSV column to classify: its header name or number")
    classify.add_argument("--multi", action="store_true", help="allow several labels per text")
    classify.add_argument("--output", type=Path, help="also write the results to this CSV file")
    _model_options(classify)


def _model_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="library id, name, or path to a .gguf file")
    parser.add_argument("--ctx", type=int, help="context length in tokens (default: the app's setting)")
    parser.add_argument("--seed", type=int)
    parser.add_argument("--threads", type=int)
    parser.add_argument("--json", action="store_true", help="print one JSON object with the result and metrics")
    parser.add_argument("--chatml", action="store_true",
                        help="write the prompts in ChatML instead of the model's own chat template")


def run(args: argparse.Namespace, paths: Paths) -> int:
    from app.documents.reader import read_document
    from app.tasks import inputs
    from app.tasks.spec import Classify, Summarize, TaskInput, Translate

    if args.command == "classify":
        labels = inputs.parse_labels(args.labels)
        if args.text is not None:
            rows, source = [args.text], inputs.rows_source([args.text], "Text", "pasted")
        elif args.file is not None:
            try:
                text = args.file.read_text(encoding="utf-8-sig", errors="replace")
            except OSError as error:
                raise inputs.InputError(f"“{args.file.name}” cannot be opened: {error.strerror or error}.") from error
            rows = inputs.rows_from_lines(text)
            source = inputs.rows_source(rows, args.file.name, "lines")
        else:
            if not args.column:
                raise inputs.InputError("Say which column to classify with --column.")
            rows = inputs.rows_from_csv(args.csv, args.column)
            source = inputs.rows_source(rows, args.csv.name, "csv")
        from app.tasks.spec import Passage

        task = TaskInput(Classify(labels, multi=args.multi), tuple(Passage(row) for row in rows), seed=args.seed)
    else:
        document = read_document(args.file, password=args.password)
        if document.warning:
            print(f"hearth: note: {document.warning}", file=sys.stderr)
        kind: Summarize | Translate
        if args.command == "summarize":
            kind = Summarize(args.length, args.focus)
        else:
            kind = Translate(language(args.target), language(args.source) if args.source else None)
        task = TaskInput(kind, inputs.passages_of(document), title=Path(document.name).stem, seed=args.seed)
        source = inputs.source_of(document)
    return _execute(args, paths, task, source)


def language(name: str) -> str:
    for language in LANGUAGES:
        if language.lower() == name.strip().lower():
            return language
    return name.strip().capitalize()


def _execute(args: argparse.Namespace, paths: Paths, task: Any, source: Any) -> int:
    from app.cli.loading import open_history
    from app.settings import Settings
    from app.task_session import RunEnded, RunProgress, TaskSession
    from app.tasks.result_words import metrics_line, went_wrong
    from app.tasks.spec import Classify

    settings = Settings.load(paths.settings_file)
    store = open_history(paths)
    engine, model = load_model(args, paths, settings, store)
    progress = _Progress()  # on stderr, so --json's standard output stays one JSON object
    try:
        session = TaskSession(store, engine, save_text=lambda: settings.save_document_text)

        def on_event(event: Any) -> None:
            if isinstance(event, RunProgress):
                progress.show(event.progress)

        try:
            ended: RunEnded = session.run_blocking(task, source, model_name=model.name, on_event=on_event)
        except KeyboardInterrupt:
            session.stop()
            raise
        finally:
            progress.done()
    finally:
        engine.shutdown()
    result, metrics = ended.result, ended.metrics
    assert result is not None and metrics is not None
    if isinstance(task.kind, Classify) and getattr(args, "output", None):
        from app.tasks.inputs import classified_csv

        args.output.write_text(classified_csv(result.rows, [label.name for label in task.kind.labels]),
                               encoding="utf-8")
    if args.json:
        print(json.dumps(_json(result, metrics, model.name, ended.run_id), indent=2, ensure_ascii=False))
        return 0
    if isinstance(task.kind, Classify):
        for row in result.rows:
            chosen = ", ".join(f"{label} ({row.confidence[label]:.0%})" for label in row.labels) or "(none)"
            print(f"{chosen}\t{row.input}")
    elif result.points:  # key points, each with the part of the document it came from
        for point in result.points:
            print(f"- {point.text} ({point.location})")
    else:
        print(result.text)
    wrong = went_wrong(result)
    if wrong:
        print(f"\n[{wrong}]", file=sys.stderr)
    print(f"\n[{metrics_line(ended.record, result)}]", file=sys.stderr)
    return 0


def _json(result: Any, metrics: Any, model: str, run_id: int) -> dict[str, Any]:
    from app.tasks.result_words import went_wrong

    data: dict[str, Any] = {"model": model, "run_id": run_id, "task": result.task,
                            "finish_reason": result.finish_reason}
    if result.task == "classify":
        data["results"] = [row.to_dict() for row in result.rows]
    else:
        data.update(text=result.text, document_tokens=result.document_tokens, covered_tokens=result.covered_tokens,
                    chunks=result.chunks, levels=result.levels,
                    parts=[{"index": p.index, "location": p.location, "tokens": p.tokens, "output": p.output,
                            "went_wrong": p.degeneration or None} for p in result.parts],
                    points=[{"text": k.text, "part": k.part, "location": k.location} for k in result.points])
        if result.source_language:
            data["source_language"] = result.source_language
        if wrong := went_wrong(result):
            data["went_wrong"] = wrong
    data.update(model_tokens_processed=result.model_tokens_processed, prompt_tokens=metrics.prompt_tokens,
                completion_tokens=metrics.completion_tokens, tokens_per_s=metrics.tokens_per_s,
                total_s=metrics.total_s, peak_rss_bytes=metrics.peak_rss_bytes, model_calls=metrics.calls)
    return data


class _Progress:
    """"part 3 of 12" on stderr: redrawn in place on a terminal as the part is read and written, one line per
    step otherwise."""

    def __init__(self) -> None:
        self.tty = sys.stderr.isatty()
        self.shown = False
        self.step = 0

    def show(self, progress: Any) -> None:
        if not self.tty and progress.step == self.step:
            return
        self.step = progress.step
        width = 24
        filled = int(width * progress.fraction)
        line = f"[{'#' * filled}{'.' * (width - filled)}] {progress.label}"
        if self.tty:
            sys.stderr.write("\r\x1b[2K" + line[:120])
        else:
            sys.stderr.write(line + "\n")
        sys.stderr.flush()
        self.shown = True

    def done(self) -> None:
        if self.shown and self.tty:
            sys.stderr.write("\r\x1b[2K")
            sys.stderr.flush()

