"""Model facts of a GGUF file that is not here yet, read from its header with HTTP range requests.

Before a download, Hearth reads only the first megabytes of the file (the header: metadata, tokenizer
and tensor table) to show its facts and forecast its memory use. The header's length is only known once
it has been parsed, so ``fetch_header`` asks for a first range, and while the parser says the bytes end
inside the header (``HeaderIncomplete``) it asks for the next range, doubling the total each time, up to a
limit. Tokenizer arrays make headers of real models 1 to 8 MB long.

HTTP goes through the client that huggingface_hub ships (``huggingface_hub.get_session()``, an
``httpx2.Client``), so the Hub's settings apply (``HF_ENDPOINT``, ``HF_HUB_OFFLINE``, a stored token,
a client factory installed by the app) and redirects are followed (the Hub answers ``/resolve/`` with a
302 to its CDN). huggingface_hub itself has no call that reads a byte range of a file into memory:
``hf_hub_download`` downloads whole files and ``HfFileSystem`` would add fsspec for one request.
"""

from __future__ import annotations

import logging
import os
import re
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO
from urllib.parse import quote, unquote, urlsplit, urlunsplit

import httpx2
from huggingface_hub import constants, get_session, hf_hub_url
from huggingface_hub.errors import HFValidationError, OfflineModeIsEnabled
from huggingface_hub.utils import (  # type: ignore[attr-defined]  # exported without __all__
    build_hf_headers,
    validate_repo_id,
)

from app.errors import HearthError, InvalidModelError
from app.gguf.facts import ModelFacts, read_facts_from_parts
from app.gguf.header import HeaderIncomplete, HeaderScan, scan_header, split_part_name
from app.words import format_bytes

log = logging.getLogger(__name__)

__all__ = [
    "RemoteFile",
    "RemoteHeader",
    "RemoteModelError",
    "fetch_header",
    "hub_file_url",
    "parse_model_reference",
    "write_sparse_copy",
]

# Connecting should be quick; a slow CDN may take a while to start a large range.
_TIMEOUT = httpx2.Timeout(30.0, connect=10.0)
_CHUNK = 1 << 16
_CONTENT_RANGE = re.compile(r"^\s*bytes\s+(\d+)-(\d+)/(\d+|\*)\s*$", re.IGNORECASE)
_HUB_HOSTS = ("huggingface.co", "hf.co")
# OWNER/NAME/path/to/file.gguf, as people copy it from a model page.
_HUB_FILE = re.compile(r"^(?P<repo>[^/\s]+/[^/\s]+)/(?P<file>\S+\.gguf)$", re.IGNORECASE)


