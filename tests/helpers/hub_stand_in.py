"""A loopback stand-in for the Hugging Face Hub, with a second "CDN" origin and faults injected per request.

The real ``huggingface_hub`` (2.4, on ``httpx2``) runs unmodified against it: model search with ``Link``
pagination (``GET /api/models``), model info with file metadata (``GET /api/models/{repo}[/revision/{rev}]``,
``?blobs=true`` for sizes, blob ids and LFS SHA-256), trees (``GET /api/models/{repo}/tree/{rev}[/{path}]``),
``POST /api/models/{repo}/paths-info/{rev}``, and file resolution (``HEAD|GET /{repo}/resolve/{rev}/{file}``).
LFS files (``*.gguf`` and friends, or anything of 10 MiB or more) answer a 302 to the CDN origin, carrying
``X-Repo-Commit``, ``X-Linked-Etag`` (the SHA-256) and ``X-Linked-Size`` like the real Hub; the CDN repeats
``X-Repo-Commit`` and the SHA-256 ``ETag`` so clients that follow the redirect (1.x compares host names
only) find the metadata there too. The CDN answers ``Range`` (206 / ``Content-Range`` / 416). Other files
(``README.md``) are served by the hub directly. No Xet headers are ever sent, so clients use plain HTTP.
Errors carry ``X-Error-Code`` (``RepoNotFound`` with 401, ``RevisionNotFound`` / ``EntryNotFound`` with 404,
``GatedRepo`` with 401 without a token and 403 with one that was not granted) and never a body on HEAD.
See ``../shared/notes/hub-stand-in.md`` for what the client sends and needs.

Faults are scripted per request: ``hub.fail("*/big.gguf", Fault.drop(after=11 * MiB), method="GET")`` (or
``hub.fail(pattern, "drop", after=...)``). A pattern is an ``fnmatch`` glob on the request path (query left
out, percent-decoded) or a predicate on the :class:`LoggedRequest`. Body faults (drop, corrupt, truncate,
slow, ignore_range) only ever apply to, and are only used up by, responses that carry file content, so a
``"*.gguf"`` drop cannot be swallowed by the HEAD or the 302. Every request is logged (``hub.log``) with its
headers, status and the body bytes sent (``hub.bytes_sent_for(...)``).

In a test module: ``from tests.helpers.hub_stand_in import hub_fixture  # noqa: F401``, then
``def test_x(hub: HubStandIn)`` (``from tests.helpers.hub_stand_in import hub`` works too, at the price of an F811
per use). The fixture starts both origins and points ``huggingface_hub`` at them, online, with a private
``HF_HOME``, in this process (patched constants) and in child processes (the environment). Outside pytest:
``with start_hub() as hub: ...`` and :func:`use_stand_in`. GGUF content: :func:`tiny_model` (the real
stories260K), :func:`write_big_gguf` (any size, fast) and :func:`loadable_big_gguf` (a 16 MB model llama.cpp can
load).
"""

from __future__ import annotations

import fnmatch
import hashlib
import inspect
import io
import json
import socket
import struct
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO, Literal
from urllib.parse import parse_qs, quote, unquote, urlencode, urlsplit

import numpy as np
import pytest
from gguf import GGUFReader, GGUFValueType, GGUFWriter

__all__ = [
    "TOKEN",
    "Fault",
    "FaultRule",
    "HubFile",
    "HubRepo",
    "HubStandIn",
    "LoggedRequest",
    "MiB",
    "gguf_summary",
    "hub",
    "hub_fixture",
    "loadable_big_gguf",
    "start_hub",
    "tiny_model",
    "use_stand_in",
    "write_big_gguf",
]

MiB = 1024 * 1024
TOKEN = "hf_hearth_stand_in_token"  # a token the stand-in accepts (and grants on gated repos unless told otherwise)
LFS_SUFFIXES = (".gguf", ".bin", ".safetensors", ".pt", ".pth", ".onnx", ".h5", ".msgpack", ".zip", ".gz", ".tar")
LFS_MIN_SIZE = 10 * MiB  # anything this big is LFS whatever its name, as a Hub repo's .gitattributes would make it
_COPY_CHUNK = 1 * MiB
_AUTO: Any = object()  # "derive it from the files" (the ``gguf`` summary)
Origin = Literal["hub", "cdn"]


# --- files and repositories ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HubFile:
    """One file of a repository: its content (bytes, or a file on disk read when served) and its hashes."""

    path: str
    size: int
    sha256: str
    blob_id: str  # the git blob sha1: of the content, or of the LFS pointer for LFS files (as git and the Hub do)
    lfs: bool
    pointer_size: int  # 0 unless LFS
    data: bytes | None = field(default=None, repr=False)
    source: Path | None = None

    @classmethod
    def build(cls, path: str, content: Path | bytes | str) -> HubFile:
        if isinstance(content, str):
            content = content.encode()
        sha256 = hashlib.sha256()
        if isinstance(content, bytes):
            size = len(content)
            sha256.update(content)
            data, source = content, None
        else:
            source = Path(content).resolve()
            size = source.stat().st_size
            with source.open("rb") as handle:
                while block := handle.read(_COPY_CHUNK):
                    sha256.update(block)
            data = None
        lfs = path.lower().endswith(LFS_SUFFIXES) or size >= LFS_MIN_SIZE
        if lfs:
            pointer = (f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256.hexdigest()}\n"
                       f"size {size}\n").encode()
            blob_id, pointer_size = _git_blob_id(pointer), len(pointer)
        else:
            blob_id, pointer_size = _git_blob_id(data if data is not None else _read(source)), 0
        return cls(path, size, sha256.hexdigest(), blob_id, lfs, pointer_size, data, source)

    def open(self) -> BinaryIO:
        if self.data is not None:
            return io.BytesIO(self.data)
        assert self.source is not None
        return self.source.open("rb")

    def read(self) -> bytes:
        with self.open() as handle:
            return handle.read()

    def tree_entry(self) -> dict[str, Any]:
        entry: dict[str, Any] = {"type": "file", "oid": self.blob_id, "size": self.size, "path": self.path}
        if self.lfs:
            entry["lfs"] = {"oid": self.sha256, "size": self.size, "pointerSize": self.pointer_size}
        return entry

    def sibling(self, *, blobs: bool) -> dict[str, Any]:
        entry: dict[str, Any] = {"rfilename": self.path}
        if blobs:
            entry["size"] = self.size
            entry["blobId"] = self.blob_id
            if self.lfs:
                entry["lfs"] = {"sha256": self.sha256, "size": self.size, "pointerSize": self.pointer_size}
        return entry


