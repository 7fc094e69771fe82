"""Hearth's download manager against curl, on the project's Hub stand-in (127.0.0.1).

Downloads one large file (500 MB by default) alternately with ``DownloadManager`` and with curl, and
prints the throughput ratio (target: at least 0.9 of curl). Then cuts the connection halfway through a
Hearth download and prints how many bytes were fetched twice after the resume (target: under 1%).

    .venv/bin/python benchmarks/download_throughput.py [--size-mb 500] [--runs 3]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from app.downloads import DownloadManager, JobState  # noqa: E402

from hub_stand_in import Fault, start_hub, use_stand_in, write_big_gguf  # noqa: E402

MIB = 1 << 20
REPO = "bench/big-GGUF"


def hearth_once(folder: Path, name: str) -> tuple[float, int]:
    shutil.rmtree(folder, ignore_errors=True)
    manager = DownloadManager(folder / ".downloads", folder)
    started = time.perf_counter()
    job = manager.enqueue(REPO, [name])
    final = manager.wait(job)
    elapsed = time.perf_counter() - started
    if final.state is not JobState.DONE:
        raise SystemExit(f"download failed: {final.error}")
    return elapsed, manager.fetched_bytes(job)


def curl_once(url: str, target: Path) -> float:
    target.unlink(missing_ok=True)
    started = time.perf_counter()
    subprocess.run(["curl", "-s", "-L", "-o", str(target), url], check=True)
    return time.perf_counter() - started


def serve(size_mb: int, folder: Path) -> int:
    """The stand-in in a process of its own, as the Hub is: serving from the benchmark's own process would
    make Hearth's downloader share the interpreter lock with the server, and curl would not."""
    with start_hub() as hub:
        source = write_big_gguf(folder / NAME, size=size_mb * MIB)
        hub.add_repo(REPO, {NAME: source})
        print(hub.url, hub.resolve_url(REPO, NAME), source.stat().st_size, flush=True)
        sys.stdin.read()
    return 0


NAME = "big-Q4_K_M.gguf"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=500)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--serve", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        return serve(args.size_mb, args.serve)
    if shutil.which("curl") is None:
        raise SystemExit("curl is needed for the comparison")
    patch = pytest.MonkeyPatch()
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        server = subprocess.Popen([sys.executable, __file__, "--serve", str(work), "--size-mb", str(args.size_mb)],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert server.stdout is not None and server.stdin is not None
        endpoint, url, size_text = server.stdout.readline().split()
        size = int(size_text)
        from huggingface_hub import constants

        patch.setenv("HF_ENDPOINT", endpoint)
        patch.setattr(constants, "ENDPOINT", endpoint)
        patch.setattr(constants, "HF_HUB_OFFLINE", False)
        patch.setattr(constants, "HF_HUB_DISABLE_XET", True)
        patch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", endpoint + "/{repo_id}/resolve/{revision}/{filename}")
        hearth_s, curl_s = [], []
        for _ in range(args.runs):
            hearth_s.append(hearth_once(work / "hearth", NAME)[0])
            curl_s.append(curl_once(url, work / "curl.gguf"))
        server.stdin.close()
        server.wait(30)
        patch.undo()
        hearth_rate = size / statistics.median(hearth_s) / 1e6
        curl_rate = size / statistics.median(curl_s) / 1e6
        print(f"file {size / 1e6:.0f} MB, {args.runs} runs each (medians)")
        print(f"hearth {hearth_rate:8.1f} MB/s   curl {curl_rate:8.1f} MB/s   ratio {hearth_rate / curl_rate:.3f} "
              f"(target >= 0.9) -> {'OK' if hearth_rate / curl_rate >= 0.9 else 'BELOW'}")
    with tempfile.TemporaryDirectory() as scratch, start_hub() as hub:
        work = Path(scratch)
        use_stand_in(hub, patch, work / "hf-home")
        source = write_big_gguf(work / NAME, size=args.size_mb * MIB)
        size = source.stat().st_size
        hub.add_repo(REPO, {NAME: source})
        hub.fail(f"*/{NAME}", Fault.drop(after=size // 2, reset=True))
        _, fetched = hearth_once(work / "resumed", NAME)
        twice = fetched - size
        print(f"interrupted at 50% and resumed: {twice} bytes fetched twice ({twice / size * 100:.3f}% of the file; "
              f"target < 1%) -> {'OK' if twice < size / 100 else 'ABOVE'}")
    patch.undo()
    return 0


if __name__ == "__main__":
    sys.exit(main())
