"""The download manager against real HTTP on 127.0.0.1: resume, verification, faults, queue."""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from app.hub.downloads import DownloadManager, JobState, RemoteFile

from tests.helpers.range_server import RangeServer, serve_folder

MIB = 1 << 20


@pytest.fixture(autouse=True)
def online(monkeypatch: pytest.MonkeyPatch) -> None:
    """The suite runs with HF_HUB_OFFLINE; these tests talk to a server on 127.0.0.1 through the Hub's client."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)


@pytest.fixture
def payload(tmp_path: Path) -> tuple[Path, bytes]:
    source = tmp_path / "served"
    source.mkdir()
    data = os.urandom(24 * MIB)
    (source / "model-Q4_K_M.gguf").write_bytes(data)
    return source, data


@pytest.fixture
def served(payload: tuple[Path, bytes]) -> Iterator[RangeServer]:
    with serve_folder(payload[0]) as server:
        yield server


def resolver_for(server: RangeServer, data: bytes, *, sha256: str | None = None) -> Callable[..., RemoteFile]:
    digest = sha256 or hashlib.sha256(data).hexdigest()

    def resolve(repo: str, name: str, revision: str) -> RemoteFile:
        return RemoteFile(repo, name, revision, server.url(f"/{name}"), len(data), digest, "c" * 40)

    return resolve


def manager(tmp_path: Path, resolve: Callable[..., RemoteFile], **options: Any) -> DownloadManager:
    return DownloadManager(tmp_path / "models" / ".downloads", tmp_path / "models", resolver=resolve, **options)


def test_download_is_verified_and_moved_into_the_models_folder(
        tmp_path: Path, served: RangeServer, payload: tuple[Path, bytes]) -> None:
    downloads = manager(tmp_path, resolver_for(served, payload[1]))
    seen: list[JobState] = []
    downloads.subscribe(lambda job: seen.append(job.state))
    job = downloads.enqueue("owner/repo", ["model-Q4_K_M.gguf"])
    final = downloads.wait(job, 60)
    assert final.state is JobState.DONE
    assert final.result == tmp_path / "models" / "owner" / "repo" / "model-Q4_K_M.gguf"
    assert final.result.read_bytes() == payload[1]
    assert JobState.VERIFYING in seen and seen[-1] is JobState.DONE
    assert not list((tmp_path / "models" / ".downloads").iterdir())


def test_pause_then_a_new_manager_resumes_without_fetching_twice(
        tmp_path: Path, served: RangeServer, payload: tuple[Path, bytes]) -> None:
    data = payload[1]
    first = manager(tmp_path, resolver_for(served, data))
    job = first.enqueue("owner/repo", ["model-Q4_K_M.gguf"])
    while first.job(job).done_bytes < 4 * MIB:
        pass
    first.pause(job)
    paused = first.wait(job, 30)
    assert paused.state is JobState.PAUSED and 0 < paused.done_bytes < len(data)
    kept = (tmp_path / "models" / ".downloads")
    have = sum(p.stat().st_size for p in kept.glob("*.part"))

    second = manager(tmp_path, resolver_for(served, data))  # as after a restart of the app
    [restored] = second.restore()
    assert second.job(restored).state is JobState.PAUSED
    second.resume(restored)
    final = second.wait(restored, 60)
    assert final.state is JobState.DONE and final.result is not None and final.result.read_bytes() == data
    assert second.fetched_bytes(restored) == len(data) - have  # nothing fetched twice
    assert any(r.range == f"bytes={have}-" for r in served.gets())


def test_a_server_that_ignores_range_is_handled(tmp_path: Path, payload: tuple[Path, bytes]) -> None:
    data = payload[1]
    with serve_folder(payload[0], ignore_range=True) as server:
        first = manager(tmp_path, resolver_for(server, data))
        job = first.enqueue("owner/repo", ["model-Q4_K_M.gguf"])
        while first.job(job).done_bytes < 2 * MIB:
            pass
        first.pause(job)
        first.wait(job, 30)
        second = manager(tmp_path, resolver_for(server, data))
        [restored] = second.restore()
        second.resume(restored)
        final = second.wait(restored, 60)
    assert final.state is JobState.DONE and final.result is not None and final.result.read_bytes() == data


def test_a_checksum_mismatch_deletes_the_file_and_says_so(
        tmp_path: Path, served: RangeServer, payload: tuple[Path, bytes]) -> None:
    downloads = manager(tmp_path, resolver_for(served, payload[1], sha256="0" * 64))
    final = downloads.wait(downloads.enqueue("owner/repo", ["model-Q4_K_M.gguf"]), 60)
    assert final.state is JobState.FAILED and final.error is not None and "damaged" in final.error
    assert not (tmp_path / "models" / "owner" / "repo" / "model-Q4_K_M.gguf").exists()
    assert not list((tmp_path / "models" / ".downloads").glob("*.part"))


def test_cancel_removes_the_partial_file(tmp_path: Path, served: RangeServer, payload: tuple[Path, bytes]) -> None:
    downloads = manager(tmp_path, resolver_for(served, payload[1]))
    job = downloads.enqueue("owner/repo", ["model-Q4_K_M.gguf"])
    while downloads.job(job).done_bytes < MIB:
        pass
    downloads.cancel(job)
    assert downloads.wait(job, 30).state is JobState.CANCELLED
    assert not list((tmp_path / "models" / ".downloads").glob("*.part"))


def test_not_enough_disk_space_is_refused_before_starting(
        tmp_path: Path, served: RangeServer, payload: tuple[Path, bytes], monkeypatch: pytest.MonkeyPatch) -> None:
    real = shutil.disk_usage
    monkeypatch.setattr(shutil, "disk_usage", lambda path: real(path)._replace(free=MIB))  # a nearly full disk
    downloads = manager(tmp_path, resolver_for(served, payload[1]))
    final = downloads.wait(downloads.enqueue("owner/repo", ["model-Q4_K_M.gguf"]), 60)
    assert final.state is JobState.FAILED and final.error is not None
    assert "Not enough free disk space" in final.error and served.gets() == []


def test_a_missing_file_fails_with_a_plain_message(tmp_path: Path, served: RangeServer) -> None:
    def resolve(repo: str, name: str, revision: str) -> RemoteFile:
        return RemoteFile(repo, name, revision, served.url("/nothing-here.gguf"), 10, None, None)

    downloads = manager(tmp_path, resolve)
    final = downloads.wait(downloads.enqueue("owner/repo", ["nothing-here.gguf"]), 60)
    assert final.state is JobState.FAILED and final.error is not None and "no longer in owner/repo" in final.error


def test_at_most_two_run_at_once(tmp_path: Path, served: RangeServer, payload: tuple[Path, bytes]) -> None:
    data = payload[1]
    for name in ("b-Q8_0.gguf", "c-F16.gguf"):
        (payload[0] / name).write_bytes(data)
    downloads = manager(tmp_path, resolver_for(served, data))
    running: list[int] = []
    downloads.subscribe(lambda job: running.append(
        sum(1 for j in downloads.jobs() if j.state in (JobState.RESOLVING, JobState.DOWNLOADING,
                                                        JobState.VERIFYING))))
    jobs = [downloads.enqueue("owner/repo", [n]) for n in ("model-Q4_K_M.gguf", "b-Q8_0.gguf", "c-F16.gguf")]
    assert all(downloads.wait(j, 60).state is JobState.DONE for j in jobs)
    assert max(running) <= 2


def test_a_full_disk_mid_download_keeps_the_part_for_later(
        tmp_path: Path, served: RangeServer, payload: tuple[Path, bytes], monkeypatch: pytest.MonkeyPatch) -> None:
    """The disk fills up after 3 MiB (simulated: no test machine can be made to run out of space safely)."""
    import errno

    data = payload[1]
    real_open = Path.open

    class FillingFile:
        def __init__(self, inner: Any) -> None:
            self.inner, self.written = inner, 0

        def write(self, chunk: bytes) -> int:
            if self.written + len(chunk) > 3 * MIB:
                raise OSError(errno.ENOSPC, "No space left on device")
            self.written += len(chunk)
            return int(self.inner.write(chunk))

        def close(self) -> None:
            self.inner.close()

    def filling_open(path: Path, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        handle = real_open(path, mode, *args, **kwargs)
        return FillingFile(handle) if path.suffix == ".part" and "b" in mode and "r" not in mode else handle

    monkeypatch.setattr(Path, "open", filling_open)
    downloads = manager(tmp_path, resolver_for(served, data))
    failed = downloads.wait(downloads.enqueue("owner/repo", ["model-Q4_K_M.gguf"]), 60)
    assert failed.state is JobState.FAILED and failed.error is not None and "disk is full" in failed.error
    [part] = (tmp_path / "models" / ".downloads").glob("*.part")
    kept = part.stat().st_size
    assert 0 < kept <= 3 * MIB

    monkeypatch.setattr(Path, "open", real_open)  # space was freed
    downloads.retry(failed.job_id)
    final = downloads.wait(failed.job_id, 60)
    assert final.state is JobState.DONE and final.result is not None and final.result.read_bytes() == data