@dataclass
class HubRepo:
    """A model repository as the stand-in serves it (one commit: ``sha``, also reachable as ``main``)."""

    repo_id: str
    files: dict[str, HubFile]
    sha: str
    gated: bool | Literal["auto", "manual"]
    private: bool
    downloads: int
    likes: int
    trending_score: int
    tags: list[str]
    pipeline_tag: str | None
    library_name: str | None
    gguf: dict[str, Any] | None
    card_data: dict[str, Any]
    created_at: datetime
    last_modified: datetime
    granted: set[str] = field(default_factory=set)  # tokens with access to a gated repo

    @property
    def author(self) -> str:
        return self.repo_id.split("/")[0] if "/" in self.repo_id else ""

    def directories(self) -> set[str]:
        found: set[str] = set()
        for name in self.files:
            parent = PurePosixPath(name).parent
            while str(parent) != ".":
                found.add(str(parent))
                parent = parent.parent
        return found

    def folder_entry(self, path: str) -> dict[str, Any]:
        below = sorted(f"{name}:{f.blob_id}" for name, f in self.files.items() if name.startswith(path + "/"))
        return {"type": "directory", "oid": _sha1("\n".join(below).encode()), "size": 0, "path": path}

    def entry(self, path: str, *, expand: bool) -> dict[str, Any] | None:
        if path in self.files:
            entry = self.files[path].tree_entry()
        elif path in self.directories():
            entry = self.folder_entry(path)
        else:
            return None
        if expand:
            entry["lastCommit"] = {"id": self.sha, "title": f"Upload {path}", "date": _iso(self.last_modified)}
        return entry

    def as_json(self, *, blobs: bool = False) -> dict[str, Any]:
        """Every field the stand-in knows, named as the Hub's API names them."""
        info: dict[str, Any] = {
            "_id": _sha1(self.repo_id.encode())[:24],
            "id": self.repo_id,
            "modelId": self.repo_id,
            "author": self.author,
            "sha": self.sha,
            "lastModified": _iso(self.last_modified),
            "createdAt": _iso(self.created_at),
            "private": self.private,
            "gated": self.gated,
            "disabled": False,
            "downloads": self.downloads,
            "likes": self.likes,
            "trendingScore": self.trending_score,
            "library_name": self.library_name,
            "pipeline_tag": self.pipeline_tag,
            "tags": list(self.tags),
            "cardData": dict(self.card_data),
            "siblings": [f.sibling(blobs=blobs) for f in self.files.values()],
            "spaces": [],
            "usedStorage": sum(f.size for f in self.files.values()),
        }
        if self.gguf is not None:
            info["gguf"] = dict(self.gguf)
        return info


# --- faults ---------------------------------------------------------------------------------------------------------

_REQUEST_FAULTS = {"status", "reset", "delay"}
_BODY_FAULTS = {"drop", "corrupt", "truncate", "slow", "ignore_range"}
_COMMIT_FAULTS = {"no_commit"}


@dataclass(frozen=True)
class Fault:
    """What goes wrong. Build one with the class methods; ``hub.fail`` also takes their names as strings."""

    kind: str
    params: tuple[tuple[str, Any], ...] = ()

    def get(self, key: str, default: Any = None) -> Any:
        return dict(self.params).get(key, default)

    @property
    def stage(self) -> str:
        if self.kind in _REQUEST_FAULTS:
            return "request"
        return "body" if self.kind in _BODY_FAULTS else "commit"

    def __str__(self) -> str:
        if self.kind == "status":
            return f"status {self.get('code')}" + (f" {self.get('error_code')}" if self.get("error_code") else "")
        args = ", ".join(f"{key}={value!r}" for key, value in self.params)
        return f"{self.kind}({args})" if args else self.kind

    # -- answers instead of the real one (any request) --
    @classmethod
    def status(cls, code: int, *, error_code: str | None = None, message: str | None = None,
               headers: Mapping[str, str] | None = None) -> Fault:
        """Answer ``code`` with ``X-Error-Code: error_code`` (when given), ``X-Error-Message`` and a JSON body."""
        return cls("status", (("code", code), ("error_code", error_code),
                              ("message", message or f"stand-in fault: {code}"), ("headers", dict(headers or {}))))

    @classmethod
    def unauthorized(cls) -> Fault:
        """401 without ``X-Error-Code`` (a plain ``HfHubHTTPError`` on an http:// endpoint)."""
        return cls.status(401, message="Invalid credentials in Authorization header")

    @classmethod
    def repo_not_found(cls) -> Fault:
        """401 ``RepoNotFound``, what the real Hub answers for a missing (or hidden private) repo."""
        return cls.status(401, error_code="RepoNotFound", message="Repository not found")

    @classmethod
    def forbidden(cls) -> Fault:
        """403 without a code (e.g. an expired signed CDN URL)."""
        return cls.status(403, message="Forbidden")

    @classmethod
    def entry_not_found(cls) -> Fault:
        return cls.status(404, error_code="EntryNotFound", message="Entry not found")

    @classmethod
    def revision_not_found(cls) -> Fault:
        return cls.status(404, error_code="RevisionNotFound", message="Invalid rev id")

    @classmethod
    def gated(cls) -> Fault:
        """403 ``GatedRepo``: authenticated but not granted access."""
        return cls.status(403, error_code="GatedRepo",
                          message="Access to this model is restricted and you are not in the authorized list.")

    @classmethod
    def rate_limited(cls, retry_after: int = 0) -> Fault:
        """429 with ``Retry-After`` (huggingface_hub then waits ``retry_after + 1`` seconds)."""
        return cls.status(429, message="Too many requests", headers={"Retry-After": str(retry_after)})

    @classmethod
    def server_error(cls, code: int = 500) -> Fault:
        return cls.status(code, message="Internal Error - We're working hard to fix this as soon as possible!")

    @classmethod
    def reset(cls) -> Fault:
        """Close the connection with a TCP reset before any answer."""
        return cls("reset")

    @classmethod
    def delay(cls, seconds: float) -> Fault:
        """Wait before answering (a read timeout on the client when longer than its timeout)."""
        return cls("delay", (("seconds", seconds),))

    # -- content responses only (GET of a file, on the hub or the CDN) --
    @classmethod
    def drop(cls, after: int, *, reset: bool = False) -> Fault:
        """Send the headers and ``after`` bytes of the body, then close the connection: cleanly (the client
        sees the body end early), or with a TCP reset (``reset=True``; the client may lose what it had not
        read yet)."""
        return cls("drop", (("after", after), ("reset", reset)))

    @classmethod
    def corrupt(cls, count: int = 64, offset: int = 0) -> Fault:
        """Flip ``count`` bytes from ``offset`` of this response's body: right length, wrong SHA-256."""
        return cls("corrupt", (("count", count), ("offset", offset)))

    @classmethod
    def truncate(cls, size: int) -> Fault:
        """Advertise and send only ``size`` bytes of the body (shorter than ``X-Linked-Size``)."""
        return cls("truncate", (("size", size),))

    @classmethod
    def slow(cls, bytes_per_second: float | None = None, *, chunk_delay: float = 0.0,
             chunk_size: int = 64 * 1024) -> Fault:
        """Send in ``chunk_size`` pieces, throttled to ``bytes_per_second`` and/or sleeping ``chunk_delay`` each."""
        return cls("slow", (("bytes_per_second", bytes_per_second), ("chunk_delay", chunk_delay),
                            ("chunk_size", chunk_size)))

    @classmethod
    def ignore_range(cls) -> Fault:
        """Answer 200 with the whole file to a request that has a ``Range`` (only such requests use it up)."""
        return cls("ignore_range")

    # -- resolve responses only --
    @classmethod
    def no_commit(cls) -> Fault:
        """Leave ``X-Repo-Commit`` out of a resolve (or CDN) answer."""
        return cls("no_commit")