class RemoteModelError(HearthError):
    """A remote model file could not be read; ``status`` is the HTTP status when the server answered."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class RemoteFile:
    """The header bytes of one remote file (up to where its tensor data starts) and its full size."""

    url: str
    file_size: int
    header: bytes

    @property
    def name(self) -> str:
        return _file_name(self.url)


@dataclass(frozen=True)
class RemoteHeader:
    """What ``fetch_header`` read: the facts of the whole model, and the header of each of its files.

    ``url``, ``file_size`` and ``header`` are those of the first file (the only one for a model that is
    not split); ``parts`` lists every file in order, the first included. ``facts.file_size`` is the
    size of the whole model and ``facts.path`` is the first file's name.
    """

    url: str
    file_size: int
    header: bytes
    facts: ModelFacts
    parts: tuple[RemoteFile, ...] = field(default=(), repr=False)

    def __post_init__(self) -> None:
        if not self.parts:
            object.__setattr__(self, "parts", (RemoteFile(self.url, self.file_size, self.header),))


def hub_file_url(repo_id: str, filename: str, revision: str = "main", endpoint: str | None = None) -> str:
    """The download (``resolve``) URL of a file on the Hub; honours ``HF_ENDPOINT`` (mirrors, tests)."""
    return hf_hub_url(repo_id, filename, revision=revision, endpoint=endpoint)


def parse_model_reference(text: str) -> str | None:
    """The URL to read for a model reference someone typed, or ``None`` when ``text`` is none.

    Accepts a Hub file as ``OWNER/NAME/FILE.gguf`` (the file may be in a folder), any http(s) URL (a Hub
    ``/blob/`` page link is turned into its ``/resolve/`` download link), and a Hub ``/resolve/`` URL as
    it is. Local paths are not recognised here: a caller should look for a local file first, because
    ``models/tiny/model.gguf`` reads as both.
    """
    text = text.strip()
    if not text:
        return None
    parts = urlsplit(text)
    if parts.scheme.lower() in ("http", "https") and parts.netloc:
        return _download_link(text)
    if parts.scheme:  # another scheme, or a Windows drive letter
        return None
    match = _HUB_FILE.match(text)
    if match is None:
        return None
    filename = match["file"]
    if any(segment in ("", ".", "..") for segment in filename.split("/")):
        return None
    try:
        validate_repo_id(match["repo"])
    except HFValidationError:
        return None
    return hub_file_url(match["repo"], filename)


def fetch_header(url: str, *, session: httpx2.Client | None = None, token: str | None = None,
                 start: int = 1 << 20, limit: int = 64 << 20) -> RemoteHeader:
    """Read the facts of the GGUF model at ``url`` by fetching only its header.

    Asks for ``Range: bytes=0-{start - 1}`` and, while the header goes on past the bytes at hand, for the
    next bytes, doubling the total each time up to ``limit`` bytes. When the server ignores ``Range`` and
    sends the whole file, the body is read only as far as the header and the connection is then closed.
    For one part of a split model (``NAME-00001-of-0000N.gguf``), every part's header is fetched from the
    same folder URL and the facts describe the whole model.

    Args:
        url: an http(s) URL of a GGUF file (see ``parse_model_reference`` and ``hub_file_url``).
        session: the HTTP client; huggingface_hub's shared one by default.
        token: a Hugging Face token. For the Hub, ``None`` uses the token stored by ``hf auth login`` or
            ``HF_TOKEN``; other servers get a token only when one is given here.
        start, limit: the first range and the most bytes read from each file.

    Returns:
        the facts, and each file's header bytes and size (for ``write_sparse_copy``).

    Raises:
        RemoteModelError: the server could not be reached or refused (with the reason in plain words).
        InvalidModelError: the file is not a usable GGUF model.
    """
    client = session if session is not None else get_session()
    headers = _request_headers(url, token)
    first, scan = _fetch_file(client, url, headers, max(start, 1), limit)
    if scan.part_count == 1:
        files = [first]
    else:
        files = []
        for number in range(1, scan.part_count + 1):
            if number == scan.part:
                files.append(first)
            else:
                files.append(_fetch_file(client, _part_url(url, scan, number), headers, max(start, 1), limit)[0])
    facts = read_facts_from_parts([(item.header, item.file_size, item.name) for item in files])
    return RemoteHeader(files[0].url, files[0].file_size, files[0].header, facts, tuple(files))


def write_sparse_copy(remote: RemoteHeader, dest: Path) -> Path:
    """Write the model's header bytes followed by a hole up to each file's full size, and return the path
    of the first file.

    llama.cpp can then size the model (a ``no_alloc`` dry run, which reads the header and never the
    weights) before it is downloaded. ``dest`` is the first file's path, or a folder to put it in under
    its remote name; the other parts of a split model go beside it, named as llama.cpp expects. Each file
    is written under a temporary name and renamed into place, so a reader never sees a half-written one.

    The hole takes no disk space on file systems with sparse files (ext4, btrfs, xfs, APFS, NTFS). On
    Windows the file is first marked sparse, best effort: without the mark NTFS would reserve the whole
    size on disk; FAT and exFAT have no sparse files at all, so there the copy really takes the full size.
    """
    dest = Path(dest)
    folder, first_name = (dest, remote.parts[0].name) if dest.is_dir() else (dest.parent, dest.name)
    names = [first_name]
    for number in range(2, len(remote.parts) + 1):
        names.append(split_part_name(first_name, number) or remote.parts[number - 1].name)
    folder.mkdir(parents=True, exist_ok=True)
    for part, name in zip(remote.parts, names, strict=True):
        target = folder / name
        temporary = target.with_name(target.name + ".partial")
        with temporary.open("wb") as handle:
            _mark_sparse(handle)
            handle.write(part.header)
            handle.truncate(part.file_size)
        os.replace(temporary, target)
    return folder / names[0]


# --- fetching --------------------------------------------------------------------------------------------


def _fetch_file(client: httpx2.Client, url: str, headers: Mapping[str, str], start: int,
                limit: int) -> tuple[RemoteFile, HeaderScan]:
    """One file's header, grown by range requests until the parser has all of it."""
    name = _file_name(url)
    buffer = bytearray()
    want = min(start, limit)
    total: int | None = None
    while True:
        offset = len(buffer)
        with _request(client, "GET", url, {**headers, "Range": f"bytes={offset}-{want - 1}"}) as response:
            if response.status_code != 206:
                # The server ignored Range and is sending the whole file: read on only as far as needed.
                size = _whole_size(client, url, headers, response)
                return _read_whole(response, url, size, want, limit)
            total = _range_total(client, url, headers, response, offset)
            _read_into(buffer, response.iter_bytes(_CHUNK), min(want, total))
        if len(buffer) < min(want, total):
            raise _cut_short(url)
        result = _scan(buffer, total, name)
        if isinstance(result, HeaderScan):
            return RemoteFile(url, total, bytes(buffer[:result.length])), result
        want = _grow(want, result, limit, total, name)


