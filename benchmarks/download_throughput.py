"""Hearth's download manager against curl, on the project's Hub stand-in (127.0.0.1).

Downloads one large file (500 MB by default) alternately with ``DownloadManager`` and with curl, and
prints the throughput ratio (target: at least 0.9 of curl), twice: on unlimited loopback, where both are
CPU-bound and Hearth also computes the SHA-256 of every byte, and over a link limited to a gigabit
connection's speed, which is still faster than the Hub delivers to most homes. Then cuts the connection
halfway through a Hearth download and prints how many bytes were fetched twice after the resume (target: under 1%).

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
sys.path[:0] = [str(ROOT)]  # a plain script: the root makes app, ui and tests.helpers importable

from app.hub.downloads import DownloadManager, JobState  # noqa: E402

from tests.helpers.hub_stand_in import Fault, start_hub, use_stand_in, write_big_gguf  # noqa: E402

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


def serve(size_mb: int, folder: Path, link_mb_s: float) -> int:
    """The stand-in in a process of its own, as the Hub is: serving from the benchmark's own process would
    make Hearth's downloader share the interpreter lock with the server, and curl would not."""
    with start_hub() as hub:
        source = folder / NAME
        if not source.exists():
            write_big_gguf(source, size=size_mb * MIB)
        hub.add_repo(REPO, {NAME: source})
        if link_mb_s:
            hub.fail(f"*/{NAME}", Fault.slow(link_mb_s * 1e6), times=None, method="GET")
        print(hub.url, hub.resolve_url(REPO, NAME), source.stat().st_size, flush=True)
        sys.stdin.read()
    return 0


NAME = "big-Q4_K_M.gguf"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=500)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--link-mb-s", type=float, default=125.0,
                        help="the second comparison's link speed (default 125 MB/s: a gigabit connection)")
    parser.add_argument("--serve", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        return serve(args.size_mb, args.serve, args.link_mb_s)
    if shutil.which("curl") is None:
        raise SystemExit("curl is needed for the comparison")
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        compare(work, args.size_mb, args.runs, 0.0, "loopback, unlimited")
        compare(work, args.size_mb, args.runs, args.link_mb_s, f"link limited to {args.link_mb_s:g} MB/s")
    resumed(args.size_mb)
    return 0


def compare(work: Path, size_mb: int, runs: int, link_mb_s: float, label: str) -> None:
    """Alternate Hearth and curl on one server. On loopback both are CPU-bound and Hearth also hashes every
    byte, which curl does not; the link-limited row is the case users meet, where the network is slower."""
    patch = pytest.MonkeyPatch()
    server = subprocess.Popen([sys.executable, __file__, "--serve", str(work), "--size-mb", str(size_mb),
                               "--link-mb-s", str(link_mb_s)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
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
    try:
        for _ in range(runs):
            hearth_s.append(hearth_once(work / "hearth", NAME)[0])
            curl_s.append(curl_once(url, work / "curl.gguf"))
    finally:
        server.stdin.close()
        server.wait(30)
        patch.undo()
    hearth_rate = size / statistics.median(hearth_s) / 1e6
    curl_rate = size / statistics.median(curl_s) / 1e6
    ratio = hearth_rate / curl_rate
    print(f"{label}: file {size / 1e6:.0f} MB, {runs} runs each (medians)")
    print(f"  hearth {hearth_rate:8.1f} MB/s   curl {curl_rate:8.1f} MB/s   ratio {ratio:.3f} "
          f"(target >= 0.9) -> {'OK' if ratio >= 0.9 else 'BELOW'}", flush=True)


def resumed(size_mb: int) -> None:
    patch = pytest.MonkeyPatch()
    with tempfile.TemporaryDirectory() as scratch, start_hub() as hub:
        work = Path(scratch)
        use_stand_in(hub, patch, work / "hf-home")
        source = write_big_gguf(work / NAME, size=size_mb * MIB)
        size = source.stat().st_size
        hub.add_repo(REPO, {NAME: source})
        hub.fail(f"*/{NAME}", Fault.drop(after=size // 2, reset=True))
        _, fetched = hearth_once(work / "resumed", NAME)
        twice = fetched - size
        print(f"interrupted at 50% and resumed: {twice} bytes fetched twice ({twice / size * 100:.3f}% of the file; "
              f"target < 1%) -> {'OK' if twice < size / 100 else 'ABOVE'}")
    patch.undo()


if __name__ == "__main__":
    sys.exit(main())