Matcher = str | Callable[["LoggedRequest"], bool]


@dataclass
class FaultRule:
    """A fault armed by ``hub.fail``: ``hits`` counts the requests it spoiled; ``times=None`` never runs out."""

    match: Matcher
    fault: Fault
    times: int | None
    method: str | None
    origin: Origin | None
    hits: int = 0

    @property
    def spent(self) -> bool:
        return self.times is not None and self.hits >= self.times

    def applies(self, request: LoggedRequest) -> bool:
        if self.spent or (self.method and request.method != self.method.upper()):
            return False
        if self.origin and request.origin != self.origin:
            return False
        if callable(self.match):
            return bool(self.match(request))
        return fnmatch.fnmatchcase(request.path, self.match)


# --- the request log ----------------------------------------------------------------------------------------------


@dataclass
class LoggedRequest:
    """One request as a server saw it, and what it answered (``status`` None: no answer, e.g. a reset)."""

    origin: Origin
    method: str
    path: str  # percent-decoded, without the query
    target: str  # as sent, with the query
    query: dict[str, list[str]]
    headers: dict[str, str]  # names in lower case
    body: bytes = b""
    status: int | None = None
    bytes_sent: int = 0  # body bytes handed to the network
    faults: list[str] = field(default_factory=list)

    @property
    def range(self) -> str | None:
        return self.headers.get("range")

    @property
    def authorization(self) -> str | None:
        return self.headers.get("authorization")


# --- the server ---------------------------------------------------------------------------------------------------