def _read_whole(response: httpx2.Response, url: str, size: int, want: int,
                limit: int) -> tuple[RemoteFile, HeaderScan]:
    """The header from a response that carries the whole file, leaving the rest of the body unread."""
    name = _file_name(url)
    buffer = bytearray()
    chunks = response.iter_bytes(_CHUNK)
    while True:
        _read_into(buffer, chunks, min(want, size))
        if len(buffer) < min(want, size):
            raise _cut_short(url)
        result = _scan(buffer, size, name)
        if isinstance(result, HeaderScan):
            return RemoteFile(url, size, bytes(buffer[:result.length])), result
        want = _grow(want, result, limit, size, name)


def _read_into(buffer: bytearray, chunks: Iterator[bytes], until: int) -> None:
    """Append chunks until ``buffer`` holds ``until`` bytes or the body ends; a chunk that goes past
    ``until`` is kept whole, since the next round may need those bytes."""
    for chunk in chunks if len(buffer) < until else ():
        buffer += chunk
        if len(buffer) >= until:
            break


def _scan(buffer: bytearray, size: int, name: str) -> HeaderScan | int:
    """The scan of a complete header, or how many bytes the parser needs at least."""
    try:
        # A copy: a view would pin the bytearray (no growing it while a traceback holds the view).
        return scan_header(bytes(buffer[:size]), file_size=size, name=name)
    except HeaderIncomplete as incomplete:
        return incomplete.needed


def _grow(want: int, needed: int, limit: int, size: int, name: str) -> int:
    if needed > limit:
        raise RemoteModelError(
            f"The header of “{name}” is longer than {format_bytes(limit)}, more than Hearth reads before a "
            "download. Download the file to see its details.")
    return min(max(want * 2, needed), limit, size)


