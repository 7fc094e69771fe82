"""The curated model catalog: small instruction-tuned models people have heard of, each with the Hugging Face
repository of an established GGUF publisher.

The catalog is data, not code (``resources/catalog/catalog.json``), so it can change without a release: a newer
catalog may be fetched from a URL in the settings. Anything read from outside the program (the built-in file
included) goes through ``parse_catalog``, which checks it against ``resources/catalog/catalog.schema.json`` and a
few rules a schema cannot state (unique ids, valid repository ids). A catalog is accepted whole or not at all:
one bad entry refuses the lot, because a half-accepted list would silently drop models and a later fix would
look like a change nobody made.

Validation uses the ``jsonschema`` library rather than a hand-written checker: the schema file is then the one
description of the format, usable as it is by whoever edits or publishes a catalog (editors, CI), and the checks
(types, patterns, required fields, date format) are the standard ones instead of ours to get right and keep in
step with the file. Its error objects say where and what is wrong; this module turns them into one plain
sentence for people.

Fetching a newer catalog is optional and never in the way: any failure (offline, unreachable, not JSON, invalid,
not newer) returns ``None`` and is logged, and the app keeps the catalog it has. An accepted catalog can be kept
in the cache folder and is validated again when read on the next start.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from fnmatch import fnmatchcase
from functools import cache
from pathlib import Path
from typing import Any, Literal, cast
from urllib.parse import urlsplit

import httpx2
import jsonschema
from huggingface_hub import get_session
from huggingface_hub.errors import HFValidationError, OfflineModeIsEnabled
from huggingface_hub.utils import validate_repo_id  # type: ignore[attr-defined]  # exported without __all__

from app.errors import HearthError
from app.paths import resources_dir
from app.words import plural

log = logging.getLogger(__name__)

__all__ = [
    "BUILTIN",
    "CACHE_FILE",
    "SCHEMA_VERSION",
    "Catalog",
    "CatalogEntry",
    "CatalogError",
    "Kind",
    "cached_or_builtin",
    "catalog_path",
    "fetch_newer",
    "load_builtin",
    "load_cached",
    "parse_catalog",
    "resources_dir",
    "save_to_cache",
    "schema_path",
]

Kind = Literal["chat", "embedding"]

SCHEMA_VERSION = 1
BUILTIN = "built-in"
CACHE_FILE = "catalog.json"
# Today's catalog is about 20 KB; a response far larger than that is not a catalog.
MAX_CATALOG_BYTES = 2 * 1024 * 1024
_LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})


class CatalogError(HearthError):
    """A catalog cannot be used; the message says why in plain words."""


@dataclass(frozen=True)
class CatalogEntry:
    """One model of the catalog, as the schema describes it (see ``catalog.schema.json`` for each field)."""

    id: str
    name: str
    family: str
    parameters: int
    parameters_label: str
    license: str
    gated: bool
    languages: tuple[str, ...]
    good_at: str
    kind: Kind
    repo: str
    recommended_quant: str
    file_size: int | None = None  # bytes, approximate: the catalog's figure for the recommended file
    file_pattern: str | None = None
    context_length: int | None = None
    notes: str | None = None

    @property
    def page_url(self) -> str:
        """The repository's page on the Hub (where people read the card and, for gated ones, accept the licence)."""
        return f"https://huggingface.co/{self.repo}"

    def matches(self, query: str) -> bool:
        """Whether every word of ``query`` is in the model's name, family, repository or what it is good at
        (the Discover page filters the catalog with it as the person types, with no network needed)."""
        text = " ".join((self.name, self.family, self.repo, self.good_at, self.parameters_label)).casefold()
        return all(word in text for word in query.casefold().split())

    def matches_file(self, filename: str) -> bool:
        """Whether ``filename`` (a path in the repository) is the recommended file or one of its parts.

        Case-insensitive, because publishers disagree on case (``q4_k_m`` and ``Q4_K_M`` both occur, even in
        one publisher's repositories); without a ``file_pattern``, any ``.gguf`` whose name carries the
        recommended quantization matches.
        """
        name = filename.lower()
        if self.file_pattern is not None:
            return fnmatchcase(name, self.file_pattern.lower())
        return name.endswith(".gguf") and self.recommended_quant.lower() in name