class HubStandIn:
    """Two loopback servers (the hub and its CDN) sharing one in-memory registry of repositories.

    ``page_size`` / ``tree_page_size`` bound each page of search and tree listings (the rest follows a
    ``Link: <...>; rel="next"``). ``redirect_lfs=False`` serves LFS files from the hub itself, mirror-style.
    ``send_buffer`` shrinks the sockets' send buffer, so ``bytes_sent`` stays close to what a client that
    stops reading actually received. ``tokens`` are the valid tokens (``Authorization: Bearer ...``).
    """

    def __init__(self, *, page_size: int = 50, tree_page_size: int = 1000, redirect_lfs: bool = True,
                 tokens: Sequence[str] = (TOKEN,), chunk_size: int = _COPY_CHUNK,
                 send_buffer: int | None = None) -> None:
        self.page_size = page_size
        self.tree_page_size = tree_page_size
        self.redirect_lfs = redirect_lfs
        self.tokens = set(tokens)
        self.chunk_size = chunk_size
        self.send_buffer = send_buffer
        self._repos: dict[str, HubRepo] = {}
        self._blobs: dict[str, HubFile] = {}  # what the CDN serves, by SHA-256 (old commits' files included)
        self._rules: list[FaultRule] = []
        self._log: list[LoggedRequest] = []
        self._lock = threading.RLock()
        self._idle = threading.Condition(self._lock)
        self._busy = 0
        self._connections: set[socket.socket] = set()
        self._commits = 0
        self.server_errors: list[str] = []  # tracebacks of the stand-in's own failures (the fixture fails on any)
        self._servers = {origin: _Server(("127.0.0.1", 0), _handler_for(self, origin), self.server_errors)
                         for origin in ("hub", "cdn")}
        self._threads = [threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True,
                                          name=f"hub-stand-in-{origin}")
                         for origin, server in self._servers.items()]
        self._started = False

    # -- lifecycle --
    def start(self) -> HubStandIn:
        for thread in self._threads:
            thread.start()
        self._started = True
        return self

    def stop(self) -> None:
        for server in self._servers.values():
            if self._started:
                server.shutdown()
            server.server_close()
        with self._lock:
            connections = list(self._connections)
        for connection in connections:  # idle keep-alive connections would otherwise hold their threads
            with suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        for thread in self._threads:
            thread.join(timeout=5)
        self._started = False

    def __enter__(self) -> HubStandIn:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- addresses --
    def _origin_url(self, origin: Origin) -> str:
        host, port = self._servers[origin].server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def url(self) -> str:
        """The hub's origin: what ``HF_ENDPOINT`` points at."""
        return self._origin_url("hub")

    @property
    def cdn_url(self) -> str:
        return self._origin_url("cdn")

    def resolve_url(self, repo_id: str, filename: str, revision: str = "main") -> str:
        return f"{self.url}/{repo_id}/resolve/{quote(revision, safe='')}/{quote(filename)}"

    def cdn_path(self, repo_id: str, filename: str) -> str:
        """The CDN path (percent-decoded, as logged) that the resolve of ``filename`` redirects to."""
        return f"/repos/{repo_id}/{self.repo(repo_id).files[filename].sha256}/{filename}"

    # -- the registry --
    def add_repo(self, repo_id: str, files: Mapping[str, Path | bytes | str], *,
                 gated: bool | Literal["auto", "manual"] = False, private: bool = False, downloads: int = 0,
                 likes: int = 0, trending_score: int = 0, tags: Sequence[str] = (),
                 pipeline_tag: str | None = "text-generation", library_name: str | None = "gguf",
                 gguf: Mapping[str, Any] | None = _AUTO, card: str | None = None,
                 card_data: Mapping[str, Any] | None = None, created_at: datetime | str | None = None,
                 last_modified: datetime | str | None = None) -> HubRepo:
        """Add (or replace, with a new commit) a repository. ``files`` maps repo paths to content: a file on
        disk (read when served), bytes or text. A ``README.md`` is made from ``card`` (or a default model
        card with the tags as front matter) unless ``files`` has one. ``gguf`` is the Hub's summary
        (``total`` parameters, ``architecture``, ``context_length``); by default it is read from the largest
        ``.gguf`` file, ``None`` leaves it out. ``library_name`` and ``pipeline_tag`` join the tags, as on the
        Hub. Dates default to a fixed day, later for each repo added."""
        built = {name: HubFile.build(name, content) for name, content in files.items()}
        all_tags = list(tags)
        for tag in (library_name, pipeline_tag):
            if tag and tag not in all_tags:
                all_tags.insert(0, tag)
        card_data = dict(card_data) if card_data is not None else {
            key: value for key, value in
            (("library_name", library_name), ("pipeline_tag", pipeline_tag), ("tags", list(tags) or None))
            if value}
        if "README.md" not in built:
            built["README.md"] = HubFile.build("README.md", card if card is not None
                                               else _default_card(repo_id, card_data))
        if gguf is _AUTO:
            gguf = gguf_summary(built.values())
        with self._lock:
            self._commits += 1
            previous = self._repos.get(repo_id)
            default_day = datetime(2025, 1, 1, tzinfo=UTC) + timedelta(days=self._commits)
            created = _date(created_at) if created_at is not None else (
                previous.created_at if previous else default_day)
            repo = HubRepo(
                repo_id=repo_id, files=dict(sorted(built.items())),
                sha=_sha1(f"{repo_id}\n{self._commits}\n".encode()
                          + "".join(f"{n}:{f.blob_id}\n" for n, f in sorted(built.items())).encode()),
                gated=gated, private=private, downloads=downloads, likes=likes, trending_score=trending_score,
                tags=all_tags, pipeline_tag=pipeline_tag, library_name=library_name,
                gguf=dict(gguf) if gguf is not None else None, card_data=card_data, created_at=created,
                last_modified=_date(last_modified) if last_modified is not None else max(created, default_day),
                granted=set(self.tokens) if previous is None else previous.granted)
            self._repos[repo_id] = repo
            for f in built.values():
                if f.lfs:
                    self._blobs[f.sha256] = f
        return repo

    def remove_repo(self, repo_id: str) -> None:
        with self._lock:
            del self._repos[repo_id]

    def repo(self, repo_id: str) -> HubRepo:
        with self._lock:
            return self._repos[repo_id]

    def grant(self, repo_id: str, *tokens: str) -> None:
        """Give ``tokens`` access to a gated repo (all valid tokens have it when the repo is added)."""
        with self._lock:
            self._repos[repo_id].granted.update(tokens)

    def revoke(self, repo_id: str, *tokens: str) -> None:
        """Take access away (no tokens: from everyone), so a valid token gets 403 ``GatedRepo``."""
        with self._lock:
            granted = self._repos[repo_id].granted
            if tokens:
                granted.difference_update(tokens)
            else:
                granted.clear()

    # -- faults --
    def fail(self, match: Matcher, fault: Fault | str | int, *, times: int | None = 1, method: str | None = None,
             origin: Origin | None = None, **params: Any) -> FaultRule:
        """Spoil the next ``times`` requests (``None``: all) that ``match`` (a glob on the decoded path, or a
        predicate on the :class:`LoggedRequest`), optionally only for one ``method`` or ``origin``. ``fault``
        is a :class:`Fault`, the name of one of its class methods (``"drop"``, ``"gated"``,
        ``"rate_limited"``, ...; ``params`` are its arguments), or a status code."""
        spec: Fault
        if isinstance(fault, int) or (isinstance(fault, str) and fault.isdigit()):
            spec = Fault.status(int(fault), **params)
        elif isinstance(fault, str):
            if not isinstance(inspect.getattr_static(Fault, fault, None), classmethod):
                raise ValueError(f"unknown fault {fault!r}")
            spec = getattr(Fault, fault)(**params)
        elif params:
            raise TypeError("params are only for a fault given by name")
        else:
            spec = fault
        rule = FaultRule(match, spec, times, method.upper() if method else None, origin)
        with self._lock:
            self._rules.append(rule)
        return rule

    def clear_faults(self) -> None:
        with self._lock:
            self._rules.clear()

    def _take(self, request: LoggedRequest, stage: str, eligible: Callable[[Fault], bool] = lambda f: True,
              ) -> list[Fault]:
        taken: list[Fault] = []
        with self._lock:
            for rule in self._rules:
                if rule.fault.stage == stage and eligible(rule.fault) and rule.applies(request):
                    rule.hits += 1
                    taken.append(rule.fault)
                    request.faults.append(str(rule.fault))
        return taken

    # -- the log --
    @property
    def log(self) -> list[LoggedRequest]:
        """Every request so far, oldest first (a copy; the entries are live until their answer is sent)."""
        with self._lock:
            return list(self._log)

    def requests(self, *, method: str | None = None, path: str | None = None,
                 origin: Origin | None = None) -> list[LoggedRequest]:
        """The logged requests with this method, origin and path (a glob, see :meth:`bytes_sent_for`)."""
        pattern = _path_pattern(path) if path is not None else None
        return [r for r in self.log
                if (method is None or r.method == method.upper()) and (origin is None or r.origin == origin)
                and (pattern is None or fnmatch.fnmatchcase(r.path, pattern))]

    def bytes_sent_for(self, path: str) -> int:
        """Body bytes sent for requests whose path matches ``path``: a glob on the decoded path, or a bare
        file name (no ``/`` at the start, no wildcard), which matches any path ending in ``/path``. It waits
        until no request is being answered: a client can have every byte before the handler has counted the
        last write."""
        self.wait_idle()
        return sum(r.bytes_sent for r in self.requests(path=path))

    def reset_log(self) -> None:
        with self._lock:
            self._log.clear()

    def wait_idle(self, timeout: float = 10.0) -> None:
        """Wait until no request is being answered."""
        with self._idle:
            if not self._idle.wait_for(lambda: self._busy == 0, timeout):
                raise TimeoutError("the hub stand-in is still answering")

    # -- used by the handlers --
    def _begin(self, request: LoggedRequest) -> None:
        with self._lock:
            self._busy += 1
            self._log.append(request)

    def _end(self) -> None:
        with self._idle:
            self._busy -= 1
            self._idle.notify_all()

    def _count(self, request: LoggedRequest, n_bytes: int) -> None:
        with self._lock:
            request.bytes_sent += n_bytes

    def _connected(self, connection: socket.socket, open_: bool) -> None:
        with self._lock:
            if open_:
                self._connections.add(connection)
            else:
                self._connections.discard(connection)

    def _find_repo(self, raw: str) -> tuple[str, HubRepo | None, str]:
        """Split ``namespace/name/rest`` (raw, not decoded) into the repo id, the repo and the rest."""
        with self._lock:
            known = sorted(self._repos, key=len, reverse=True)
            for repo_id in known:
                if raw == repo_id or raw.startswith(repo_id + "/"):
                    return repo_id, self._repos[repo_id], raw[len(repo_id) + 1:]
        parts = raw.split("/")
        return "/".join(parts[:2]), None, "/".join(parts[2:])

    def _search(self, query: Mapping[str, list[str]], token: str | None) -> list[HubRepo]:
        with self._lock:
            repos = [r for r in self._repos.values() if not r.private or token in self.tokens]
        for text in query.get("search", []):
            repos = [r for r in repos if text.lower() in r.repo_id.lower()]
        for author in query.get("author", []):
            repos = [r for r in repos if r.author.lower() == author.lower()]
        for value in query.get("filter", []):
            repos = [r for r in repos if value in r.tags or value in (r.library_name, r.pipeline_tag)]
        for value in query.get("pipeline_tag", []):
            repos = [r for r in repos if r.pipeline_tag == value]
        for value in query.get("gated", []):
            repos = [r for r in repos if bool(r.gated) == (value.lower() == "true")]
        sort = (query.get("sort") or [""])[0]
        key: Callable[[HubRepo], Any] | None = {
            "downloads": lambda r: r.downloads, "likes": lambda r: r.likes,
            "trendingScore": lambda r: r.trending_score, "createdAt": lambda r: r.created_at,
            "lastModified": lambda r: r.last_modified,
        }.get(sort)
        if key is not None:  # descending, as the Hub's default direction; ``direction`` is ignored
            repos.sort(key=key, reverse=True)
        return repos


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 64

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler],
                 errors: list[str]) -> None:
        super().__init__(address, handler)
        self.errors = errors

    def handle_error(self, request: Any, client_address: Any) -> None:
        error = sys.exc_info()[1]
        if not isinstance(error, ConnectionError | TimeoutError):  # a client that went away is no bug of ours
            self.errors.append(traceback.format_exc())


