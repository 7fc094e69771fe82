"""The download manager: resumable across restarts, verified, queued.

huggingface_hub 2.x resolves a file (commit, size, SHA-256, authentication, the redirect to the CDN) but
its download starts again from zero after a restart and never checks the SHA-256 of what it wrote
(``shared/notes/hub-stand-in.md``). So Hearth asks huggingface_hub for the metadata and streams the bytes
itself, through huggingface_hub's own HTTP client:

- the partial file lives in ``downloads_dir`` beside a small JSON record of what it should become (size,
  SHA-256, commit), so any later run continues it with ``Range`` from where it stopped;
- the SHA-256 is computed while streaming (the bytes already on disk are hashed again on resume) and
  checked before the file is moved into the models folder; a mismatch deletes the partial file;
- dropped connections, 5xx and 429 are retried with backoff (honouring ``Retry-After``) while they make
  progress; a server that ignores ``Range`` is answered by starting that file again.

Finished files go to ``<models>/<owner>/<repository>/<file>``: two repositories may well publish the same file
name, and a model must never be overwritten by another one's bytes (``_destinations``).

Jobs run on worker threads, at most two at a time; listeners get ``JobChanged`` on those threads.
"""

from __future__ import annotations

import dataclasses
import enum
import errno
import hashlib
import itertools
import json
import logging
import os
import queue
import re
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.errors import HearthError
from app.events import Listeners
from app.words import format_bytes

log = logging.getLogger(__name__)

CHUNK = 1 << 20
MAX_TRIES_WITHOUT_PROGRESS = 5
BACKOFF_S = (1.0, 2.0, 4.0, 8.0, 16.0)
PROGRESS_INTERVAL_S = 0.25
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class DownloadError(HearthError):
    """A download that cannot go on; the message says why and what to do."""


class _Interrupted(Exception):
    """Paused or cancelled by the person (not an error)."""


class JobState(enum.Enum):
    QUEUED = "queued"
    RESOLVING = "resolving"
    DOWNLOADING = "downloading"
    VERIFYING = "verifying"
    PAUSED = "paused"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


@dataclass(frozen=True)
class RemoteFile:
    repo_id: str
    filename: str
    revision: str
    url: str
    size: int
    sha256: str | None  # None for small files the Hub keeps in git (their ETag is a git hash)
    commit: str | None


@dataclass(frozen=True)
class JobChanged:
    job_id: int
    repo_id: str
    filenames: tuple[str, ...]
    state: JobState
    done_bytes: int
    total_bytes: int
    bytes_per_s: float
    error: str | None
    result: Path | None  # the first file (the one llama.cpp is given) once done

    @property
    def seconds_left(self) -> float | None:
        if self.bytes_per_s <= 0 or self.total_bytes <= 0:
            return None
        return max(self.total_bytes - self.done_bytes, 0) / self.bytes_per_s


@dataclass
class _Job:
    id: int
    repo_id: str
    filenames: tuple[str, ...]
    revision: str
    state: JobState = JobState.QUEUED
    files: list[RemoteFile] = field(default_factory=list)
    done_bytes: int = 0
    total_bytes: int = 0
    bytes_per_s: float = 0.0
    error: str | None = None
    result: Path | None = None
    stop: str | None = None  # "pause" or "cancel", set by the person
    fetched_bytes: int = 0  # bytes received from the network, including any fetched twice
    reported_at: float = 0.0


@dataclass
class _FileState:
    """One file's bytes on disk and their running hash; survives a failed attempt."""

    have: int
    hasher: Any


Resolver = Callable[[str, str, str], RemoteFile]
Listener = Callable[[JobChanged], None]