@contextmanager
def _request(client: httpx2.Client, method: str, url: str, headers: Mapping[str, str]) -> Iterator[httpx2.Response]:
    """A streamed response with status 200 or 206; anything else, and any network failure while it is
    read, becomes a ``RemoteModelError`` in plain words."""
    try:
        with client.stream(method, url, headers=dict(headers), follow_redirects=True,
                           timeout=_TIMEOUT) as response:
            if response.status_code not in (200, 206):
                raise _status_error(response, url, authorized="authorization" in {k.lower() for k in headers})
            yield response
    except OfflineModeIsEnabled as error:
        raise RemoteModelError(
            f"Hearth cannot read “{_file_name(url)}”: Hugging Face access is switched off on this computer "
            "(HF_HUB_OFFLINE is set).") from error
    except httpx2.TimeoutException as error:
        if isinstance(error, httpx2.ConnectTimeout | httpx2.PoolTimeout):
            raise RemoteModelError(f"Could not reach {_host(url)}: it did not answer. "
                                   "Check the internet connection.") from error
        raise RemoteModelError(f"{_host(url)} stopped answering while Hearth read “{_file_name(url)}”. "
                               "Try again later.") from error
    except httpx2.ConnectError as error:
        raise RemoteModelError(f"Could not reach {_host(url)}. Check the internet connection.") from error
    except (httpx2.UnsupportedProtocol, httpx2.InvalidURL) as error:
        raise RemoteModelError(f"“{url}” is not a web address Hearth can read.") from error
    except httpx2.TooManyRedirects as error:
        raise RemoteModelError(f"{_host(url)} kept redirecting and never sent “{_file_name(url)}”.") from error
    except httpx2.HTTPError as error:
        raise RemoteModelError(f"The connection to {_host(url)} was interrupted while Hearth read "
                               f"“{_file_name(url)}”. Try again.") from error


def _status_error(response: httpx2.Response, url: str, *, authorized: bool) -> RemoteModelError:
    """Why the server said no, in words, using the Hub's ``X-Error-Code`` where it sends one."""
    status = response.status_code
    code = response.headers.get("x-error-code", "")
    file = f"“{_file_name(url)}”"
    host = _host(url)
    if code == "GatedRepo" or (status == 403 and _is_hub(url)):
        message = (f"{file} is in a gated model on Hugging Face, and this account has not been given access. "
                   "Accept the model's terms on its page, with the account whose token Hearth uses.")
    elif code == "RepoNotFound":
        message = (f"The model repository of {file} was not found on {host}. Check its name; if it is "
                   "private, Hearth needs a token of an account that can see it.")
    elif code in ("EntryNotFound", "RevisionNotFound") or status in (404, 410):
        message = f"{file} was not found on {host}. Check the repository, file name and revision."
    elif status == 401:
        message = (f"{host} did not accept the token for {file}. Check that the token is valid and can read "
                   "this model." if authorized else
                   f"{file} needs a Hugging Face token: the model is gated or private. Accept its terms on its "
                   "page and add an access token to Hearth.")
    elif status == 403:
        message = f"{host} refused access to {file} (HTTP 403)."
    elif status == 416 and response.headers.get("content-range", "").endswith("/0"):
        message = f"{file} on {host} is empty (0 bytes)."
    elif status == 416:
        message = f"The server does not allow reading part of the file {file} (HTTP 416)."
    elif status == 429:
        message = f"{host} is limiting requests right now. Try again in a minute."
    elif status >= 500:
        message = f"{host} had a problem (HTTP {status}). Try again later."
    else:
        message = f"{host} answered HTTP {status} for {file}."
    return RemoteModelError(message, status)


def _range_total(client: httpx2.Client, url: str, headers: Mapping[str, str], response: httpx2.Response,
                 offset: int) -> int:
    """The file size from a 206 answer, which must start where it was asked to."""
    match = _CONTENT_RANGE.match(response.headers.get("content-range", ""))
    if match is None or int(match[1]) != offset:
        raise RemoteModelError(f"The server does not allow reading part of the file “{_file_name(url)}”: it "
                               "answered with a different part than the one asked for.")
    if match[3] != "*":
        return int(match[3])
    return _head_size(client, url, headers)


def _whole_size(client: httpx2.Client, url: str, headers: Mapping[str, str], response: httpx2.Response) -> int:
    length = response.headers.get("content-length", "")
    if length.isdigit():
        return int(length)
    return _head_size(client, url, headers)