@dataclass(frozen=True)
class Catalog:
    """A validated catalog: its models in file order, the day it was last changed and where it came from
    (``"built-in"`` or the URL it was fetched from)."""

    models: tuple[CatalogEntry, ...]
    updated: date
    source: str
    # The JSON document as validated, kept so that a fetched catalog can be cached exactly as received.
    document: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def is_builtin(self) -> bool:
        return self.source == BUILTIN

    def entries(self, kind: Kind | None = "chat") -> tuple[CatalogEntry, ...]:
        """The models of one kind (chat models by default), or all of them with ``kind=None``."""
        return tuple(entry for entry in self.models if kind is None or entry.kind == kind)

    def by_id(self, model_id: str) -> CatalogEntry | None:
        return next((entry for entry in self.models if entry.id == model_id), None)

    def is_newer_than(self, other: Catalog) -> bool:
        return self.updated > other.updated

    def __iter__(self) -> Iterator[CatalogEntry]:
        return iter(self.models)

    def __len__(self) -> int:
        return len(self.models)


# ---------------------------------------------------------------------------------------------------------
# Where the files are


def catalog_path() -> Path:
    return resources_dir() / "catalog" / "catalog.json"


def schema_path() -> Path:
    return resources_dir() / "catalog" / "catalog.schema.json"


@cache
def _validator() -> jsonschema.protocols.Validator:
    """The schema is read once; a missing or broken schema is a packaging bug, so it raises as one."""
    schema = json.loads(schema_path().read_text(encoding="utf-8"))
    validator_class = jsonschema.validators.validator_for(schema)
    validator_class.check_schema(schema)
    # Without a format checker, "format": "date" is only an annotation and 2026-02-30 would pass.
    return cast(jsonschema.protocols.Validator,
                validator_class(schema, format_checker=validator_class.FORMAT_CHECKER))


# ---------------------------------------------------------------------------------------------------------
# Reading and validating


def load_builtin() -> Catalog:
    """The catalog shipped with Hearth.

    Raises:
        CatalogError: the file is missing or invalid (a broken installation; the tests keep it valid).
    """
    path = catalog_path()
    try:
        data = path.read_bytes()
    except OSError as error:
        raise CatalogError("Hearth's built-in list of models is missing. Reinstalling Hearth should bring it "
                           "back.") from error
    return parse_catalog(data, BUILTIN)


def parse_catalog(data: bytes | str, source: str) -> Catalog:
    """Read a catalog from JSON text and check all of it before returning anything.

    Args:
        data: the JSON document (bytes in any of JSON's encodings, or text).
        source: ``"built-in"`` or the URL the data came from; it becomes ``Catalog.source`` and names the
            catalog in error messages.

    Raises:
        CatalogError: the data is not JSON, is for another catalog format, or breaks the schema or the rules
            beyond it; the message names the first problem in plain words.
    """
    try:
        document = json.loads(data)
    except json.JSONDecodeError as error:
        raise CatalogError(f"{_title(source)} cannot be used: it is not valid JSON (line {error.lineno}, "
                           f"column {error.colno}).") from error
    except (ValueError, RecursionError) as error:  # undecodable bytes, absurd nesting
        raise CatalogError(f"{_title(source)} cannot be used: it is not JSON text.") from error
    return _catalog_from_document(document, source)


def _catalog_from_document(document: Any, source: str) -> Catalog:
    if not isinstance(document, dict):
        raise CatalogError(f"{_title(source)} cannot be used: it is not a model catalog.")
    version = document.get("schema_version")
    if "schema_version" in document and version != SCHEMA_VERSION:
        if isinstance(version, int) and not isinstance(version, bool) and version > SCHEMA_VERSION:
            raise CatalogError(f"{_title(source)} is made for a newer version of Hearth (catalog format "
                               f"{version}; this version reads format {SCHEMA_VERSION}).")
        raise CatalogError(f"{_title(source)} cannot be used: its catalog format ({_short(version)}) is not one "
                           f"Hearth knows.")

    errors = sorted(_validator().iter_errors(document), key=lambda error: _path_key(error.absolute_path))
    if errors:
        more = len(errors) - 1
        extra = f" (and {plural(more, 'more problem')})" if more else ""
        raise CatalogError(f"{_title(source)} cannot be used: {_describe(errors[0], document)}{extra}.")

    models = document["models"]
    seen: dict[str, int] = {}
    for number, item in enumerate(models, start=1):
        model_id = item["id"]
        if model_id in seen:
            raise CatalogError(f"{_title(source)} cannot be used: models {seen[model_id]} and {number} have the "
                               f"same id “{model_id}”.")
        seen[model_id] = number
        try:
            validate_repo_id(item["repo"])
        except HFValidationError as error:
            raise CatalogError(f"{_title(source)} cannot be used: “repo” of {_model_label(number, item)} is not "
                               f"a Hugging Face repository id.") from error

    return Catalog(
        models=tuple(_entry(item) for item in models),
        updated=date.fromisoformat(document["updated"]),  # the schema's date format checked it
        source=source,
        document=document,
    )