class DownloadManager:
    """Args:
        downloads_dir: where partial files and their records live (inside the models folder's parent).
        models_dir: where finished files go.
        resolver: (repo, file, revision) -> RemoteFile; ``resolve_file`` by default (huggingface_hub).
        session: an ``httpx2.Client``; huggingface_hub's own by default.
    """

    def __init__(self, downloads_dir: Path, models_dir: Path, *, resolver: Resolver | None = None,
                 session: Any = None, max_parallel: int = 2, token: str | None = None) -> None:
        self.downloads_dir = downloads_dir
        self.models_dir = models_dir
        self.token = token  # the Hugging Face token; may change while the app runs
        self._resolver = resolver or (lambda repo, name, rev: resolve_file(repo, name, rev, token=self.token))
        self._session = session
        self.max_parallel = max_parallel
        self._lock = threading.RLock()
        self._jobs: dict[int, _Job] = {}
        self._ids = itertools.count(1)
        self._listeners: Listeners[JobChanged] = Listeners()
        self._threads: dict[int, threading.Thread] = {}

    # --- public ---

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        return self._listeners.subscribe(listener)

    def enqueue(self, repo_id: str, filenames: list[str] | tuple[str, ...], revision: str = "main") -> int:
        with self._lock:
            for job in self._jobs.values():
                if job.repo_id == repo_id and job.filenames == tuple(filenames) and \
                        job.state not in (JobState.DONE, JobState.CANCELLED, JobState.FAILED):
                    return job.id
            job = _Job(next(self._ids), repo_id, tuple(filenames), revision)
            self._jobs[job.id] = job
        self._changed(job)
        self._pump()
        return job.id

    def pause(self, job_id: int) -> None:
        self._interrupt(job_id, "pause")

    def cancel(self, job_id: int) -> None:
        """Stop and delete what was downloaded for this job."""
        with self._lock:
            job = self._jobs[job_id]
            running = job_id in self._threads
            if not running:
                self._discard_partials(job)
                job.state = JobState.CANCELLED
        if running:
            self._interrupt(job_id, "cancel")
        else:
            self._changed(job)

    def resume(self, job_id: int) -> None:
        """Continue a paused job, or try a failed one again (from where it stopped)."""
        with self._lock:
            job = self._jobs[job_id]
            if job.state not in (JobState.PAUSED, JobState.FAILED):
                return
            job.state, job.error, job.stop = JobState.QUEUED, None, None
        self._changed(job)
        self._pump()

    retry = resume

    def jobs(self) -> list[JobChanged]:
        with self._lock:
            return [self._snapshot(job) for job in self._jobs.values()]

    def job(self, job_id: int) -> JobChanged:
        with self._lock:
            return self._snapshot(self._jobs[job_id])

    def fetched_bytes(self, job_id: int) -> int:
        with self._lock:
            return self._jobs[job_id].fetched_bytes

    def wait(self, job_id: int, timeout: float | None = None) -> JobChanged:
        """Block until the job is done, failed, paused or cancelled (CLI and tests only)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            snapshot = self.job(job_id)
            if snapshot.state in (JobState.DONE, JobState.FAILED, JobState.PAUSED, JobState.CANCELLED):
                return snapshot
            if deadline is not None and time.monotonic() > deadline:
                raise DownloadError("The download did not finish in time.")
            time.sleep(0.05)

    def restore(self) -> list[int]:
        """Jobs for the partial downloads left by an earlier run, as paused jobs the person can resume."""
        restored = []
        for record_path in sorted(self.downloads_dir.glob("*.json")) if self.downloads_dir.is_dir() else []:
            try:
                record = json.loads(record_path.read_text(encoding="utf-8"))
                repo, name, revision = record["repo_id"], record["filename"], record["revision"]
            except (OSError, ValueError, KeyError):
                continue
            with self._lock:
                known = any(j.repo_id == repo and name in j.filenames for j in self._jobs.values())
                if known:
                    continue
                job = _Job(next(self._ids), repo, (name,), revision, state=JobState.PAUSED,
                           total_bytes=int(record.get("size", 0)))
                part = record_path.with_suffix(".part")
                job.done_bytes = part.stat().st_size if part.exists() else 0
                self._jobs[job.id] = job
            restored.append(job.id)
            self._changed(job)
        return restored

    def shutdown(self, timeout: float = 5.0) -> None:
        """Pause everything running (the partial files stay for the next start)."""
        with self._lock:
            running = list(self._threads.items())
            for job_id, _ in running:
                self._jobs[job_id].stop = "pause"
        for _, thread in running:
            thread.join(timeout)

    # --- scheduling ---

    def _interrupt(self, job_id: int, how: str) -> None:
        with self._lock:
            job = self._jobs[job_id]
            if job.state in (JobState.QUEUED,):
                job.state = JobState.PAUSED if how == "pause" else JobState.CANCELLED
                changed = True
            else:
                job.stop = how
                changed = False
        if changed:
            self._changed(job)

    def _pump(self) -> None:
        with self._lock:
            free = self.max_parallel - len(self._threads)
            waiting = [j for j in self._jobs.values() if j.state is JobState.QUEUED]
            for job in waiting[:max(free, 0)]:
                job.state = JobState.RESOLVING
                thread = threading.Thread(target=self._run, args=(job,), name=f"download-{job.id}", daemon=True)
                self._threads[job.id] = thread
                thread.start()

    def _run(self, job: _Job) -> None:
        try:
            self._changed(job)
            if not job.files:
                job.files = [self._resolver(job.repo_id, name, job.revision) for name in job.filenames]
                job.total_bytes = sum(f.size for f in job.files)
            destinations, present = self._destinations(job.repo_id, job.files)
            self._check_space(job, [f for f, there in zip(job.files, present, strict=True) if not there])
            job.state = JobState.DOWNLOADING
            offset = 0
            for remote, destination, there in zip(job.files, destinations, present, strict=True):
                if there:  # already downloaded, with the Hub's checksum: a pull again is a no-op
                    job.done_bytes = offset + remote.size
                else:
                    self._fetch(job, remote, destination, offset)
                offset += remote.size
            job.result = destinations[0]
            job.state = JobState.DONE
        except _Interrupted:
            if job.stop == "cancel":
                self._discard_partials(job)
                job.state = JobState.CANCELLED
            else:
                job.state = JobState.PAUSED
        except DownloadError as error:
            job.state, job.error = JobState.FAILED, str(error) or "The download stopped for a reason Hearth could " \
                "not put into words (details are in the log file). Press Retry to try again."
            if not str(error):
                log.error("download of %s failed without a message", job.repo_id, exc_info=error)
        except Exception as error:
            log.exception("download of %s failed", job.repo_id)
            job.state, job.error = JobState.FAILED, f"The download failed unexpectedly: {error}"
        finally:
            job.stop = None
            with self._lock:
                self._threads.pop(job.id, None)
            self._changed(job)
            self._pump()

    def _check_space(self, job: _Job, missing: list[RemoteFile]) -> None:
        with self._lock:
            others = sum(j.total_bytes - j.done_bytes for j in self._jobs.values()
                         if j is not job and j.state in (JobState.QUEUED, JobState.RESOLVING, JobState.DOWNLOADING))
        needed = sum(f.size - self._partial_size(f) for f in missing) + max(others, 0)
        if not missing:
            return
        try:
            self.downloads_dir.mkdir(parents=True, exist_ok=True)
            free = shutil.disk_usage(self.downloads_dir).free
        except OSError as error:
            raise DownloadError(disk_problem(error, self.downloads_dir)) from error
        if needed > free:
            raise DownloadError(f"Not enough free disk space: the download needs {format_bytes(needed)} and "
                                f"{format_bytes(free)} is free. Free some space and try again.")

    def _destinations(self, repo_id: str, files: list[RemoteFile]) -> tuple[list[Path], list[bool]]:
        """Where each file goes, and whether it is there already with the Hub's checksum.

        ``<models>/<owner>/<repository>/<file>``, so files from different repositories never share a path. A
        model an earlier Hearth put straight into the models folder is kept where it is when its bytes are this
        file's (so its library entry keeps working and a pull again downloads nothing). A file of the same name
        already in the repository's folder with other bytes (an older version, which a library entry may point
        at) is never overwritten: this version goes into a folder named after its commit."""
        checked: dict[Path, bool] = {}

        def there(path: Path, remote: RemoteFile) -> bool:
            if path not in checked:
                checked[path] = _already_there(path, remote)
            return checked[path]

        legacy = [self.models_dir / Path(f.filename).name for f in files]
        if all(there(path, remote) for path, remote in zip(legacy, files, strict=True)):
            return legacy, [True] * len(files)
        folder = self.models_dir.joinpath(*_safe_parts(repo_id, "repository"))
        paths = [folder.joinpath(*_safe_parts(f.filename, "file")) for f in files]
        if any(path.exists() and not there(path, remote) for path, remote in zip(paths, files, strict=True)):
            version = (files[0].commit or files[0].sha256 or "new")[:12]
            paths = [folder / version / Path(*_safe_parts(f.filename, "file")) for f in files]
        return paths, [there(path, remote) for path, remote in zip(paths, files, strict=True)]

    # --- one file ---

    def _paths(self, remote: RemoteFile) -> tuple[Path, Path]:
        key = (remote.sha256 or remote.commit or "unknown")[:16]
        stem = f"{remote.repo_id.replace('/', '--')}--{key}--{Path(remote.filename).name}"
        return self.downloads_dir / f"{stem}.part", self.downloads_dir / f"{stem}.json"

    def _partial_size(self, remote: RemoteFile) -> int:
        part, _ = self._paths(remote)
        return part.stat().st_size if part.exists() else 0

    def _fetch(self, job: _Job, remote: RemoteFile, destination: Path, offset: int) -> None:
        part, record = self._paths(remote)
        try:
            self.downloads_dir.mkdir(parents=True, exist_ok=True)
            record.write_text(json.dumps({**dataclasses.asdict(remote), "revision": remote.revision}),
                              encoding="utf-8")
        except OSError as error:
            raise DownloadError(disk_problem(error, self.downloads_dir)) from error
        hasher = hashlib.sha256()
        state = _FileState(_rehash(part, hasher, remote.size), hasher)
        tries = 0
        started, start_have = time.monotonic(), state.have
        while state.have < remote.size:
            if job.stop:
                raise _Interrupted()
            before = state.have
            try:
                self._stream(job, remote, part, state,
                             lambda now: self._progress(job, offset + state.have, started, start_have, now))
            except _Retry as retry:
                tries = 1 if state.have > before else tries + 1  # only attempts that got nothing count
                if tries > MAX_TRIES_WITHOUT_PROGRESS:
                    raise DownloadError(
                        f"The download of “{Path(remote.filename).name}” kept failing ({retry.reason}). Check the "
                        "internet connection and press Retry: it will continue where it stopped.") from None
                self._sleep(job, retry.wait if retry.wait is not None else BACKOFF_S[min(tries - 1, 4)])
        hasher = state.hasher
        job.state = JobState.VERIFYING
        self._changed(job)
        if remote.sha256 and hasher.hexdigest() != remote.sha256:
            part.unlink(missing_ok=True)
            record.unlink(missing_ok=True)
            raise DownloadError(
                f"“{Path(remote.filename).name}” arrived damaged (its checksum does not match the one the Hub "
                "published), so it was deleted. Press Retry to download it again.")
        try:
            destination.parent.mkdir(parents=True, exist_ok=True)
            os.replace(part, destination)
        except OSError as error:
            raise DownloadError(disk_problem(error, destination.parent)) from error
        record.unlink(missing_ok=True)
        job.state = JobState.DOWNLOADING

    def _stream(self, job: _Job, remote: RemoteFile, part: Path, state: _FileState,
                report: Callable[[float], None]) -> None:
        import httpx2

        have = state.have
        session = self._session or _default_session()
        headers = {"Accept-Encoding": "identity"}
        if have:
            headers["Range"] = f"bytes={have}-"
        if self.token and _is_hub(remote.url):
            headers["authorization"] = f"Bearer {self.token}"
        try:
            with session.stream("GET", remote.url, headers=headers, follow_redirects=True,
                                timeout=httpx2.Timeout(30.0, connect=10.0)) as response:
                status = response.status_code
                if status == 416 and have >= remote.size:
                    return
                if status in (429, 500, 502, 503, 504):
                    raise _Retry(f"the server answered {status}", _retry_after(response))
                if status in (401, 403):
                    raise DownloadError(_refused_message(remote))
                if status == 404:
                    raise DownloadError(f"“{remote.filename}” is no longer in {remote.repo_id}.")
                if status >= 400:
                    raise _Retry(f"the server answered {status}", None)
                if have and status == 200:  # Range ignored: start this file again
                    log.info("server ignored Range for %s; starting again", remote.filename)
                    have = state.have = 0
                    state.hasher = hashlib.sha256()
                    mode = "wb"
                else:
                    mode = "ab" if have else "wb"
                with _Sink(part, mode, state) as sink:
                    for chunk in response.iter_raw():
                        if job.stop:
                            raise _Interrupted()
                        sink.put(chunk)
                        job.fetched_bytes += len(chunk)
                        report(time.monotonic())
        except (httpx2.TransportError, httpx2.DecodingError) as error:
            raise _Retry(f"the connection dropped: {type(error).__name__}", None) from error
        have = state.have
        if have < remote.size:
            raise _Retry("the connection ended early", None)
        if have > remote.size:
            part.unlink(missing_ok=True)
            raise DownloadError(f"The server sent more of “{remote.filename}” than it said it would; the partial "
                                "file was deleted. Press Retry.")

    def _progress(self, job: _Job, done: int, started: float, start_have: int, now: float) -> None:
        job.done_bytes = done
        elapsed = now - started
        if elapsed > 0:
            job.bytes_per_s = (done - start_have) / elapsed if done > start_have else 0.0
        if now - job.reported_at >= PROGRESS_INTERVAL_S:
            job.reported_at = now
            self._changed(job)

    def _sleep(self, job: _Job, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if job.stop:
                raise _Interrupted()
            time.sleep(min(0.1, deadline - time.monotonic()) if deadline > time.monotonic() else 0)

    def _discard_partials(self, job: _Job) -> None:
        for remote in job.files:
            for path in self._paths(remote):
                path.unlink(missing_ok=True)
        for record_path in self.downloads_dir.glob("*.json") if self.downloads_dir.is_dir() else []:
            try:
                record = json.loads(record_path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            if record.get("repo_id") == job.repo_id and record.get("filename") in job.filenames:
                record_path.unlink(missing_ok=True)
                record_path.with_suffix(".part").unlink(missing_ok=True)

    # --- events ---

    def _snapshot(self, job: _Job) -> JobChanged:
        return JobChanged(job.id, job.repo_id, job.filenames, job.state, job.done_bytes, job.total_bytes,
                          job.bytes_per_s, job.error, job.result)

    def _changed(self, job: _Job) -> None:
        self._listeners.emit(self._snapshot(job))


class _Sink:
    """Writes and hashes on a thread of its own while the network is read, so the SHA-256 (about 0.7 GB/s on
    a plain x86 core) does not halve the download speed. ``state.have`` only counts bytes on disk; leaving
    the block writes out everything received, so a resume starts exactly after them."""

    def __init__(self, part: Path, mode: str, state: _FileState) -> None:
        self._folder = part.parent
        try:
            self._file = part.open(mode)
        except OSError as error:
            raise DownloadError(disk_problem(error, part.parent)) from error
        self._state = state
        self._queue: queue.Queue[bytes | None] = queue.Queue(maxsize=16)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._drain, name="download-writer", daemon=True)

    def __enter__(self) -> _Sink:
        self._thread.start()
        return self

    def put(self, chunk: bytes) -> None:
        if self._error is not None:
            raise self._error
        self._queue.put(chunk)

    def _drain(self) -> None:
        while (chunk := self._queue.get()) is not None:
            if self._error is not None:
                continue
            try:
                self._file.write(chunk)
            except OSError as error:
                self._error = DownloadError(disk_problem(error, self._folder))
                continue
            self._state.hasher.update(chunk)
            self._state.have += len(chunk)

    def __exit__(self, *_exc: object) -> None:
        self._queue.put(None)
        self._thread.join()
        self._file.close()
        if self._error is not None:
            raise self._error


class _Retry(Exception):
    def __init__(self, reason: str, wait: float | None) -> None:
        super().__init__(reason)
        self.reason, self.wait = reason, wait


def _retry_after(response: Any) -> float | None:
    value = response.headers.get("Retry-After")
    try:
        return min(max(float(value), 0.0), 120.0) if value is not None else None
    except ValueError:
        return None


def _rehash(part: Path, hasher: Any, size: int) -> int:
    """Hash what an earlier run left, so the final checksum covers the whole file."""
    if not part.exists():
        return 0
    have = part.stat().st_size
    if have > size:
        part.unlink()
        return 0
    with part.open("rb") as f:
        while block := f.read(CHUNK * 8):
            hasher.update(block)
    return have


def disk_problem(error: OSError, folder: Path) -> str:
    """Why a file could not be written in ``folder``, in words: a full disk, a read-only one, no permission."""
    if error.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):
        try:
            free = f" ({format_bytes(shutil.disk_usage(folder).free)} free)"
        except OSError:
            free = ""
        return (f"The disk is full{free}. What was already downloaded is kept: free some space and press Retry to "
                "continue.")
    if error.errno == errno.EROFS:
        return f"The models folder is on a read-only disk ({folder}), so the download cannot be saved there."
    if error.errno in (errno.EACCES, errno.EPERM):
        return (f"Hearth is not allowed to write in {folder}. Give your account permission to change that folder, "
                "then press Retry.")
    return f"The download could not be saved in {folder} ({error.strerror or error}). Check the disk, then press Retry."


def _safe_parts(name: str, what: str) -> tuple[str, ...]:
    """``name``'s folders and file name, refusing any that would lead out of the models folder."""
    parts = tuple(part for part in name.replace("\\", "/").split("/") if part)
    if not parts or any(part in (".", "..") or ":" in part for part in parts):
        raise DownloadError(f"The Hub named a {what} Hearth cannot save safely (“{name}”).")
    return parts