def _head_size(client: httpx2.Client, url: str, headers: Mapping[str, str]) -> int:
    """The size from a HEAD request, for servers that do not say it in their answer to GET."""
    with _request(client, "HEAD", url, headers) as response:
        length = response.headers.get("content-length", "")
    if not length.isdigit():
        raise RemoteModelError(f"The server does not allow reading part of the file “{_file_name(url)}”, and "
                               "does not say how large it is.")
    return int(length)


def _cut_short(url: str) -> RemoteModelError:
    return RemoteModelError(f"The connection to {_host(url)} ended before Hearth had the start of "
                            f"“{_file_name(url)}”. Try again.")


# --- URLs and headers --------------------------------------------------------------------------------------


def _request_headers(url: str, token: str | None) -> dict[str, str]:
    """``Accept-Encoding: identity`` so byte ranges count file bytes, not compressed ones; a token only for
    the Hub (or when given for another server). httpx drops the token on a redirect to another origin,
    so the Hub's CDN never sees it."""
    headers = {"Accept-Encoding": "identity"}
    if _is_hub(url):
        headers.update(build_hf_headers(token=token))
    elif token:
        headers["Authorization"] = f"Bearer {token}"
    return headers


def _is_hub(url: str) -> bool:
    host = (urlsplit(url).hostname or "").lower()
    endpoint = (urlsplit(constants.ENDPOINT).hostname or "").lower()
    return host == endpoint or any(host == hub or host.endswith("." + hub) for hub in _HUB_HOSTS)


def _download_link(url: str) -> str:
    """A Hub file page (``/OWNER/NAME/blob/REV/FILE``) as its download link; other URLs as they are."""
    parts = urlsplit(url)
    if not _is_hub(url):
        return url
    segments = parts.path.split("/")
    if len(segments) > 5 and segments[3] == "blob":
        segments[3] = "resolve"
        return urlunsplit(parts._replace(path="/".join(segments)))
    return url


def _file_name(url: str) -> str:
    parts = urlsplit(url)
    return unquote(parts.path.rstrip("/").rpartition("/")[2]) or parts.netloc or url


def _host(url: str) -> str:
    return urlsplit(url).hostname or url


def _part_url(url: str, scan: HeaderScan, number: int) -> str:
    """The URL of part ``number`` beside the part at ``url``, named as llama.cpp names the parts."""
    parts = urlsplit(url)
    folder, _, last = parts.path.rpartition("/")
    sibling = split_part_name(unquote(last), number)
    expected = split_part_name(unquote(last), scan.part)
    if sibling is None or expected != unquote(last):
        raise InvalidModelError(
            f"“{_file_name(url)}” is part {scan.part} of {scan.part_count} of a model split into several files, "
            f"but its name does not end in “-{scan.part:05d}-of-{scan.part_count:05d}.gguf”, so its other "
            "parts cannot be found.")
    return urlunsplit(parts._replace(path=f"{folder}/{quote(sibling)}"))


def _mark_sparse(handle: BinaryIO) -> None:
    """Mark a new file sparse on Windows (FSCTL_SET_SPARSE), so extending it reserves no disk space.

    Best effort: on failure (FAT, exFAT, an old Windows) the copy is still correct, only not sparse.
    Other systems make files sparse by themselves when they are extended.
    """
    if sys.platform != "win32":
        return
    import ctypes
    import msvcrt
    from ctypes import wintypes

    fsctl_set_sparse = 0x000900C4
    returned = wintypes.DWORD()
    try:
        ok = ctypes.windll.kernel32.DeviceIoControl(
            wintypes.HANDLE(msvcrt.get_osfhandle(handle.fileno())), fsctl_set_sparse, None, 0, None, 0,
            ctypes.byref(returned), None)
    except (OSError, AttributeError, ValueError):
        log.debug("could not mark %s sparse", handle.name, exc_info=True)
        return
    if not ok:
        log.debug("could not mark %s sparse (error %d)", handle.name, ctypes.GetLastError())
