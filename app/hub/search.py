"""Finding GGUF models on the Hugging Face Hub: search, and a repository's files grouped by quantization.

Everything goes through ``huggingface_hub.HfApi`` (paging, retries, authentication, ``HF_ENDPOINT``); this
module only shapes the answers for people: one entry per quantization, split files (``-00001-of-00003``)
as one model, and vision projectors (``mmproj``) kept apart because they are not models on their own.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from app.errors import HearthError

log = logging.getLogger(__name__)

SORTS = {"downloads": "downloads", "likes": "likes", "trending": "trending_score"}
SEARCH_EXPAND = ["downloads", "likes", "gated", "gguf", "lastModified", "pipeline_tag"]
_SHARD = re.compile(r"^(?P<stem>.+)-(?P<part>\d{5})-of-(?P<count>\d{5})\.gguf$", re.IGNORECASE)
_QUANT = re.compile(r"(?<![A-Za-z0-9])(?P<q>(?:I?Q\d(?:_[A-Z0-9]+)*)|BF16|F16|F32|FP16|FP32|MXFP4)(?![A-Za-z0-9])",
                    re.IGNORECASE)


class HubFailure(StrEnum):
    """Why the Hub could not be asked, so that a page offers what helps: Retry, Work offline, Work online."""

    NO_NETWORK = "no network"  # no connection reaches the Hub: try again later, or work offline
    UNAVAILABLE = "unavailable"  # the Hub or the connection failed this once (a server error, a timeout): try again
    WORKING_OFFLINE = "working offline"  # the Work offline switch is on: the Hub is not asked until it is off
    REFUSED = "refused"  # the Hub said no (no such model, a licence to accept first): trying again will not help


class HubError(HearthError):
    """The Hub could not be asked; the message says why in plain words, ``failure`` what kind of failure it was."""

    def __init__(self, message: str, failure: HubFailure = HubFailure.REFUSED) -> None:
        super().__init__(message)
        self.failure = failure

    def __reduce__(self) -> tuple[object, ...]:
        return type(self), (str(self), self.failure)


NO_NETWORK = ("No network: the Hugging Face Hub cannot be reached. Check the connection and try again, or work "
              "offline with the models you have.")
WORKING_OFFLINE = ("Hearth is working offline, so it does not ask the Hugging Face Hub. Work online to search it "
                   "and download models.")
UNAVAILABLE = "The Hugging Face Hub did not answer this time. Try again in a moment."


@dataclass(frozen=True)
class HubModel:
    repo_id: str
    downloads: int
    likes: int
    gated: bool
    last_modified: datetime | None
    parameters: int | None
    architecture: str | None
    context_length: int | None


@dataclass(frozen=True)
class HubFile:
    name: str
    size: int
    sha256: str | None


@dataclass(frozen=True)
class FileGroup:
    """One downloadable model (one file, or all parts of a split one), or one vision projector."""

    quant: str
    files: tuple[HubFile, ...]
    projector: bool = False

    @property
    def size(self) -> int:
        return sum(f.size for f in self.files)

    @property
    def first(self) -> HubFile:
        return self.files[0]


def search_models(query: str = "", *, sort: str = "downloads", limit: int = 20, api: Any = None,
                  token: str | None = None) -> list[HubModel]:
    """GGUF text-generation models, most downloaded (or liked, or trending) first."""
    api = api or _api(token)
    try:
        found = api.list_models(search=query or None, filter="gguf", pipeline_tag="text-generation",
                                sort=SORTS.get(sort, sort), limit=limit, expand=SEARCH_EXPAND)
        return [_model(info) for info in found]
    except Exception as error:
        raise _hub_error(error) from error


class SearchPager:
    """Search results a page at a time: huggingface_hub pages through the Hub lazily (``Link`` headers), so
    "load more" asks for the next page only when the person wants it."""

    def __init__(self, query: str = "", *, sort: str = "downloads", page_size: int = 20, api: Any = None,
                 token: str | None = None) -> None:
        self.page_size = page_size
        self.exhausted = False
        self._api, self._token = api, token  # the client is made with the first page: off the GUI thread
        self._query, self._sort = query, sort
        self._results: Any = None

    def next_page(self) -> list[HubModel]:
        try:
            if self._api is None:
                self._api = _api(self._token)
            if self._results is None:
                self._results = iter(self._api.list_models(
                    search=self._query or None, filter="gguf", pipeline_tag="text-generation",
                    sort=SORTS.get(self._sort, self._sort), expand=SEARCH_EXPAND))
            page = [_model(info) for _, info in zip(range(self.page_size), self._results, strict=False)]
        except Exception as error:
            raise _hub_error(error) from error
        self.exhausted = len(page) < self.page_size
        return page


def repo_files(repo_id: str, *, api: Any = None, revision: str | None = None,
               token: str | None = None) -> list[FileGroup]:
    """The repository's GGUF files, grouped: split parts together, projectors apart, smallest first."""
    try:
        api = api or _api(token, purpose="Reading a model's details")
        info = api.model_info(repo_id, files_metadata=True, revision=revision)
    except Exception as error:
        raise _hub_error(error, repo_id) from error
    files = [HubFile(s.rfilename, int(s.size or 0), getattr(getattr(s, "lfs", None), "sha256", None))
             for s in info.siblings or [] if s.rfilename.lower().endswith(".gguf")]
    return group_files(files)


