"""Reading a long real document: a 1,000-page text PDF and a 10,000-paragraph Word file, through Hearth's own
reader (the isolated child process, its time limit and all), as a person opening them would.

Prints each file's reading time, the time limit Hearth gave it, and the machine's load while it ran (a busy
machine reads slower: note it beside the figures). Target: each under 15 s on a 2-core machine.

    .venv/bin/python benchmarks/document_reading.py [--pages 1000] [--paragraphs 10000] [--runs 3]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT)]  # a plain script: the root makes app, ui and tests.helpers importable

from app.documents.isolated import reading_limit_s  # noqa: E402
from app.documents.reader import read_document  # noqa: E402

from tests.helpers.document_builders import typeset_pdf, word_document  # noqa: E402

WORDS = tuple("""
the of and to in a is that for it as was with be by on not he this are or his from at which but have
an they you were her she there been one all we their has would when if so no what out up into them
can more about other time only some could these two may first then do any like my now over such our
man me even most made after also did many before must through back years where much your way well
down should because each just those people how too little state good very make world still own see
men work long get here between both life being under never day same another know while last might us
great old year off come since against go came right used take three
""".split())  # noqa: SIM905 (common English words, for prose of a realistic shape)

TARGET_S = 15.0


def sentence(rng: random.Random) -> str:
    words = [rng.choice(WORDS) for _ in range(rng.randint(8, 20))]
    return " ".join(words).capitalize() + "."


def paragraph(rng: random.Random) -> str:
    return " ".join(sentence(rng) for _ in range(rng.randint(2, 6)))


def write_pdf(path: Path, pages: int, seed: int = 3) -> Path:
    """Full pages of prose (about 40 lines of 80 characters), typeset as word processors write PDFs (kerned pieces
    of a few letters, a bold font now and then), which takes a reader several times the work of plain lines."""
    rng = random.Random(seed)
    book = []
    for _ in range(pages):
        page: list[str] = []
        while sum(len(p) // 80 + 2 for p in page) < 40:
            page.append(paragraph(rng))
        book.append(page)
    path.write_bytes(typeset_pdf(book, seed))
    return path


def write_docx(path: Path, paragraphs: int, seed: int = 4) -> Path:
    """Body paragraphs with a heading every 25, as a long manual or thesis has."""
    rng = random.Random(seed)
    blocks = [("Heading 1" if index % 25 == 0 else "", sentence(rng) if index % 25 == 0 else paragraph(rng))
              for index in range(paragraphs)]
    return word_document(path, blocks)


def measure(path: Path, runs: int) -> tuple[list[float], int, int | None]:
    times: list[float] = []
    paragraphs, pages = 0, None
    for _ in range(runs):
        started = time.perf_counter()
        document = read_document(path)
        times.append(time.perf_counter() - started)
        paragraphs, pages = len(document.paragraphs), document.pages
    return times, paragraphs, pages


def limit(path: Path, paragraphs: int, pages: int | None) -> float:
    """The limit Hearth gave the file: the Word reader counts body blocks (here, its paragraphs)."""
    size = path.stat().st_size
    return reading_limit_s(size, pages, "pages") if pages else reading_limit_s(size, paragraphs, "paragraphs")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=1000)
    parser.add_argument("--paragraphs", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    print(f"{os.cpu_count()} cores; load average before: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        files = [write_pdf(work / "long.pdf", args.pages), write_docx(work / "long.docx", args.paragraphs)]
        worst = 0.0
        for path in files:
            times, paragraphs, pages = measure(path, args.runs)
            median = statistics.median(times)
            worst = max(worst, median)
            size = f"{pages:,} pages, " if pages else ""
            print(f"{path.name}: {size}{paragraphs:,} paragraphs, {path.stat().st_size / 1e6:.1f} MB; "
                  f"read in {median:.1f} s (median of {len(times)}: {', '.join(f'{t:.1f}' for t in times)}); "
                  f"time limit {limit(path, paragraphs, pages):.0f} s")
    print(f"load average after: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"slowest: {worst:.1f} s (target under {TARGET_S:g} s) -> {'OK' if worst < TARGET_S else 'ABOVE'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