_SUMMARY_FIELDS = {"_id", "id", "modelId", "likes", "trendingScore", "private", "downloads", "tags",
                   "pipeline_tag", "library_name", "createdAt"}
_FULL_FIELDS = _SUMMARY_FIELDS | {"author", "sha", "lastModified", "gated", "disabled", "siblings"}


def _handler_for(hub: HubStandIn, origin: Origin) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        timeout = 60  # an idle keep-alive connection, or a client that stopped reading, frees its thread at last
        server_version = "hub-stand-in"

        def setup(self) -> None:
            super().setup()
            if hub.send_buffer:
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, hub.send_buffer)
            hub._connected(self.connection, True)

        def finish(self) -> None:
            hub._connected(self.connection, False)
            with suppress(OSError):
                super().finish()

        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            self._handle()

        def do_HEAD(self) -> None:
            self._handle()

        def do_POST(self) -> None:
            self._handle()

        # -- plumbing --
        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            split = urlsplit(self.path)
            self.request_log = LoggedRequest(
                origin=origin, method=self.command, path=unquote(split.path), target=self.path,
                query=parse_qs(split.query, keep_blank_values=True),
                headers={key.lower(): value for key, value in self.headers.items()}, body=body)
            self.raw_path = split.path
            hub._begin(self.request_log)
            try:
                for fault in hub._take(self.request_log, "request"):
                    if fault.kind == "delay":
                        time.sleep(fault.get("seconds"))
                    elif fault.kind == "reset":
                        self._reset()
                        return
                    else:
                        extra = {**fault.get("headers")}
                        self._error(fault.get("code"), fault.get("error_code"), fault.get("message"), extra)
                        return
                if origin == "hub":
                    self._route_hub()
                else:
                    self._route_cdn()
            except ConnectionError:  # the client went away
                self.close_connection = True
            except Exception:
                hub.server_errors.append(traceback.format_exc())
                self.close_connection = True
                if self.request_log.status is None:
                    with suppress(OSError):
                        self._error(500, None, "hub stand-in failure (see hub.server_errors)")
            finally:
                hub._end()

        def _reset(self) -> None:
            self.close_connection = True
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()

        def _head(self, status: int, headers: Mapping[str, str]) -> None:
            self.request_log.status = status
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            self.end_headers()

        def _write(self, data: bytes | memoryview) -> None:
            self.wfile.write(data)
            hub._count(self.request_log, len(data))

        def _send(self, status: int, headers: Mapping[str, str], content: bytes = b"") -> None:
            self._head(status, {**headers, "Content-Length": str(len(content))})
            if self.command != "HEAD" and content:  # never a body on HEAD: it would poison the connection
                self._write(content)

        def _json(self, payload: Any, headers: Mapping[str, str] | None = None) -> None:
            self._send(200, {"Content-Type": "application/json; charset=utf-8", **(headers or {})},
                       json.dumps(payload).encode())

        def _error(self, status: int, code: str | None, message: str,
                   headers: Mapping[str, str] | None = None) -> None:
            head = {"Content-Type": "application/json; charset=utf-8", "X-Error-Message": message, **(headers or {})}
            if code:
                head["X-Error-Code"] = code
            self._send(status, head, json.dumps({"error": message}).encode())

        def _token(self) -> str | None:
            value = self.headers.get("Authorization") or ""
            return value[7:].strip() if value.lower().startswith("bearer ") else None

        def _query(self, key: str, default: str = "") -> str:
            return (self.request_log.query.get(key) or [default])[0]

        # -- the hub --
        def _route_hub(self) -> None:
            path = self.raw_path
            if path == "/api/agent-harnesses":
                self._json({"standardEnvVars": [], "harnesses": {}})
            elif path == "/api/whoami-v2":
                token = self._token()
                if token in hub.tokens:
                    self._json({"type": "user", "name": "stand-in", "fullname": "Hub Stand-in", "orgs": [],
                                "auth": {"type": "access_token", "accessToken": {"role": "read"}}})
                else:
                    self._error(401, None, "Invalid credentials in Authorization header")
            elif path == "/api/models":
                self._list_models()
            elif path.startswith("/api/models/"):
                self._repo_api(path[len("/api/models/"):])
            elif "/resolve/" in path:
                repo_part, _, rest = path[1:].partition("/resolve/")
                revision, _, filename = rest.partition("/")
                self._resolve(repo_part, unquote(revision), unquote(filename))
            else:
                self._error(404, None, "Not Found")

        def _list_models(self) -> None:
            query = self.request_log.query
            repos = hub._search(query, self._token())
            cursor = int(self._query("cursor", "0") or 0)
            limit = int(self._query("limit", "0") or 0)
            per_page = min(limit, hub.page_size) if limit > 0 else hub.page_size
            page = repos[cursor:cursor + per_page]
            expand = set(query.get("expand", []))
            if expand:
                fields = {"_id", "id"} | expand
            elif self._query("full").lower() in ("true", "1"):
                fields = set(_FULL_FIELDS)
            else:
                fields = set(_SUMMARY_FIELDS)
            if self._query("cardData").lower() in ("true", "1"):
                fields.add("cardData")
            items = [{k: v for k, v in repo.as_json().items() if k in fields} for repo in page]
            headers = {}
            if cursor + per_page < len(repos):
                pairs = [(k, v) for k, values in query.items() if k != "cursor" for v in values]
                next_url = f"{hub.url}/api/models?{urlencode([*pairs, ('cursor', str(cursor + per_page))])}"
                headers["Link"] = f'<{next_url}>; rel="next"'
            self._json(items, headers)

        def _visible(self, repo_id: str, repo: HubRepo | None) -> HubRepo | None:
            if repo is None or (repo.private and self._token() not in hub.tokens):
                self._error(401, "RepoNotFound", f"Repository not found: {repo_id}")
                return None
            return repo

        def _revision_ok(self, repo: HubRepo, revision: str) -> bool:
            if revision in ("main", "refs/heads/main", repo.sha):
                return True
            self._error(404, "RevisionNotFound", f"Invalid rev id: {revision}")
            return False

        def _repo_api(self, raw: str) -> None:
            repo_id, found, rest = hub._find_repo(raw)
            repo = self._visible(repo_id, found)
            if repo is None:
                return
            action, _, tail = rest.partition("/")
            if self.command == "POST" and action == "paths-info":
                self._paths_info(repo, unquote(tail))
            elif self.command == "POST":
                self._error(405, None, "Method not allowed")
            elif action == "" and not tail:
                self._model_info(repo, "main")
            elif action == "revision" and tail:
                self._model_info(repo, unquote(tail))
            elif action == "tree" and tail:
                revision, _, inner = tail.partition("/")
                self._tree(repo, unquote(revision), unquote(inner).strip("/"))
            else:
                self._error(404, None, "Not Found")

        def _model_info(self, repo: HubRepo, revision: str) -> None:
            if not self._revision_ok(repo, revision):
                return
            blobs = self._query("blobs").lower() in ("true", "1")
            info = repo.as_json(blobs=blobs)
            expand = set(self.request_log.query.get("expand", []))
            if expand:
                info = {k: v for k, v in info.items() if k in {"_id", "id"} | expand}
            self._json(info)

        def _tree(self, repo: HubRepo, revision: str, inner: str) -> None:
            if not self._revision_ok(repo, revision):
                return
            directories = repo.directories()
            if inner and inner not in directories:
                self._error(404, "EntryNotFound", f"{inner} does not exist on \"{revision}\"",
                            {"X-Repo-Commit": repo.sha})
                return
            recursive = self._query("recursive").lower() in ("true", "1")
            expand = self._query("expand").lower() in ("true", "1")
            prefix = f"{inner}/" if inner else ""
            names = [n for n in (*directories, *repo.files) if n.startswith(prefix)
                     and (recursive or "/" not in n[len(prefix):])]
            names.sort(key=lambda n: (n not in directories, n) if not recursive else (n, 0))
            entries = [e for n in names if (e := repo.entry(n, expand=expand)) is not None]
            cursor = int(self._query("cursor", "0") or 0)
            page = entries[cursor:cursor + hub.tree_page_size]
            headers = {}
            if cursor + hub.tree_page_size < len(entries):
                pairs = [(k, v) for k, values in self.request_log.query.items() if k != "cursor" for v in values]
                next_url = (f"{hub.url}{self.raw_path}?"
                            f"{urlencode([*pairs, ('cursor', str(cursor + hub.tree_page_size))])}")
                headers["Link"] = f'<{next_url}>; rel="next"'
            self._json(page, headers)

        def _paths_info(self, repo: HubRepo, revision: str) -> None:
            if not self._revision_ok(repo, revision):
                return
            body = self.request_log.body
            if (self.headers.get("Content-Type") or "").startswith("application/json"):
                payload = json.loads(body or b"{}")
                paths, expand = list(payload.get("paths", [])), bool(payload.get("expand"))
            else:
                form = parse_qs(body.decode(), keep_blank_values=True)
                paths = form.get("paths", [])
                expand = (form.get("expand") or ["false"])[0].lower() in ("true", "1")
            entries = [e for p in paths if (e := repo.entry(p.strip("/"), expand=expand)) is not None]
            self._json(entries)

        def _resolve(self, repo_part: str, revision: str, filename: str) -> None:
            repo_id, found, _ = hub._find_repo(repo_part)
            repo = self._visible(repo_id, found)
            if repo is None or not self._revision_ok(repo, revision):
                return
            if repo.gated:
                token = self._token()
                if token is None:
                    self._error(401, "GatedRepo", f"Access to model {repo.repo_id} is restricted. You must have "
                                "access to it and be authenticated to access it. Please log in.")
                    return
                if token not in repo.granted:
                    self._error(403, "GatedRepo", f"Access to model {repo.repo_id} is restricted and you are not "
                                "in the authorized list.")
                    return
            hub_file = repo.files.get(filename)
            if hub_file is None:
                self._error(404, "EntryNotFound", f"{filename} does not exist on \"{revision}\"",
                            {"X-Repo-Commit": repo.sha})
                return
            headers = {"X-Repo-Commit": repo.sha, "ETag": f'"{hub_file.blob_id}"', "Accept-Ranges": "bytes"}
            if hub_file.lfs:
                headers["X-Linked-Etag"] = f'"{hub_file.sha256}"'
                headers["X-Linked-Size"] = str(hub_file.size)
            if hub._take(self.request_log, "commit"):
                del headers["X-Repo-Commit"]
            if hub_file.lfs and hub.redirect_lfs:
                location = (f"{hub.cdn_url}/repos/{repo.repo_id}/{hub_file.sha256}/{quote(hub_file.path)}"
                            f"?{urlencode({'Expires': '9999999999', 'Signature': 'stand-in'})}")
                self._send(302, {**headers, "Location": location, "Content-Type": "text/plain; charset=utf-8"},
                           f"Found. Redirecting to {location}".encode())
                return
            self._content(hub_file, headers)

        # -- the CDN --
        def _route_cdn(self) -> None:
            parts = self.request_log.path.strip("/").split("/")
            # /repos/{namespace}/{name}/{sha256}/{path...}
            sha = next((p for p in parts[1:] if len(p) == 64 and p in hub._blobs), None)
            if parts[0] != "repos" or sha is None or self.command == "POST":
                self._error(404 if self.command != "POST" else 405, None, "NoSuchKey")
                return
            hub_file = hub._blobs[sha]
            repo_id = "/".join(parts[1:parts.index(sha)])
            with hub._lock:
                repo = hub._repos.get(repo_id)
            headers = {"ETag": f'"{hub_file.sha256}"', "Accept-Ranges": "bytes",
                       "Content-Disposition": f'attachment; filename="{quote(PurePosixPath(hub_file.path).name)}";'}
            if repo is not None and not hub._take(self.request_log, "commit"):
                headers["X-Repo-Commit"] = repo.sha
            self._content(hub_file, headers)

        # -- file content, with Range and the body faults --
        def _content(self, hub_file: HubFile, headers: dict[str, str]) -> None:
            size = hub_file.size
            asked = self.headers.get("Range")
            faults = (hub._take(self.request_log, "body",
                                lambda f: f.kind != "ignore_range" or asked is not None)
                      if self.command == "GET" else [])
            by_kind = {f.kind: f for f in faults}
            first, last, status = 0, size - 1, 200
            if asked and "ignore_range" not in by_kind:
                bounds = _parse_range(asked, size)
                if bounds is None:
                    self._error(416, None, "Range Not Satisfiable", {"Content-Range": f"bytes */{size}"})
                    return
                first, last = bounds
                status = 206
            if "truncate" in by_kind:
                last = min(last, first + by_kind["truncate"].get("size") - 1)
            length = last - first + 1
            head = {**headers, "Content-Type": "application/octet-stream", "Content-Length": str(length)}
            if status == 206:
                head["Content-Range"] = f"bytes {first}-{last}/{size}"
            self._head(status, head)
            if self.command == "HEAD":
                return
            self._stream(hub_file, first, length, by_kind)

        def _stream(self, hub_file: HubFile, first: int, length: int, faults: Mapping[str, Fault]) -> None:
            drop_at = faults["drop"].get("after") if "drop" in faults else None
            corrupt = faults.get("corrupt")
            slow = faults.get("slow")
            chunk = slow.get("chunk_size") if slow else hub.chunk_size
            rate = slow.get("bytes_per_second") if slow else None
            pause = slow.get("chunk_delay") if slow else 0.0
            started = time.monotonic()
            sent = 0
            with hub_file.open() as handle:
                handle.seek(first)
                while sent < length:
                    want = min(chunk, length - sent)
                    if drop_at is not None:
                        want = min(want, drop_at - sent)
                    if want <= 0:
                        break
                    data = handle.read(want)
                    if not data:
                        break
                    if corrupt is not None:
                        data = _flip(data, sent, corrupt.get("offset"), corrupt.get("count"))
                    self._write(data)
                    sent += len(data)
                    if pause:
                        time.sleep(pause)
                    if rate:
                        ahead = sent / rate - (time.monotonic() - started)
                        if ahead > 0:
                            time.sleep(ahead)
            if sent < length:  # dropped: the client sees the connection end in the middle of the body
                self.close_connection = True
                if faults["drop"].get("reset"):
                    self._reset()
                    return
                with suppress(OSError):
                    self.connection.shutdown(socket.SHUT_RDWR)

    return Handler


