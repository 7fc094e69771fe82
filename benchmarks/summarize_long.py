"""Summarize a generated 50-page PDF with the tiny test model at a small context window.

Prints the tokens the model read (every prompt, instructions included) divided by the document's tokens:
the overhead of map-reduce (target: at most 1.3), the wall time, and the worker's peak memory. The PDF is
written by the tests' document builder and read by Hearth's own reader, so the whole path is measured.

    .venv/bin/python benchmarks/summarize_long.py [--pages 50] [--ctx 2048] [--length points]
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT)]  # a plain script: the root makes app, ui and tests.helpers importable

from app.documents.reader import read_document  # noqa: E402
from app.engine import EngineClient  # noqa: E402
from app.history import HistoryStore, open_database  # noqa: E402
from app.task_session import TaskSession  # noqa: E402
from app.tasks.inputs import passages_of, source_of  # noqa: E402
from app.tasks.spec import Summarize, TaskInput  # noqa: E402
from app.words import format_bytes  # noqa: E402

from tests.helpers.document_builders import text_pdf  # noqa: E402
from tests.helpers.fetch_test_model import locate  # noqa: E402

NAMES = ["Lily", "Tom", "Ben", "Sue", "Max", "Anna"]
THINGS = ["a red ball", "a big box", "a little boat", "a shiny stone", "a kite", "a old book", "a blue cup"]
PLACES = ["the park", "the garden", "the river", "the school", "the forest", "the beach"]
DOINGS = ["found", "lost", "painted", "shared", "carried", "hid", "fixed"]


def paragraph(rng: random.Random) -> str:
    sentences = []
    for _ in range(rng.randint(4, 7)):
        sentences.append(f"{rng.choice(NAMES)} {rng.choice(DOINGS)} {rng.choice(THINGS)} at {rng.choice(PLACES)}.")
        if rng.random() < 0.4:
            sentences.append(f"It was a {rng.choice(['happy', 'sunny', 'quiet', 'windy'])} day, and everyone smiled.")
    return " ".join(sentences)


def write_document(path: Path, pages: int, seed: int = 5) -> Path:
    rng = random.Random(seed)
    path.write_bytes(text_pdf([[paragraph(rng) for _ in range(5)] for _ in range(pages)]))
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=50)
    parser.add_argument("--ctx", type=int, default=2048, help="context window in tokens")
    parser.add_argument("--length", choices=["short", "points", "detailed"], default="points")
    args = parser.parse_args()
    model = locate()
    if model is None:
        raise SystemExit("the test model is missing: run `make test` once (tests/helpers/fetch_test_model.py)")
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        document = read_document(write_document(work / "long.pdf", args.pages))
        store = HistoryStore(open_database(work / "history.sqlite3"))
        engine = EngineClient()
        engine.start()
        try:
            engine.load_blocking(model, context_length=args.ctx)
            session = TaskSession(store, engine)
            started = time.perf_counter()
            ended = session.run_blocking(TaskInput(Summarize(args.length), passages_of(document), title="Stories",
                                                   seed=1), source_of(document))
            wall = time.perf_counter() - started
        finally:
            engine.shutdown()
    result, metrics = ended.result, ended.metrics
    assert result is not None and metrics is not None
    ratio = result.model_tokens_processed / result.document_tokens
    print(f"document: {document.pages} pages, {result.document_tokens:,} tokens; context {args.ctx} tokens")
    print(f"read in {result.chunks} parts, {result.levels} levels, {metrics.calls} model calls; "
          f"covered {result.covered_tokens:,} of {result.document_tokens:,} tokens")
    print(f"tokens processed / document tokens: {ratio:.3f} (target <= 1.3) -> {'OK' if ratio <= 1.3 else 'ABOVE'}")
    print(f"generated {metrics.completion_tokens:,} tokens; wall time {wall:.1f} s; "
          f"worker peak memory {format_bytes(metrics.peak_rss_bytes)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