def _entry(item: Mapping[str, Any]) -> CatalogEntry:
    return CatalogEntry(
        id=item["id"],
        name=item["name"],
        family=item["family"],
        parameters=item["parameters"],
        parameters_label=item["parameters_label"],
        license=item["license"],
        gated=item["gated"],
        languages=tuple(item["languages"]),
        good_at=item["good_at"],
        kind=item["kind"],
        repo=item["repo"],
        recommended_quant=item["recommended_quant"],
        file_size=item.get("file_size"),
        file_pattern=item.get("file_pattern"),
        context_length=item.get("context_length"),
        notes=item.get("notes"),
    )


# ---------------------------------------------------------------------------------------------------------
# Plain messages from schema errors

_TYPE_WORDS = {
    "string": "text",
    "integer": "a whole number",
    "number": "a number",
    "boolean": "true or false",
    "array": "a list",
    "object": "a group of named fields",
}

# What a field should look like, said instead of the schema's own wording for any error in that field.
_FIELD_HINTS = {
    "schema_version": "1",
    "updated": "a date written as YYYY-MM-DD",
    "models": "a list of at least one model",
    "id": "lower-case letters, digits, dots and dashes, such as “qwen2.5-1.5b-instruct”",
    "name": "a short name",
    "family": "a short family name",
    "parameters": "a whole number of at least one million",
    "parameters_label": "a size such as “1.5B” or “135M”",
    "license": "a licence name in lower case, such as “apache-2.0”",
    "languages": "a list of different language codes, such as “en” or “fr”",
    "good_at": "one sentence of at most 200 characters that starts with a capital letter and ends with a full stop",
    "kind": "“chat” or “embedding”",
    "repo": "a Hugging Face repository such as “Qwen/Qwen2.5-1.5B-Instruct-GGUF”",
    "recommended_quant": "a llama.cpp quantization such as “Q4_K_M”",
    "file_size": "a whole number of bytes, at least a million",
    "file_pattern": "a file name pattern that ends in “.gguf”",
    "context_length": "a whole number of tokens",
    "notes": "text of at most 400 characters",
}


def _describe(error: jsonschema.ValidationError, document: Mapping[str, Any]) -> str:
    """One clause saying what is wrong and where, e.g. ``model 3 (“qwen3-4b”) has no “repo”``."""
    path = list(error.absolute_path)
    number: int | None = None
    if len(path) >= 2 and path[0] == "models" and isinstance(path[1], int):
        number = path[1] + 1
        field_name = path[2] if len(path) >= 3 else None
    else:
        field_name = path[0] if path else None
    where = ""
    if number is not None:
        where = _model_label(number, _model_at(document, number))

    if error.validator == "required":
        instance = error.instance if isinstance(error.instance, dict) else {}
        missing = next((name for name in error.validator_value if name not in instance), "?")
        return f"{where or 'it'} has no “{missing}”"
    if field_name is None:
        if error.validator == "type":
            return f"{where or 'it'} should be {_TYPE_WORDS.get(str(error.validator_value), 'something else')}"
        return f"{where or 'it'} is not a model description"
    subject = f"“{field_name}” of {where}" if where else f"“{field_name}”"
    hint = _FIELD_HINTS.get(str(field_name))
    if hint is None and error.validator == "type":
        hint = _TYPE_WORDS.get(str(error.validator_value))
    if hint is not None:
        return f"{subject} should be {hint}, not {_short(error.instance)}"
    return f"{subject} has a value Hearth cannot use ({_short(error.instance)})"


def _model_at(document: Mapping[str, Any], number: int) -> Any:
    models = document.get("models")
    if isinstance(models, list) and 0 < number <= len(models):
        return models[number - 1]
    return None


def _model_label(number: int, item: Any) -> str:
    model_id = item.get("id") if isinstance(item, dict) else None
    if isinstance(model_id, str) and model_id:
        return f"model {number} (“{_clip(model_id)}”)"
    return f"model {number}"


def _path_key(path: Sequence[str | int]) -> tuple[tuple[int, int, str], ...]:
    """Sort errors in document order: by model number, then by field name."""
    return tuple((0, part, "") if isinstance(part, int) else (1, 0, part) for part in path)


def _short(value: Any) -> str:
    return _clip(json.dumps(value, ensure_ascii=False))