def _already_there(destination: Path, remote: RemoteFile) -> bool:
    if not destination.is_file() or destination.stat().st_size != remote.size:
        return False
    if remote.sha256 is None:
        return True
    digest = hashlib.sha256()
    with destination.open("rb") as f:
        while block := f.read(CHUNK * 8):
            digest.update(block)
    return digest.hexdigest() == remote.sha256


def _is_hub(url: str) -> bool:
    from huggingface_hub import constants

    return url.startswith(constants.ENDPOINT)


def _refused_message(remote: RemoteFile) -> str:
    from huggingface_hub import constants

    return (f"{remote.repo_id} is gated or private: accept its licence at {constants.ENDPOINT}/{remote.repo_id} "
            "while signed in, and add your token in Hearth (File → Hugging Face token).")


def _default_session() -> Any:
    from huggingface_hub import get_session

    return get_session()


def resolve_file(repo_id: str, filename: str, revision: str = "main", *, token: str | None = None) -> RemoteFile:
    """What the Hub says about one file: size, SHA-256 and commit (a HEAD request through huggingface_hub)."""
    from huggingface_hub import constants, get_hf_file_metadata, hf_hub_url
    from huggingface_hub.errors import (
        EntryNotFoundError,
        GatedRepoError,
        OfflineModeIsEnabled,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    url = hf_hub_url(repo_id, filename, revision=revision)
    try:
        meta = get_hf_file_metadata(url, token=token, retry_on_errors=True)  # 429 and 5xx, with backoff
    except GatedRepoError as error:
        raise DownloadError(f"{repo_id} asks you to accept its licence first: open {constants.ENDPOINT}/{repo_id}, "
                            "accept it while signed in, and add your token in Hearth (File → Hugging Face token).") \
            from error
    except RepositoryNotFoundError as error:
        raise DownloadError(f"There is no model called {repo_id} on the Hugging Face Hub (or it is private).") \
            from error
    except RevisionNotFoundError as error:
        raise DownloadError(f"{repo_id} has no version “{revision}”.") from error
    except EntryNotFoundError as error:
        raise DownloadError(f"{repo_id} has no file called {filename}.") from error
    except OfflineModeIsEnabled as error:
        raise DownloadError("Hearth is set to work offline, so it cannot download models.") from error
    except Exception as error:  # HTTP errors, and raw transport errors that escape huggingface_hub (see the notes)
        raise DownloadError(f"Could not reach the Hugging Face Hub ({type(error).__name__}). Check the internet "
                            "connection and try again.") from error
    etag = (meta.etag or "").strip('"').removeprefix("W/").strip('"')
    return RemoteFile(repo_id=repo_id, filename=filename, revision=revision, url=url, size=int(meta.size or 0),
                      sha256=etag if _SHA256.match(etag) else None, commit=meta.commit_hash)