def group_files(files: Iterable[HubFile]) -> list[FileGroup]:
    shards: dict[str, list[HubFile]] = {}
    groups: list[FileGroup] = []
    for file in files:
        name = file.name.rsplit("/", 1)[-1]
        projector = "mmproj" in name.lower()
        if match := _SHARD.match(file.name):
            shards.setdefault(match["stem"], []).append(file)
            continue
        groups.append(FileGroup(quant_of(name), (file,), projector=projector))
    for stem, parts in shards.items():
        ordered = tuple(sorted(parts, key=lambda f: f.name))
        groups.append(FileGroup(quant_of(stem.rsplit("/", 1)[-1]), ordered, projector="mmproj" in stem.lower()))
    return sorted(groups, key=lambda g: (g.projector, g.size))


def quant_of(name: str) -> str:
    matches = _QUANT.findall(name.removesuffix(".gguf"))
    return matches[-1].upper() if matches else "unknown"


def pick_group(groups: list[FileGroup], *, quant: str | None = None, filename: str | None = None) -> FileGroup:
    models = [g for g in groups if not g.projector]
    if filename:
        for group in groups:
            if any(f.name == filename or f.name.endswith("/" + filename) for f in group.files):
                return group
        raise HubError(f"There is no file called {filename} in that repository.")
    if quant:
        chosen = [g for g in models if g.quant.upper() == quant.upper()]
        if not chosen:
            available = ", ".join(sorted({g.quant for g in models})) or "none"
            raise HubError(f"No {quant} file in that repository. Available: {available}.")
        return chosen[0]
    preferred = [g for g in models if g.quant == "Q4_K_M"] or models
    if not preferred:
        raise HubError("That repository has no GGUF model files.")
    return preferred[0]


def _model(info: Any) -> HubModel:
    gguf = getattr(info, "gguf", None) or {}
    return HubModel(repo_id=info.id, downloads=int(getattr(info, "downloads", 0) or 0),
                    likes=int(getattr(info, "likes", 0) or 0), gated=bool(getattr(info, "gated", False)),
                    last_modified=getattr(info, "last_modified", None),
                    parameters=gguf.get("total"), architecture=gguf.get("architecture"),
                    context_length=gguf.get("context_length"))


def _api(token: str | None = None, *, purpose: str = "Searching for models") -> Any:
    """A Hub client, once the Hub answers a connection: without a network, a plain error within seconds
    (``network.reachable``) instead of huggingface_hub's retries. Work offline is left to huggingface_hub, which
    refuses before connecting."""
    from huggingface_hub import HfApi, constants

    from app import network

    if not network.is_offline() and not network.reachable(constants.ENDPOINT, purpose=purpose):
        raise HubError(NO_NETWORK, HubFailure.NO_NETWORK)
    return HfApi(token=token)


def _hub_error(error: Exception, repo_id: str | None = None) -> HubError:
    """The failure in plain words for people; what the library said goes to the log, not into the sentence."""
    import httpx2
    from huggingface_hub.errors import GatedRepoError, HfHubHTTPError, OfflineModeIsEnabled, RepositoryNotFoundError

    if isinstance(error, HubError):  # already in plain words (no network)
        return error
    if isinstance(error, OfflineModeIsEnabled):
        return HubError(WORKING_OFFLINE, HubFailure.WORKING_OFFLINE)
    if isinstance(error, GatedRepoError):
        return HubError(f"{repo_id} asks you to accept its licence on the Hugging Face website first "
                        f"(https://huggingface.co/{repo_id}), then add your token: File → Hugging Face token.")
    if isinstance(error, RepositoryNotFoundError):
        return HubError(f"There is no model called {repo_id} on the Hugging Face Hub (or it is private).")
    log.warning("the Hub could not be asked: %r", error)
    if isinstance(error, httpx2.ConnectError | httpx2.ConnectTimeout):
        return HubError(NO_NETWORK, HubFailure.NO_NETWORK)
    if isinstance(error, HfHubHTTPError | httpx2.TransportError):
        return HubError(UNAVAILABLE, HubFailure.UNAVAILABLE)
    log.error("unexpected failure asking the Hub", exc_info=error)
    return HubError(UNAVAILABLE, HubFailure.UNAVAILABLE)