def _clip(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _title(source: str) -> str:
    return "Hearth's built-in list of models" if source == BUILTIN else f"The list of models from {source}"


# ---------------------------------------------------------------------------------------------------------
# A newer catalog from the network, and its cached copy


def fetch_newer(url: str, current: Catalog, *, session: httpx2.Client | None = None, timeout: float = 10.0,
                cache_dir: Path | None = None) -> Catalog | None:
    """Fetch the catalog at ``url`` and return it if it is valid and newer than ``current``.

    HTTP goes through ``huggingface_hub.get_session()`` (unless ``session`` is given), so the app's one
    client factory and the Hub's offline switch (``HF_HUB_OFFLINE``) apply to this request like to every
    other. No token is sent: the URL is not the Hub's API. Only ``https://`` URLs are fetched (``http://``
    only on this computer, for tests), because the catalog decides which repositories people download from.

    Args:
        url: where the catalog is published (from the settings).
        current: the catalog in use; the fetched one must have a later ``updated`` day.
        session: an ``httpx2.Client`` to use instead of huggingface_hub's shared one.
        timeout: seconds for connecting and for each read.
        cache_dir: when given, an accepted catalog is also written there (``save_to_cache``) so the next start
            uses it without the network.

    Returns:
        The newer catalog, or ``None`` for any failure or when it is not newer (the reason is logged).
    """
    if not _fetchable(url):
        log.warning("Catalog URL %r not used: only https:// addresses are fetched", url)
        return None
    client = session if session is not None else get_session()
    try:
        fetched = parse_catalog(_download(client, url, timeout), url)
    except OfflineModeIsEnabled:
        log.info("Catalog update from %s skipped: Hugging Face access is switched off (HF_HUB_OFFLINE)", url)
        return None
    except (httpx2.HTTPError, httpx2.InvalidURL, httpx2.StreamError, CatalogError, OSError) as error:
        log.warning("Catalog update from %s not used: %s", url, error)
        return None
    if not fetched.is_newer_than(current):
        log.info("Catalog from %s (updated %s) is not newer than the one in use (%s, updated %s)", url,
                 fetched.updated, current.source, current.updated)
        return None
    log.info("Using the catalog from %s (updated %s, %d models)", url, fetched.updated, len(fetched.models))
    if cache_dir is not None:
        try:
            save_to_cache(fetched, cache_dir)
        except OSError as error:
            log.warning("Could not keep the fetched catalog in %s: %s", cache_dir, error)
    return fetched


def _fetchable(url: str) -> bool:
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    if parts.scheme == "https" and parts.hostname:
        return True
    return parts.scheme == "http" and parts.hostname in _LOOPBACK_HOSTS


def _download(client: httpx2.Client, url: str, timeout: float) -> bytes:
    """The response body, refusing error statuses, redirects to plain http elsewhere and oversized bodies."""
    with client.stream("GET", url, headers={"Accept": "application/json"}, timeout=httpx2.Timeout(timeout),
                       follow_redirects=True) as response:
        response.raise_for_status()
        if not _fetchable(str(response.url)):
            raise CatalogError(f"{url} redirected to {response.url}, which is not a secure address.")
        declared = response.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > MAX_CATALOG_BYTES:
            raise CatalogError(f"{url} sent {declared} bytes, far more than a catalog.")
        body = bytearray()
        for chunk in response.iter_bytes():
            body += chunk
            if len(body) > MAX_CATALOG_BYTES:
                raise CatalogError(f"{url} sent more than {MAX_CATALOG_BYTES} bytes, far more than a catalog.")
        return bytes(body)


def save_to_cache(catalog: Catalog, cache_dir: Path) -> Path:
    """Keep a fetched catalog (as received, with the URL it came from) for the next start.

    Written to a temporary file and renamed over the old copy, so a crash never leaves half a file (and
    ``load_cached`` would refuse one anyway).
    """
    cache_dir.mkdir(parents=True, exist_ok=True)
    target = cache_dir / CACHE_FILE
    payload = json.dumps({"source": catalog.source, "catalog": catalog.document}, ensure_ascii=False, indent=1)
    handle, temporary = tempfile.mkstemp(prefix=".catalog-", suffix=".tmp", dir=cache_dir)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            file.write(payload)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return target


def load_cached(cache_dir: Path) -> Catalog | None:
    """The catalog kept by ``save_to_cache``, validated again; ``None`` when there is none or it is unusable
    (then it is removed, so that the warning is logged once and not at every start)."""
    path = cache_dir / CACHE_FILE
    if not path.is_file():
        return None
    try:
        wrapper = json.loads(path.read_bytes())
        if not isinstance(wrapper, dict) or not isinstance(wrapper.get("source"), str):
            raise CatalogError("The cached list of models is damaged.")
        return _catalog_from_document(wrapper.get("catalog"), wrapper["source"])
    except (OSError, ValueError, RecursionError, CatalogError) as error:
        log.warning("Ignoring the cached catalog %s: %s", path, error)
        with contextlib.suppress(OSError):
            path.unlink()
        return None


def cached_or_builtin(cache_dir: Path) -> Catalog:
    """The catalog to start with: a previously fetched one from ``cache_dir`` if it is valid and newer than
    the built-in one (a new release may ship a newer list than an old download), else the built-in one."""
    builtin = load_builtin()
    cached = load_cached(cache_dir)
    if cached is not None and cached.is_newer_than(builtin):
        return cached
    return builtin