# --- helpers --------------------------------------------------------------------------------------------------------


def _sha1(data: bytes) -> str:
    return hashlib.sha1(data).hexdigest()


def _git_blob_id(content: bytes) -> str:
    return _sha1(b"blob %d\0" % len(content) + content)


def _read(source: Path | None) -> bytes:
    assert source is not None
    return source.read_bytes()


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _date(value: datetime | str) -> datetime:
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _default_card(repo_id: str, card_data: Mapping[str, Any]) -> str:
    lines = ["---"]
    for key, value in card_data.items():
        if isinstance(value, list):
            lines.append(f"{key}:")
            lines.extend(f"- {item}" for item in value)
        else:
            lines.append(f"{key}: {value}")
    lines += ["---", "", f"# {repo_id.split('/')[-1]}", "", "A model served by the Hearth test hub stand-in.", ""]
    return "\n".join(lines)


def _parse_range(header: str, size: int) -> tuple[int, int] | None:
    """``bytes=a-b`` / ``bytes=a-`` / ``bytes=-n`` as inclusive bounds; None when not satisfiable."""
    unit, _, spec = header.strip().partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None
    start, _, end = spec.strip().partition("-")
    try:
        if start:
            first = int(start)
            last = min(int(end), size - 1) if end else size - 1
        elif end:
            first, last = max(size - int(end), 0), size - 1
        else:
            return None
    except ValueError:
        return None
    return (first, last) if first <= last and first < size else None


def _flip(data: bytes, at: int, offset: int, count: int) -> bytes:
    """``data`` sits at ``at`` in the body; invert the bytes of ``[offset, offset + count)`` that fall in it."""
    lo, hi = max(offset - at, 0), min(offset + count - at, len(data))
    if lo >= hi:
        return data
    spoiled = bytearray(data)
    for i in range(lo, hi):
        spoiled[i] ^= 0xFF
    return bytes(spoiled)


def _path_pattern(path: str) -> str:
    if path.startswith("/") or any(c in path for c in "*?["):
        return path
    return f"*/{path}"


# --- GGUF files -----------------------------------------------------------------------------------------------------


def tiny_model() -> Path:
    """The real stories260K GGUF (about 1.1 MB) the suite uses."""
    from tests.helpers.fetch_test_model import locate

    path = locate()
    if path is None:
        raise FileNotFoundError("stories260K.gguf is missing: run tests/helpers/fetch_test_model.py")
    return path


def gguf_summary(files: Iterable[HubFile]) -> dict[str, Any] | None:
    """The Hub's ``gguf`` field for a repo with these files: ``total`` (parameter count), ``architecture``,
    ``context_length`` (when the file says), ``chat_template`` (when it has one); read from the largest
    ``.gguf`` (the first shard of a split model). None when there is no readable GGUF."""
    ggufs = [f for f in files if f.path.lower().endswith(".gguf")]
    if not ggufs:
        return None
    shards = [f for f in ggufs if "-00001-of-" in f.path]
    chosen = min(shards, key=lambda f: f.path) if shards else max(ggufs, key=lambda f: f.size)
    try:
        if chosen.source is not None:
            return _summarize(GGUFReader(chosen.source))
        with tempfile.TemporaryDirectory() as scratch:
            copy = Path(scratch) / "model.gguf"
            copy.write_bytes(chosen.data or b"")
            return _summarize(GGUFReader(copy))
    except (ValueError, OSError, IndexError, KeyError, struct.error):
        return None


def _summarize(reader: GGUFReader) -> dict[str, Any]:
    def value(key: str) -> Any:
        found = reader.fields.get(key)
        if found is None or not found.data:
            return None
        part = found.parts[found.data[0]]
        if found.types[0] == GGUFValueType.STRING:
            return bytes(part).decode("utf-8", "replace")
        return part.tolist()[0]

    architecture = value("general.architecture") or "unknown"
    summary: dict[str, Any] = {"total": int(sum(int(t.n_elements) for t in reader.tensors)),
                               "architecture": architecture}
    if (context := value(f"{architecture}.context_length")) is not None:
        summary["context_length"] = int(context)
    if (template := value("tokenizer.chat_template")) is not None:
        summary["chat_template"] = template
    return summary


def write_big_gguf(path: Path, size: int = 12 * MiB, *, arch: str = "llama", context_length: int = 4096,
                   seed: int = 0) -> Path:
    """A valid GGUF of at least ``size`` bytes (random F32 tensors, not loadable as a model), written in well
    under a second: big enough to cross huggingface_hub's 10 MiB download chunks, so resume uses ``Range``."""
    rng = np.random.default_rng(seed)
    writer = GGUFWriter(path, arch)
    writer.add_name(f"hub stand-in {path.stem}")
    writer.add_context_length(context_length)
    left = -(-size // 4)  # float32 values
    index = 0
    while left > 0:
        n = min(left, 4 * MiB)
        writer.add_tensor(f"filler.{index}", rng.random(n, dtype=np.float32))
        left -= n
        index += 1
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def loadable_big_gguf(dest: Path) -> Path:
    """A llama.cpp-loadable model (random weights, the stories260K vocabulary) of about 16 MB, so a download
    crosses the 10 MiB chunks and the result can still be loaded and asked something."""
    from tests.helpers.model_builders import llama_gqa

    return llama_gqa(dest, n_embd=256, n_layer=4, n_head=8, n_head_kv=2, n_ff=1024, dtype="F32", seed=7)


# --- pointing huggingface_hub at the stand-in -----------------------------------------------------------------------


@contextmanager
def start_hub(**options: Any) -> Iterator[HubStandIn]:
    """Run a :class:`HubStandIn` (``options`` go to its constructor) until the block ends."""
    stand_in = HubStandIn(**options)
    stand_in.start()
    try:
        yield stand_in
    finally:
        stand_in.stop()


def use_stand_in(stand_in: HubStandIn, monkeypatch: pytest.MonkeyPatch, home: Path) -> None:
    """Point ``huggingface_hub`` at ``stand_in``, online, with ``home`` as ``HF_HOME`` and no token, Xet or
    telemetry: through the environment (for child processes and later imports) and by patching the values
    ``huggingface_hub.constants`` and a few modules read once at import (for this process)."""
    import huggingface_hub
    from huggingface_hub import constants, hf_api
    from huggingface_hub.utils import _cache_assets, _cache_manager, _http

    home.mkdir(parents=True, exist_ok=True)
    env = {"HF_ENDPOINT": stand_in.url, "HF_HOME": str(home), "HF_HUB_OFFLINE": "0",
           "HF_HUB_DISABLE_TELEMETRY": "1", "HF_HUB_DISABLE_XET": "1", "HF_HUB_DISABLE_UPDATE_CHECK": "1"}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    for key in ("TRANSFORMERS_OFFLINE", "HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_ASSETS_CACHE",
                "HUGGINGFACE_ASSETS_CACHE", "HF_TOKEN_PATH", "HF_XET_CACHE", "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN",
                "HUGGINGFACE_CO_STAGING", "DO_NOT_TRACK", "DISABLE_TELEMETRY"):
        monkeypatch.delenv(key, raising=False)

    hub_cache, assets_cache = str(home / "hub"), str(home / "assets")
    values: dict[str, Any] = {
        "ENDPOINT": stand_in.url,
        "HUGGINGFACE_CO_URL_TEMPLATE": stand_in.url + "/{repo_id}/resolve/{revision}/{filename}",
        "HF_HUB_OFFLINE": False,
        "HF_HUB_DISABLE_TELEMETRY": True,
        "HF_HUB_DISABLE_XET": True,
        "HF_HUB_DISABLE_UPDATE_CHECK": True,
        "HF_HOME": str(home),
        "default_cache_path": hub_cache,
        "default_assets_cache_path": assets_cache,
        "HUGGINGFACE_HUB_CACHE": hub_cache,
        "HUGGINGFACE_ASSETS_CACHE": assets_cache,
        "HF_HUB_CACHE": hub_cache,
        "HF_ASSETS_CACHE": assets_cache,
        "HF_TOKEN_PATH": str(home / "token"),
        "HF_STORED_TOKENS_PATH": str(home / "stored_tokens"),
        "HF_XET_CACHE": str(home / "xet"),
        "AGENT_HARNESSES_PATH": str(home / ".agent_harnesses.json"),
        "CHECK_FOR_UPDATE_DONE_PATH": str(home / ".check_for_update_done"),
        "CHECK_FOR_SKILL_UPDATE_DONE_PATH": str(home / ".check_for_skill_update_done"),
    }
    for name, value in values.items():
        monkeypatch.setattr(constants, name, value)  # raising: a renamed constant must fail loudly
    monkeypatch.setattr(_cache_manager, "HF_HUB_CACHE", hub_cache)
    monkeypatch.setattr(_cache_assets, "HF_ASSETS_CACHE", assets_cache)
    # The module-level HfApi behind huggingface_hub.list_models & co. took its endpoint at import.
    monkeypatch.setattr(hf_api.api, "endpoint", stand_in.url)
    # Origins trusted with the token: computed at import; the CDN must never be one of them.
    if hasattr(_http, "_HUB_ORIGINS"):
        defaults = (constants._HF_DEFAULT_ENDPOINT, constants._HF_DEFAULT_STAGING_ENDPOINT, "https://hf.co")
        monkeypatch.setattr(_http, "_HUB_ORIGINS",
                            frozenset(_http._url_origin(url) for url in (*defaults, stand_in.url)))
    huggingface_hub.close_session()  # no pooled connection to an earlier stand-in


@pytest.fixture(name="hub")
def hub_fixture(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[HubStandIn]:
    """The ``hub`` fixture: a running :class:`HubStandIn`, empty, with huggingface_hub pointed at it
    (``HF_HOME`` under ``tmp_path/hf-home``); stopped afterwards.

    A test module gets it with ``from tests.helpers.hub_stand_in import hub_fixture  # noqa: F401`` and then asks
    for ``hub``. (``from tests.helpers.hub_stand_in import hub`` works too, but then ruff reports every ``hub``
    parameter as a redefinition, F811.)"""
    from huggingface_hub import close_session

    with start_hub() as stand_in:
        use_stand_in(stand_in, monkeypatch, tmp_path / "hf-home")
        try:
            yield stand_in
        finally:
            close_session()
    if stand_in.server_errors:
        pytest.fail("the hub stand-in failed:\n" + "\n".join(stand_in.server_errors), pytrace=False)


hub = hub_fixture  # the same fixture under its own name
